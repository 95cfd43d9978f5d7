//! Validation of documents before they are stored.
//!
//! Two passes, and every violation of both is reported, each with its field path
//! (`spec.scaling.max`), so a user fixes a document in one round trip:
//! 1. the kind's JSON Schema (types, required fields, unknown fields, ranges,
//!    enums, string shapes), the same schema the API serves to editors;
//! 2. the rules a schema cannot say (`min ≤ max`, Fargate cpu/memory pairs, a load
//!    balancer port that some container listens on, ...), written per kind.
//!
//! Rules run even when the schema found unknown fields (the fields are left out
//! for them), so one round trip shows everything; an unknown field or kind comes
//! with the closest known name ("did you mean `scaling`?"); `kind` is read in any
//! case and in plural (`relay`, `relays`), as the CLI reads it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{LazyLock, Mutex};

use jsonschema::error::ValidationErrorKind;
use jsonschema::paths::LocationSegment;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::document::AnyResource;
use crate::meta::{API_VERSION, Kind};
use crate::patterns;

/// One violation: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FieldError {
    /// Dotted path with indices, e.g. `spec.containers[1].image`; empty for the
    /// document itself.
    pub field: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// Accumulates violations while rules run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(Vec<FieldError>);

impl Violations {
    /// Records a violation at `field`.
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        let e = FieldError { field: field.into(), message: message.into() };
        if !self.0.contains(&e) {
            self.0.push(e);
        }
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// The violations, in the order they were found.
    pub fn into_vec(self) -> Vec<FieldError> {
        self.0
    }
    /// `Ok(())` when nothing was recorded.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(ValidationErrors(self.0)) }
    }
}

/// A document was refused; every violation is listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} validation error{}", self.0.len(), if self.0.len() == 1 { "" } else { "s" })?;
        for e in &self.0 {
            write!(f, "; {e}")?;
        }
        Ok(())
    }
}

impl ValidationErrors {
    /// A single violation.
    pub fn one(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationErrors(vec![FieldError { field: field.into(), message: message.into() }])
    }
}

/// Rules beyond the schema, implemented per kind.
pub trait Validate {
    /// Records every violation under `path` (normally `spec`).
    fn validate(&self, path: &str, v: &mut Violations);
}

/// Validates a parsed document (any kind) and returns it typed, with defaults
/// filled in. Explicit `null` values count as absent, as in a merge patch.
pub fn validate_document(mut doc: Value) -> Result<AnyResource, ValidationErrors> {
    strip_nulls(&mut doc);
    let Some(obj) = doc.as_object() else {
        return Err(ValidationErrors::one("", "a document must be an object with apiVersion, kind, metadata and spec"));
    };
    let mut v = Violations::default();
    storable_strings(&doc, "", &mut v);
    match obj.get("apiVersion") {
        Some(Value::String(s)) if s == API_VERSION => {}
        Some(Value::String(s)) => {
            v.push("apiVersion", format!("unsupported apiVersion {s:?}; expected {API_VERSION:?}"))
        }
        Some(_) => v.push("apiVersion", "must be a string"),
        None => v.push("apiVersion", format!("is required (use {API_VERSION:?})")),
    }
    let kind = match obj.get("kind") {
        Some(Value::String(s)) => match Kind::from_any_name(s) {
            Some(k) => Some(k),
            None => {
                let names = Kind::ALL.map(Kind::as_str);
                let hint = did_you_mean(s, names).map(|k| format!(" (did you mean {k:?}?)")).unwrap_or_default();
                v.push("kind", format!("unknown kind {s:?}{hint}; expected one of Node, Relay, Worker, Policy"));
                None
            }
        },
        Some(_) => {
            v.push("kind", "must be a string");
            None
        }
        None => {
            v.push("kind", "is required (Node, Relay, Worker or Policy)");
            None
        }
    };
    let Some(kind) = kind else {
        return Err(ValidationErrors(v.into_vec()));
    };
    // `relay` and `relays` mean Relay, as on the command line.
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("kind".into(), Value::String(kind.as_str().to_string()));
    }

    let unknown = schema_violations(kind, &doc, &mut v);
    // A Policy without a namespace is cluster-scoped; other kinds default to `default`.
    let cluster_scoped = kind.may_be_cluster_scoped() && doc.pointer("/metadata/namespace").is_none();
    // Unknown fields were reported; leave them out so the rules still run.
    for pointer in unknown.iter().rev() {
        remove_at(&mut doc, pointer);
    }
    match AnyResource::from_value(kind, doc) {
        Ok(mut res) => {
            if cluster_scoped {
                res.metadata_mut().namespace = crate::meta::CLUSTER_NAMESPACE.to_string();
            }
            res.validate_rules(&mut v);
            v.into_result().map(|()| res)
        }
        Err(e) => {
            if v.is_empty() {
                // The schema accepted what serde refused: report serde's words.
                v.push("", e.to_string());
            }
            Err(ValidationErrors(v.into_vec()))
        }
    }
}

