//! The OpenAPI 3.1 document of the API, generated from the route table below
//! and the kinds' JSON Schemas. A test checks that every operation listed here
//! is served by the router.

use serde_json::{Map, Value, json};

use api_types::Kind;

/// One operation: method, path, summary, whether it takes a document body and
/// which success status it answers.
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub body: Body,
    pub success: u16,
    pub authenticated: bool,
}

/// What a request body holds.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Body {
    None,
    Document,
    Documents,
    MergePatch,
    Rollback,
    Rollout,
    Token,
    Suspend,
}

/// Every operation of the API.
pub const OPERATIONS: &[Operation] = &[
    op("get", "/v1/{plural}", "List resources of a kind across namespaces", Body::None, 200),
    op("get", "/v1/namespaces/{namespace}/{plural}", "List resources of a kind in a namespace", Body::None, 200),
    op("post", "/v1/namespaces/{namespace}/{plural}", "Create a resource", Body::Document, 201),
    op("get", "/v1/namespaces/{namespace}/{plural}/{name}", "Read a resource with its status", Body::None, 200),
    op(
        "put",
        "/v1/namespaces/{namespace}/{plural}/{name}",
        "Replace a resource (metadata.resourceVersion must match)",
        Body::Document,
        200,
    ),
    op(
        "patch",
        "/v1/namespaces/{namespace}/{plural}/{name}",
        "JSON merge patch of labels, annotations and spec",
        Body::MergePatch,
        200,
    ),
    op("delete", "/v1/namespaces/{namespace}/{plural}/{name}", "Request deletion", Body::None, 202),
    op("get", "/v1/namespaces/{namespace}/{plural}/{name}/revisions", "The signed revision history", Body::None, 200),
    op(
        "post",
        "/v1/namespaces/{namespace}/{plural}/{name}/rollback",
        "Roll back to a revision's spec",
        Body::Rollback,
        200,
    ),
    op("get", "/v1/namespaces/{namespace}/{plural}/{name}/events", "Events of a resource", Body::None, 200),
    op(
        "post",
        "/v1/namespaces/{namespace}/{plural}/{name}/rollout",
        "Promote or abort a relay's blue/green, canary or linear rollout in progress",
        Body::Rollout,
        202,
    ),
    op(
        "post",
        "/v1/namespaces/{namespace}/{plural}/{name}/snapshot",
        "Take a snapshot of a node's data volume now",
        Body::None,
        202,
    ),
    op(
        "get",
        "/v1/namespaces/{namespace}/{plural}/{name}/rendered",
        "What the controller hands AWS: a relay's or worker's task definition, a node's user data",
        Body::None,
        200,
    ),
    op(
        "get",
        "/v1/policies",
        "List cluster-scoped policies and the namespaced ones the caller may read",
        Body::None,
        200,
    ),
    op("post", "/v1/policies", "Create a cluster-scoped policy (admin:*)", Body::Document, 201),
    op("get", "/v1/policies/{name}", "Read a cluster-scoped policy", Body::None, 200),
    op("put", "/v1/policies/{name}", "Replace a cluster-scoped policy (admin:*)", Body::Document, 200),
    op("patch", "/v1/policies/{name}", "JSON merge patch of a cluster-scoped policy (admin:*)", Body::MergePatch, 200),
    op("delete", "/v1/policies/{name}", "Delete a cluster-scoped policy (admin:*)", Body::None, 200),
    op(
        "get",
        "/v1/policies/{name}/revisions",
        "The signed revision history of a cluster-scoped policy",
        Body::None,
        200,
    ),
    op("post", "/v1/policies/{name}/rollback", "Roll a cluster-scoped policy back (admin:*)", Body::Rollback, 200),
    op("get", "/v1/policies/{name}/events", "Events of a cluster-scoped policy", Body::None, 200),
    op(
        "get",
        "/v1/namespaces/{namespace}/{plural}/{name}/logs",
        "Container logs of a relay or worker, or a node's journal (logs: cloudwatch), from CloudWatch Logs (container, sinceSeconds|sinceTime, next, limit)",
        Body::None,
        200,
    ),
    op("post", "/v1/apply", "Create or update many documents; plan with dryRun", Body::Documents, 200),
    op("get", "/v1/watch", "Change feed as Server-Sent Events", Body::None, 200),
    op("get", "/v1/sources", "List GitOps sources: last commit synced, suspension", Body::None, 200),
    op("get", "/v1/sources/{name}", "Read a GitOps source", Body::None, 200),
    op("post", "/v1/sources/{name}/suspend", "Suspend a GitOps source's syncs", Body::Suspend, 200),
    op("post", "/v1/sources/{name}/resume", "Resume a GitOps source's syncs", Body::None, 200),
    op("get", "/v1/tokens", "List API tokens (admin)", Body::None, 200),
    op("post", "/v1/tokens", "Create an API token (admin)", Body::Token, 201),
    op("delete", "/v1/tokens/{name}", "Delete an API token (admin)", Body::None, 200),
    op("get", "/metrics", "Prometheus metrics (the `metrics` scope, or a role on every namespace)", Body::None, 200),
    public("get", "/v1/schemas/{kind}", "JSON Schema of a kind"),
    public("get", "/openapi.json", "This document"),
    public("get", "/healthz", "Liveness"),
    public("get", "/readyz", "Readiness: Postgres and Redis answer"),
    public("get", "/", "The status page (HTML shell; its data comes from the authenticated API)"),
];

