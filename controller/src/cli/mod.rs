//! The client side of the `mooring` CLI: kubectl-like commands that talk to a
//! Mooring server over its HTTP API (`docs/api.md`).
//!
//! `main.rs` owns the top-level parser; it flattens [`ClientOpts`] into it (so
//! `--server` / `--token` are global) and [`ClientCommand`] into its subcommands, then
//! calls [`run`] on a tokio runtime:
//!
//! ```ignore
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     client: cli::ClientOpts,
//!     #[command(subcommand)]
//!     command: Command,
//! }
//! #[derive(Subcommand)]
//! enum Command {
//!     Serve(ServeArgs),
//!     #[command(flatten)]
//!     Client(cli::ClientCommand),
//! }
//! // Command::Client(cmd) => cli::run(cmd, &cli.client).await  (print `{err:#}` on error, exit 1)
//! ```
//!
//! Exit codes: 0 success; 1 error (an `Err` from [`run`]); 2 from `diff` when
//! something would change, and from `policy test` / `policy audit` when a
//! policy refuses something.

mod client;
mod commands;
mod documents;
mod duration;
mod error;
mod output;
mod plan;
mod resource;

use std::process::ExitCode;

use clap::{Args, Subcommand};

use client::{ApiClient, ClientError};
pub use commands::Target;
pub use commands::apply::{ApplyArgs, DiffArgs};
pub use commands::delete::DeleteArgs;
pub use commands::get::GetArgs;
pub use commands::policy::PolicyCommand;
pub use commands::release::ReleaseArgs;
pub use commands::rollback::RollbackArgs;
pub use commands::token::TokenCommand;
pub use commands::wait::WaitArgs;

/// Where the server is and how to authenticate: options every client command shares.
#[derive(Args, Clone, Debug)]
pub struct ClientOpts {
    /// The Mooring server's base URL.
    #[arg(long, env = "MOORING_SERVER", default_value = "http://127.0.0.1:8080", global = true)]
    server: String,
    /// The API token (sent as `Authorization: Bearer`).
    #[arg(long, env = "MOORING_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
}

impl ClientOpts {
    /// A client for these options.
    fn client(&self) -> Result<ApiClient, ClientError> {
        ApiClient::new(&self.server, self.token.as_deref())
    }
}

/// The commands that talk to a Mooring server.
#[derive(Subcommand, Debug, Clone)]
pub enum ClientCommand {
    /// Create or update resources from files, directories or stdin.
    Apply(ApplyArgs),
    /// Show what `apply` would change (exit 0: nothing, 2: changes, 1: error).
    Diff(DiffArgs),
    /// List resources or show one.
    Get(GetArgs),
    /// Show a resource in detail: metadata, spec, status, conditions, events.
    Describe(Target),
    /// Request deletion of a resource.
    Delete(DeleteArgs),
    /// Show the revision history of a resource.
    History(Target),
    /// Restore the spec of an earlier revision as a new generation.
    Rollback(RollbackArgs),
    /// Wait until a resource reaches a condition (or is deleted).
    Wait(WaitArgs),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Evaluate admission policies locally: test documents, audit stored resources.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Uninstall step: delete every resource (each released from AWS per its
    /// deletionPolicy) and wait until all are gone.
    Release(ReleaseArgs),
}

/// Runs a client command against the server in `opts`. Returns the exit code on
/// success (`diff` uses 2 for "changes"); an `Err` means exit code 1 and should be
/// printed with `{:#}`. Output cut short by a closed pipe (`| head`) is a success.
pub async fn run(cmd: ClientCommand, opts: &ClientOpts) -> anyhow::Result<ExitCode> {
    match dispatch(cmd, opts).await {
        Err(e) if output::is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        other => other,
    }
}

async fn dispatch(cmd: ClientCommand, opts: &ClientOpts) -> anyhow::Result<ExitCode> {
    let client = opts.client()?;
    match cmd {
        ClientCommand::Apply(args) => commands::apply::apply(&client, args).await,
        ClientCommand::Diff(args) => commands::apply::diff(&client, args).await,
        ClientCommand::Get(args) => commands::get::run(&client, args).await,
        ClientCommand::Describe(target) => commands::describe::run(&client, target).await,
        ClientCommand::Delete(args) => commands::delete::run(&client, args).await,
        ClientCommand::History(target) => commands::history::run(&client, target).await,
        ClientCommand::Rollback(args) => commands::rollback::run(&client, args).await,
        ClientCommand::Wait(args) => commands::wait::run(&client, args).await,
        ClientCommand::Token(cmd) => commands::token::run(&client, cmd).await,
        ClientCommand::Policy(cmd) => commands::policy::run(&client, cmd).await,
        ClientCommand::Release(args) => commands::release::run(&client, args).await,
    }
}

/// Prints a value as pretty JSON on stdout; a closed pipe is not an error.
pub fn print_json<T: serde::Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let text = output::to_json(value)?;
    match output::print(&text) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::commands::apply::Source;
    use crate::cli::output::OutputFormat;
    use api_types::Kind;
    use clap::{CommandFactory, Parser};

