//! `mooring`: the one binary — server, controller and CLI.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use api_types::Kind;

/// Mooring keeps AWS equal to versioned spec documents.
#[derive(Parser)]
#[command(name = "mooring", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the JSON Schema of a kind (node, relay, worker).
    Schema {
        /// The kind, by name or plural.
        kind: Kind,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Schema { kind } => {
            let schema = api_types::schema::schema_for_kind(kind);
            match serde_json::to_string_pretty(&schema) {
                Ok(s) => {
                    println!("{s}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
