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
//! Exit codes: 0 success; 1 error (an `Err` from [`run`]); 2 from `diff` and
//! `sync --dry-run` when something would change, and from `policy test` /
//! `policy audit` when a policy refuses something.
//!
//! Where the server is and which token to send come from flags, their
//! environment variables, and the configuration file's contexts ([`config`]).

mod chart;
mod client;
mod commands;
pub mod config;
mod documents;
pub(crate) mod duration;
mod error;
mod explain;
mod jsonpath;
mod output;
mod plan;
mod resource;
mod server_url;
mod sse;
mod terminal;

use std::process::ExitCode;

use clap::{Args, Subcommand};

pub use chart::ChartCommand;
use client::ApiClient;
pub use commands::Target;
pub use commands::apply::{ApplyArgs, DiffArgs};
pub use commands::delete::DeleteArgs;
pub use commands::get::GetArgs;
pub use commands::history::HistoryArgs;
pub use commands::logs::LogsArgs;
pub use commands::policy::PolicyCommand;
pub use commands::release::ReleaseArgs;
pub use commands::rollback::RollbackArgs;
pub use commands::sync::SyncArgs;
pub use commands::token::TokenCommand;
pub use commands::wait::WaitArgs;
pub use explain::ExplainArgs;

/// Where the server is and how to authenticate: options every client command
/// shares. Each falls back to the configuration file's context, then to the
/// built-in default ([`config`]).
#[derive(Args, Clone, Debug)]
pub struct ClientOpts {
    /// The Mooring server's base URL [default: the context's, else http://127.0.0.1:8080].
    #[arg(long, env = "MOORING_SERVER", global = true)]
    server: Option<String>,
    /// The API token (sent as `Authorization: Bearer`) [default: the context's].
    #[arg(long, env = "MOORING_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// The context of the configuration file to use [default: its `current-context`].
    #[arg(long, env = "MOORING_CONTEXT", global = true)]
    context: Option<String>,
    /// The configuration file [default: ~/.config/mooring/config.toml].
    #[arg(long, env = "MOORING_CONFIG", global = true, value_name = "PATH")]
    config: Option<std::path::PathBuf>,
}

