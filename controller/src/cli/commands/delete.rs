//! `mooring delete`: request deletion of a resource and, with `--wait`, follow it
//! until the controller has cleaned up AWS and the resource is gone.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::Target;
use super::wait::{WaitFor, check_once, wait_until};
use crate::cli::client::ApiClient;
use crate::cli::duration::parse_duration;
use crate::cli::output;

/// Arguments of `delete`.
#[derive(Args, Debug, Clone)]
pub struct DeleteArgs {
    /// The resource.
    #[command(flatten)]
    pub target: Target,
    /// Wait until the resource is gone (its finalizers cleared), not only requested.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this long (30s, 10m, 1h).
    #[arg(long, default_value = "10m", value_parser = parse_duration, requires = "wait")]
    pub timeout: Duration,
}

/// Runs `delete`.
pub async fn run(client: &ApiClient, args: DeleteArgs) -> anyhow::Result<ExitCode> {
    let t = &args.target;
    client.delete(t.kind, t.ns(), &t.name).await?;
    output::print(&format!("{} deletion requested\n", t.display()))?;
    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    let what = format!("{} to be deleted", t.display());
    wait_until(&what, args.timeout, async || check_once(client, t, &WaitFor::Delete).await).await?;
    output::print(&format!("{} deleted\n", t.display()))?;
    Ok(ExitCode::SUCCESS)
}