const fn op(method: &'static str, path: &'static str, summary: &'static str, body: Body, success: u16) -> Operation {
    Operation { method, path, summary, body, success, authenticated: true }
}

const fn public(method: &'static str, path: &'static str, summary: &'static str) -> Operation {
    Operation { method, path, summary, body: Body::None, success: 200, authenticated: false }
}

/// The OpenAPI document.
pub fn document() -> Value {
    let mut schemas = Map::new();
    for kind in Kind::ALL {
        let mut schema = api_types::schema::schema_for_kind(kind);
        let defs = schema.as_object_mut().and_then(|o| o.remove("$defs")).unwrap_or(Value::Null);
        if let Value::Object(defs) = defs {
            for (name, mut def) in defs {
                rewrite_refs(&mut def);
                schemas.insert(name, def);
            }
        }
        if let Some(o) = schema.as_object_mut() {
            o.remove("$schema");
            o.remove("$id");
        }
        rewrite_refs(&mut schema);
        schemas.insert(kind.as_str().to_string(), schema);
    }
    schemas.insert(
        "Error".into(),
        json!({
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {"type": "object", "properties": {
                    "field": {"type": "string"}, "message": {"type": "string"},
                    "policy": {"type": "string", "description": "The policy that refused (code PolicyViolation)"}}}}
            }}}
        }),
    );
    let mut paths = Map::new();
    for o in OPERATIONS {
        let entry = paths.entry(o.path.to_string()).or_insert_with(|| json!({}));
        entry[o.method] = operation(o);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Mooring API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Declare nodes, node sets, relays and workers; read their status. See docs/api.md."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}
        }
    })
}

