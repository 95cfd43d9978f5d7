//! `mooring rollback`: write a new generation whose spec is that of an earlier revision.

use std::process::ExitCode;

use clap::Args;

use super::Target;
use crate::cli::client::ApiClient;
use crate::cli::output;

/// Arguments of `rollback`.
#[derive(Args, Debug, Clone)]
pub struct RollbackArgs {
    /// The resource.
    #[command(flatten)]
    pub target: Target,
    /// The revision (generation, as `history` lists them) whose spec to restore.
    #[arg(long = "to", value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub to: i64,
}

/// Runs `rollback`.
pub async fn run(client: &ApiClient, args: RollbackArgs) -> anyhow::Result<ExitCode> {
    let t = &args.target;
    let res = client.rollback(t.kind, t.ns(), &t.name, args.to).await?;
    let generation = res.pointer("/metadata/generation").and_then(serde_json::Value::as_i64);
    let line = match generation {
        Some(g) => format!("{} rolled back to revision {} (generation {g})\n", t.display(), args.to),
        None => format!("{} rolled back to revision {}\n", t.display(), args.to),
    };
    output::print(&line)?;
    Ok(ExitCode::SUCCESS)
}
