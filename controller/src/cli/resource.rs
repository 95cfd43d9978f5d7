//! Lenient read access to resource documents as the API returns them.
//!
//! The CLI reads resources as `serde_json::Value`, not as the typed `api_types`
//! structs, so a server one version ahead (a new status field, a new condition type)
//! never breaks `get` or `describe`; a missing field shows as `<none>`.

use serde_json::Value;

use super::output::NONE;

/// A string field at a JSON pointer (`/metadata/name`).
pub fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// Any scalar field at a JSON pointer, as text; `<none>` when absent or null.
pub fn text_at(v: &Value, pointer: &str) -> String {
    match v.pointer(pointer) {
        None | Some(Value::Null) => NONE.to_string(),
        Some(Value::String(s)) if s.is_empty() => NONE.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// `metadata.name`.
pub fn name(v: &Value) -> &str {
    str_at(v, "/metadata/name").unwrap_or_default()
}

/// `metadata.namespace`.
pub fn namespace(v: &Value) -> &str {
    str_at(v, "/metadata/namespace").unwrap_or_default()
}

/// The condition of `type_` in `status.conditions`, matched case-insensitively.
pub fn condition<'a>(v: &'a Value, type_: &str) -> Option<&'a Value> {
    v.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case(type_)))
}

/// The status (`True`, `False`, `Unknown`) of a condition; `Unknown` when not reported yet.
pub fn condition_status(v: &Value, type_: &str) -> String {
    condition(v, type_).and_then(|c| c.get("status")).and_then(Value::as_str).unwrap_or("Unknown").to_string()
}

/// The conditions in `status.conditions` (empty when none are reported).
pub fn conditions(v: &Value) -> &[Value] {
    v.pointer("/status/conditions").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

/// `running/desired` from a `replicas` object, `<none>` when not observed yet.
pub fn replicas(v: &Value) -> String {
    match v.pointer("/status/replicas") {
        Some(r) if r.is_object() => format!("{}/{}", text_or(r, "/running", "?"), text_or(r, "/desired", "?")),
        _ => NONE.to_string(),
    }
}

fn text_or(v: &Value, pointer: &str, fallback: &str) -> String {
    match v.pointer(pointer) {
        None | Some(Value::Null) => fallback.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The finalizers of a resource document.
pub fn finalizers(res: &Value) -> Vec<&str> {
    res.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_fields_leniently() {
        let v = json!({
            "metadata": {"name": "gw", "namespace": "payments", "generation": 3},
            "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "Provisioning"}],
                       "replicas": {"desired": 3, "running": 2}}
        });
        assert_eq!(name(&v), "gw");
        assert_eq!(namespace(&v), "payments");
        assert_eq!(text_at(&v, "/metadata/generation"), "3");
        assert_eq!(text_at(&v, "/status/serviceArn"), "<none>");
        assert_eq!(condition_status(&v, "Ready"), "False");
        assert_eq!(condition_status(&v, "ready"), "False");
        assert_eq!(condition_status(&v, "Synced"), "Unknown");
        assert_eq!(replicas(&v), "2/3");
        assert_eq!(replicas(&json!({})), "<none>");
        assert_eq!(conditions(&json!({"status": {}})).len(), 0);
    }
}
