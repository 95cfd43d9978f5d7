//! Admission: the stored `Policy` documents judge every document before it is
//! stored — creates, replaces, patches, applies (dry runs too), rollbacks and
//! syncs alike — after schema validation and before anything is written.
//!
//! Policies are Rego, evaluated in-process with `regorus`. Each policy gets an
//! interpreter of its own (so custom modules cannot see or clash with each
//! other), compiled once per spec and cached. For every document a policy
//! judges, the module's `data.mooring.admission.deny` set is evaluated with:
//!
//! * `input.kind`, `input.namespace`, `input.name`: the document's identity;
//! * `input.document`: the whole document as stored (defaults filled in);
//! * `input.references`: every AWS resource it names, as `{field, type, value}`
//!   (see [`api_types::references`]);
//! * `input.source` and `input.actor`: where the write comes from (`api`,
//!   `gitops`, `rollback`) and who asked;
//! * `data.policy`: the policy's data (`spec.guardrails` for the built-in
//!   guardrails policy, `spec.data` for a custom module).
//!
//! Each member of `deny` refuses the document; it is an object
//! `{"field": "spec.x", "message": "..."}` or a plain string (the document as a
//! whole). A policy that cannot be evaluated (a runtime error, or over its time
//! limit) refuses too: admission fails closed.
//!
//! Cluster-scoped policies judge every namespace; a namespaced policy judges
//! only its own. With no policy stored, nothing is refused (a single-team
//! install behaves as without admission).

use std::collections::{BTreeSet, HashMap};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_types::policy::{Policy, REGO_PACKAGE};
use api_types::{AnyResource, Kind};
use regorus::utils::limits::ExecutionTimerConfig;
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::store::{ChangeSource, ListQuery, Store, StoreError, StoredResource};

/// The Rego source of the built-in guardrails policy.
pub const GUARDRAILS_REGO: &str = include_str!("guardrails.rego");

/// The rule whose members refuse a document.
const DENY_RULE: &str = "data.mooring.admission.deny";

/// The longest one policy may take to judge one document.
const EVALUATION_LIMIT: Duration = Duration::from_millis(200);

/// Compiled glob patterns the interpreter keeps (one process-wide LRU): room
/// for every allow-list pattern of a few hundred namespaces, so judging a
/// document never recompiles a pattern.
const GLOB_CACHE: usize = 4096;

static CONFIGURE_CACHE: std::sync::Once = std::sync::Once::new();

/// Why a policy cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The Rego module does not parse or compile.
    #[error("the Rego module does not compile: {0}")]
    Compile(String),
    /// The module declares another package.
    #[error("the Rego module must declare `package {REGO_PACKAGE}`, not {0}")]
    Package(String),
    /// The policy's data cannot be loaded.
    #[error("the policy's data cannot be loaded: {0}")]
    Data(String),
}

impl PolicyError {
    /// The field of the Policy document the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            PolicyError::Compile(_) | PolicyError::Package(_) => "spec.rego",
            PolicyError::Data(_) => "spec.data",
        }
    }
}

/// One reason a policy refuses a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The policy: its name, or `namespace/name` for a namespaced one.
    pub policy: String,
    /// Field path in the document; empty for the document as a whole.
    pub field: String,
    pub message: String,
}

/// A policy ready to judge documents.
pub struct CompiledPolicy {
    /// How violations name it.
    pub display_name: String,
    /// `None` for a cluster-scoped policy.
    pub namespace: Option<String>,
    kinds: Vec<Kind>,
    /// The interpreter with the module and data loaded; the reason when a
    /// stored policy no longer compiles (it then refuses what it judges).
    engine: Result<regorus::Engine, PolicyError>,
}

impl std::fmt::Debug for CompiledPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledPolicy").field("name", &self.display_name).field("kinds", &self.kinds).finish()
    }
}

