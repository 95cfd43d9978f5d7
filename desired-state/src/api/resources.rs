//! Handlers for one kind of resource: list, create, read, replace, patch,
//! delete, revisions, rollback, events.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Value, json};

use api_types::meta::CLUSTER_NAMESPACE;
use api_types::{AnyResource, Kind, validate_document};

use super::admit::{Paths, admit};
use super::body::{self, BodyFormat, LimitedBody, P, Q, respond};
use super::error::ApiError;
use super::{SharedState, require};
use crate::auth::{Principal, Role};
use crate::selector::Selector;
use crate::store::{ChangeSource, EventType, ListQuery, StoreError, StoredResource, WriteMode};

/// The kind named by a URL plural.
pub(crate) fn kind_of(plural: &str) -> Result<Kind, ApiError> {
    Kind::ALL.into_iter().find(|k| k.plural() == plural).ok_or_else(|| {
        ApiError::not_found(format!(
            "unknown resource type {plural:?}: use nodes, nodesets, relays, workers or policies"
        ))
    })
}

/// The role an action needs on a kind: writing a Policy needs admin.
fn needed(kind: Kind, role: Role) -> Role {
    if kind == Kind::Policy && role == Role::Write { Role::Admin } else { role }
}

/// Resolves the kind and checks the namespace and the caller's right to act
/// with `role` there: the prologue of every namespaced handler.
pub(crate) fn authorize(principal: &Principal, plural: &str, namespace: &str, role: Role) -> Result<Kind, ApiError> {
    let kind = kind_of(plural)?;
    check_namespace(namespace)?;
    require(principal, needed(kind, role), namespace)?;
    Ok(kind)
}

/// The prologue of the handlers of cluster-scoped policies: any caller may
/// read them (they judge everyone's writes), only `admin:*` may write them.
fn authorize_cluster(principal: &Principal, role: Role) -> Result<(), ApiError> {
    match role {
        // A scraper's `metrics` token reads nothing but `/metrics`.
        Role::Metrics | Role::Read if principal.scopes.iter().any(|s| s.role >= Role::Read) => Ok(()),
        Role::Metrics | Role::Read => require(principal, Role::Read, CLUSTER_NAMESPACE),
        _ => require(principal, Role::Admin, CLUSTER_NAMESPACE),
    }
}

/// Checks a namespace from the URL.
pub(crate) fn check_namespace(ns: &str) -> Result<(), ApiError> {
    let ok = !ns.is_empty()
        && ns.len() <= 63
        && ns.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !ns.starts_with('-')
        && !ns.ends_with('-');
    if ok { Ok(()) } else { Err(ApiError::bad_request(format!("{ns:?} is not a valid namespace"))) }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    label_selector: Option<String>,
    limit: Option<i64>,
    #[serde(rename = "continue")]
    continue_: Option<String>,
}

pub async fn list_all(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    P(plural): P<String>,
    Q(params): Q<ListParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let kind = kind_of(&plural)?;
    let allowed = principal.namespaces(Role::Read);
    list(&state, kind, None, allowed, params, &headers).await
}

/// `GET /v1/policies`: the cluster-scoped policies and the namespaced ones the
/// caller may read.
pub async fn list_policies(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    Q(params): Q<ListParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize_cluster(&principal, Role::Read)?;
    let allowed = principal.namespaces(Role::Read).map(|mut ns| {
        ns.push(CLUSTER_NAMESPACE.to_string());
        ns
    });
    list(&state, Kind::Policy, None, allowed, params, &headers).await
}

pub async fn list_namespaced(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    P((namespace, plural)): P<(String, String)>,
    Q(params): Q<ListParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let kind = authorize(&principal, &plural, &namespace, Role::Read)?;
    list(&state, kind, Some(namespace), None, params, &headers).await
}

async fn list(
    state: &SharedState,
    kind: Kind,
    namespace: Option<String>,
    allowed: Option<Vec<String>>,
    params: ListParams,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let selector = Selector::parse(params.label_selector.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let limit = params.limit.unwrap_or(500);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 1000"));
    }
    let after = match params.continue_.as_deref() {
        None | Some("") => None,
        Some(token) => Some(decode_continue(token)?),
    };
    let page = state
        .store
        .list(&ListQuery { kind: Some(kind), namespace, allowed_namespaces: allowed, selector, limit, after })
        .await?;
    let mut metadata = serde_json::Map::new();
    if let Some(next) = page.next {
        metadata.insert("continue".into(), Value::String(encode_continue(&next)));
    }
    let items: Vec<Value> = page.items.iter().map(|r| r.to_document()).collect();
    let body = json!({
        "apiVersion": api_types::API_VERSION,
        "kind": format!("{kind}List"),
        "metadata": metadata,
        "items": items,
    });
    Ok(respond(headers, StatusCode::OK, &body))
}

