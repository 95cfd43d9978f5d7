//! Property-based fuzzing of what every write goes through before it is
//! stored: parsing (YAML and JSON streams), validation (schema and rules, with
//! field paths) and admission (the built-in guardrails policy and a custom
//! Rego module, evaluated in process).
//!
//! The corpus is every document Mooring ships — `examples/*.yaml` and each
//! chart's `golden.yaml` — plus two policies. Each case takes a corpus
//! document and mutates it (a field replaced by another JSON value of any
//! shape, removed, or joined by an unknown one; a string made huge or odd), or
//! mangles its YAML text. The properties:
//!
//! - nothing panics;
//! - a refused document gets at least one error, each with a message, and
//!   field paths that name the document's own parts;
//! - an accepted document is a fixed point: validated again as it serializes,
//!   it is accepted with the same spec hash;
//! - admission of an accepted document returns violations (or none) with a
//!   field and a message, and never fails.
//!
//! `cargo test --workspace --test fuzz_documents` runs 256 cases per property
//! (the suite); `PROPTEST_CASES=20000 cargo test --workspace --test
//! fuzz_documents` is the long run (docs/api.md, with its last result). A failing case is shrunk and written to
//! `desired-state/tests/fuzz_documents.proptest-regressions`, which replays
//! it first on every later run.

use std::path::PathBuf;
use std::sync::LazyLock;

use api_types::{AnyResource, parse_documents, validate_document};
use desired_state::admission::PolicySet;
use desired_state::store::ChangeSource;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every document Mooring ships, as YAML text (one document each).
static CORPUS: LazyLock<Vec<Value>> = LazyLock::new(|| {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .expect("examples/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    for chart in std::fs::read_dir(root().join("charts")).expect("charts/").filter_map(|e| e.ok()) {
        if chart.path().join("golden.yaml").is_file() {
            files.push(chart.path().join("golden.yaml"));
        }
    }
    files.sort();
    let mut docs = vec![];
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        docs.extend(parse_documents(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display())));
    }
    docs.push(json!({"apiVersion": "mooring/v1", "kind": "Policy", "metadata": {"name": "guardrails"},
        "spec": {"guardrails": {"namespaces": {"default": {"clusters": ["prod"], "maxReplicas": 10,
            "roleArns": ["arn:aws:iam::123456789012:role/apps-*"], "subnets": ["subnet-0a1b2c3d"]}}}}}));
    docs.push(
        json!({"apiVersion": "mooring/v1", "kind": "Policy", "metadata": {"name": "images", "namespace": "default"},
        "spec": {"kinds": ["Relay"], "rego": REGO, "data": {"registry": "public.ecr.aws/"}}}),
    );
    assert!(docs.len() >= 10, "the corpus is there: {} documents", docs.len());
    docs
});

const REGO: &str = r#"package mooring.admission

deny contains {"field": sprintf("spec.containers[%d].image", [i]), "message": "images come from our registry"} if {
	some i, c in input.document.spec.containers
	not startswith(c.image, data.policy.registry)
}
"#;

/// The policies admission evaluates: the guardrails and the custom module.
static POLICIES: LazyLock<PolicySet> = LazyLock::new(|| {
    let policies: Vec<api_types::Policy> = CORPUS
        .iter()
        .filter(|d| d["kind"] == "Policy")
        .map(|d| match validate_document(d.clone()) {
            Ok(AnyResource::Policy(p)) => p,
            other => panic!("a corpus policy is valid: {other:?}"),
        })
        .collect();
    PolicySet::compile(&policies).unwrap_or_else(|(name, e)| panic!("{name}: {e}"))
});

/// Strings that test limits and escapes: empty, 300,000 characters, a path,
/// NUL and bidi control characters, a template.
static ODD_STRINGS: LazyLock<[String; 5]> =
    LazyLock::new(|| ["".into(), "x".repeat(300_000), "../../etc".into(), "é\u{0}\u{202e}".into(), "${x}".into()]);

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        Just(json!(u64::MAX)),
        ".{0,40}".prop_map(Value::from),
        "[a-z0-9-]{0,70}".prop_map(Value::from),
        (0usize..5).prop_map(|n| Value::from(ODD_STRINGS[n].as_str())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every path (object keys, array indices) in a document.
fn paths(v: &Value, here: Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(here.clone());
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let mut p = here.clone();
                p.push(Step::Key(k.clone()));
                paths(x, p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let mut p = here.clone();
                p.push(Step::Index(i));
                paths(x, p, out);
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn at<'a>(v: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, s| match s {
        Step::Key(k) => v.get_mut(k.as_str()),
        Step::Index(i) => v.get_mut(*i),
    })
}