/// Reports every string and map key with a NUL character (`\u{0}`): JSON and
/// YAML can carry one, but Postgres cannot store it in text or `jsonb`, so it is
/// refused here, with its field path, rather than by the database. The path
/// shows the character as `\u0000`.
fn storable_strings(v: &Value, path: &str, out: &mut Violations) {
    const MESSAGE: &str = "must not contain the NUL character (\\u0000)";
    match v {
        Value::String(s) if s.contains('\0') => out.push(path, MESSAGE),
        Value::Object(m) => {
            for (k, x) in m {
                let shown = k.replace('\0', "\\u0000");
                let child = join(path, &shown);
                if k.contains('\0') {
                    out.push(child.clone(), MESSAGE);
                }
                storable_strings(x, &child, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                storable_strings(x, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Removes `null` members of objects, recursively.
pub fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

static VALIDATORS: LazyLock<HashMap<Kind, jsonschema::Validator>> = LazyLock::new(|| {
    Kind::ALL
        .into_iter()
        .map(|k| {
            let schema = crate::schema::schema_for_kind(k);
            let validator = jsonschema::options()
                .should_validate_formats(false)
                .build(&schema)
                .unwrap_or_else(|e| panic!("the generated schema for {k} does not compile: {e}"));
            (k, validator)
        })
        .collect()
});

/// The kinds' schemas, for the field names an unknown field is compared with.
static SCHEMAS: LazyLock<HashMap<Kind, Value>> =
    LazyLock::new(|| Kind::ALL.into_iter().map(|k| (k, crate::schema::schema_for_kind(k))).collect());

/// One step of a path into a document.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Field(String),
    Index(usize),
}

/// Records the schema's violations; returns the JSON pointers of the unknown
/// fields. `apiVersion` and `kind` were checked already (and said better).
fn schema_violations(kind: Kind, doc: &Value, v: &mut Violations) -> Vec<String> {
    let validator = &VALIDATORS[&kind];
    let mut unknown = Vec::new();
    for err in validator.iter_errors(doc) {
        let path = dotted(err.instance_path().segments());
        if path == "apiVersion" || path == "kind" {
            continue;
        }
        let steps = steps(err.instance_path().segments());
        if let ValidationErrorKind::AdditionalProperties { unexpected } = err.kind() {
            let known = known_fields(&SCHEMAS[&kind], &steps);
            for name in unexpected {
                let hint = did_you_mean(name, known.iter().map(String::as_str))
                    .map(|k| format!(" (did you mean {k:?}?)"))
                    .unwrap_or_default();
                v.push(join(&path, name), format!("unknown field{hint}"));
                unknown.push(pointer(&steps, name));
            }
            continue;
        }
        push_error(&path, err.kind(), &err.to_string(), v);
    }
    unknown
}

fn steps<'a>(segments: impl Iterator<Item = LocationSegment<'a>>) -> Vec<Step> {
    segments
        .map(|s| match s {
            LocationSegment::Property(p) => Step::Field(p.to_string()),
            LocationSegment::Index(i) => Step::Index(i),
        })
        .collect()
}

/// The JSON pointer of field `name` under `steps`.
fn pointer(steps: &[Step], name: &str) -> String {
    let escape = |s: &str| s.replace('~', "~0").replace('/', "~1");
    let mut out = String::new();
    for step in steps {
        match step {
            Step::Field(f) => out.push_str(&format!("/{}", escape(f))),
            Step::Index(i) => out.push_str(&format!("/{i}")),
        }
    }
    out.push_str(&format!("/{}", escape(name)));
    out
}

/// Removes the value at a JSON pointer (an unknown field), if there.
fn remove_at(doc: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else { return };
    let last = last.replace("~1", "/").replace("~0", "~");
    if let Some(Value::Object(m)) = doc.pointer_mut(parent) {
        m.remove(&last);
    }
}

/// The field names the schema allows in the object at `steps`.
fn known_fields(schema: &Value, steps: &[Step]) -> Vec<String> {
    let defs = schema.get("$defs").and_then(Value::as_object);
    let resolve = |node: &'_ Value| -> Value {
        let target = node
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/$defs/"))
            .and_then(|name| defs.and_then(|d| d.get(name)));
        target.unwrap_or(node).clone()
    };
    let properties = |node: &Value| -> Option<Map<String, Value>> {
        let node = resolve(node);
        if let Some(p) = node.get("properties").and_then(Value::as_object) {
            return Some(p.clone());
        }
        // A tagged enum: the fields of every branch.
        let branches = node.get("oneOf").or_else(|| node.get("anyOf")).and_then(Value::as_array)?;
        let mut all = Map::new();
        for b in branches {
            if let Some(p) = resolve(b).get("properties").and_then(Value::as_object) {
                all.extend(p.clone());
            }
        }
        Some(all)
    };
    let mut node = schema.clone();
    for step in steps {
        let next = match step {
            Step::Field(f) => properties(&node)
                .and_then(|p| p.get(f).cloned())
                .or_else(|| resolve(&node).get("additionalProperties").filter(|a| a.is_object()).cloned()),
            Step::Index(_) => resolve(&node).get("items").cloned(),
        };
        match next {
            Some(n) => node = n,
            None => return Vec::new(),
        }
    }
    properties(&node).map(|p| p.keys().cloned().collect()).unwrap_or_default()
}

/// The known name closest to `given`, when close enough to be a likely typo:
/// the same name in another case, or within a third of its length in edits.
pub fn did_you_mean<'a>(given: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = given.to_lowercase();
    let limit = (given.chars().count() / 3).max(1);
    known
        .into_iter()
        .map(|k| (strsim::damerau_levenshtein(&lower, &k.to_lowercase()), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn push_error(path: &str, kind: &ValidationErrorKind, display: &str, v: &mut Violations) {
    match kind {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            for name in unexpected {
                v.push(join(path, name), "unknown field");
            }
        }
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().map(str::to_string).unwrap_or_else(|| property.to_string());
            v.push(join(path, &name), "is required");
        }
        ValidationErrorKind::Pattern { pattern } => {
            let msg =
                patterns::describe(pattern).map(str::to_string).unwrap_or_else(|| format!("must match {pattern}"));
            v.push(path, msg);
        }
        ValidationErrorKind::Minimum { limit } => v.push(path, format!("must be ≥ {limit}")),
        ValidationErrorKind::Maximum { limit } => v.push(path, format!("must be ≤ {limit}")),
        ValidationErrorKind::MinLength { limit } => v.push(path, format!("must be at least {limit} characters")),
        ValidationErrorKind::MaxLength { limit } => v.push(path, format!("must be at most {limit} characters")),
        ValidationErrorKind::MinItems { limit } => v.push(path, format!("must have at least {limit} item(s)")),
        ValidationErrorKind::MaxItems { limit } => v.push(path, format!("must have at most {limit} items")),
        ValidationErrorKind::Enum { options } => v.push(path, format!("must be one of {options}")),
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            // An enum whose variants carry docs becomes a oneOf of consts: say
            // which values are allowed.
            let consts: Option<Vec<String>> = context
                .iter()
                .map(|errs| match errs.as_slice() {
                    [e] => match e.kind() {
                        ValidationErrorKind::Constant { expected_value } => Some(expected_value.to_string()),
                        _ => None,
                    },
                    _ => None,
                })
                .collect();
            if let Some(values) = consts.filter(|c| !c.is_empty()) {
                v.push(path, format!("must be one of {}", values.join(", ")));
                return;
            }
            // Otherwise report the branch that came closest (fewest errors), not
            // "matched nothing".
            match context.iter().min_by_key(|errs| errs.len()) {
                Some(best) if !best.is_empty() => {
                    for e in best {
                        push_error(&dotted(e.instance_path().segments()), e.kind(), &e.to_string(), v);
                    }
                }
                _ => v.push(path, display.to_string()),
            }
        }
        ValidationErrorKind::Type { .. } => v.push(path, type_message(display)),
        _ => v.push(path, display.to_string()),
    }
}

fn type_message(display: &str) -> String {
    // jsonschema says `"x" is not of type "integer"`; keep the type part.
    match display.rsplit_once(" is not of type ") {
        Some((value, ty)) => format!("must be of type {ty} (got {value})"),
        None => display.to_string(),
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_string() } else { format!("{path}.{name}") }
}

/// Turns JSON-pointer segments into `spec.containers[0].image`.
fn dotted<'a>(segments: impl Iterator<Item = LocationSegment<'a>>) -> String {
    let mut out = String::new();
    for seg in segments {
        match seg {
            LocationSegment::Property(p) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&p);
            }
            LocationSegment::Index(i) => {
                out.push_str(&format!("[{i}]"));
            }
        }
    }
    out
}