fn operation(o: &Operation) -> Value {
    let mut params = Vec::new();
    for (name, schema) in [
        ("namespace", json!({"type": "string", "pattern": api_types::patterns::DNS_LABEL})),
        ("plural", json!({"type": "string", "enum": Kind::ALL.map(Kind::plural)})),
        ("name", json!({"type": "string"})),
        ("kind", json!({"type": "string", "enum": kind_spellings()})),
    ] {
        if o.path.contains(&format!("{{{name}}}")) {
            params.push(json!({"name": name, "in": "path", "required": true, "schema": schema}));
        }
    }
    let query = |name: &str, schema: Value| json!({"name": name, "in": "query", "required": false, "schema": schema});
    if o.method == "get" && (o.path.ends_with("{plural}") || o.path == "/v1/policies") {
        params.push(query("labelSelector", json!({"type": "string"})));
        params.push(query("limit", json!({"type": "integer", "minimum": 1, "maximum": 1000})));
        params.push(query("continue", json!({"type": "string"})));
    }
    if o.path == "/v1/apply" {
        params.push(query("dryRun", json!({"type": "boolean"})));
        params.push(query("source", json!({"type": "string", "enum": ["api", "gitops"]})));
        params.push(query("revision", json!({"type": "string", "pattern": "^[0-9a-fA-F]{7,64}$"})));
        params.push(query("prune", json!({"type": "boolean"})));
        params.push(query("selector", json!({"type": "string"})));
        params.push(query("allowMassPrune", json!({"type": "boolean"})));
        params.push(query("prunePolicies", json!({"type": "boolean"})));
    }
    if o.path == "/v1/watch" {
        params.push(query("since", json!({"type": "integer", "minimum": 0})));
        params.push(query("kind", json!({"type": "string"})));
        params.push(query("namespace", json!({"type": "string"})));
        params.push(query("bookmarks", json!({"type": "boolean"})));
    }
    let refs: Vec<Value> = if o.path.starts_with("/v1/policies") {
        vec![json!({"$ref": "#/components/schemas/Policy"})]
    } else {
        Kind::ALL.iter().map(|k| json!({"$ref": format!("#/components/schemas/{}", k.as_str())})).collect()
    };
    let any_doc = json!({ "oneOf": refs });
    let request = match o.body {
        Body::None => None,
        Body::Document => Some(json!({"required": true, "content": {
            "application/json": {"schema": any_doc}, "application/yaml": {"schema": any_doc}}})),
        Body::Documents => Some(json!({"required": true, "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "array", "items": any_doc}}}})),
        Body::MergePatch => {
            Some(json!({"required": true, "content": {"application/merge-patch+json": {"schema": {"type": "object"}}}}))
        }
        Body::Rollback => Some(json!({"required": true, "content": {"application/json": {"schema": {
            "type": "object", "required": ["revision"], "additionalProperties": false,
            "properties": {"revision": {"type": "integer", "minimum": 1}}}}}})),
        Body::Rollout => Some(json!({"required": true, "content": {"application/json": {"schema": {
            "type": "object", "required": ["action"], "additionalProperties": false,
            "properties": {"action": {"type": "string", "enum": ["promote", "abort"]}}}}}})),
        Body::Suspend => Some(json!({"required": false, "content": {"application/json": {"schema": {
            "type": "object", "additionalProperties": false,
            "properties": {"reason": {"type": "string", "maxLength": super::sources::MAX_REASON}}}}}})),
        Body::Token => Some(json!({"required": true, "content": {"application/json": {"schema": {
            "type": "object", "required": ["name", "scopes"], "additionalProperties": false,
            "properties": {"name": {"type": "string"}, "scopes": {"type": "array", "items": {"type": "string"}}}}}}})),
    };
    let error = json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let mut responses = Map::new();
    let success_content = if o.path == "/v1/watch" {
        json!({"text/event-stream": {"schema": watch_event()}})
    } else if o.path == "/metrics" {
        json!({"application/openmetrics-text": {"schema": {"type": "string"}}})
    } else if o.path == "/" {
        json!({"text/html": {"schema": {"type": "string"}}})
    } else {
        json!({"application/json": {"schema": {}}})
    };
    responses.insert(o.success.to_string(), json!({"description": "success", "content": success_content}));
    let mut codes: Vec<&str> = vec!["400", "404"];
    if o.authenticated {
        codes.extend(["401", "403", "429", "503"]);
    }
    if o.body != Body::None {
        codes.extend(["409", "413", "415", "422"]);
    }
    if o.path == "/readyz" {
        codes.push("503");
    }
    if o.path.ends_with("/rendered") || o.path.ends_with("/snapshot") {
        codes.push("409");
    }
    if o.path == "/v1/watch" {
        // A position older than the change feed keeps (compacted).
        codes.push("410");
    }
    if o.method == "delete" && (o.path.contains("{plural}") || o.path.starts_with("/v1/policies")) {
        responses.insert("200".into(), json!({"description": "deleted at once (no finalizers)"}));
    }
    for c in codes {
        responses.insert(c.into(), error.clone());
    }
    let mut v = json!({"summary": o.summary, "parameters": params, "responses": responses});
    if let Some(r) = request {
        v["requestBody"] = r;
    }
    if o.authenticated {
        v["security"] = json!([{"bearer": []}]);
    }
    v
}

/// One event of the watch stream (the schema describes each event, as SSE
/// clients read them): `id` is the change's sequence number (resume with
/// `Last-Event-ID`), `event` is `change`, `data` the change as JSON.
fn watch_event() -> Value {
    let change = json!({
        "type": "object",
        "required": ["seq", "kind", "namespace", "name", "uid", "op"],
        "properties": {
            "seq": {"type": "integer"},
            "kind": {"type": "string"},
            "namespace": {"type": "string"},
            "name": {"type": "string"},
            "uid": {"type": "string"},
            "op": {"type": "string", "enum": ["create", "update", "status", "delete-requested", "delete", "event"]},
            "generation": {"type": "integer"},
            "resourceVersion": {"type": "string"},
            "time": {"type": "string"}
        }
    });
    let bookmark = json!({
        "type": "object",
        "required": ["seq"],
        "additionalProperties": false,
        "properties": {"seq": {"type": "integer"}}
    });
    json!({
        "type": "object",
        "required": ["data"],
        "properties": {
            "id": {"type": "string", "pattern": "^[0-9]+$"},
            "event": {"enum": ["change", "bookmark"]},
            "data": {"type": "string", "contentMediaType": "application/json",
                     "contentSchema": {"oneOf": [change, bookmark]}}
        }
    })
}

/// Every spelling `/v1/schemas/{kind}` accepts: `Relay`, `relay`, `relays`.
fn kind_spellings() -> Vec<String> {
    Kind::ALL.iter().flat_map(|k| [k.as_str().to_string(), k.as_str().to_lowercase(), k.plural().to_string()]).collect()
}

fn rewrite_refs(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get_mut("$ref")
                && let Some(name) = r.strip_prefix("#/$defs/")
            {
                *r = format!("#/components/schemas/{name}");
            }
            m.values_mut().for_each(rewrite_refs);
        }
        Value::Array(a) => a.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}
