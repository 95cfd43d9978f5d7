//! The answer of `POST /v1/apply` and how `apply` and `diff` show it.
//!
//! The server computes the plan (create / update / unchanged / delete, with a field
//! diff per update); this module only reads it leniently and renders it, kubectl-like
//! for `apply` (`relay.mooring/payments/gateway configured`) and Terraform-like for
//! `diff` (`+`/`~`/`-` markers, a `Plan:` line, exit code 2 when something would change).

use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::Value;

/// The answer of a bulk apply: the plan and, unless dry-run, its results.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyOutcome {
    /// Whether the server wrote nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Counts per action, as the server computed them.
    #[serde(default)]
    pub summary: Option<Summary>,
    /// One entry per document (and per pruned resource).
    #[serde(default)]
    pub items: Vec<PlanItem>,
    /// In a dry run of a suspended GitOps source: who suspended it, when and why.
    #[serde(default)]
    pub source_suspended: Option<SuspendedSource>,
}

/// A suspended GitOps source, as a dry run reports it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SuspendedSource {
    /// The source.
    #[serde(default)]
    pub name: String,
    /// Who suspended it.
    #[serde(default)]
    pub suspended_by: Option<String>,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
}

/// How many resources each action touches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Summary {
    /// Resources that would be (or were) created.
    #[serde(default)]
    pub create: u64,
    /// Resources whose spec or labels change.
    #[serde(default)]
    pub update: u64,
    /// Resources already as the documents say.
    #[serde(default)]
    pub unchanged: u64,
    /// Resources pruned (deleted) because no document names them any more.
    #[serde(default)]
    pub delete: u64,
}

impl Summary {
    /// Whether applying would change anything.
    pub fn has_changes(&self) -> bool {
        self.create + self.update + self.delete > 0
    }
}

/// What happens (or happened) to one resource.
#[derive(Debug, Clone, Deserialize)]
pub struct PlanItem {
    /// `Relay`, `Node`, `Worker`.
    #[serde(default)]
    pub kind: String,
    /// The resource's namespace.
    #[serde(default)]
    pub namespace: String,
    /// The resource's name.
    #[serde(default)]
    pub name: String,
    /// What happens to it.
    pub action: Action,
    /// The changed fields of an update.
    #[serde(default)]
    pub diff: Vec<FieldChange>,
    /// For an update: where the version it replaces came from.
    #[serde(default)]
    pub replaced: Option<Replaced>,
}

/// Where the stored version an update replaces came from (the server's `ChangeSource`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Replaced {
    /// `api`, `gitops` or `rollback`.
    #[serde(default)]
    pub kind: String,
    /// The token or user.
    #[serde(default)]
    pub actor: Option<String>,
    /// The commit, for `gitops`.
    #[serde(default)]
    pub commit: Option<String>,
}

impl PlanItem {
    /// Drift: an update of a resource whose stored version was written outside
    /// git (through the API, or a rollback), so the sync restores git's version.
    pub fn drift(&self) -> Option<String> {
        let replaced = self.replaced.as_ref().filter(|_| self.action == Action::Update)?;
        if replaced.kind == "gitops" {
            return None;
        }
        let how = if replaced.kind == "rollback" { "a rollback" } else { "the API" };
        Some(match &replaced.actor {
            Some(actor) => format!("changed through {how} by {actor}"),
            None => format!("changed through {how}"),
        })
    }
}

/// The four plan actions; anything newer is shown as the server spelled it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A new resource.
    Create,
    /// A changed resource (a new generation when the spec changed).
    Update,
    /// Nothing to do.
    Unchanged,
    /// A pruned resource.
    Delete,
    /// An action this client does not know yet, kept verbatim.
    #[serde(untagged)]
    Other(String),
}

/// One changed field of an update.
#[derive(Debug, Clone, Deserialize)]
pub struct FieldChange {
    /// `spec.containers[0].image`.
    pub path: String,
    /// `add`, `remove` or `replace`.
    #[serde(default)]
    pub op: String,
    /// The value before (absent for `add`).
    #[serde(default)]
    pub from: Option<Value>,
    /// The value after (absent for `remove`).
    #[serde(default)]
    pub to: Option<Value>,
}