impl CompiledPolicy {
    /// Compiles a Policy document: the built-in guardrails module with its
    /// allow-lists, or the custom module with its data.
    pub fn compile(policy: &Policy) -> Result<CompiledPolicy, PolicyError> {
        CONFIGURE_CACHE.call_once(|| regorus::cache::configure(regorus::cache::Config { regex: 0, glob: GLOB_CACHE }));
        let spec = &policy.spec;
        let mut engine = regorus::Engine::new();
        let (file, source, data) = match (&spec.guardrails, &spec.rego) {
            (Some(g), _) => (
                "guardrails.rego".to_string(),
                GUARDRAILS_REGO.to_string(),
                serde_json::to_value(g).map_err(|e| PolicyError::Data(e.to_string()))?,
            ),
            (None, Some(rego)) => (format!("{}.rego", policy.metadata.name), rego.clone(), json!(spec.data)),
            (None, None) => return Err(PolicyError::Compile("the policy has neither guardrails nor rego".into())),
        };
        let package = engine.add_policy(file, source).map_err(|e| PolicyError::Compile(e.to_string()))?;
        if package != format!("data.{REGO_PACKAGE}") {
            return Err(PolicyError::Package(package.trim_start_matches("data.").to_string()));
        }
        engine
            .add_data(regorus::Value::from(json!({ "policy": data })))
            .map_err(|e| PolicyError::Data(e.to_string()))?;
        engine.set_execution_timer_config(ExecutionTimerConfig {
            limit: EVALUATION_LIMIT,
            check_interval: NonZeroU32::MIN.saturating_add(99),
        });
        let namespace = Some(policy.metadata.namespace.clone()).filter(|ns| !ns.is_empty());
        let display_name = match &namespace {
            Some(ns) => format!("{ns}/{}", policy.metadata.name),
            None => policy.metadata.name.clone(),
        };
        let compiled = CompiledPolicy { display_name, namespace, kinds: spec.judged_kinds(), engine: Ok(engine) };
        // Evaluate once on an empty input, so a module that cannot run at all is
        // refused when it is written rather than on every later write.
        compiled.evaluate(&json!({}))?;
        Ok(compiled)
    }

    /// A stored policy that cannot be compiled: it refuses every workload
    /// document in its scope, so admission fails closed.
    fn broken(row: &StoredResource, error: PolicyError) -> CompiledPolicy {
        let namespace = Some(row.namespace.clone()).filter(|ns| !ns.is_empty());
        let display_name = match &namespace {
            Some(ns) => format!("{ns}/{}", row.name),
            None => row.name.clone(),
        };
        CompiledPolicy { display_name, namespace, kinds: Kind::RECONCILED.to_vec(), engine: Err(error) }
    }

    /// Whether this policy judges `doc`.
    pub fn judges(&self, doc: &AnyResource) -> bool {
        self.kinds.contains(&doc.kind()) && self.namespace.as_deref().is_none_or(|ns| ns == doc.metadata().namespace)
    }

    fn evaluate(&self, input: &Value) -> Result<Vec<(String, String)>, PolicyError> {
        let mut engine = self.engine.clone()?;
        engine.set_input(regorus::Value::from(input.clone()));
        let result = engine.eval_rule(DENY_RULE.to_string()).map_err(|e| PolicyError::Compile(e.to_string()))?;
        if result == regorus::Value::Undefined {
            return Ok(Vec::new());
        }
        let result = serde_json::to_value(&result).map_err(|e| PolicyError::Compile(e.to_string()))?;
        let items = match result {
            Value::Array(items) => items,
            other => vec![other],
        };
        Ok(items
            .into_iter()
            .map(|item| match item {
                Value::String(message) => (String::new(), message),
                Value::Object(m) => (
                    m.get("field").and_then(Value::as_str).unwrap_or_default().to_string(),
                    m.get("message")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .unwrap_or_else(|| Value::Object(m.clone()).to_string()),
                ),
                other => (String::new(), other.to_string()),
            })
            .collect())
    }

    /// The violations of `doc`, written by `source`; empty when it passes.
    pub fn review(&self, doc: &AnyResource, source: &ChangeSource) -> Vec<Violation> {
        match self.evaluate(&review_input(doc, source)) {
            Ok(found) => found
                .into_iter()
                .map(|(field, message)| Violation { policy: self.display_name.clone(), field, message })
                .collect(),
            Err(e) => vec![Violation {
                policy: self.display_name.clone(),
                field: String::new(),
                message: format!("the policy could not be evaluated, so the document is refused: {e}"),
            }],
        }
    }
}

/// What a policy sees of a document (see the module documentation).
pub fn review_input(doc: &AnyResource, source: &ChangeSource) -> Value {
    let meta = doc.metadata();
    json!({
        "kind": doc.kind().as_str(),
        "namespace": meta.namespace,
        "name": meta.name,
        "document": doc.to_value(),
        "references": doc.references(),
        "source": source.kind.as_str(),
        "actor": source.actor,
    })
}

/// The policies that apply to a batch of writes.
#[derive(Debug, Default, Clone)]
pub struct PolicySet {
    policies: Vec<Arc<CompiledPolicy>>,
}

impl PolicySet {
    /// A set of already compiled policies (tests, `mooring policy test`).
    pub fn new(policies: Vec<Arc<CompiledPolicy>>) -> PolicySet {
        PolicySet { policies }
    }

