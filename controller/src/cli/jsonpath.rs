//! `-o jsonpath=…`: pick values out of what `get` would print as JSON.
//!
//! Queries are RFC 9535 JSONPath (`$.items[*].metadata.name`, evaluated by
//! `serde_json_path`); kubectl's spelling (`{.items[*].metadata.name}`) is
//! accepted too, so a kubectl user's habit works. Matches print like kubectl's:
//! strings bare, other values as compact JSON, separated by spaces.

use std::fmt;

use serde_json::Value;
use serde_json_path::JsonPath;

/// A parsed `-o jsonpath` query, keeping its text for messages and comparisons.
#[derive(Clone)]
pub struct JsonPathQuery {
    text: String,
    path: JsonPath,
}

impl JsonPathQuery {
    /// Parses a query in RFC 9535 or kubectl spelling; the error says which part
    /// the parser refused.
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let inner = trimmed.strip_prefix('{').and_then(|t| t.strip_suffix('}')).unwrap_or(trimmed).trim();
        let rfc = if inner.starts_with('$') {
            inner.to_string()
        } else if inner.starts_with('.') || inner.starts_with('[') {
            format!("${inner}")
        } else {
            format!("$.{inner}")
        };
        let path = JsonPath::parse(&rfc).map_err(|e| format!("invalid JSONPath {text:?}: {e}"))?;
        Ok(JsonPathQuery { text: text.to_string(), path })
    }

    /// Every match in `document`, printed as kubectl prints them, newline-terminated.
    pub fn render(&self, document: &Value) -> String {
        let nodes = self.path.query(document).all();
        let parts: Vec<String> = nodes
            .into_iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        let mut out = parts.join(" ");
        out.push('\n');
        out
    }
}

impl PartialEq for JsonPathQuery {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for JsonPathQuery {}

impl fmt::Debug for JsonPathQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsonPathQuery({:?})", self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn queries_in_either_spelling() {
        let doc = json!({"items": [
            {"metadata": {"name": "a", "generation": 1}},
            {"metadata": {"name": "b", "generation": 2}}
        ]});
        let cases = [
            ("$.items[*].metadata.name", "a b\n"),
            ("{.items[*].metadata.name}", "a b\n"),
            (".items[0].metadata", "{\"generation\":1,\"name\":\"a\"}\n"),
            ("items[*].metadata.generation", "1 2\n"),
            ("$.nothing", "\n"),
        ];
        for (query, expected) in cases {
            let q = JsonPathQuery::parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
            assert_eq!(q.render(&doc), expected, "{query}");
        }
        assert!(JsonPathQuery::parse("{.items[}").unwrap_err().starts_with("invalid JSONPath \"{.items[}\""));
    }
}