fn encode_continue(key: &(String, String, String)) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&[&key.0, &key.1, &key.2]).unwrap_or_default())
}

fn decode_continue(token: &str) -> Result<(String, String, String), ApiError> {
    let bad = || ApiError::bad_request("invalid continue token; start the list again");
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let [k, ns, name]: [String; 3] = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok((k, ns, name))
}

/// Fills `apiVersion`, `kind` and `metadata.namespace` from the URL when the
/// body leaves them out, and refuses a body that contradicts the URL. A
/// cluster-scoped URL (empty namespace) takes a body without a namespace.
fn fit_to_path(doc: &mut Value, kind: Kind, namespace: &str, name: Option<&str>) -> Result<(), ApiError> {
    let obj = doc.as_object_mut().ok_or_else(|| ApiError::bad_request("the body must be an object"))?;
    obj.entry("apiVersion").or_insert_with(|| json!(api_types::API_VERSION));
    match obj.get("kind") {
        None => {
            obj.insert("kind".into(), json!(kind.as_str()));
        }
        Some(Value::String(k)) if k == kind.as_str() => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "the body's kind {other} does not match the URL's {}",
                kind.plural()
            )));
        }
    }
    let meta = obj.entry("metadata").or_insert_with(|| json!({}));
    let meta = meta.as_object_mut().ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
    if namespace.is_empty() {
        if let Some(ns) = meta.get("namespace").filter(|v| !v.is_null()) {
            return Err(ApiError::bad_request(format!(
                "metadata.namespace {ns} on a cluster-scoped path; send namespaced policies to /v1/namespaces/{{namespace}}/policies"
            )));
        }
    } else {
        fill_or_match(meta, "namespace", namespace)?;
    }
    if let Some(name) = name {
        fill_or_match(meta, "name", name)?;
    }
    Ok(())
}

/// Sets `metadata.<field>` to the URL's value when absent; refuses a different one.
fn fill_or_match(meta: &mut serde_json::Map<String, Value>, field: &str, expected: &str) -> Result<(), ApiError> {
    match meta.get(field) {
        None | Some(Value::Null) => {
            meta.insert(field.into(), json!(expected));
            Ok(())
        }
        Some(Value::String(v)) if v == expected => Ok(()),
        Some(other) => Err(ApiError::bad_request(format!(
            "metadata.{field} {other} does not match the URL's {field} {expected:?}"
        ))),
    }
}

fn validated(doc: Value) -> Result<AnyResource, ApiError> {
    validate_document(doc).map_err(ApiError::invalid)
}

/// The client-owned metadata of a stored resource, as a document carries it
/// (no namespace for a cluster-scoped one).
fn client_metadata(r: &StoredResource) -> Value {
    let mut meta = json!({"name": r.name, "labels": r.labels.0, "annotations": r.annotations.0});
    if !r.namespace.is_empty() {
        meta["namespace"] = json!(r.namespace);
    }
    meta
}

pub async fn create(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    P((namespace, plural)): P<(String, String)>,
    headers: HeaderMap,
    LimitedBody(body): LimitedBody,
) -> Result<Response, ApiError> {
    let kind = authorize(&principal, &plural, &namespace, Role::Write)?;
    create_in(&state, &principal, kind, &namespace, &headers, &body).await
}

/// `POST /v1/policies`: a cluster-scoped policy.
pub async fn create_cluster(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    LimitedBody(body): LimitedBody,
) -> Result<Response, ApiError> {
    authorize_cluster(&principal, Role::Write)?;
    create_in(&state, &principal, Kind::Policy, CLUSTER_NAMESPACE, &headers, &body).await
}