impl ClientOpts {
    /// Flags and environment over the configuration file's context over the defaults.
    fn resolve(&self) -> Result<config::Resolved, config::ConfigError> {
        let given = config::Given {
            server: self.server.as_deref(),
            token: self.token.as_deref(),
            context: self.context.as_deref(),
            config: self.config.as_deref(),
        };
        config::resolve(&given, |var| std::env::var(var).ok())
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
    /// Edit a resource's document in $VISUAL / $EDITOR and write it back (refused if it changed meanwhile).
    Edit(Target),
    /// Request deletion of a resource.
    Delete(DeleteArgs),
    /// Show the revision history of a resource, or (`--revision N`) one revision's spec.
    History(HistoryArgs),
    /// Print a relay's or worker's container logs, or a node's journal (read by the server from CloudWatch Logs).
    Logs(LogsArgs),
    /// Act on a node: `snapshot` its data volume now.
    #[command(subcommand)]
    Node(commands::node::NodeCommand),
    /// Restore the spec of an earlier revision as a new generation.
    Rollback(RollbackArgs),
    /// Follow and answer a relay's blue/green, canary or linear rollout.
    #[command(subcommand)]
    Rollout(commands::rollout::RolloutCommand),
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
    /// GitOps: apply every document under a directory at a git commit, with a
    /// plan, sync waves and safe pruning (exit 0: no change or applied,
    /// 2: `--dry-run` found changes, 1: error).
    Sync(SyncArgs),
    /// Render and lint charts (no server needed).
    #[command(subcommand)]
    Chart(ChartCommand),
    /// Show the configuration in use: file, context, server, namespace (never the token).
    Config,
    /// Document a kind or a field (`relay.spec.scaling`) from its schema (no server needed).
    Explain(ExplainArgs),
    /// Print the client's version and the server's.
    Version,
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

async fn dispatch(mut cmd: ClientCommand, opts: &ClientOpts) -> anyhow::Result<ExitCode> {
    // Charts are rendered locally: no server, no configuration needed.
    if let ClientCommand::Chart(cmd) = cmd {
        return chart::run(cmd);
    }
    if let ClientCommand::Explain(args) = &cmd {
        return explain::run(args);
    }
    let resolved = opts.resolve()?;
    if let ClientCommand::Config = cmd {
        output::print(&config_summary(&resolved))?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(ns) = &resolved.namespace {
        default_namespace(&mut cmd, ns);
    }
    let client = ApiClient::new(&resolved.server, resolved.token.as_deref())?;
    match cmd {
        ClientCommand::Apply(args) => commands::apply::apply(&client, args).await,
        ClientCommand::Diff(args) => commands::apply::diff(&client, args).await,
        ClientCommand::Get(args) => commands::get::run(&client, args).await,
        ClientCommand::Describe(target) => commands::describe::run(&client, target).await,
        ClientCommand::Delete(args) => commands::delete::run(&client, args).await,
        ClientCommand::Edit(target) => commands::edit::run(&client, target).await,
        ClientCommand::History(args) => commands::history::run(&client, args).await,
        ClientCommand::Logs(args) => commands::logs::run(&client, args).await,
        ClientCommand::Node(cmd) => commands::node::run(&client, cmd).await,
        ClientCommand::Rollback(args) => commands::rollback::run(&client, args).await,
        ClientCommand::Rollout(cmd) => commands::rollout::run(&client, cmd).await,
        ClientCommand::Wait(args) => commands::wait::run(&client, args).await,
        ClientCommand::Token(cmd) => commands::token::run(&client, cmd).await,
        ClientCommand::Policy(cmd) => commands::policy::run(&client, cmd).await,
        ClientCommand::Release(args) => commands::release::run(&client, args).await,
        ClientCommand::Sync(args) => commands::sync::run(&client, args).await,
        ClientCommand::Version => commands::version::run(&client).await,
        ClientCommand::Chart(_) | ClientCommand::Config | ClientCommand::Explain(_) => unreachable_command(),
    }
}

/// Handled before a client is made; kept out of the match arms above.
fn unreachable_command() -> anyhow::Result<ExitCode> {
    anyhow::bail!("this command does not talk to a server")
}

/// The context's namespace for every command that acts in one and was given no
/// `-n` (a policy without `-n` stays cluster-scoped, as without a context).
fn default_namespace(cmd: &mut ClientCommand, ns: &str) {
    let fill = |target: &mut Target| {
        if target.namespace.is_none() && !target.kind.may_be_cluster_scoped() {
            target.namespace = Some(ns.to_string());
        }
    };
    match cmd {
        ClientCommand::Get(args)
            if args.namespace.is_none() && !args.all_namespaces && !args.kind.may_be_cluster_scoped() =>
        {
            args.namespace = Some(ns.to_string());
        }
        ClientCommand::Describe(target) | ClientCommand::Edit(target) => fill(target),
        ClientCommand::History(args) => fill(&mut args.target),
        ClientCommand::Logs(args) => fill(&mut args.target),
        ClientCommand::Delete(args) => fill(&mut args.target),
        ClientCommand::Rollback(args) => fill(&mut args.target),
        ClientCommand::Rollout(cmd) => fill(cmd.target_mut()),
        ClientCommand::Node(cmd) => {
            let namespace = cmd.namespace_mut();
            if namespace.is_none() {
                *namespace = Some(ns.to_string());
            }
        }
        ClientCommand::Wait(args) => fill(&mut args.target),
        _ => {}
    }
}

/// What `mooring config` prints.
fn config_summary(r: &config::Resolved) -> String {
    let file = r.file.as_ref().map_or_else(|| "(none)".to_string(), |p| p.display().to_string());
    format!(
        "config file: {file}\ncontext:     {}\nserver:      {}\nnamespace:   {}\ntoken:       {}\n",
        r.context.as_deref().unwrap_or("(none)"),
        r.server,
        r.namespace.as_deref().unwrap_or("default"),
        if r.token.is_some() { "set" } else { "not set" },
    )
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
        assert_eq!(cli.client.server.as_deref(), Some("http://h:1"));
        assert_eq!(cli.client.token.as_deref(), Some("t"));
        let cli = parse(&["--server", "http://h:2", "history", "node", "n1", "--context", "prod"]).unwrap();
        assert_eq!(cli.client.server.as_deref(), Some("http://h:2"));
        assert_eq!(cli.client.context.as_deref(), Some("prod"));
    }

    #[test]
    fn get_arguments() {
        let cli = parse(&["get", "Relay", "-A", "-l", "app=gw", "-o", "wide"]).unwrap();
        let ClientCommand::Get(args) = cli.command else { panic!("not get") };
        assert_eq!(args.kind, commands::get::Kinds::One(Kind::Relay));
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
        let commands::get::Kinds::One(kind) = args.kind else { panic!("one kind") };
        assert_eq!(commands::namespace_or_default(kind, args.namespace.as_deref()), "");
        assert!(matches!(
            parse(&["get", "all"]).unwrap().command,
            ClientCommand::Get(GetArgs { kind: commands::get::Kinds::All, .. })
        ));
        assert_eq!(commands::namespace_or_default(Kind::Relay, None), "default");

        let cli =
            parse(&["token", "create", "--name", "ci", "--scope", "write:payments", "--scope", "read:*"]).unwrap();
        let ClientCommand::Token(TokenCommand::Create { scopes, .. }) = cli.command else { panic!("not token create") };
        assert_eq!(scopes, ["write:payments", "read:*"]);
        assert!(parse(&["token", "create", "--name", "ci"]).is_err());

        let cli = parse(&["get", "relays"]).unwrap();
        let mut cmd = cli.command;
        default_namespace(&mut cmd, "payments");
        let ClientCommand::Get(args) = cmd else { panic!("not get") };
        assert_eq!(args.namespace.as_deref(), Some("payments"));
        for argv in [&["get", "policies"][..], &["get", "relays", "-A"], &["get", "relays", "-n", "x"]] {
            let mut cmd = parse(argv).unwrap().command;
            default_namespace(&mut cmd, "payments");
            let ClientCommand::Get(args) = cmd else { panic!("not get") };
            assert_ne!(args.namespace.as_deref(), Some("payments"), "{argv:?}");
        }
        let mut cmd = parse(&["describe", "relay", "gw"]).unwrap().command;
        default_namespace(&mut cmd, "payments");
        let ClientCommand::Describe(t) = cmd else { panic!("not describe") };
        assert_eq!(t.ns(), "payments");
        let cli = parse(&["history", "relay", "gw", "--revision", "2", "-o", "jsonpath={.x}"]);
        assert!(cli.is_err(), "history has no -o");
        let ClientCommand::History(h) = parse(&["history", "relay", "gw", "--revision", "2"]).unwrap().command else {
            panic!("not history")
        };
        assert_eq!(h.revision, Some(commands::history::Revisions::One(2)));
        assert!(parse(&["history", "relay", "gw", "--revision", "0"]).is_err());
        let ClientCommand::Get(g) =
            parse(&["get", "relays", "-o", "jsonpath={.items[*].metadata.name}"]).unwrap().command
        else {
            panic!("not get")
        };
        assert!(matches!(g.output, OutputFormat::JsonPath(_)));
        assert!(parse(&["get", "relays", "-o", "name"]).is_ok());
        assert!(parse(&["get", "relays", "-o", "jsonpath={.items[}"]).is_err());
        assert!(parse(&["get", "relays", "-o", "xml"]).is_err());

        let cli =
            parse(&["sync", "--dir", "specs", "--revision", "abc1234", "--source", "platform", "--prune"]).unwrap();
        let ClientCommand::Sync(args) = cli.command else { panic!("not sync") };
        assert!(args.prune && !args.dry_run);
        assert_eq!(args.wave_timeout, std::time::Duration::from_secs(600));
        assert!(parse(&["sync", "--suspend", "platform", "--reason", "incident 42"]).is_ok());
        assert!(parse(&["sync", "--resume", "platform"]).is_ok());
        for bad in [
            &["sync"][..],
            &["sync", "--dir", "specs", "--revision", "abc1234"],
            &["sync", "--suspend", "platform", "--dir", "specs"],
            &["sync", "--resume", "platform", "--reason", "x"],
            &["sync", "--dir", "d", "--revision", "abc1234", "--source", "s", "--allow-mass-prune"],
            &["sync", "--dir", "d", "--revision", "abc1234", "--source", "s", "--prune", "--max-prune-percent", "101"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(parse(&["chart", "render", "charts/pulse-node", "--set", "replicas=3", "-f", "v.yaml"]).is_ok());
        assert!(parse(&["chart", "lint"]).is_err());

        assert!(parse(&["release"]).is_err(), "release needs --all");
        let cli = parse(&["release", "--all", "--timeout", "5m"]).unwrap();
        let ClientCommand::Release(args) = cli.command else { panic!("not release") };
        assert!(args.all && !args.dry_run);
        assert_eq!(args.timeout, std::time::Duration::from_secs(300));
    }
}
