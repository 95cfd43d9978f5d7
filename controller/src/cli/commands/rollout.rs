//! `mooring rollout status|promote|abort|undo relay NAME`: follow and answer a
//! relay's blue/green, canary or linear rollout. `status` reads
//! `status.rollout` (with `-w`, until it is over); `promote` and `abort`
//! answer the rollout in progress through `POST …/rollout`; `undo` rolls back
//! to the previous revision (a new generation with its spec), first stopping
//! a rollout in progress so production is back on the old revision at once.

use std::process::ExitCode;

use api_types::Kind;
use api_types::rollout::{DeploymentState, Gate, RolloutAction, RolloutStatus};
use clap::{Args, Subcommand};
use serde_json::Value;

use super::Target;
use crate::cli::client::ApiClient;
use crate::cli::output;

/// Width of the traffic bar, in characters.
const BAR: usize = 20;

/// The `rollout` subcommands.
#[derive(Subcommand, Debug, Clone)]
pub enum RolloutCommand {
    /// Show the rollout: strategy, stage, traffic on the new revision, gate, bake.
    Status(StatusArgs),
    /// Pass the manual gate: production traffic moves to the new revision.
    Promote(Target),
    /// Roll the rollout in progress back now (the old revision still runs: instant).
    Abort(Target),
    /// Go back to the previous revision: a new generation with its spec, after
    /// stopping a rollout in progress.
    Undo(UndoArgs),
}

/// Arguments of `rollout status`.
#[derive(Args, Debug, Clone)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: Target,
    /// Follow the rollout until it is over (exit 0 when it succeeded, 1 when
    /// it rolled back).
    #[arg(short, long)]
    pub watch: bool,
}

/// Arguments of `rollout undo`.
#[derive(Args, Debug, Clone)]
pub struct UndoArgs {
    #[command(flatten)]
    pub target: Target,
    /// The revision to go back to [default: the one before the current generation].
    #[arg(long = "to", value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub to: Option<i64>,
}

impl RolloutCommand {
    /// The resource the command is about.
    pub fn target_mut(&mut self) -> &mut Target {
        match self {
            RolloutCommand::Status(a) => &mut a.target,
            RolloutCommand::Promote(t) | RolloutCommand::Abort(t) => t,
            RolloutCommand::Undo(a) => &mut a.target,
        }
    }
}

/// Runs a `rollout` subcommand.
pub async fn run(client: &ApiClient, cmd: RolloutCommand) -> anyhow::Result<ExitCode> {
    let mut cmd = cmd;
    let kind = cmd.target_mut().kind;
    if kind != Kind::Relay {
        anyhow::bail!("rollouts are a relay's (blue/green, canary, linear): `mooring rollout status relay NAME`");
    }
    match cmd {
        RolloutCommand::Status(args) => status(client, &args).await,
        RolloutCommand::Promote(t) => answer(client, &t, RolloutAction::Promote).await,
        RolloutCommand::Abort(t) => answer(client, &t, RolloutAction::Abort).await,
        RolloutCommand::Undo(args) => undo(client, &args).await,
    }
}

/// The rollout in a resource document, if it has one.
fn rollout_of(doc: &Value) -> Option<RolloutStatus> {
    serde_json::from_value(doc.pointer("/status/rollout")?.clone()).ok()
}

