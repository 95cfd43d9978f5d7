//! `mooring sync`: the GitOps path. Reads every document under a directory (YAML
//! streams, JSON, charts rendered with their defaults), validates all of them
//! before anything changes, asks the server for the plan, prints it
//! Terraform-style, and applies it wave by wave, recording the commit and the
//! source on every revision written; pruning (of this source's resources only,
//! within the server's prune guard) comes last.
//!
//! Every request goes through `POST /v1/apply` with `source=gitops`, so the
//! server's validation, admission policies, plan and prune guard are the ones
//! that decide; this command adds reading the tree, the local validation that
//! names files, the waves and the exit codes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use api_types::{AnyResource, Kind};
use clap::Args;
use desired_state::gitops::{self, SOURCE_LABEL};
use desired_state::selector::Selector;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::time::Instant;

use super::Target;
use super::apply::with_sources;
use super::wait::{Check, WaitFor, check_once};
use crate::cli::client::{ApiClient, ApplyParams};
use crate::cli::documents::{Documents, read_tree};
use crate::cli::duration::{format_duration, parse_duration};
use crate::cli::output;
use crate::cli::plan::{ApplyOutcome, render_sync_plan, sync_plan_line};

/// How often a wave's resources are read while waiting for them.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Arguments of `sync`.
#[derive(Args, Debug, Clone)]
pub struct SyncArgs {
    /// The checked-out directory: every *.yaml, *.yml and *.json under it (recursing,
    /// skipping hidden entries), and every chart (a directory with Chart.yaml) rendered.
    #[arg(long, value_name = "DIR", required_unless_present_any = ["suspend", "resume"])]
    pub dir: Option<PathBuf>,
    /// The git commit being synced, recorded on every revision written.
    #[arg(long, value_name = "SHA", required_unless_present_any = ["suspend", "resume"])]
    pub revision: Option<String>,
    /// The name of this source (a repository and path): stored as the label
    /// `mooring/source`; a sync prunes only its own source's resources.
    #[arg(long, value_name = "NAME", env = "MOORING_SYNC_SOURCE", required_unless_present_any = ["suspend", "resume"])]
    pub source: Option<String>,
    /// Delete this source's resources that the directory no longer holds (last,
    /// highest wave first; never one annotated `mooring/prune: disabled`).
    #[arg(long)]
    pub prune: bool,
    /// Print the plan and change nothing (exit 0: no change, 2: changes).
    #[arg(long)]
    pub dry_run: bool,
    /// Sync only the documents, and prune only the resources, matching this label selector.
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Let a prune take all of the source's resources, or more than `--max-prune-percent`.
    #[arg(long, requires = "prune")]
    pub allow_mass_prune: bool,
    /// The share of the source's resources one sync may prune [default: the server's, 30].
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(0..=100), requires = "prune")]
    pub max_prune_percent: Option<u8>,
    /// How long each sync wave may take to become Ready before the sync fails.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub wave_timeout: Duration,
    /// Suspend the source's syncs (an incident fix made through the API is then not
    /// reverted by the next commit) and exit; `--resume` ends it.
    #[arg(long, value_name = "SOURCE", conflicts_with_all = ["dir", "revision", "resume", "prune", "dry_run"])]
    pub suspend: Option<String>,
    /// Why the source is suspended (shown to the syncs it refuses).
    #[arg(long, requires = "suspend", conflicts_with = "resume")]
    pub reason: Option<String>,
    /// Resume a suspended source's syncs and exit.
    #[arg(long, value_name = "SOURCE", conflicts_with_all = ["dir", "revision", "prune", "dry_run"])]
    pub resume: Option<String>,
}

