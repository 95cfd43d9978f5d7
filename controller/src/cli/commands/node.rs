//! `mooring node snapshot NAME [--wait]`: a snapshot of a node's data volume
//! now, through `POST …/nodes/{name}/snapshot` (recorded as an event, not an
//! annotation a GitOps sync would see as drift). With `--wait`, follows the
//! node until the controller has taken it.

use std::process::ExitCode;

use api_types::Kind;
use api_types::node::BackupStatus;
use clap::{Args, Subcommand};
use serde_json::Value;

use super::namespace_or_default;
use crate::cli::client::ApiClient;
use crate::cli::output;

/// The `node` subcommands.
#[derive(Subcommand, Debug, Clone)]
pub enum NodeCommand {
    /// Take a snapshot of the node's data volume now (kept and pruned with
    /// the scheduled ones of `dataVolume.backup`).
    Snapshot(SnapshotArgs),
}

/// Arguments of `node snapshot`.
#[derive(Args, Debug, Clone)]
pub struct SnapshotArgs {
    /// The node's name.
    pub name: String,
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Wait until the snapshot has completed (exit 1 if it failed).
    #[arg(short, long)]
    pub wait: bool,
}

impl NodeCommand {
    /// The namespace the command acts in, to fill from the context.
    pub fn namespace_mut(&mut self) -> &mut Option<String> {
        match self {
            NodeCommand::Snapshot(a) => &mut a.namespace,
        }
    }
}

/// Runs a `node` subcommand.
pub async fn run(client: &ApiClient, cmd: NodeCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        NodeCommand::Snapshot(args) => snapshot(client, &args).await,
    }
}

fn backup_of(doc: &Value) -> BackupStatus {
    doc.pointer("/status/backup").cloned().and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default()
}

/// Where the node's handling of the request at `at` is.
#[derive(Debug, PartialEq, Eq)]
enum Progress {
    /// Not handled yet, or its snapshot is still pending.
    Waiting,
    Completed(String),
    /// Handled, but no snapshot came of it.
    Failed,
}

fn progress(b: &BackupStatus, at: chrono::DateTime<chrono::Utc>) -> Progress {
    if b.request_handled.is_none_or(|h| h < at) {
        return Progress::Waiting;
    }
    match (&b.in_flight, &b.last_good) {
        (Some(_), _) => Progress::Waiting,
        // Matched by the request's own time (not by clocks of different
        // replicas): the snapshot that answered it.
        (None, Some(good)) if good.requested.is_some_and(|r| r >= at) => Progress::Completed(good.id.clone()),
        (None, _) => Progress::Failed,
    }
}

async fn snapshot(client: &ApiClient, args: &SnapshotArgs) -> anyhow::Result<ExitCode> {
    let ns = namespace_or_default(Kind::Node, args.namespace.as_deref()).to_string();
    let mut watch = if args.wait { Some(client.watch(Kind::Node, Some(&ns)).await?) } else { None };
    let res = client.snapshot(&ns, &args.name).await?;
    let at: chrono::DateTime<chrono::Utc> = res
        .pointer("/request/at")
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| anyhow::anyhow!("the server's answer has no request time: {res}"))?;
    let volume = res.get("volumeId").and_then(Value::as_str).unwrap_or("its data volume (once it has one)");
    output::print(&format!("node {ns}/{}: snapshot of {volume} requested\n", args.name))?;
    let Some(w) = watch.as_mut() else { return Ok(ExitCode::SUCCESS) };
    loop {
        let doc = client.get(Kind::Node, &ns, &args.name).await?;
        match progress(&backup_of(&doc), at) {
            Progress::Completed(id) => {
                output::print(&format!("snapshot {id} completed\n"))?;
                return Ok(ExitCode::SUCCESS);
            }
            Progress::Failed => {
                output::print(&format!(
                    "the snapshot failed: see `mooring describe node {} -n {ns}` for its events\n",
                    args.name
                ))?;
                return Ok(ExitCode::FAILURE);
            }
            Progress::Waiting => {}
        }
        loop {
            match w.next().await? {
                Some(c) if c.name == args.name && c.namespace == ns => break,
                Some(_) => {}
                None => anyhow::bail!("the server ended the watch"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api_types::node::{SnapshotAttempt, SnapshotRecord};

    #[test]
    fn progress_of_a_request_as_a_table() {
        let t = |m: i64| chrono::DateTime::from_timestamp(1_800_000_000 + m * 60, 0).unwrap();
        let attempt =
            SnapshotAttempt { number: 2, id: None, started: t(1), why: "requested by a".into(), requested: Some(t(0)) };
        let good = |m| Some(SnapshotRecord { id: "snap-1".into(), started: t(m + 1), requested: Some(t(m)) });
        let cases = [
            (BackupStatus::default(), Progress::Waiting),
            (
                BackupStatus { request_handled: Some(t(-5)), last_good: good(-5), ..Default::default() },
                Progress::Waiting,
            ),
            (
                BackupStatus { request_handled: Some(t(0)), in_flight: Some(attempt), ..Default::default() },
                Progress::Waiting,
            ),
            (
                BackupStatus { request_handled: Some(t(0)), last_good: good(0), ..Default::default() },
                Progress::Completed("snap-1".into()),
            ),
            (BackupStatus { request_handled: Some(t(0)), last_good: good(-5), ..Default::default() }, Progress::Failed),
            // A scheduled snapshot after it is not the one asked for.
            (
                BackupStatus {
                    request_handled: Some(t(0)),
                    last_good: Some(SnapshotRecord { id: "snap-2".into(), started: t(3), requested: None }),
                    ..Default::default()
                },
                Progress::Failed,
            ),
        ];
        for (i, (b, want)) in cases.into_iter().enumerate() {
            assert_eq!(progress(&b, t(0)), want, "case {i}");
        }
    }
}