async fn create_in(
    state: &SharedState,
    principal: &Principal,
    kind: Kind,
    namespace: &str,
    headers: &HeaderMap,
    body: &bytes::Bytes,
) -> Result<Response, ApiError> {
    let mut doc = body::one_document(headers, body)?;
    fit_to_path(&mut doc, kind, namespace, None)?;
    let res = validated(doc)?;
    let source = ChangeSource::api(&principal.name);
    admit(state, &[&res], &source, Paths::Single).await?;
    let out = state.store.write(&res, WriteMode::Create, &source).await?;
    Ok(respond(headers, StatusCode::CREATED, &out.resource.to_document()))
}

pub async fn read(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    P((namespace, plural, name)): P<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let kind = authorize(&principal, &plural, &namespace, Role::Read)?;
    let r = state.store.get(kind, &namespace, &name).await?;
    Ok(respond(&headers, StatusCode::OK, &r.to_document()))
}

/// `GET /v1/policies/{name}`.
pub async fn read_cluster(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    P(name): P<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize_cluster(&principal, Role::Read)?;
    let r = state.store.get(Kind::Policy, CLUSTER_NAMESPACE, &name).await?;
    Ok(respond(&headers, StatusCode::OK, &r.to_document()))
}

pub async fn replace(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    P((namespace, plural, name)): P<(String, String, String)>,
    headers: HeaderMap,
    LimitedBody(body): LimitedBody,
) -> Result<Response, ApiError> {
    let kind = authorize(&principal, &plural, &namespace, Role::Write)?;
    replace_in(&state, &principal, kind, &namespace, &name, &headers, &body).await
}

/// `PUT /v1/policies/{name}`.
pub async fn replace_cluster(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    P(name): P<String>,
    headers: HeaderMap,
    LimitedBody(body): LimitedBody,
) -> Result<Response, ApiError> {
    authorize_cluster(&principal, Role::Write)?;
    replace_in(&state, &principal, Kind::Policy, CLUSTER_NAMESPACE, &name, &headers, &body).await
}

async fn replace_in(
    state: &SharedState,
    principal: &Principal,
    kind: Kind,
    namespace: &str,
    name: &str,
    headers: &HeaderMap,
    body: &bytes::Bytes,
) -> Result<Response, ApiError> {
    let mut doc = body::one_document(headers, body)?;
    fit_to_path(&mut doc, kind, namespace, Some(name))?;
    let rv = resource_version_of(&doc)?.ok_or_else(|| {
        ApiError::invalid(api_types::ValidationErrors::one(
            "metadata.resourceVersion",
            "is required for a replace: send the version you read (or use PATCH or apply)",
        ))
    })?;
    let res = validated(doc)?;
    let source = ChangeSource::api(&principal.name);
    admit(state, &[&res], &source, Paths::Single).await?;
    let out = state.store.write(&res, WriteMode::Replace { resource_version: rv }, &source).await?;
    Ok(respond(headers, StatusCode::OK, &out.resource.to_document()))
}

fn resource_version_of(doc: &Value) -> Result<Option<i64>, ApiError> {
    match doc.pointer("/metadata/resourceVersion") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s.parse().map(Some).map_err(|_| {
            ApiError::invalid(api_types::ValidationErrors::one(
                "metadata.resourceVersion",
                "is not a version this server issued",
            ))
        }),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| ApiError::bad_request("bad resourceVersion")),
        Some(_) => {
            Err(ApiError::invalid(api_types::ValidationErrors::one("metadata.resourceVersion", "must be a string")))
        }
    }
}

pub async fn patch(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    P((namespace, plural, name)): P<(String, String, String)>,
    headers: HeaderMap,
    LimitedBody(body): LimitedBody,
) -> Result<Response, ApiError> {
    let kind = authorize(&principal, &plural, &namespace, Role::Write)?;
    patch_in(&state, &principal, kind, &namespace, &name, &headers, &body).await
}

/// `PATCH /v1/policies/{name}`.
pub async fn patch_cluster(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    P(name): P<String>,
    headers: HeaderMap,
    LimitedBody(body): LimitedBody,
) -> Result<Response, ApiError> {
    authorize_cluster(&principal, Role::Write)?;
    patch_in(&state, &principal, Kind::Policy, CLUSTER_NAMESPACE, &name, &headers, &body).await
}