static REGEXES: LazyLock<Mutex<HashMap<&'static str, regex_lite::Regex>>> = LazyLock::new(Default::default);

/// Whether `value` matches one of the patterns in [`crate::patterns`]; used by the
/// rules that check map keys, which a schema cannot name.
pub fn matches(pattern: &'static str, value: &str) -> bool {
    let mut cache = REGEXES.lock().unwrap_or_else(|p| p.into_inner());
    let re = cache
        .entry(pattern)
        .or_insert_with(|| regex_lite::Regex::new(pattern).unwrap_or_else(|e| panic!("bad pattern {pattern}: {e}")));
    re.is_match(value)
}

/// Checks a change of an existing resource's spec against the rules that need
/// the old spec: fields that name an AWS resource which cannot be renamed or
/// converted in place are immutable (Kubernetes's immutable fields), and
/// ElastiCache cannot downgrade an engine. Every violation is reported with
/// its field path. A stored spec this version cannot read is not compared.
///
/// Immutable fields and why:
/// - `Worker.spec.queue.name` (the effective name, so spelling out the default
///   is not a change) and `Worker.spec.queue.fifo`: the queue holds the
///   messages; a new queue would strand them in the old one.
/// - `Worker.spec.capacity`: ECS does not move a service between launch type
///   FARGATE and the FARGATE_SPOT capacity provider.
/// - `Relay.spec.cache.engineVersion` may only go up.
///
/// `spec.cluster` is not immutable: the service migrates (created in the new
/// cluster, the old one drained and deleted once the new one is steady).
pub fn validate_update(
    kind: Kind,
    namespace: &str,
    name: &str,
    old_spec: &Value,
    new: &AnyResource,
) -> Result<(), ValidationErrors> {
    let mut v = Violations::default();
    match (kind, new) {
        (Kind::Worker, AnyResource::Worker(w)) => {
            if let Ok(old) = serde_json::from_value::<crate::worker::WorkerSpec>(old_spec.clone()) {
                if old.capacity != w.spec.capacity {
                    v.push(
                        "spec.capacity",
                        format!(
                            "cannot change (was {:?}): ECS does not move a service between its launch type and \
                             capacity providers; delete the Worker and create it again, or create a new one",
                            old.capacity
                        ),
                    );
                }
                let (a, b) = (&old.queue, &w.spec.queue);
                let queue =
                    |q: &crate::worker::Queue| crate::names::queue_name(namespace, name, q.name.as_deref(), q.fifo);
                if a.fifo != b.fifo {
                    v.push(
                        "spec.queue.fifo",
                        format!(
                            "cannot change (was {}): a queue cannot switch between standard and FIFO; create a new Worker for a new queue",
                            a.fifo
                        ),
                    );
                } else if queue(a) != queue(b) {
                    v.push(
                        "spec.queue.name",
                        format!(
                            "cannot change (was {:?}): the queue holds the worker's messages; create a new Worker for a new queue",
                            queue(a)
                        ),
                    );
                }
            }
        }
        (Kind::Relay, AnyResource::Relay(r)) => {
            if let Ok(old) = serde_json::from_value::<crate::relay::RelaySpec>(old_spec.clone())
                && let (Some(a), Some(b)) = (&old.cache, &r.spec.cache)
                && version_key(&b.engine_version) < version_key(&a.engine_version)
            {
                v.push(
                    "spec.cache.engineVersion",
                    format!(
                        "cannot go down from {} to {}: ElastiCache only upgrades",
                        a.engine_version, b.engine_version
                    ),
                );
            }
        }
        _ => {}
    }
    v.into_result()
}

/// `7.1.0` → `[7, 1, 0]`, for ordering versions.
fn version_key(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_only_close_names() {
        let known = ["scaling", "cluster", "containers", "healthCheck", "cpu"];
        let cases = [
            ("scalling", Some("scaling")),
            ("Scaling", Some("scaling")),
            ("healthcheck", Some("healthCheck")),
            ("containres", Some("containers")),
            ("cpus", Some("cpu")),
            ("memory", None),
            ("x", None),
        ];
        for (given, expected) in cases {
            assert_eq!(did_you_mean(given, known), expected, "{given}");
        }
    }

    #[test]
    fn unknown_fields_are_removed_by_pointer() {
        let mut doc = serde_json::json!({"spec": {"a/b": 1, "c": [{"d": 2, "e": 3}]}});
        remove_at(&mut doc, &pointer(&[Step::Field("spec".into())], "a/b"));
        remove_at(&mut doc, &pointer(&[Step::Field("spec".into()), Step::Field("c".into()), Step::Index(0)], "d"));
        assert_eq!(doc, serde_json::json!({"spec": {"c": [{"e": 3}]}}));
    }
}
