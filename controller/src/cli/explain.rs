//! `mooring explain KIND[.field…]`: the documentation of a kind or one of its
//! fields, read from the kind's JSON Schema (the one that validates documents),
//! so it can never disagree with what the server accepts.

use std::process::ExitCode;

use api_types::Kind;
use clap::Args;
use serde_json::{Map, Value};

use super::output;

/// Arguments of `explain`.
#[derive(Args, Debug, Clone)]
pub struct ExplainArgs {
    /// What to explain: a kind (`relay`), or a field path under it
    /// (`relay.spec.scaling`, `node.spec.healthCheck`).
    #[arg(value_name = "KIND[.FIELD]")]
    pub path: String,
}

/// Why a path cannot be explained.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExplainError {
    /// The first segment is not a kind.
    #[error("{0}")]
    UnknownKind(String),
    /// A segment names no field of the object before it.
    #[error("{kind} has no field {path:?}; the fields of {parent} are: {known}")]
    UnknownField { kind: String, path: String, parent: String, known: String },
    /// A segment goes below a value that has no fields.
    #[error("{path} is of type {type_}, which has no fields")]
    NotAnObject { path: String, type_: String },
}

/// Runs `explain` (no server needed).
pub fn run(args: &ExplainArgs) -> anyhow::Result<ExitCode> {
    let (kind, fields) = split(&args.path)?;
    let schema = api_types::schema::schema_for_kind(kind);
    output::print(&explain(kind, &schema, &fields)?)?;
    Ok(ExitCode::SUCCESS)
}

/// `relay.spec.scaling` → (Relay, [spec, scaling]).
fn split(path: &str) -> Result<(Kind, Vec<String>), ExplainError> {
    let mut parts = path.split('.').filter(|p| !p.is_empty());
    let kind: Kind = parts
        .next()
        .unwrap_or_default()
        .parse()
        .map_err(|e: api_types::meta::UnknownKind| ExplainError::UnknownKind(e.to_string()))?;
    Ok((kind, parts.map(str::to_string).collect()))
}

/// The text `explain` prints for `fields` under `kind`'s `schema`.
pub fn explain(kind: Kind, schema: &Value, fields: &[String]) -> Result<String, ExplainError> {
    let defs = schema.get("$defs").and_then(Value::as_object).cloned().unwrap_or_default();
    let mut node = schema.clone();
    let mut walked = kind.as_str().to_ascii_lowercase();
    for field in fields {
        let object = object_of(&node, &defs);
        let props = object.get("properties").and_then(Value::as_object);
        let Some(next) = props.and_then(|p| p.get(field)) else {
            if props.is_none() {
                return Err(ExplainError::NotAnObject { path: walked, type_: type_name(&node, &defs) });
            }
            let known: Vec<&str> = props.map(|p| p.keys().map(String::as_str).collect()).unwrap_or_default();
            return Err(ExplainError::UnknownField {
                kind: kind.as_str().to_string(),
                path: format!("{walked}.{field}"),
                parent: walked,
                known: known.join(", "),
            });
        };
        walked.push('.');
        walked.push_str(field);
        node = next.clone();
    }
    let mut out = format!("KIND:     {}\nVERSION:  {}\n", kind.as_str(), api_types::API_VERSION);
    if !fields.is_empty() {
        out.push_str(&format!("\nFIELD:    {} <{}>\n", fields.join("."), type_name(&node, &defs)));
    }
    let text = description(&node, &defs);
    if !text.is_empty() {
        out.push_str(&format!("\nDESCRIPTION:\n{}", output::indent(&text, 4)));
    }
    let facts = facts(&node, &defs);
    if !facts.is_empty() {
        out.push_str(&format!("    ({})\n", facts.join("; ")));
    }
    let object = object_of(&node, &defs);
    if let Some(props) = object.get("properties").and_then(Value::as_object) {
        let required: Vec<&str> = object
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        out.push_str("\nFIELDS:\n");
        for (name, field) in props {
            let mark = if required.contains(&name.as_str()) { " -required-" } else { "" };
            out.push_str(&format!("  {name}\t<{}>{mark}\n", type_name(field, &defs)));
            if let Some(first) = description(field, &defs).lines().next() {
                out.push_str(&format!("    {first}\n"));
            }
        }
    }
    Ok(out)
}

/// The schema a `$ref` points to (one level; schemars does not chain them).
fn resolve<'a>(node: &'a Value, defs: &'a Map<String, Value>) -> &'a Value {
    node.get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .and_then(|name| defs.get(name))
        .unwrap_or(node)
}

/// The object schema whose fields a path continues into: through `$ref`s and,
/// for lists and maps, into their items.
fn object_of<'a>(node: &'a Value, defs: &'a Map<String, Value>) -> &'a Value {
    let node = resolve(node, defs);
    if let Some(items) = node.get("items") {
        return resolve(items, defs);
    }
    node
}