/// Runs `sync`. Exit 0: applied, or nothing to do; 2: `--dry-run` found changes;
/// an `Err` (exit 1): invalid input, a refused plan, or a wave that did not
/// become Ready in time.
pub async fn run(client: &ApiClient, args: SyncArgs) -> anyhow::Result<ExitCode> {
    if let Some(name) = &args.suspend {
        return suspend_or_resume(client, name, Some(args.reason.as_deref().unwrap_or_default())).await;
    }
    if let Some(name) = &args.resume {
        return suspend_or_resume(client, name, None).await;
    }
    let (Some(dir), Some(revision), Some(source)) = (args.dir.clone(), args.revision.clone(), args.source.clone())
    else {
        bail!("sync needs --dir, --revision and --source");
    };
    if !gitops::valid_source_name(&source) {
        bail!("--source {source:?} is not a valid label value (1-63 letters, digits, '.', '_' or '-')");
    }
    if !(7..=64).contains(&revision.len()) || !revision.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("--revision {revision:?} is not a git commit SHA");
    }
    let selector = match &args.selector {
        Some(s) => Selector::parse(s)?,
        None => Selector::default(),
    };
    // An unreadable or empty checkout is never a plan: it would prune everything.
    if !dir.is_dir() {
        bail!("refusing to sync: {} is not a readable directory", dir.display());
    }
    let all = read_tree(&dir).with_context(|| format!("refusing to sync {}", dir.display()))?;
    if all.docs.is_empty() {
        bail!(
            "refusing to sync: {} holds no documents (an empty checkout would prune every resource of source {:?})",
            dir.display(),
            source
        );
    }
    let docs = prepare(all, &source, &selector)?;
    if docs.docs.is_empty() {
        bail!("refusing to sync: no document under {} matches the selector", dir.display());
    }

    let params = ApplyParams {
        dry_run: true,
        source: Some("gitops".into()),
        revision: Some(revision.clone()),
        source_name: Some(source.clone()),
        prune: args.prune,
        selector: args.selector.clone(),
        allow_mass_prune: args.allow_mass_prune,
        max_prune_percent: args.max_prune_percent,
    };
    let stream = docs.to_yaml_stream()?;
    let plan =
        client.apply(stream.clone(), &params).await.map_err(|e| too_large(with_sources(e, &docs), stream.len()))?;
    output::print(&format!(
        "Source {:?} at {} ({} documents from {}):\n",
        source,
        short(&revision),
        docs.docs.len(),
        dir.display()
    ))?;
    output::print(&render_sync_plan(&plan))?;
    let summary = plan.summary();
    if args.dry_run {
        return Ok(ExitCode::from(if summary.has_changes() { 2 } else { 0 }));
    }
    if !summary.has_changes() {
        output::print("No changes: the server already matches this commit.\n")?;
        return Ok(ExitCode::SUCCESS);
    }

    let waves = wave_plan(&docs)?;
    let applied = if waves.len() <= 1 {
        // One wave: everything, prune included, in one transaction.
        client.apply(stream, &ApplyParams { dry_run: false, ..params }).await.map_err(|e| with_sources(e, &docs))?
    } else {
        apply_waves(client, &docs, &waves, &params, args.wave_timeout).await?
    };
    output::print(&format!("Apply complete! {}\n", sync_plan_line(&applied.summary())))?;
    Ok(ExitCode::SUCCESS)
}

/// Applies the waves in order, waiting after each (but the last) until its
/// resources are Ready, then the whole set once more with pruning, so pruning
/// comes last. Returns the combined outcome.
async fn apply_waves(
    client: &ApiClient,
    docs: &Documents,
    waves: &[(i32, Vec<usize>)],
    params: &ApplyParams,
    timeout: Duration,
) -> anyhow::Result<ApplyOutcome> {
    let mut total = ApplyOutcome::default();
    for (n, (wave, members)) in waves.iter().enumerate() {
        let part = docs.select(members);
        let wave_params = ApplyParams { dry_run: false, prune: false, ..params.clone() };
        let outcome = client.apply(part.to_yaml_stream()?, &wave_params).await.map_err(|e| with_sources(e, &part))?;
        let s = outcome.summary();
        output::print(&format!("wave {wave}: {} added, {} changed, {} unchanged\n", s.create, s.update, s.unchanged))?;
        total.items.extend(outcome.items);
        if n + 1 < waves.len() {
            wait_ready(client, &part, *wave, timeout).await?;
        }
    }
    if params.prune {
        let stream = docs.to_yaml_stream()?;
        let outcome = client
            .apply(stream, &ApplyParams { dry_run: false, ..params.clone() })
            .await
            .map_err(|e| with_sources(e, docs))?;
        total.items.extend(outcome.items.into_iter().filter(|i| i.action == crate::cli::plan::Action::Delete));
    }
    Ok(total)
}

/// A 413 (the API takes at most 1 MiB per request) with what to do about it:
/// a sync sends every document of its source in one request.
fn too_large(err: crate::cli::client::ClientError, bytes: usize) -> anyhow::Error {
    match &err {
        crate::cli::client::ClientError::Api(api) if api.status == 413 => anyhow::anyhow!(
            "{err}: the documents of this sync are {bytes} bytes, and a sync sends all of them in one request; \
             split the directory into several sources (one --source per subdirectory)"
        ),
        _ => err.into(),
    }
}

