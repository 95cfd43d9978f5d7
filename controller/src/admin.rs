//! Commands that talk to the database directly: `migrate` and `audit verify`.

use std::process::ExitCode;

use clap::Subcommand;

use runners::aws::AwsContext;

use crate::serve::StoreArgs;

/// `mooring audit ...`
#[derive(Subcommand, Debug, Clone)]
pub enum AuditCommand {
    /// Walk every revision chain; exit 1 naming the first row that does not verify.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
        /// Trust only these public keys (hex); default: the keys recorded in the database.
        #[arg(long = "public-key")]
        public_keys: Vec<String>,
    },
}

/// Runs the migrations and exits.
pub async fn migrate(store: StoreArgs) -> anyhow::Result<ExitCode> {
    store.open(&AwsContext::new(store.aws_settings())).await?;
    println!("migrations applied");
    Ok(ExitCode::SUCCESS)
}

/// Runs `audit verify`.
pub async fn audit(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    let AuditCommand::Verify { store, public_keys } = cmd;
    let store = store.open(&AwsContext::new(store.aws_settings())).await?;
    let trusted = (!public_keys.is_empty()).then_some(public_keys);
    let report = store.audit_verify(trusted).await?;
    match report.failure {
        None => {
            println!(
                "ok: {} revisions in {} chains verified (keys: {})",
                report.rows,
                report.chains,
                report.keys.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(f) => {
            println!("FAILED after {} good revisions: {f}", report.rows.saturating_sub(1));
            Ok(ExitCode::from(1))
        }
    }
}
