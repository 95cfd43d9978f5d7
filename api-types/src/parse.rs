//! Parsing of documents from JSON or YAML text: one document, a JSON list, a
//! `kind: List` wrapper, or a multi-document YAML stream (`---`).
//!
//! Parsing is bounded by [`ParseLimits`]: YAML anchors and aliases let a small
//! text expand to billions of values (the "billion laughs" alias bomb), and the
//! YAML library bounds only how often aliases are followed, not what they expand
//! to. Every value is counted as it is built, across all documents of the text,
//! and parsing stops with [`ParseError::TooComplex`] the moment a limit is
//! passed, so memory and time stay proportional to the limits, not to the
//! expansion.

use std::cell::RefCell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// What a parsed text may expand to, all documents together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Values (scalars, lists and maps, map keys not counted) after alias expansion.
    pub max_values: usize,
    /// Nesting of lists and maps.
    pub max_depth: usize,
    /// Bytes of strings and map keys after alias expansion.
    pub max_string_bytes: usize,
}

impl ParseLimits {
    /// The API's limits. A request body is at most 1 MiB, so without aliases
    /// no body can exceed the string bound, and a bulk apply of a thousand
    /// ordinary documents stays far below the value bound.
    pub const DEFAULT: ParseLimits =
        ParseLimits { max_values: 250_000, max_depth: 64, max_string_bytes: 4 * 1024 * 1024 };
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits::DEFAULT
    }
}

/// Which bound a text passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Values(usize),
    Depth(usize),
    StringBytes(usize),
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Values(n) => write!(f, "expands to more than {n} values"),
            Limit::Depth(n) => write!(f, "nests lists and maps more than {n} levels deep"),
            Limit::StringBytes(n) => write!(f, "expands to more than {n} bytes of strings"),
        }
    }
}

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
    #[error(
        "the text {0}; YAML anchors and aliases can multiply a small text, so expand fewer of them or send fewer documents at once"
    )]
    TooComplex(Limit),
}

/// Reads every document in `text` within [`ParseLimits::DEFAULT`].
pub fn parse_documents(text: &str) -> Result<Vec<Value>, ParseError> {
    parse_documents_within(text, ParseLimits::DEFAULT)
}