/// `string`, `integer`, `[]Container`, `map[string]string`, `Network` ...
fn type_name(node: &Value, defs: &Map<String, Value>) -> String {
    if let Some(name) = node.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/$defs/")) {
        let target = resolve(node, defs);
        return match target.get("type").and_then(Value::as_str) {
            Some("object") | None => name.to_string(),
            Some(t) => t.to_string(),
        };
    }
    match node.get("type") {
        Some(Value::String(t)) if t == "array" => {
            format!("[]{}", node.get("items").map_or_else(|| "any".to_string(), |i| type_name(i, defs)))
        }
        Some(Value::String(t)) if t == "object" => match node.get("additionalProperties") {
            Some(v) if v.is_object() => format!("map[string]{}", type_name(v, defs)),
            _ => "object".to_string(),
        },
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => {
            ts.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect::<Vec<_>>().join("|")
        }
        _ if node.get("enum").is_some() || node.get("const").is_some() => "string".to_string(),
        _ if node.get("oneOf").is_some() || node.get("anyOf").is_some() => "string".to_string(),
        _ => "any".to_string(),
    }
}

/// The field's own description, else its type's.
fn description(node: &Value, defs: &Map<String, Value>) -> String {
    let own = node.get("description").and_then(Value::as_str);
    let referenced = resolve(node, defs).get("description").and_then(Value::as_str);
    own.or(referenced).unwrap_or_default().trim().to_string()
}

/// Default, bounds and allowed values, when the schema states them.
fn facts(node: &Value, defs: &Map<String, Value>) -> Vec<String> {
    let target = resolve(node, defs);
    let mut facts = Vec::new();
    if let Some(d) = node.get("default").or_else(|| target.get("default")) {
        facts.push(format!("default {d}"));
    }
    if let Some(v) = target.get("const") {
        facts.push(format!("always {v}"));
    }
    let values: Vec<String> = target
        .get("enum")
        .and_then(Value::as_array)
        .map(|e| e.iter().map(Value::to_string).collect())
        .or_else(|| {
            target.get("oneOf").and_then(Value::as_array).map(|branches| {
                branches
                    .iter()
                    .filter_map(|b| b.get("const").or_else(|| b.get("enum")?.get(0)))
                    .map(Value::to_string)
                    .collect()
            })
        })
        .unwrap_or_default();
    if !values.is_empty() {
        facts.push(format!("one of {}", values.join(", ")));
    }
    match (target.get("minimum"), target.get("maximum")) {
        (Some(lo), Some(hi)) => facts.push(format!("{lo}..{hi}")),
        (Some(lo), None) => facts.push(format!("at least {lo}")),
        (None, Some(hi)) => facts.push(format!("at most {hi}")),
        (None, None) => {}
    }
    if let Some(p) = target.get("pattern").and_then(Value::as_str) {
        facts.push(format!("pattern {p}"));
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explain_path(path: &str) -> Result<String, ExplainError> {
        let (kind, fields) = split(path)?;
        explain(kind, &api_types::schema::schema_for_kind(kind), &fields)
    }

    #[test]
    fn explains_kinds_and_fields() {
        let relay = explain_path("relay").unwrap();
        assert!(relay.starts_with("KIND:     Relay\nVERSION:  mooring/v1\n"), "{relay}");
        assert!(relay.contains("\n  spec\t<RelaySpec>"), "{relay}");

        let scaling = explain_path("relays.spec.scaling").unwrap();
        assert!(scaling.contains("FIELD:    spec.scaling <RelayScaling>"), "{scaling}");
        assert!(scaling.contains("  max\t<integer>"), "{scaling}");

        let max = explain_path("Relay.spec.scaling.max").unwrap();
        assert!(max.contains("FIELD:    spec.scaling.max <integer>"), "{max}");
        assert!(max.contains("default 10; 1..5000"), "{max}");

        let image = explain_path("relay.spec.containers.image").unwrap();
        assert!(image.contains("FIELD:    spec.containers.image <string>"), "{image}");
    }

    #[test]
    fn explains_what_is_wrong_with_a_path() {
        assert!(matches!(explain_path("pod"), Err(ExplainError::UnknownKind(_))));
        let err = explain_path("relay.spec.scalling").unwrap_err().to_string();
        assert!(err.starts_with("Relay has no field \"relay.spec.scalling\"; the fields of relay.spec are: "), "{err}");
        assert!(err.contains("scaling"), "{err}");
        let err = explain_path("relay.spec.cpu.x").unwrap_err().to_string();
        assert_eq!(err, "relay.spec.cpu is of type integer, which has no fields");
    }
}
