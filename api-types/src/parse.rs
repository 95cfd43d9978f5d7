//! Parsing of documents from JSON or YAML text: one document, a JSON list, a
//! `kind: List` wrapper, or a multi-document YAML stream (`---`).

use serde::Deserialize;
use serde_json::Value;

/// The text could not be read as documents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Json { line: usize, column: usize, message: String },
    #[error("invalid YAML{}: {message}", location.map(|(l, c)| format!(" at line {l}, column {c}")).unwrap_or_default())]
    Yaml { location: Option<(usize, usize)>, message: String },
    #[error("document {index} is not an object (found {found})")]
    NotAnObject { index: usize, found: &'static str },
    #[error("no documents found")]
    Empty,
}

/// Reads every document in `text`. JSON is recognised by its first character
/// (`{` or `[`); anything else is read as a YAML stream. Empty YAML documents
/// (a stray `---`) are skipped. `{"kind": "List", "items": [...]}` is unwrapped.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, ParseError> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let docs = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let v: Value = serde_json::from_str(trimmed).map_err(|e| ParseError::Json {
            line: e.line(),
            column: e.column(),
            message: strip_location(&e.to_string()),
        })?;
        match v {
            Value::Array(items) => items,
            other => vec![other],
        }
    } else {
        let mut out = Vec::new();
        for doc in serde_norway::Deserializer::from_str(text) {
            let v = Value::deserialize(doc).map_err(|e| ParseError::Yaml {
                location: e.location().map(|l| (l.line(), l.column())),
                message: strip_location(&e.to_string()),
            })?;
            if !v.is_null() {
                out.push(v);
            }
        }
        out
    };
    let mut flat = Vec::with_capacity(docs.len());
    for doc in docs {
        match doc {
            Value::Object(ref m)
                if m.get("kind").and_then(Value::as_str) == Some("List")
                    && m.get("items").is_some_and(Value::is_array) =>
            {
                if let Some(Value::Array(items)) = doc.get("items") {
                    flat.extend(items.iter().cloned());
                }
            }
            other => flat.push(other),
        }
    }
    for (index, d) in flat.iter().enumerate() {
        if !d.is_object() {
            return Err(ParseError::NotAnObject { index, found: type_name(d) });
        }
    }
    if flat.is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(flat)
}

fn strip_location(msg: &str) -> String {
    // Both parsers append " at line L column C"; the error carries them separately.
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_stream_with_empty_documents() {
        let text = "---\nkind: Node\nmetadata: {name: a}\n---\n---\nkind: Relay\nmetadata:\n  name: b\n...\n";
        let docs = parse_documents(text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["kind"], "Node");
        assert_eq!(docs[1]["metadata"]["name"], "b");
    }

    #[test]
    fn json_object_list_and_list_kind() {
        assert_eq!(parse_documents(r#"{"kind":"Node"}"#).unwrap().len(), 1);
        assert_eq!(parse_documents(r#"[{"kind":"Node"},{"kind":"Worker"}]"#).unwrap().len(), 2);
        let wrapped =
            r#"{"apiVersion":"v1","kind":"List","items":[{"kind":"Node"},{"kind":"Relay"},{"kind":"Worker"}]}"#;
        assert_eq!(parse_documents(wrapped).unwrap().len(), 3);
    }

    #[test]
    fn errors_say_where() {
        match parse_documents("{\"kind\": \"Node\",\n \"x\": }").unwrap_err() {
            ParseError::Json { line, .. } => assert_eq!(line, 2),
            e => panic!("unexpected {e:?}"),
        }
        match parse_documents("kind: Node\nmetadata: [unclosed\n").unwrap_err() {
            ParseError::Yaml { location, .. } => assert!(location.is_some()),
            e => panic!("unexpected {e:?}"),
        }
        assert!(matches!(parse_documents("- 1\n- 2\n").unwrap_err(), ParseError::NotAnObject { .. }));
        assert!(matches!(parse_documents("  \n").unwrap_err(), ParseError::Empty));
        assert!(matches!(parse_documents("[1]").unwrap_err(), ParseError::NotAnObject { index: 0, found: "a number" }));
    }
}