    /// The shape main.rs is expected to give the top-level parser.
    #[derive(Parser, Debug)]
    #[command(name = "mooring")]
    struct Cli {
        #[command(flatten)]
        client: ClientOpts,
        #[command(subcommand)]
        command: ClientCommand,
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("mooring").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_anywhere() {
        let cli = parse(&["get", "relays", "--server", "http://h:1", "--token", "t"]).unwrap();
        assert_eq!(cli.client.server, "http://h:1");
        assert_eq!(cli.client.token.as_deref(), Some("t"));
        let cli = parse(&["--server", "http://h:2", "history", "node", "n1"]).unwrap();
        assert_eq!(cli.client.server, "http://h:2");
    }

    #[test]
    fn get_arguments() {
        let cli = parse(&["get", "Relay", "-A", "-l", "app=gw", "-o", "wide"]).unwrap();
        let ClientCommand::Get(args) = cli.command else { panic!("not get") };
        assert_eq!(args.kind, Kind::Relay);
        assert!(args.all_namespaces);
        assert_eq!(args.selector.as_deref(), Some("app=gw"));
        assert_eq!(args.output, OutputFormat::Wide);

        let cli = parse(&["get", "workers", "conv", "-n", "batch", "-o", "yaml"]).unwrap();
        let ClientCommand::Get(args) = cli.command else { panic!("not get") };
        assert_eq!((args.name.as_deref(), args.namespace.as_deref()), (Some("conv"), Some("batch")));

        assert!(parse(&["get", "relays", "-A", "-n", "x"]).is_err());
        assert!(parse(&["get", "relays", "gw", "-A"]).is_err());
        assert!(parse(&["get", "pods"]).is_err());
    }

    #[test]
    fn apply_wait_delete_rollback_token_arguments() {
        let cli = parse(&["apply", "-f", "a.yaml", "dir/", "-f", "-", "--dry-run", "--source", "gitops"]).unwrap();
        let ClientCommand::Apply(args) = cli.command else { panic!("not apply") };
        assert_eq!(args.files.len(), 3);
        assert!(args.dry_run);
        assert_eq!(args.source, Some(Source::Gitops));
        assert!(parse(&["apply"]).is_err());

        let cli = parse(&["wait", "relay", "gw", "--for", "condition=Ready", "--timeout", "30s"]).unwrap();
        let ClientCommand::Wait(args) = cli.command else { panic!("not wait") };
        assert_eq!(args.timeout, std::time::Duration::from_secs(30));
        assert_eq!(args.target.ns(), "default");
        assert!(parse(&["wait", "relay", "gw", "--for", "condition=Ready", "--timeout", "30"]).is_err());

        assert!(parse(&["delete", "relay", "gw", "--timeout", "1m"]).is_err(), "--timeout needs --wait");
        assert!(parse(&["delete", "relay", "gw", "--wait", "--timeout", "1m"]).is_ok());
        assert!(parse(&["rollback", "relay", "gw", "--to", "0"]).is_err());
        assert!(parse(&["rollback", "relay", "gw", "--to", "3"]).is_ok());

        let cli = parse(&["policy", "test", "-f", "relay.yaml", "-p", "guardrails.yaml"]).unwrap();
        let ClientCommand::Policy(PolicyCommand::Test(args)) = cli.command else { panic!("not policy test") };
        assert_eq!((args.files.len(), args.policies.len()), (1, 1));
        assert!(parse(&["policy", "test"]).is_err(), "policy test needs -f");
        assert!(parse(&["policy", "audit", "-n", "team-a"]).is_ok());
        let cli = parse(&["get", "policies"]).unwrap();
        let ClientCommand::Get(args) = cli.command else { panic!("not get") };
        assert_eq!(commands::namespace_or_default(args.kind, args.namespace.as_deref()), "");
        assert_eq!(commands::namespace_or_default(Kind::Relay, None), "default");

        let cli =
            parse(&["token", "create", "--name", "ci", "--scope", "write:payments", "--scope", "read:*"]).unwrap();
        let ClientCommand::Token(TokenCommand::Create { scopes, .. }) = cli.command else { panic!("not token create") };
        assert_eq!(scopes, ["write:payments", "read:*"]);
        assert!(parse(&["token", "create", "--name", "ci"]).is_err());

        assert!(parse(&["release"]).is_err(), "release needs --all");
        let cli = parse(&["release", "--all", "--timeout", "5m"]).unwrap();
        let ClientCommand::Release(args) = cli.command else { panic!("not release") };
        assert!(args.all && !args.dry_run);
        assert_eq!(args.timeout, std::time::Duration::from_secs(300));
    }
}
