//! JSON Schemas of the kinds, generated from the Rust types with schemars.
//!
//! The same schema validates documents before they are stored (see
//! [`crate::validate`]), is served by the API at `/v1/schemas/{kind}`, and is
//! committed under `api-types/schemas/` for editors; a test keeps the committed
//! files current.

use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

use crate::meta::{API_VERSION, Kind};
use crate::node::Node;
use crate::nodeset::NodeSet;
use crate::policy::Policy;
use crate::relay::Relay;
use crate::worker::Worker;

/// The JSON Schema (draft 2020-12) of a whole document of `kind`.
pub fn schema_for_kind(kind: Kind) -> Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let schema = match kind {
        Kind::Node => generator.into_root_schema_for::<Node>(),
        Kind::Relay => generator.into_root_schema_for::<Relay>(),
        Kind::Worker => generator.into_root_schema_for::<Worker>(),
        Kind::Policy => generator.into_root_schema_for::<Policy>(),
        Kind::NodeSet => generator.into_root_schema_for::<NodeSet>(),
    };
    let mut v = schema.to_value();
    drop_null_branches(&mut v);
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "$id".into(),
            json!(format!("https://mooring.dev/schemas/v1/{}.json", kind.as_str().to_lowercase())),
        );
        obj.insert("title".into(), json!(kind.as_str()));
        if let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) {
            props.insert("apiVersion".into(), json!({"const": API_VERSION, "description": "Always mooring/v1."}));
            props.insert("kind".into(), json!({"const": kind.as_str()}));
        }
    }
    v
}

/// Optional fields are simply absent: explicit `null`s are removed before
/// validation, so the schema need not allow them. This keeps error messages about
/// the real type instead of "matched none of anyOf".
fn drop_null_branches(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Array(types)) = m.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let t = types[0].clone();
                    m.insert("type".into(), t);
                }
            }
            if let Some(Value::Array(branches)) = m.get("anyOf").cloned() {
                let kept: Vec<Value> = branches.into_iter().filter(|b| b.get("type") != Some(&json!("null"))).collect();
                if kept.len() == 1 {
                    m.remove("anyOf");
                    if let Value::Object(only) = &kept[0] {
                        for (k, x) in only {
                            m.insert(k.clone(), x.clone());
                        }
                    }
                } else {
                    m.insert("anyOf".into(), Value::Array(kept));
                }
            }
            if m.get("default") == Some(&Value::Null) {
                m.remove("default");
            }
            m.values_mut().for_each(drop_null_branches);
        }
        Value::Array(a) => a.iter_mut().for_each(drop_null_branches),
        _ => {}
    }
}
