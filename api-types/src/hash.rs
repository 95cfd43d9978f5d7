//! The canonical spec hash.
//!
//! Two specs that mean the same thing hash the same: the spec is parsed into its
//! typed form first (so defaults are filled in and an explicit default equals an
//! omitted one), serialized, and written as JSON with object keys sorted and no
//! whitespace. The hash decides whether an apply is a no-op, tags AWS resources
//! (a task definition registered for hash H is found again after a crash), and
//! chains the signed revision history.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A SHA-256 of a canonical spec, as 64 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SpecHash(pub String);

impl fmt::Display for SpecHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl SpecHash {
    /// The first 12 hex digits, for tags and names with a length limit.
    pub fn short(&self) -> &str {
        &self.0[..12.min(self.0.len())]
    }
}

/// Hashes a typed spec.
pub fn spec_hash<S: Serialize>(spec: &S) -> SpecHash {
    let v = serde_json::to_value(spec).unwrap_or(Value::Null);
    SpecHash(hex::encode(Sha256::digest(canonical_json(&v).as_bytes())))
}

/// JSON with sorted object keys and no insignificant whitespace.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a = json!({"b": 1, "a": {"y": [1, {"q": 1, "p": 2}], "x": null}});
        assert_eq!(canonical_json(&a), r#"{"a":{"x":null,"y":[1,{"p":2,"q":1}]},"b":1}"#);
    }
}
