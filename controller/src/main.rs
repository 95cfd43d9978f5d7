//! `mooring`: the one binary — server, controller and CLI.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use api_types::Kind;

mod admin;
mod cli;
mod serve;

/// Mooring keeps AWS equal to versioned spec documents.
#[derive(Parser)]
#[command(name = "mooring", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    client: cli::ClientOpts,
    #[command(subcommand)]
    command: Command,
}

/// The first line of `--help`: what Mooring is.
const ABOUT: &str = "Mooring: a reconciling operator for AWS. Declare relays (ECS services), workers \
(queue-driven ECS services) and nodes (EC2 instances) as versioned YAML documents; \
the controller keeps AWS equal to them.";

/// `--help`'s longer version of [`ABOUT`].
const LONG_ABOUT: &str = "Mooring: a reconciling operator for AWS.\n\n\
Declare relays (ECS services), workers (queue-driven ECS services) and nodes (EC2 \
instances built by CodeBuild) as versioned YAML documents. `mooring serve` stores them \
in Postgres and reconciles AWS to match them; every other command is a client of its \
HTTP API, in the manner of kubectl.";

/// Where to start, under the command list.
const AFTER_HELP: &str = "Getting started:\n  \
mooring apply -f examples/            create or update resources\n  \
mooring get relays                    list them\n  \
mooring wait relay NAME --for condition=Ready\n  \
mooring explain relay.spec            what a field means\n\n\
The server is --server, MOORING_SERVER or the configuration file's context \
(default http://127.0.0.1:8080).";

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
    /// Print a shell completion script: `mooring completion bash > /etc/bash_completion.d/mooring`.
    Completion {
        /// The shell: bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
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
            Command::Completion { shell } => {
                clap_complete::generate(shell, &mut Cli::command(), "mooring", &mut std::io::stdout());
                Ok(ExitCode::SUCCESS)
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