impl ApplyOutcome {
    /// The counts: the server's summary when it sent one, else counted from the items.
    pub fn summary(&self) -> Summary {
        if let Some(s) = self.summary {
            return s;
        }
        let mut s = Summary::default();
        for item in &self.items {
            match item.action {
                Action::Create => s.create += 1,
                Action::Update => s.update += 1,
                Action::Unchanged => s.unchanged += 1,
                Action::Delete => s.delete += 1,
                Action::Other(_) => {}
            }
        }
        s
    }
}

/// `relay.mooring/payments/gateway`: kubectl's `kind.group/name`, with the namespace,
/// since names are unique only per namespace.
pub fn resource_ref(kind: &str, namespace: &str, name: &str) -> String {
    let kind = kind.to_ascii_lowercase();
    if namespace.is_empty() { format!("{kind}.mooring/{name}") } else { format!("{kind}.mooring/{namespace}/{name}") }
}

/// What an apply did, after it did it (a plan line would read as if nothing had happened yet).
pub fn applied_line(s: &Summary) -> String {
    format!("Applied: {} created, {} changed, {} destroyed, {} unchanged.", s.create, s.update, s.delete, s.unchanged)
}

/// The Terraform-style summary line.
pub fn plan_line(s: &Summary) -> String {
    format!("Plan: {} to create, {} to change, {} to destroy, {} unchanged.", s.create, s.update, s.delete, s.unchanged)
}

/// What `apply` prints: one kubectl-style line per item, the field diff of each
/// update when nothing was written (so a dry run shows what would change), then the
/// plan line.
pub fn render_apply(outcome: &ApplyOutcome) -> String {
    let mut out = String::new();
    let suffix = if outcome.dry_run { " (dry run)" } else { "" };
    for item in &outcome.items {
        let verb = match &item.action {
            Action::Create => "created",
            Action::Update => "configured",
            Action::Unchanged => "unchanged",
            Action::Delete => "deleted",
            Action::Other(other) => other.as_str(),
        };
        let _ = writeln!(out, "{} {verb}{suffix}", resource_ref(&item.kind, &item.namespace, &item.name));
        if outcome.dry_run && item.action == Action::Update {
            for change in &item.diff {
                let _ = writeln!(out, "    {}", render_change(change));
            }
        }
    }
    let summary = outcome.summary();
    let _ = writeln!(out, "{}", if outcome.dry_run { plan_line(&summary) } else { applied_line(&summary) });
    out
}

/// What `diff` prints: every resource that would change with a `+`, `~` or `-`
/// marker and, for updates, its changed fields; then the plan line.
pub fn render_diff(outcome: &ApplyOutcome) -> String {
    let mut out = String::new();
    for item in &outcome.items {
        let r = resource_ref(&item.kind, &item.namespace, &item.name);
        match &item.action {
            Action::Create => {
                let _ = writeln!(out, "+ {r} will be created");
            }
            Action::Update => {
                let _ = writeln!(out, "~ {r} will be changed");
                for change in &item.diff {
                    let _ = writeln!(out, "    {}", render_change(change));
                }
            }
            Action::Delete => {
                let _ = writeln!(out, "- {r} will be deleted");
            }
            Action::Unchanged => {}
            Action::Other(other) => {
                let _ = writeln!(out, "? {r} {other}");
            }
        }
    }
    let summary = outcome.summary();
    if !summary.has_changes() {
        out.push_str("No changes: the server already matches these documents.\n");
    }
    let _ = writeln!(out, "{}", plan_line(&summary));
    out
}

/// The Terraform-style summary line of a sync.
pub fn sync_plan_line(s: &Summary) -> String {
    format!("Plan: {} to add, {} to change, {} to prune, {} unchanged.", s.create, s.update, s.delete, s.unchanged)
}

