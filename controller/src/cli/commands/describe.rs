//! `mooring describe`: one resource for a person — metadata, spec, status,
//! conditions and recent events, like `kubectl describe`.

use std::fmt::Write as _;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::Target;
use crate::cli::client::{ApiClient, ClientError};
use crate::cli::output::{self, NONE};
use crate::cli::resource::{conditions, str_at, text_at};

/// At most this many events are shown (the newest).
const MAX_EVENTS: usize = 20;

/// Width of the `Label:` column.
const LABEL_WIDTH: usize = 21;

/// Runs `describe`.
pub async fn run(client: &ApiClient, target: Target) -> anyhow::Result<ExitCode> {
    let (resource, events) = futures::join!(
        client.get(target.kind, target.ns(), &target.name),
        client.events(target.kind, target.ns(), &target.name)
    );
    let text = render(&resource?, events, Utc::now())?;
    output::print(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// The whole description. Events that could not be read do not hide the rest.
pub fn render(res: &Value, events: Result<Vec<Value>, ClientError>, now: DateTime<Utc>) -> anyhow::Result<String> {
    let mut out = String::new();
    field(&mut out, "Name", &text_at(res, "/metadata/name"));
    field(&mut out, "Namespace", &text_at(res, "/metadata/namespace"));
    field(&mut out, "Kind", &text_at(res, "/kind"));
    field(&mut out, "API Version", &text_at(res, "/apiVersion"));
    map_field(&mut out, "Labels", res.pointer("/metadata/labels"));
    map_field(&mut out, "Annotations", res.pointer("/metadata/annotations"));
    field(&mut out, "UID", &text_at(res, "/metadata/uid"));
    field(&mut out, "Generation", &text_at(res, "/metadata/generation"));
    field(&mut out, "Observed Generation", &text_at(res, "/status/observedGeneration"));
    field(&mut out, "Resource Version", &text_at(res, "/metadata/resourceVersion"));
    field(&mut out, "Created", &timestamp(str_at(res, "/metadata/creationTimestamp"), now));
    if let Some(ts) = str_at(res, "/metadata/deletionTimestamp") {
        field(&mut out, "Deletion Requested", &timestamp(Some(ts), now));
    }
    let finalizers = crate::cli::resource::finalizers(res);
    field(&mut out, "Finalizers", &if finalizers.is_empty() { NONE.to_string() } else { finalizers.join(", ") });

    out.push_str("Spec:\n");
    match res.get("spec") {
        Some(spec) if !spec.is_null() => out.push_str(&output::indent(&output::to_yaml(spec)?, 2)),
        _ => out.push_str("  <none>\n"),
    }

    out.push_str("Status:\n");
    let rest: Map<String, Value> = res
        .get("status")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter(|(k, _)| !matches!(k.as_str(), "conditions" | "observedGeneration")))
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if rest.is_empty() {
        out.push_str("  <none>\n");
    } else {
        out.push_str(&output::indent(&output::to_yaml(&rest)?, 2));
    }

    out.push_str("Conditions:\n");
    let conds = conditions(res);
    if conds.is_empty() {
        out.push_str("  <none>\n");
    } else {
        let rows: Vec<Vec<String>> = conds
            .iter()
            .map(|c| {
                vec![
                    text_at(c, "/type"),
                    text_at(c, "/status"),
                    text_at(c, "/reason"),
                    output::age_of(str_at(c, "/lastTransitionTime"), now),
                    str_at(c, "/message").unwrap_or_default().to_string(),
                ]
            })
            .collect();
        out.push_str(&output::indent(&output::table(&["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"], &rows), 2));
    }

    out.push_str("Events:\n");
    match events {
        Ok(events) if events.is_empty() => out.push_str("  <none>\n"),
        Ok(events) => out.push_str(&output::indent(&render_events(&events, now), 2)),
        Err(e) => {
            let _ = writeln!(out, "  <unavailable: {}>", e.to_string().replace('\n', " "));
        }
    }
    Ok(out)
}

/// The newest events (the API sends newest first), shown oldest first like kubectl,
/// with `3m (x4 over 10m)` when an event repeated.
pub fn render_events(events: &[Value], now: DateTime<Utc>) -> String {
    let rows: Vec<Vec<String>> = events
        .iter()
        .take(MAX_EVENTS)
        .rev()
        .map(|e| {
            let last = str_at(e, "/lastSeen").or_else(|| str_at(e, "/lastTimestamp"));
            let mut age = output::age_of(last, now);
            let count = e.get("count").and_then(Value::as_u64).unwrap_or(1);
            if count > 1 {
                let first = str_at(e, "/firstSeen").or_else(|| str_at(e, "/firstTimestamp"));
                let _ = write!(age, " (x{count} over {})", output::age_of(first, now));
            }
            vec![text_at(e, "/type"), text_at(e, "/reason"), age, str_at(e, "/message").unwrap_or_default().to_string()]
        })
        .collect();
    output::table(&["TYPE", "REASON", "AGE", "MESSAGE"], &rows)
}

fn field(out: &mut String, label: &str, value: &str) {
    let _ = writeln!(out, "{:<LABEL_WIDTH$}{value}", format!("{label}:"));
}

/// `key=value` per line, continuation lines aligned under the first.
fn map_field(out: &mut String, label: &str, map: Option<&Value>) {
    let entries: Vec<String> = map
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
        .collect();
    if entries.is_empty() {
        field(out, label, NONE);
        return;
    }
    for (i, entry) in entries.iter().enumerate() {
        if i == 0 {
            field(out, label, entry);
        } else {
            let _ = writeln!(out, "{:<LABEL_WIDTH$}{entry}", "");
        }
    }
}

/// `2023-11-14T22:13:20Z (3m ago)`.
fn timestamp(ts: Option<&str>, now: DateTime<Utc>) -> String {
    match ts {
        Some(ts) => format!("{ts} ({} ago)", output::age_of(Some(ts), now)),
        None => NONE.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::error::ApiError;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn relay() -> Value {
        json!({
            "apiVersion": "mooring/v1", "kind": "Relay",
            "metadata": {"name": "gateway", "namespace": "payments", "labels": {"app": "gw", "tier": "edge"},
                         "uid": "7f1c", "generation": 4, "resourceVersion": "42",
                         "creationTimestamp": "2023-11-14T22:10:20Z", "finalizers": ["mooring.io/cleanup"]},
            "spec": {"cluster": "main", "scaling": {"min": 2, "max": 5}},
            "status": {"observedGeneration": 4, "serviceArn": "arn:svc",
                       "conditions": [{"type": "Ready", "status": "False", "reason": "Provisioning",
                                       "message": "waiting for 2 tasks", "lastTransitionTime": "2023-11-14T22:12:20Z"}]}
        })
    }

    #[test]
    fn describes_metadata_spec_status_conditions_and_events() {
        let events = vec![
            json!({"type": "Normal", "reason": "ScaledOut", "message": "2 -> 3", "count": 1,
                   "firstSeen": "2023-11-14T22:13:10Z", "lastSeen": "2023-11-14T22:13:10Z"}),
            json!({"type": "Warning", "reason": "Throttled", "message": "ECS throttled", "count": 4,
                   "firstSeen": "2023-11-14T22:03:20Z", "lastSeen": "2023-11-14T22:10:20Z"}),
        ];
        let text = render(&relay(), Ok(events), now()).unwrap();
        assert!(text.starts_with("Name:                gateway\nNamespace:           payments\n"), "{text}");
        assert!(text.contains("Labels:              app=gw\n                     tier=edge\n"), "{text}");
        assert!(text.contains("Annotations:         <none>\n"), "{text}");
        assert!(text.contains("Observed Generation: 4\n"), "{text}");
        assert!(text.contains("Created:             2023-11-14T22:10:20Z (3m ago)\n"), "{text}");
        assert!(text.contains("Spec:\n  cluster: main\n  scaling:\n    max: 5\n    min: 2\n"), "{text}");
        assert!(text.contains("Status:\n  serviceArn: arn:svc\nConditions:\n"), "{text}");
        assert!(text.contains("  TYPE    STATUS   REASON         AGE   MESSAGE\n  Ready   False    Provisioning   1m    waiting for 2 tasks\n"), "{text}");
        // Oldest first, repeated events with their count.
        let warning = text.find("Throttled").unwrap();
        let normal = text.find("ScaledOut").unwrap();
        assert!(warning < normal, "{text}");
        assert!(text.contains("3m (x4 over 10m)"), "{text}");
    }

    #[test]
    fn events_that_cannot_be_read_do_not_hide_the_rest() {
        let err = ClientError::Api(ApiError::from_body(403, br#"{"error":{"code":"Forbidden","message":"no"}}"#));
        let text = render(&relay(), Err(err), now()).unwrap();
        assert!(text.ends_with("Events:\n  <unavailable: no>\n"), "{text}");
        let text = render(&relay(), Ok(vec![]), now()).unwrap();
        assert!(text.ends_with("Events:\n  <none>\n"), "{text}");
    }
}