/// What a mutation does at the chosen place.
#[derive(Debug, Clone)]
enum Mutation {
    Replace(Value),
    Remove,
    AddUnknown(String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => any_json().prop_map(Mutation::Replace),
        1 => Just(Mutation::Remove),
        1 => ("[a-zA-Z]{1,12}", any_json()).prop_map(|(k, v)| Mutation::AddUnknown(k, v)),
    ]
}

fn mutate(mut doc: Value, place: Index, m: &Mutation) -> Value {
    let mut all = vec![];
    paths(&doc, vec![], &mut all);
    let path = place.get(&all).clone();
    match m {
        Mutation::Replace(v) => {
            if let Some(x) = at(&mut doc, &path) {
                *x = v.clone();
            }
        }
        Mutation::Remove => {
            if let Some((last, parent)) = path.split_last()
                && let Some(p) = at(&mut doc, parent)
            {
                match (p, last) {
                    (Value::Object(o), Step::Key(k)) => {
                        o.remove(k);
                    }
                    (Value::Array(a), Step::Index(i)) if *i < a.len() => {
                        a.remove(*i);
                    }
                    _ => {}
                }
            }
        }
        Mutation::AddUnknown(k, v) => {
            if let Some(Value::Object(o)) = at(&mut doc, &path) {
                o.insert(k.clone(), v.clone());
            }
        }
    }
    doc
}

/// The properties every document must have, whatever it holds.
fn check(doc: Value) -> Result<(), TestCaseError> {
    // What a field path may start with: a part every document has (or
    // lacks, and is told so), or one of this document's own keys.
    let mut tops: Vec<String> =
        ["", "apiVersion", "kind", "metadata", "spec", "status"].iter().map(|s| s.to_string()).collect();
    if let Value::Object(o) = &doc {
        tops.extend(o.keys().cloned());
    }
    match validate_document(doc) {
        Err(errors) => {
            prop_assert!(!errors.0.is_empty(), "a refusal says why");
            for e in &errors.0 {
                prop_assert!(!e.message.is_empty(), "an error without a message: {e:?}");
                prop_assert!(
                    tops.iter().any(|t| e.field == *t
                        || e.field.starts_with(&format!("{t}."))
                        || e.field.starts_with(&format!("{t}["))),
                    "an error names a part the document does not have: {e:?}"
                );
            }
        }
        Ok(res) => {
            // A fixed point: what was accepted is accepted again as stored.
            let again = validate_document(res.to_value());
            prop_assert!(again.is_ok(), "accepted, then refused as it serializes: {again:?}");
            let again = again.unwrap_or_else(|_| unreachable!());
            prop_assert_eq!(again.spec_hash(), res.spec_hash());
            for v in POLICIES.review(&res, &ChangeSource::api("fuzz")) {
                prop_assert!(!v.message.is_empty(), "a violation without a message: {v:?}");
                // An evaluation error is reported as a violation: it must not happen.
                prop_assert!(!v.message.starts_with("the policy could not be evaluated"), "{v:?}");
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fuzz_documents.proptest-regressions"
        )))),
        ..ProptestConfig::default()
    })]

    /// One or two mutations of a shipped document.
    #[test]
    fn mutated_documents_are_refused_with_field_paths_or_accepted_as_fixed_points(
        which in any::<Index>(),
        first in (any::<Index>(), mutation()),
        second in proptest::option::of((any::<Index>(), mutation())),
    ) {
        let doc = which.get(&CORPUS).clone();
        let mut doc = mutate(doc, first.0, &first.1);
        if let Some((place, m)) = second {
            doc = mutate(doc, place, &m);
        }
        check(doc)?;
    }

    /// YAML text cut, spliced and sprinkled with odd characters: parsing
    /// answers (documents or an error), and what it parses is checked as above.
    #[test]
    fn mangled_yaml_text_parses_or_is_refused(
        which in any::<Index>(),
        cut in any::<Index>(),
        insert in "[\\-:{}\\[\\]&*!|>'\"%@`#,?\n\t ]{0,8}|.{0,8}",
    ) {
        let doc = which.get(&CORPUS);
        let text = serde_norway::to_string(doc).unwrap_or_default();
        let chars: Vec<char> = text.chars().collect();
        let at = cut.index(chars.len() + 1);
        let mangled: String = chars[..at].iter().collect::<String>() + &insert + &chars[at..].iter().collect::<String>();
        if let Ok(docs) = parse_documents(&mangled) {
            for d in docs {
                check(d)?;
            }
        }
    }
}