async fn patch_in(
    state: &SharedState,
    principal: &Principal,
    kind: Kind,
    namespace: &str,
    name: &str,
    headers: &HeaderMap,
    body: &bytes::Bytes,
) -> Result<Response, ApiError> {
    if body.len() > body::MAX_BODY {
        return Err(ApiError::payload_too_large());
    }
    match body::body_format(headers)? {
        BodyFormat::MergePatchJson | BodyFormat::Json => {}
        BodyFormat::Yaml => {
            return Err(ApiError::unsupported_media_type(
                "PATCH takes a JSON merge patch (application/merge-patch+json)",
            ));
        }
    }
    let patch = body::merge_patch(body)?;
    let explicit_rv = resource_version_of(&patch)?;
    let source = ChangeSource::api(&principal.name);
    // Retry on a concurrent write unless the client pinned a version.
    for attempt in 0..5 {
        let current = state.store.get(kind, namespace, name).await?;
        let mut doc = json!({
            "apiVersion": api_types::API_VERSION,
            "kind": kind.as_str(),
            "metadata": client_metadata(&current),
            "spec": current.spec,
        });
        json_patch::merge(&mut doc, &patch);
        let expected_namespace = Some(namespace).filter(|ns| !ns.is_empty());
        if doc["metadata"]["name"].as_str() != Some(name) {
            return Err(ApiError::invalid(api_types::ValidationErrors::one("metadata.name", "cannot be changed")));
        }
        if doc["metadata"]["namespace"].as_str() != expected_namespace {
            return Err(ApiError::invalid(api_types::ValidationErrors::one("metadata.namespace", "cannot be changed")));
        }
        if doc.get("apiVersion") != Some(&json!(api_types::API_VERSION))
            || doc.get("kind") != Some(&json!(kind.as_str()))
        {
            return Err(ApiError::invalid(api_types::ValidationErrors::one(
                "kind",
                "apiVersion and kind cannot be changed",
            )));
        }
        if let Some(m) = doc["metadata"].as_object_mut() {
            for server_owned in
                ["resourceVersion", "uid", "generation", "creationTimestamp", "deletionTimestamp", "finalizers"]
            {
                m.remove(server_owned);
            }
        }
        if let Some(obj) = doc.as_object_mut() {
            obj.remove("status");
        }
        let res = validated(doc)?;
        admit(state, &[&res], &source, Paths::Single).await?;
        let rv = explicit_rv.unwrap_or(current.resource_version);
        match state.store.write(&res, WriteMode::Replace { resource_version: rv }, &source).await {
            Ok(out) => return Ok(respond(headers, StatusCode::OK, &out.resource.to_document())),
            Err(StoreError::Conflict { .. }) if explicit_rv.is_none() && attempt < 4 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict("the resource kept changing; retry"))
}

pub async fn delete(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    P((namespace, plural, name)): P<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let kind = authorize(&principal, &plural, &namespace, Role::Write)?;
    delete_in(&state, kind, &namespace, &name, &headers).await
}

/// `DELETE /v1/policies/{name}`.
pub async fn delete_cluster(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    P(name): P<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize_cluster(&principal, Role::Write)?;
    delete_in(&state, Kind::Policy, CLUSTER_NAMESPACE, &name, &headers).await
}

async fn delete_in(
    state: &SharedState,
    kind: Kind,
    namespace: &str,
    name: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    match state.store.request_delete(kind, namespace, name).await? {
        Some(r) => Ok(respond(headers, StatusCode::ACCEPTED, &r.to_document())),
        None => Ok(respond(
            headers,
            StatusCode::OK,
            &json!({"kind": "Status", "status": "Success", "details": {"kind": kind.as_str(), "namespace": namespace, "name": name}}),
        )),
    }
}

pub async fn revisions(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    P((namespace, plural, name)): P<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let kind = authorize(&principal, &plural, &namespace, Role::Read)?;
    let revs = state.store.revisions(kind, &namespace, &name).await?;
    Ok(respond(&headers, StatusCode::OK, &json!({"items": revs})))
}

/// `GET /v1/policies/{name}/revisions`.
pub async fn revisions_cluster(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    P(name): P<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize_cluster(&principal, Role::Read)?;
    let revs = state.store.revisions(Kind::Policy, CLUSTER_NAMESPACE, &name).await?;
    Ok(respond(&headers, StatusCode::OK, &json!({"items": revs})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackRequest {
    revision: i64,
}

pub async fn rollback(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    P((namespace, plural, name)): P<(String, String, String)>,
    headers: HeaderMap,
    LimitedBody(body): LimitedBody,
) -> Result<Response, ApiError> {
    let kind = authorize(&principal, &plural, &namespace, Role::Write)?;
    rollback_in(&state, &principal, kind, &namespace, &name, &headers, &body).await
}

/// `POST /v1/policies/{name}/rollback`.
pub async fn rollback_cluster(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    P(name): P<String>,
    headers: HeaderMap,
    LimitedBody(body): LimitedBody,
) -> Result<Response, ApiError> {
    authorize_cluster(&principal, Role::Write)?;
    rollback_in(&state, &principal, Kind::Policy, CLUSTER_NAMESPACE, &name, &headers, &body).await
}

/// How often a rollback re-reads the resource when a concurrent write moved its version.
const ROLLBACK_ATTEMPTS: u32 = 5;

/// Restores a revision's spec as a new generation. The restored document goes
/// through validation and admission like any write: a revision that a newer
/// rule or a policy now refuses is not restored, and the answer says so.
async fn rollback_in(
    state: &SharedState,
    principal: &Principal,
    kind: Kind,
    namespace: &str,
    name: &str,
    headers: &HeaderMap,
    body: &bytes::Bytes,
) -> Result<Response, ApiError> {
    let req_doc = body::one_document(headers, body)?;
    let req: RollbackRequest = serde_json::from_value(req_doc)
        .map_err(|e| ApiError::bad_request(format!("expected {{\"revision\": N}}: {e}")))?;
    let rev = state.store.revision(kind, namespace, name, req.revision).await?;
    let refused = |mut e: ApiError| {
        e.message = format!("revision {} cannot be restored: {}", req.revision, e.message);
        e
    };
    let source = ChangeSource::rollback(&principal.name);
    // The write is conditional on the version just read, so a resource deleted
    // and created again in between is never overwritten. The controller's
    // status writes also move the version: the client did not send one, so a
    // conflict here is the server's own race and is retried on a fresh read.
    let mut attempt = 1;
    let mut first_uid = None;
    let out = loop {
        let current = state.store.get(kind, namespace, name).await?;
        // Deleted and created again since the first read: not the resource asked about.
        if *first_uid.get_or_insert(current.uid) != current.uid {
            return Err(StoreError::Conflict {
                kind,
                namespace: namespace.to_string(),
                name: name.to_string(),
                reason: "it was deleted and created again during the rollback; look at its history again".into(),
            }
            .into());
        }
        let doc = json!({
            "apiVersion": api_types::API_VERSION,
            "kind": kind.as_str(),
            "metadata": client_metadata(&current),
            "spec": rev.spec,
        });
        let res = validated(doc).map_err(refused)?;
        admit(state, &[&res], &source, Paths::Single).await.map_err(refused)?;
        let mode = WriteMode::Replace { resource_version: current.resource_version };
        match state.store.write(&res, mode, &source).await {
            Err(StoreError::Conflict { .. }) if attempt < ROLLBACK_ATTEMPTS && current.deletion_timestamp.is_none() => {
                attempt += 1;
            }
            other => break other?,
        }
    };
    if out.action != crate::store::WriteAction::Unchanged {
        let msg = format!(
            "{} rolled back to the spec of generation {}; now generation {}",
            principal.name, req.revision, out.resource.generation
        );
        if let Err(e) = state.store.record_event(&out.resource, EventType::Normal, "RolledBack", &msg).await {
            tracing::warn!(error = %e, "cannot record rollback event");
        }
    }
    Ok(respond(headers, StatusCode::OK, &out.resource.to_document()))
}

#[derive(Debug, Deserialize)]
pub struct EventParams {
    limit: Option<i64>,
}

pub async fn events(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    P((namespace, plural, name)): P<(String, String, String)>,
    Q(params): Q<EventParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let kind = authorize(&principal, &plural, &namespace, Role::Read)?;
    let events = state.store.events(kind, &namespace, &name, params.limit.unwrap_or(100)).await?;
    Ok(respond(&headers, StatusCode::OK, &json!({"items": events})))
}

/// `GET /v1/policies/{name}/events`.
pub async fn events_cluster(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    P(name): P<String>,
    Q(params): Q<EventParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize_cluster(&principal, Role::Read)?;
    let events = state.store.events(Kind::Policy, CLUSTER_NAMESPACE, &name, params.limit.unwrap_or(100)).await?;
    Ok(respond(&headers, StatusCode::OK, &json!({"items": events})))
}