    /// Compiles policy documents; the first that does not compile is an error.
    pub fn compile(docs: &[Policy]) -> Result<PolicySet, (String, PolicyError)> {
        let mut policies = Vec::with_capacity(docs.len());
        for d in docs {
            policies.push(Arc::new(CompiledPolicy::compile(d).map_err(|e| (d.metadata.name.clone(), e))?));
        }
        Ok(PolicySet { policies })
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Every violation of `doc` by every policy that judges it.
    pub fn review(&self, doc: &AnyResource, source: &ChangeSource) -> Vec<Violation> {
        if matches!(doc, AnyResource::Policy(_)) {
            return Vec::new();
        }
        self.policies.iter().filter(|p| p.judges(doc)).flat_map(|p| p.review(doc, source)).collect()
    }
}

/// Loads the stored policies for the API, compiling each spec once.
pub struct Admission {
    store: Store,
    cache: Mutex<HashMap<(Uuid, String), Arc<CompiledPolicy>>>,
}

impl Admission {
    pub fn new(store: Store) -> Admission {
        Admission { store, cache: Mutex::new(HashMap::new()) }
    }

    /// The stored policies that judge documents in `namespaces`: every
    /// cluster-scoped one and those of these namespaces. Read at the start of
    /// a write, so a batch is judged by the policies stored before it, never by
    /// policies in the same batch.
    pub async fn policies_for(&self, namespaces: &BTreeSet<String>) -> Result<PolicySet, StoreError> {
        let mut allowed: Vec<String> = namespaces.iter().cloned().collect();
        allowed.push(api_types::meta::CLUSTER_NAMESPACE.to_string());
        let mut rows: Vec<StoredResource> = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .list(&ListQuery {
                    kind: Some(Kind::Policy),
                    allowed_namespaces: Some(allowed.clone()),
                    limit: 1000,
                    after: after.take(),
                    ..Default::default()
                })
                .await?;
            rows.extend(page.items.into_iter().filter(|r| r.deletion_timestamp.is_none()));
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let mut policies = Vec::with_capacity(rows.len());
        for row in &rows {
            let key = (row.uid, row.spec_hash.clone());
            if let Some(p) = cache.get(&key) {
                policies.push(p.clone());
                continue;
            }
            // Stored policies compiled when they were written; one that no
            // longer does (a newer interpreter) refuses what it judges.
            let p = Arc::new(compile_row(row).unwrap_or_else(|e| {
                tracing::error!(policy = %row.name, namespace = %row.namespace, error = %e, "stored policy does not compile");
                CompiledPolicy::broken(row, e)
            }));
            cache.insert(key, p.clone());
            policies.push(p);
        }
        if cache.len() > 4 * policies.len() + 64 {
            let live: BTreeSet<(Uuid, String)> = rows.iter().map(|r| (r.uid, r.spec_hash.clone())).collect();
            cache.retain(|k, _| live.contains(k));
        }
        Ok(PolicySet { policies })
    }
}

fn compile_row(row: &StoredResource) -> Result<CompiledPolicy, PolicyError> {
    let mut policy: Policy = serde_json::from_value(row.to_document()).map_err(|e| PolicyError::Data(e.to_string()))?;
    policy.metadata.namespace = row.namespace.clone();
    CompiledPolicy::compile(&policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(spec: Value, namespace: Option<&str>) -> Policy {
        let mut meta = json!({"name": "p"});
        if let Some(ns) = namespace {
            meta["namespace"] = json!(ns);
        }
        match api_types::validate_document(
            json!({"apiVersion": "mooring/v1", "kind": "Policy", "metadata": meta, "spec": spec}),
        ) {
            Ok(AnyResource::Policy(p)) => p,
            other => panic!("{other:?}"),
        }
    }

    fn worker(namespace: &str, cluster: &str, role: Option<&str>, max: u32) -> AnyResource {
        let mut spec = json!({"cluster": cluster, "container": {"name": "w", "image": "ghcr.io/acme/w:1",
                              "secrets": {"S": "arn:aws:secretsmanager:us-east-1:123456789012:secret:team-a/s"}},
                              "scaling": {"min": 0, "max": max}});
        if let Some(r) = role {
            spec["taskRoleArn"] = json!(format!("arn:aws:iam::123456789012:role/{r}"));
        }
        api_types::validate_document(json!({"apiVersion": "mooring/v1", "kind": "Worker",
            "metadata": {"name": "w", "namespace": namespace}, "spec": spec}))
        .unwrap()
    }

    fn fields(set: &PolicySet, doc: &AnyResource) -> Vec<String> {
        let mut f: Vec<String> = set.review(doc, &ChangeSource::api("t")).into_iter().map(|v| v.field).collect();
        f.sort();
        f
    }

    #[test]
    fn guardrails_decisions() {
        let guardrails = json!({"guardrails": {
            "namespaces": {
                "team-a": {"roleArns": ["arn:aws:iam::123456789012:role/team-a-*", "arn:aws:iam::123456789012:role/shared-?"],
                           "clusters": ["team-a", "batch-*"], "secretArnPrefixes": ["arn:aws:secretsmanager:us-east-1:123456789012:secret:team-a/"],
                           "maxReplicas": 10},
                "team-b": {"roleArns": []}
            },
            "otherNamespaces": {"clusters": ["shared"]}
        }});
        let set = PolicySet::compile(&[policy(guardrails, None)]).unwrap();
        let cases: Vec<(&str, AnyResource, Vec<&str>)> = vec![
            ("all inside", worker("team-a", "team-a", Some("team-a-task"), 10), vec![]),
            ("glob * in a cluster", worker("team-a", "batch-7", None, 1), vec![]),
            ("glob ? matches one character", worker("team-a", "team-a", Some("shared-1"), 1), vec![]),
            ("? does not match two", worker("team-a", "team-a", Some("shared-12"), 1), vec!["spec.taskRoleArn"]),
            (
                "* does not cross the whole value",
                worker("team-a", "team-a", Some("team-b-task"), 1),
                vec!["spec.taskRoleArn"],
            ),
            ("another cluster", worker("team-a", "prod", None, 1), vec!["spec.cluster"]),
            ("above the ceiling", worker("team-a", "team-a", None, 11), vec!["spec.scaling.max"]),
            (
                "everything wrong",
                worker("team-a", "prod", Some("admin"), 50),
                vec!["spec.cluster", "spec.scaling.max", "spec.taskRoleArn"],
            ),
            (
                "an empty list allows nothing",
                worker("team-b", "prod", Some("team-b-task"), 1),
                vec!["spec.taskRoleArn"],
            ),
            ("an absent list does not restrict", worker("team-b", "anything", None, 500), vec![]),
            ("other namespaces", worker("team-c", "prod", Some("x"), 1), vec!["spec.cluster"]),
            ("other namespaces, allowed", worker("team-c", "shared", Some("x"), 1), vec![]),
        ];
        for (what, doc, want) in cases {
            assert_eq!(fields(&set, &doc), want, "{what}");
        }
        // Secrets are matched by prefix.
        let prefixes = json!({"guardrails": {"namespaces": {"team-a": {"secretArnPrefixes": ["arn:aws:secretsmanager:us-east-1:123456789012:secret:team-b/"]}}}});
        let set = PolicySet::compile(&[policy(prefixes, None)]).unwrap();
        assert_eq!(fields(&set, &worker("team-a", "c", None, 1)), vec!["spec.container.secrets.S"]);
    }

    #[test]
    fn scope_and_kinds_decide_what_a_policy_judges() {
        let deny_all =
            json!({"rego": "package mooring.admission\n\ndeny contains \"no\" if { true }\n", "kinds": ["Relay"]});
        let namespaced = PolicySet::compile(&[policy(deny_all.clone(), Some("team-a"))]).unwrap();
        let mut relay = worker("team-a", "c", None, 1);
        assert!(namespaced.review(&relay, &ChangeSource::api("t")).is_empty(), "a Worker, not judged");
        relay = api_types::validate_document(json!({"apiVersion": "mooring/v1", "kind": "Relay",
            "metadata": {"name": "r", "namespace": "team-a"},
            "spec": {"cluster": "c", "containers": [{"name": "a", "image": "x:1"}]}}))
        .unwrap();
        let violations = namespaced.review(&relay, &ChangeSource::api("t"));
        assert_eq!(violations.len(), 1);
        assert_eq!((violations[0].policy.as_str(), violations[0].field.as_str()), ("team-a/p", ""));
        relay.metadata_mut().namespace = "team-b".into();
        assert!(namespaced.review(&relay, &ChangeSource::api("t")).is_empty(), "another namespace");
    }

    #[test]
    fn a_policy_that_runs_too_long_refuses() {
        // Cheap on an empty input (so it compiles), endless on a Worker.
        let slow = json!({"rego": "package mooring.admission\n\ndeny contains \"slow\" if {\n\tinput.kind == \"Worker\"\n\tsome a in numbers.range(1, 100000)\n\tsome b in numbers.range(1, 100000)\n\ta * b < 0\n}\n"});
        let set = PolicySet::compile(&[policy(slow, None)]).unwrap();
        let violations = set.review(&worker("team-a", "c", None, 1), &ChangeSource::api("t"));
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(violations[0].message.contains("could not be evaluated"), "{violations:?}");
    }

    #[test]
    fn modules_that_cannot_be_used_are_refused() {
        let cases = [
            ("package mooring.admission\ndeny contains x if {", "does not compile"),
            ("package other\ndeny contains \"x\" if { true }", "package mooring.admission"),
        ];
        for (rego, want) in cases {
            let err = CompiledPolicy::compile(&policy(json!({"rego": rego}), None)).unwrap_err();
            assert!(err.to_string().contains(want), "{rego}: {err}");
            assert_eq!(err.field(), "spec.rego");
        }
    }
}