/// What `sync` prints for a plan: every resource with its marker (`+` create,
/// `~` update with its field diff and, for drift, who changed it outside git,
/// `-` prune, `=` unchanged), then the plan line.
pub fn render_sync_plan(outcome: &ApplyOutcome) -> String {
    let mut out = String::new();
    for item in &outcome.items {
        let r = resource_ref(&item.kind, &item.namespace, &item.name);
        match &item.action {
            Action::Create => {
                let _ = writeln!(out, "+ {r} will be created");
            }
            Action::Update => {
                match item.drift() {
                    Some(drift) => {
                        let _ = writeln!(out, "~ {r} will be changed (drift: {drift}; git's version is restored)");
                    }
                    None => {
                        let _ = writeln!(out, "~ {r} will be changed");
                    }
                }
                for change in &item.diff {
                    let _ = writeln!(out, "    {}", render_change(change));
                }
            }
            Action::Delete => {
                let _ = writeln!(out, "- {r} will be pruned");
            }
            Action::Unchanged => {
                let _ = writeln!(out, "= {r} unchanged");
            }
            Action::Other(other) => {
                let _ = writeln!(out, "? {r} {other}");
            }
        }
    }
    let _ = writeln!(out, "{}", sync_plan_line(&outcome.summary()));
    if let Some(s) = &outcome.source_suspended {
        let by = s.suspended_by.as_deref().unwrap_or("unknown");
        let why = s.reason.as_deref().filter(|r| !r.is_empty()).map(|r| format!(": {r}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "Note: source {:?} is suspended (by {by}{why}); a sync is refused until `mooring sync --resume {}`.",
            s.name, s.name
        );
    }
    out
}

/// `~ spec.containers[0].image: "a" → "b"`, `+ path: value`, `- path: value`.
pub fn render_change(c: &FieldChange) -> String {
    let show = |v: &Option<Value>| v.as_ref().map(compact).unwrap_or_else(|| "null".to_string());
    match c.op.as_str() {
        "add" => format!("+ {}: {}", c.path, show(&c.to)),
        "remove" => format!("- {}: {}", c.path, show(&c.from)),
        _ => format!("~ {}: {} → {}", c.path, show(&c.from), show(&c.to)),
    }
}

/// A value on one line, strings quoted, so `"1"` and `1` look different.
fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| v.to_string())
}