/// `--suspend NAME` (with a reason, possibly empty) or `--resume NAME`.
async fn suspend_or_resume(client: &ApiClient, name: &str, suspend: Option<&str>) -> anyhow::Result<ExitCode> {
    let source = client.set_source_suspended(name, suspend).await?;
    let text = if source["suspended"] == true {
        format!("source {name:?} suspended: its syncs are refused until `mooring sync --resume {name}`\n")
    } else {
        format!("source {name:?} resumed\n")
    };
    output::print(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// Waits until every reconciled resource of a wave is `Ready` for its current
/// generation, with a progress bar; an error names the ones that are not.
async fn wait_ready(client: &ApiClient, part: &Documents, wave: i32, timeout: Duration) -> anyhow::Result<()> {
    let targets: Vec<Target> = part
        .docs
        .iter()
        .filter_map(|d| {
            let kind: Kind = d.get("kind")?.as_str()?.parse().ok()?;
            let meta = d.get("metadata")?;
            let name = meta.get("name")?.as_str()?.to_string();
            let namespace = meta.get("namespace").and_then(|n| n.as_str()).map(str::to_string);
            kind.is_reconciled().then_some(Target { kind, name, namespace })
        })
        .collect();
    let bar = ProgressBar::new(targets.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} wave {msg} [{bar:30}] {pos}/{len} Ready ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(wave.to_string());
    let ready = WaitFor::Condition { type_: api_types::condition::ConditionType::Ready, status: "True".into() };
    let deadline = Instant::now() + timeout;
    let mut pending: Vec<(Target, String)> = targets.into_iter().map(|t| (t, "not read yet".to_string())).collect();
    loop {
        let mut still = Vec::new();
        for (target, last) in pending {
            match check_once(client, &target, &ready).await {
                Ok(Check::Done(_)) => bar.inc(1),
                Ok(Check::Pending(state)) => still.push((target, state)),
                Ok(Check::Failed(reason)) => {
                    bar.abandon();
                    bail!("wave {wave} cannot become Ready: {reason}; the sync stopped before the next wave");
                }
                Err(e) if e.is_transient() => still.push((target, last)),
                Err(e) => return Err(e.into()),
            }
        }
        pending = still;
        if pending.is_empty() {
            bar.finish_and_clear();
            output::print(&format!("wave {wave}: Ready\n"))?;
            return Ok(());
        }
        if Instant::now() >= deadline {
            bar.abandon();
            let lines: Vec<String> = pending.iter().map(|(t, state)| format!("{}: {state}", t.reference())).collect();
            bail!(
                "wave {wave} did not become Ready within {}; the sync stopped before the next wave:\n  {}",
                format_duration(timeout),
                lines.join("\n  ")
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Validates every document locally (so an error names its file, its document
/// index and the field), keeps those the selector matches, refuses documents
/// that name another source, and orders them by sync wave.
fn prepare(all: Documents, source: &str, selector: &Selector) -> anyhow::Result<Documents> {
    let mut problems = Vec::new();
    let mut keep = Vec::new();
    for (i, doc) in all.docs.iter().enumerate() {
        let (file, index) = all.origins.get(i).cloned().unwrap_or_default();
        let at = format!("{file} document {index}");
        let labels = string_map(doc.pointer("/metadata/labels"));
        let annotations = string_map(doc.pointer("/metadata/annotations"));
        if let Err(e) = gitops::sync_wave(&annotations) {
            problems.push(format!("{at}: metadata.annotations.{}: {e}", gitops::SYNC_WAVE_ANNOTATION));
        }
        if let Some(other) = labels.get(SOURCE_LABEL).filter(|s| s.as_str() != source) {
            problems.push(format!(
                "{at}: metadata.labels.{SOURCE_LABEL}: names source {other:?}, but this sync is source {source:?}"
            ));
        }
        match api_types::validate_document(doc.clone()) {
            Ok(resource) if selector.matches(&resource.metadata().labels) => keep.push((wave_of(&resource), i)),
            Ok(_) => {}
            Err(errors) => problems.extend(errors.0.iter().map(|e| format!("{at}: {e}"))),
        }
    }
    if !problems.is_empty() {
        bail!(
            "{} invalid (nothing was applied):\n  {}",
            if problems.len() == 1 { "1 problem".to_string() } else { format!("{} problems", problems.len()) },
            problems.join("\n  ")
        );
    }
    // Stable: within a wave, the tree's order.
    keep.sort_by_key(|(wave, _)| *wave);
    Ok(all.select(&keep.into_iter().map(|(_, i)| i).collect::<Vec<_>>()))
}

/// A metadata map of strings, leniently (validation reports a malformed one).
fn string_map(value: Option<&serde_json::Value>) -> BTreeMap<String, String> {
    value
        .and_then(|v| v.as_object())
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default()
}

fn wave_of(resource: &AnyResource) -> i32 {
    gitops::sync_wave(&resource.metadata().annotations).unwrap_or(0)
}

/// The waves of `docs` (already in wave order): each wave and the indices of
/// its documents, lowest wave first.
fn wave_plan(docs: &Documents) -> anyhow::Result<Vec<(i32, Vec<usize>)>> {
    let mut waves: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    for (i, doc) in docs.docs.iter().enumerate() {
        let annotations: BTreeMap<String, String> = doc
            .pointer("/metadata/annotations")
            .cloned()
            .map(serde_json::from_value)
            .transpose()
            .with_context(|| format!("reading the annotations of {}", docs.source_of(i).unwrap_or_default()))?
            .unwrap_or_default();
        waves.entry(gitops::sync_wave(&annotations)?).or_default().push(i);
    }
    Ok(waves.into_iter().collect())
}

/// The first 12 characters of a commit, as git shows it.
fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(name: &str, wave: Option<&str>, labels: serde_json::Value) -> serde_json::Value {
        let mut annotations = serde_json::Map::new();
        if let Some(w) = wave {
            annotations.insert(gitops::SYNC_WAVE_ANNOTATION.into(), json!(w));
        }
        json!({
            "apiVersion": "mooring/v1", "kind": "Worker",
            "metadata": {"name": name, "labels": labels, "annotations": annotations},
            "spec": {"cluster": "c", "container": {"name": "w", "image": "x:1"}, "queue": {}}
        })
    }

    fn docs(items: Vec<serde_json::Value>) -> Documents {
        let n = items.len();
        Documents {
            docs: items,
            sources: (0..n).map(|i| format!("f{i}.yaml")).collect(),
            origins: (0..n).map(|i| (format!("f{i}.yaml"), 1)).collect(),
        }
    }

    fn names(d: &Documents) -> Vec<&str> {
        d.docs.iter().map(|v| v["metadata"]["name"].as_str().unwrap()).collect()
    }

    #[test]
    fn waves_order_the_documents_lowest_first_keeping_file_order() {
        let d = docs(vec![
            doc("app", Some("1"), json!({})),
            doc("db", Some("-1"), json!({})),
            doc("plain", None, json!({})),
            doc("late", Some("5"), json!({})),
            doc("app2", Some("1"), json!({})),
        ]);
        let prepared = prepare(d, "platform", &Selector::default()).unwrap();
        assert_eq!(names(&prepared), ["db", "plain", "app", "app2", "late"]);
        let waves = wave_plan(&prepared).unwrap();
        assert_eq!(waves, vec![(-1, vec![0]), (0, vec![1]), (1, vec![2, 3]), (5, vec![4])]);
        // Sources follow their documents.
        assert_eq!(prepared.source_of(0), Some("f1.yaml"));
    }

    #[test]
    fn every_problem_is_named_with_file_and_document() {
        let mut broken = doc("bad", Some("soon"), json!({"mooring/source": "other"}));
        broken["spec"]["scaling"] = json!({"min": 5, "max": 1});
        let err = prepare(docs(vec![doc("ok", None, json!({})), broken]), "platform", &Selector::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("nothing was applied"), "{err}");
        assert!(err.contains("f1.yaml document 1: metadata.annotations.mooring/sync-wave"), "{err}");
        assert!(err.contains("f1.yaml document 1: metadata.labels.mooring/source: names source \"other\""), "{err}");
        assert!(err.contains("f1.yaml document 1: spec.scaling"), "{err}");
        assert!(!err.contains("f0.yaml"), "{err}");
    }

    #[test]
    fn the_selector_picks_documents() {
        let d = docs(vec![doc("a", None, json!({"team": "x"})), doc("b", None, json!({"team": "y"}))]);
        let prepared = prepare(d, "platform", &Selector::parse("team=y").unwrap()).unwrap();
        assert_eq!(names(&prepared), ["b"]);
    }
}
