//! Which reported failures are terminal for a waiting client: the controller has
//! stopped retrying them, or retrying cannot help until someone changes the spec
//! or the AWS resource it names. `wait` stops on these (exit 1, with the reason)
//! instead of waiting out its timeout.
//!
//! The reasons follow the controller's retry classes (`runners::reconcile::Retry`):
//! `Conflict`, `BuildFailed` and `Unreadable` are retried only when something
//! changes; `InvalidReference` is retried with backoff, but only someone creating
//! the referenced resource (or fixing the spec) ends it; `NoCloudBackend` is a
//! server setting; a rollout the ECS circuit breaker stopped stays stopped.

use api_types::condition::{ConditionType, reason};
use serde_json::Value;

use super::resource::{condition, str_at};

/// A failure no amount of waiting clears, with what to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Terminal {
    /// `Synced=False` with a reason from [`SYNC_REASONS`].
    Sync(&'static str),
    /// `Degraded=True` with a reason from [`DEGRADED_REASONS`].
    Degraded(&'static str),
}

/// `Synced=False` reasons that are terminal, each with its advice.
const SYNC_REASONS: [(&str, &str); 5] = [
    (
        reason::INVALID_REFERENCE,
        "the spec names an AWS resource that does not exist: create it, or fix the spec and apply again",
    ),
    (
        reason::CONFLICT,
        "the AWS resource is someone else's: rename this resource, or adopt it with the mooring/adopt annotation",
    ),
    (reason::BUILD_FAILED, "the builds failed: fix the cause and apply again (a new generation builds again)"),
    (reason::UNREADABLE, "this version of Mooring cannot read the stored document: upgrade the server"),
    (reason::NO_CLOUD_BACKEND, "the server has no cloud backend for this kind (see MOORING_CLOUD)"),
];

/// `Degraded=True` reasons that are terminal, each with its advice.
const DEGRADED_REASONS: [(&str, &str); 2] = [
    (
        reason::ROLLOUT_FAILED,
        "the ECS circuit breaker stopped the rollout: fix the image or health check and apply again",
    ),
    (reason::BUILD_FAILED, "the builds failed: fix the cause and apply again (a new generation builds again)"),
];

impl Terminal {
    fn advice(self) -> &'static str {
        let (table, name): (&[(&str, &str)], _) = match self {
            Terminal::Sync(r) => (&SYNC_REASONS, r),
            Terminal::Degraded(r) => (&DEGRADED_REASONS, r),
        };
        table.iter().find(|(r, _)| *r == name).map_or("", |(_, advice)| advice)
    }
}

/// The terminal failure `res` reports for its current generation, as one line for
/// a human (`Synced=False (Conflict): queue q is not ours; the AWS resource is ...`);
/// `None` while success is still possible by waiting.
pub fn terminal_failure(res: &Value) -> Option<String> {
    let generation = res.pointer("/metadata/generation").and_then(Value::as_i64);
    let current = |cond: &Value| {
        let observed = cond.get("observedGeneration").and_then(Value::as_i64);
        !matches!((generation, observed), (Some(g), Some(o)) if o < g)
    };
    let found = |type_: ConditionType, status: &str, table: &[(&'static str, &str)]| {
        let cond = condition(res, type_.as_str()).filter(|c| current(c))?;
        if str_at(cond, "/status") != Some(status) {
            return None;
        }
        let r = str_at(cond, "/reason")?;
        let known = table.iter().map(|(name, _)| *name).find(|name| *name == r)?;
        Some((known, str_at(cond, "/message").unwrap_or_default()))
    };
    let (terminal, type_, status, message) = if let Some((r, m)) = found(ConditionType::Synced, "False", &SYNC_REASONS)
    {
        (Terminal::Sync(r), ConditionType::Synced, "False", m)
    } else {
        let (r, m) = found(ConditionType::Degraded, "True", &DEGRADED_REASONS)?;
        (Terminal::Degraded(r), ConditionType::Degraded, "True", m)
    };
    let reason = match terminal {
        Terminal::Sync(r) | Terminal::Degraded(r) => r,
    };
    let mut line = format!("{}={status} ({reason})", type_.as_str());
    if !message.is_empty() {
        line.push_str(&format!(": {message}"));
    }
    line.push_str(&format!("; {}", terminal.advice()));
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn res(conditions: Value) -> Value {
        json!({"metadata": {"generation": 2}, "status": {"conditions": conditions}})
    }

    fn cond(type_: &str, status: &str, reason: &str, observed: i64) -> Value {
        json!({"type": type_, "status": status, "reason": reason, "message": "m", "observedGeneration": observed})
    }

    #[test]
    fn which_failures_are_terminal() {
        let cases: &[(Value, Option<&str>)] = &[
            (
                cond("Synced", "False", "InvalidReference", 2),
                Some("Synced=False (InvalidReference): m; the spec names"),
            ),
            (cond("Synced", "False", "Conflict", 2), Some("Synced=False (Conflict): m; the AWS resource is someone")),
            (cond("Synced", "False", "BuildFailed", 2), Some("Synced=False (BuildFailed): m; the builds failed")),
            (cond("Synced", "False", "Unreadable", 2), Some("Synced=False (Unreadable)")),
            (cond("Synced", "False", "NoCloudBackend", 2), Some("Synced=False (NoCloudBackend)")),
            (cond("Degraded", "True", "RolloutFailed", 2), Some("Degraded=True (RolloutFailed): m; the ECS circuit")),
            (cond("Degraded", "True", "BuildFailed", 2), Some("Degraded=True (BuildFailed)")),
            // Retried and may clear by itself.
            (cond("Synced", "False", "Throttled", 2), None),
            (cond("Synced", "False", "ApplyFailed", 2), None),
            (cond("Synced", "False", "BudgetUnavailable", 2), None),
            (cond("Synced", "False", "StoreUnavailable", 2), None),
            (cond("Degraded", "True", "HealthCheckFailing", 2), None),
            // Not a failure.
            (cond("Synced", "True", "ReconcileSuccess", 2), None),
            (cond("Degraded", "False", "AsExpected", 2), None),
            // About an older generation: the new spec has not been tried yet.
            (cond("Synced", "False", "InvalidReference", 1), None),
            (cond("Degraded", "True", "RolloutFailed", 1), None),
        ];
        for (c, expected) in cases {
            let got = terminal_failure(&res(json!([c])));
            match expected {
                Some(start) => assert!(got.as_deref().is_some_and(|g| g.starts_with(start)), "{c}: {got:?}"),
                None => assert_eq!(got, None, "{c}"),
            }
        }
        assert_eq!(terminal_failure(&json!({})), None);
    }
}
