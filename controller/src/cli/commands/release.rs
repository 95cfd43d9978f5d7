//! `mooring release --all`: the uninstall step before the stack is deleted.
//! Requests the deletion of every resource of every kind in every namespace;
//! the controller then tears each down per its `deletionPolicy` (`Delete`
//! removes the AWS resources, `Retain` leaves them and removes Mooring's
//! tags); the command waits until every resource is gone and prints progress.
//!
//! Stop the GitOps pipeline first, or it applies the documents again.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::Duration;

use api_types::Kind;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use crate::cli::client::ApiClient;
use crate::cli::duration::parse_duration;
use crate::cli::output;

/// How often the remaining resources are listed.
const POLL: Duration = Duration::from_secs(2);

/// Arguments of `release`.
#[derive(Args, Debug, Clone)]
pub struct ReleaseArgs {
    /// Every resource in every namespace (the only scope there is: this is
    /// for uninstalling).
    #[arg(long, required = true)]
    pub all: bool,
    /// Only list what would be released.
    #[arg(long)]
    pub dry_run: bool,
    /// Give up waiting after this long (the resources stay requested for deletion).
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// `kind namespace/name` of every resource the token can see.
async fn remaining(client: &ApiClient) -> anyhow::Result<BTreeSet<(Kind, String, String)>> {
    let mut out = BTreeSet::new();
    for kind in Kind::ALL {
        for item in client.list(kind, None, None).await? {
            let ns = item.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
            let name = item.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
            out.insert((kind, ns.to_string(), name.to_string()));
        }
    }
    Ok(out)
}

fn label((kind, ns, name): &(Kind, String, String)) -> String {
    format!("{} {ns}/{name}", kind.as_str().to_ascii_lowercase())
}

/// Runs `release --all`.
pub async fn run(client: &ApiClient, args: ReleaseArgs) -> anyhow::Result<ExitCode> {
    let all = remaining(client).await?;
    if all.is_empty() {
        output::print("nothing to release\n")?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.dry_run {
        let lines: String = all.iter().map(|r| format!("would release {}\n", label(r))).collect();
        output::print(&lines)?;
        return Ok(ExitCode::SUCCESS);
    }
    for r in &all {
        match client.delete(r.0, &r.1, &r.2).await {
            Ok(()) => {}
            // Gone meanwhile: nothing left to release.
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(anyhow::anyhow!("requesting the deletion of {}: {e}", label(r))),
        }
    }
    let total = all.len();
    output::print(&format!("deletion requested for {total} resources; waiting until AWS is released\n"))?;
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} released {pos}/{len} [{elapsed}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let deadline = tokio::time::Instant::now() + args.timeout;
    let mut last = total;
    loop {
        let left = remaining(client).await?;
        let left: Vec<_> = left.iter().filter(|r| all.contains(r)).collect();
        bar.set_position((total - left.len()) as u64);
        if left.len() != last {
            last = left.len();
            output::print(&format!("released {}/{total}\n", total - last))?;
        }
        if left.is_empty() {
            bar.finish_and_clear();
            output::print(&format!("released all {total} resources\n"))?;
            return Ok(ExitCode::SUCCESS);
        }
        bar.set_message(format!("waiting for {}", label(left[0])));
        if tokio::time::Instant::now() >= deadline {
            bar.abandon();
            let names: Vec<String> = left.iter().map(|r| label(r)).collect();
            anyhow::bail!(
                "timed out after {:?}; {} resources are not released yet (mooring describe shows why): {}",
                args.timeout,
                names.len(),
                names.join(", ")
            );
        }
        tokio::time::sleep(POLL).await;
    }
}