/// The exit code of `diff`, as `terraform plan -detailed-exitcode`: 0 when nothing
/// would change, 2 when something would (errors are 1, decided by the caller).
pub fn diff_exit_code(summary: &Summary) -> u8 {
    if summary.has_changes() { 2 } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(dry_run: bool) -> ApplyOutcome {
        serde_json::from_value(serde_json::json!({
            "dryRun": dry_run,
            "summary": {"create": 1, "update": 1, "unchanged": 1, "delete": 1},
            "items": [
                {"kind": "Relay", "namespace": "payments", "name": "gateway", "action": "create", "generation": 1},
                {"kind": "Relay", "namespace": "default", "name": "gw", "action": "update", "generation": 4,
                 "diff": [{"path": "spec.containers[0].image", "op": "replace", "from": "app:1", "to": "app:2"},
                          {"path": "spec.scaling.max", "op": "add", "to": 5},
                          {"path": "metadata.labels.tier", "op": "remove", "from": "edge"}]},
                {"kind": "Worker", "namespace": "default", "name": "conv", "action": "unchanged"},
                {"kind": "Node", "namespace": "chain", "name": "n1", "action": "delete"}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn apply_lines_like_kubectl() {
        assert_eq!(
            render_apply(&outcome(false)),
            "relay.mooring/payments/gateway created\n\
             relay.mooring/default/gw configured\n\
             worker.mooring/default/conv unchanged\n\
             node.mooring/chain/n1 deleted\n\
             Applied: 1 created, 1 changed, 1 destroyed, 1 unchanged.\n"
        );
    }

    #[test]
    fn dry_run_apply_shows_field_diffs() {
        let text = render_apply(&outcome(true));
        assert!(text.contains("relay.mooring/default/gw configured (dry run)\n"), "{text}");
        assert!(text.contains("    ~ spec.containers[0].image: \"app:1\" → \"app:2\"\n"), "{text}");
        assert!(text.contains("    + spec.scaling.max: 5\n"), "{text}");
        assert!(text.contains("    - metadata.labels.tier: \"edge\"\n"), "{text}");
    }

    #[test]
    fn diff_uses_markers_and_skips_unchanged() {
        let text = render_diff(&outcome(true));
        assert_eq!(
            text,
            "+ relay.mooring/payments/gateway will be created\n\
             ~ relay.mooring/default/gw will be changed\n\
             \x20   ~ spec.containers[0].image: \"app:1\" → \"app:2\"\n\
             \x20   + spec.scaling.max: 5\n\
             \x20   - metadata.labels.tier: \"edge\"\n\
             - node.mooring/chain/n1 will be deleted\n\
             Plan: 1 to create, 1 to change, 1 to destroy, 1 unchanged.\n"
        );
    }

    #[test]
    fn exit_code_says_whether_anything_changes() {
        assert_eq!(diff_exit_code(&outcome(true).summary()), 2);
        let same: ApplyOutcome = serde_json::from_value(serde_json::json!({
            "dryRun": true,
            "items": [{"kind": "Relay", "namespace": "default", "name": "gw", "action": "unchanged"}]
        }))
        .unwrap();
        let s = same.summary();
        assert_eq!(s, Summary { unchanged: 1, ..Summary::default() });
        assert_eq!(diff_exit_code(&s), 0);
        assert!(render_diff(&same).ends_with("Plan: 0 to create, 0 to change, 0 to destroy, 1 unchanged.\n"));
        for only in [Summary { create: 1, ..Default::default() }, Summary { delete: 3, ..Default::default() }] {
            assert_eq!(diff_exit_code(&only), 2);
        }
    }

    #[test]
    fn sync_plans_mark_every_resource_and_drift() {
        let o: ApplyOutcome = serde_json::from_value(serde_json::json!({
            "dryRun": true,
            "items": [
                {"kind": "Relay", "namespace": "default", "name": "new", "action": "create"},
                {"kind": "Relay", "namespace": "default", "name": "edited", "action": "update",
                 "replaced": {"kind": "api", "actor": "alice"},
                 "diff": [{"path": "spec.scaling.max", "op": "replace", "from": 9, "to": 4}]},
                {"kind": "Relay", "namespace": "default", "name": "bumped", "action": "update",
                 "replaced": {"kind": "gitops", "actor": "ci", "commit": "abc1234"},
                 "diff": [{"path": "spec.containers[0].image", "op": "replace", "from": "a:1", "to": "a:2"}]},
                {"kind": "Worker", "namespace": "default", "name": "same", "action": "unchanged"},
                {"kind": "Node", "namespace": "chain", "name": "gone", "action": "delete"}
            ]
        }))
        .unwrap();
        assert_eq!(
            render_sync_plan(&o),
            "+ relay.mooring/default/new will be created\n\
             ~ relay.mooring/default/edited will be changed (drift: changed through the API by alice; git's version is restored)\n\
             \x20   ~ spec.scaling.max: 9 → 4\n\
             ~ relay.mooring/default/bumped will be changed\n\
             \x20   ~ spec.containers[0].image: \"a:1\" → \"a:2\"\n\
             = worker.mooring/default/same unchanged\n\
             - node.mooring/chain/gone will be pruned\n\
             Plan: 1 to add, 2 to change, 1 to prune, 1 unchanged.\n"
        );
    }

    #[test]
    fn unknown_actions_are_kept() {
        let o: ApplyOutcome = serde_json::from_value(serde_json::json!({
            "items": [{"kind": "Relay", "namespace": "default", "name": "gw", "action": "prune-skipped"}]
        }))
        .unwrap();
        assert_eq!(o.items[0].action, Action::Other("prune-skipped".into()));
        assert!(render_apply(&o).starts_with("relay.mooring/default/gw prune-skipped\n"));
    }
}