/// Reads every document in `text`. JSON is recognised by its first character
/// (`{` or `[`); anything else is read as a YAML stream. Empty YAML documents
/// (a stray `---`) are skipped. `{"kind": "List", "items": [...]}` is unwrapped.
pub fn parse_documents_within(text: &str, limits: ParseLimits) -> Result<Vec<Value>, ParseError> {
    let budget = RefCell::new(Budget::new(limits));
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let docs = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        match json_within(trimmed, &budget)? {
            Value::Array(items) => items,
            other => vec![other],
        }
    } else {
        let mut out = Vec::new();
        for doc in serde_norway::Deserializer::from_str(text) {
            let v = Bounded { budget: &budget, depth: 0 }.deserialize(doc).map_err(|e| {
                budget.borrow().exceeded.map(ParseError::TooComplex).unwrap_or_else(|| ParseError::Yaml {
                    location: e.location().map(|l| (l.line(), l.column())),
                    message: strip_location(&e.to_string()),
                })
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

/// Reads one JSON value (a merge patch, say) within `limits`.
pub fn parse_json_within(text: &str, limits: ParseLimits) -> Result<Value, ParseError> {
    json_within(text.trim_start_matches('\u{feff}'), &RefCell::new(Budget::new(limits)))
}

fn json_within(text: &str, budget: &RefCell<Budget>) -> Result<Value, ParseError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = Bounded { budget, depth: 0 }.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    parsed.map_err(|e| {
        budget.borrow().exceeded.map(ParseError::TooComplex).unwrap_or_else(|| ParseError::Json {
            line: e.line(),
            column: e.column(),
            message: strip_location(&e.to_string()),
        })
    })
}

/// What is left of the limits while a text is parsed.
struct Budget {
    limits: ParseLimits,
    values: usize,
    string_bytes: usize,
    /// The limit that stopped parsing, told apart from syntax errors.
    exceeded: Option<Limit>,
}

impl Budget {
    fn new(limits: ParseLimits) -> Budget {
        Budget { limits, values: 0, string_bytes: 0, exceeded: None }
    }

    fn value<E: serde::de::Error>(&mut self) -> Result<(), E> {
        self.values += 1;
        if self.values > self.limits.max_values {
            return Err(self.stop(Limit::Values(self.limits.max_values)));
        }
        Ok(())
    }

    fn string<E: serde::de::Error>(&mut self, len: usize) -> Result<(), E> {
        self.string_bytes = self.string_bytes.saturating_add(len);
        if self.string_bytes > self.limits.max_string_bytes {
            return Err(self.stop(Limit::StringBytes(self.limits.max_string_bytes)));
        }
        Ok(())
    }

    fn stop<E: serde::de::Error>(&mut self, limit: Limit) -> E {
        self.exceeded = Some(limit);
        E::custom(limit)
    }
}

/// Builds a [`Value`] while charging every value, string and level of nesting
/// to the budget.
#[derive(Clone, Copy)]
struct Bounded<'b> {
    budget: &'b RefCell<Budget>,
    depth: usize,
}

impl Bounded<'_> {
    fn nested<E: serde::de::Error>(self) -> Result<Self, E> {
        let mut budget = self.budget.borrow_mut();
        budget.value()?;
        if self.depth >= budget.limits.max_depth {
            let max = budget.limits.max_depth;
            return Err(budget.stop(Limit::Depth(max)));
        }
        Ok(Bounded { budget: self.budget, depth: self.depth + 1 })
    }

    fn scalar<E: serde::de::Error>(self, v: Value) -> Result<Value, E> {
        self.budget.borrow_mut().value()?;
        Ok(v)
    }
}

impl<'de> DeserializeSeed<'de> for Bounded<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Bounded<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        self.scalar(Value::Bool(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        self.scalar(Value::from(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        self.scalar(Value::from(v))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        self.scalar(serde_json::Number::from_f64(v).map(Value::Number).unwrap_or(Value::Null))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        self.budget.borrow_mut().string(v.len())?;
        self.scalar(Value::String(v.to_owned()))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        self.budget.borrow_mut().string(v.len())?;
        self.scalar(Value::String(v))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.scalar(Value::Null)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        self.scalar(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(inner)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            self.budget.borrow_mut().string(key.len())?;
            let v = map.next_value_seed(inner)?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
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
        assert!(matches!(parse_documents("{\"a\": 1} x").unwrap_err(), ParseError::Json { .. }), "trailing text");
    }

    /// A list of a thousand values under nine levels of ten aliases each: 10^12
    /// values from 3 KB.
    fn alias_bomb() -> String {
        let mut text = format!("a0: &a0 [{}x]\n", "x, ".repeat(999));
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        text
    }

    #[test]
    fn limits_stop_expansion_nesting_and_size() {
        let limits = ParseLimits { max_values: 1000, max_depth: 8, max_string_bytes: 1000 };
        let cases: Vec<(&str, String, Limit)> = vec![
            ("alias bomb", alias_bomb(), Limit::StringBytes(1000)),
            ("deep YAML", format!("a: {}1{}\n", "[".repeat(20), "]".repeat(20)), Limit::Depth(8)),
            ("deep JSON", format!("{{\"a\": {}1{}}}", "[".repeat(20), "]".repeat(20)), Limit::Depth(8)),
            ("many JSON values", format!("{{\"a\": [{}1]}}", "1,".repeat(2000)), Limit::Values(1000)),
            (
                "aliased long string",
                format!("s: &s {}\nl: [{}]\n", "y".repeat(100), ["*s"; 20].join(", ")),
                Limit::StringBytes(1000),
            ),
            ("values across documents", "---\na: [1, 2, 3, 4, 5, 6, 7, 8, 9]\n".repeat(200), Limit::Values(1000)),
        ];
        for (what, text, limit) in cases {
            assert_eq!(parse_documents_within(&text, limits), Err(ParseError::TooComplex(limit)), "{what}");
        }
        // The full-size bomb meets the default limits, and says why.
        let err = parse_documents(&alias_bomb()).unwrap_err();
        assert_eq!(err, ParseError::TooComplex(Limit::Values(ParseLimits::DEFAULT.max_values)));
        assert!(err.to_string().contains("expands to more than 250000 values"), "{err}");
        // Within the limits, aliases still work.
        let ok = parse_documents_within("base: &b {x: 1}\ncopy: *b\n", limits).unwrap();
        assert_eq!(ok[0]["copy"]["x"], 1);
    }
}