async fn status(client: &ApiClient, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let t = &args.target;
    let mut watch = if args.watch { Some(client.watch(t.kind, Some(t.ns())).await?) } else { None };
    loop {
        let doc = client.get(t.kind, t.ns(), &t.name).await?;
        let Some(rollout) = rollout_of(&doc) else {
            output::print(&format!(
                "{} has no staged rollout (spec.deployment.strategy is Rolling, or none has started)\n",
                t.display()
            ))?;
            return Ok(ExitCode::SUCCESS);
        };
        output::print(&render(t, &doc, &rollout, chrono::Utc::now()))?;
        let Some(w) = watch.as_mut() else { return Ok(ExitCode::SUCCESS) };
        if rollout.state.finished() {
            let ok = rollout.state == DeploymentState::Successful;
            return Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        // The next change of this relay (status writes included).
        loop {
            match w.next().await? {
                Some(c) if c.name == t.name && c.namespace == t.ns() => break,
                Some(_) => {}
                None => anyhow::bail!("the server ended the watch"),
            }
        }
        output::print("\n")?;
    }
}

/// `[######--------------]`: `percent` of the bar filled.
fn bar(percent: f64, width: usize) -> String {
    let filled = ((percent.clamp(0.0, 100.0) / 100.0) * width as f64).round() as usize;
    format!("[{}{}]", "#".repeat(filled), "-".repeat(width - filled))
}

/// What `rollout status` prints.
fn render(t: &Target, doc: &Value, r: &RolloutStatus, now: chrono::DateTime<chrono::Utc>) -> String {
    let mut rows: Vec<(String, String)> = vec![
        ("strategy".into(), format!("{:?}", r.strategy)),
        ("service deployment".into(), r.service_deployment_arn.clone()),
        ("task definition".into(), r.task_definition_arn.clone()),
        ("state".into(), r.state.as_ecs().to_string()),
    ];
    if let Some(stage) = r.stage {
        rows.push(("stage".into(), stage.as_ecs().to_string()));
    }
    let production = r.production_percent.unwrap_or(0.0);
    rows.push(("production traffic".into(), format!("{} {production:.0}% on the new revision", bar(production, BAR))));
    if let Some(test) = r.test_percent {
        rows.push(("test traffic".into(), format!("{test:.0}% on the new revision")));
    }
    rows.push(("started".into(), format!("{} ({} ago)", r.started.to_rfc3339(), output::format_age(r.started, now))));
    if let Some(at) = r.bake_ends_at {
        rows.push(("bake ends".into(), at.to_rfc3339()));
    }
    if let Some(gate) = r.waiting_for {
        let what = match gate {
            Gate::HttpChecks => "Mooring's HTTP checks against the test listener".to_string(),
            Gate::Approval => {
                format!("approval: `mooring rollout promote relay {} -n {ns}` (or `abort`)", t.name, ns = t.ns())
            }
        };
        let expires = r.gate_expires_at.map(|at| format!(" (until {})", at.to_rfc3339())).unwrap_or_default();
        rows.push(("waiting for".into(), format!("{what}{expires}")));
    }
    if let Some(v) = &r.verdict {
        rows.push(("checks".into(), v.message.clone()));
    }
    if let Some(why) = &r.rollback_reason {
        rows.push(("rolled back".into(), why.clone()));
    }
    for c in doc.pointer("/status/conditions").and_then(Value::as_array).into_iter().flatten() {
        let type_ = c["type"].as_str().unwrap_or_default();
        if type_ == "Progressing" || type_ == "Degraded" {
            let line = format!(
                "{} {} {}",
                c["status"].as_str().unwrap_or_default(),
                c["reason"].as_str().unwrap_or_default(),
                c["message"].as_str().unwrap_or_default()
            );
            rows.push((type_.to_string(), line.trim_end().to_string()));
        }
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = format!("{} in {}:\n", t.display(), t.ns());
    for (k, v) in rows {
        out.push_str(&format!("  {k:width$}  {v}\n"));
    }
    out
}

async fn answer(client: &ApiClient, t: &Target, action: RolloutAction) -> anyhow::Result<ExitCode> {
    let res = client.rollout(t.kind, t.ns(), &t.name, action).await?;
    let arn = res.pointer("/request/serviceDeploymentArn").and_then(Value::as_str).unwrap_or("?");
    let waiting = res.get("gateWaiting").and_then(Value::as_bool).unwrap_or(false);
    let line = match (action, waiting) {
        (RolloutAction::Promote, true) => format!("{}: promoted {arn}; production traffic moves next\n", t.display()),
        (RolloutAction::Promote, false) => {
            format!("{}: promote recorded for {arn}; it passes the approval gate when it gets there\n", t.display())
        }
        (RolloutAction::Abort, _) => format!("{}: rolling {arn} back\n", t.display()),
    };
    output::print(&line)?;
    Ok(ExitCode::SUCCESS)
}

async fn undo(client: &ApiClient, args: &UndoArgs) -> anyhow::Result<ExitCode> {
    let t = &args.target;
    let doc = client.get(t.kind, t.ns(), &t.name).await?;
    let generation = doc.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
    let to = match args.to {
        Some(n) => n,
        None if generation > 1 => generation - 1,
        None => anyhow::bail!("{} has no earlier revision (generation {generation})", t.display()),
    };
    if rollout_of(&doc).is_some_and(|r| r.state.advancing()) {
        client.rollout(t.kind, t.ns(), &t.name, RolloutAction::Abort).await?;
        output::print(&format!("{}: stopping the rollout in progress (the old revision serves again)\n", t.display()))?;
    }
    let res = client.rollback(t.kind, t.ns(), &t.name, to).await?;
    let now = res.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(generation + 1);
    output::print(&format!(
        "{}: generation {now} has the spec of revision {to}; it rolls out with spec.deployment's strategy\n",
        t.display()
    ))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_with_the_share() {
        let table = [
            (0.0, "[----]"),
            (25.0, "[#---]"),
            (50.0, "[##--]"),
            (100.0, "[####]"),
            (140.0, "[####]"),
            (-3.0, "[----]"),
        ];
        for (percent, want) in table {
            assert_eq!(bar(percent, 4), want, "{percent}");
        }
    }

    #[test]
    fn status_names_the_gate_and_how_to_answer_it() {
        let t = Target { kind: Kind::Relay, name: "gateway".into(), namespace: Some("payments".into()) };
        let now = chrono::Utc::now();
        let r: RolloutStatus = serde_json::from_value(serde_json::json!({
            "strategy": "Canary", "serviceDeploymentArn": "arn:sd", "taskDefinitionArn": "arn:td:2",
            "state": "IN_PROGRESS", "stage": "PRE_PRODUCTION_TRAFFIC_SHIFT", "productionPercent": 0.0,
            "testPercent": 100.0, "started": now, "waitingFor": "Approval"
        }))
        .unwrap();
        let doc = serde_json::json!({"status": {"conditions": [
            {"type": "Progressing", "status": "True", "reason": "AwaitingApproval", "message": "run promote"}]}});
        let out = render(&t, &doc, &r, now);
        assert!(out.contains("mooring rollout promote relay gateway -n payments"), "{out}");
        assert!(out.contains("PRE_PRODUCTION_TRAFFIC_SHIFT"), "{out}");
        assert!(out.contains(&format!("{} 0% on the new revision", bar(0.0, BAR))), "{out}");
        assert!(out.contains("Progressing") && out.contains("AwaitingApproval"), "{out}");
    }
}
