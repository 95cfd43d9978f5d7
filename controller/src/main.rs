//! `mooring`: the one binary — server, controller and CLI.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use api_types::Kind;

mod admin;
mod cli;
mod serve;

/// Mooring keeps AWS equal to versioned spec documents.
#[derive(Parser)]
#[command(name = "mooring", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    client: cli::ClientOpts,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API and the controller.
    Serve(Box<serve::ServeArgs>),
    /// Apply the database migrations and exit.
    Migrate(serve::StoreArgs),
    /// Check the signed revision history.
    #[command(subcommand)]
    Audit(admin::AuditCommand),
    /// Print the least-privilege IAM policy of the task role or the provisioner role.
    IamPolicy(controller::iam::IamPolicyArgs),
    /// Print the JSON Schema of a kind (node, relay, worker, policy).
    Schema {
        /// The kind, by name or plural.
        kind: Kind,
    },
    #[command(flatten)]
    Client(cli::ClientCommand),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // A usage error exits 1 (clap's default is 2, which `diff` and
            // `sync --dry-run` use for "changes": a pipeline must not read a
            // typo as a plan).
            return if e.use_stderr() { ExitCode::FAILURE } else { ExitCode::SUCCESS };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => {
                serve::init_logging(args.log_format);
                serve::run(*args).await.map(|()| ExitCode::SUCCESS)
            }
            Command::Migrate(store) => admin::migrate(store).await,
            Command::Audit(cmd) => admin::audit(cmd).await,
            Command::IamPolicy(args) => controller::iam::run(&args),
            Command::Schema { kind } => {
                let schema = api_types::schema::schema_for_kind(kind);
                cli::print_json(&schema).map(|()| ExitCode::SUCCESS)
            }
            Command::Client(cmd) => cli::run(cmd, &cli.client).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
