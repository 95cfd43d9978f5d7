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

use api_types::{AnyResource, Kind, validate_document};

use super::body::{self, BodyFormat, LimitedBody, P, Q, respond};
use super::error::ApiError;
use super::{SharedState, require};
use crate::auth::{Principal, Role};
use crate::selector::Selector;
use crate::store::{ChangeSource, EventType, ListQuery, StoreError, WriteMode};

/// The kind named by a URL plural.
pub(crate) fn kind_of(plural: &str) -> Result<Kind, ApiError> {
    Kind::ALL
        .into_iter()
        .find(|k| k.plural() == plural)
        .ok_or_else(|| ApiError::not_found(format!("unknown resource type {plural:?}: use nodes, relays or workers")))
}

/// Resolves the kind and checks the namespace and the caller's right to act
/// with `role` there: the prologue of every namespaced handler.
fn authorize(principal: &Principal, plural: &str, namespace: &str, role: Role) -> Result<Kind, ApiError> {
    let kind = kind_of(plural)?;
    check_namespace(namespace)?;
    require(principal, role, namespace)?;
    Ok(kind)
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
/// body leaves them out, and refuses a body that contradicts the URL.
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
    fill_or_match(meta, "namespace", namespace)?;
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

pub async fn create(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    P((namespace, plural)): P<(String, String)>,
    headers: HeaderMap,
    LimitedBody(body): LimitedBody,
) -> Result<Response, ApiError> {
    let kind = authorize(&principal, &plural, &namespace, Role::Write)?;
    let mut doc = body::one_document(&headers, &body)?;
    fit_to_path(&mut doc, kind, &namespace, None)?;
    let res = validated(doc)?;
    let out = state.store.write(&res, WriteMode::Create, &ChangeSource::api(&principal.name)).await?;
    Ok(respond(&headers, StatusCode::CREATED, &out.resource.to_document()))
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

pub async fn replace(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    P((namespace, plural, name)): P<(String, String, String)>,
    headers: HeaderMap,
    LimitedBody(body): LimitedBody,
) -> Result<Response, ApiError> {
    let kind = authorize(&principal, &plural, &namespace, Role::Write)?;
    let mut doc = body::one_document(&headers, &body)?;
    fit_to_path(&mut doc, kind, &namespace, Some(&name))?;
    let rv = resource_version_of(&doc)?.ok_or_else(|| {
        ApiError::invalid(api_types::ValidationErrors::one(
            "metadata.resourceVersion",
            "is required for a replace: send the version you read (or use PATCH or apply)",
        ))
    })?;
    let res = validated(doc)?;
    let out = state
        .store
        .write(&res, WriteMode::Replace { resource_version: rv }, &ChangeSource::api(&principal.name))
        .await?;
    Ok(respond(&headers, StatusCode::OK, &out.resource.to_document()))
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
    if body.len() > body::MAX_BODY {
        return Err(ApiError::payload_too_large());
    }
    match body::body_format(&headers)? {
        BodyFormat::MergePatchJson | BodyFormat::Json => {}
        BodyFormat::Yaml => {
            return Err(ApiError::unsupported_media_type(
                "PATCH takes a JSON merge patch (application/merge-patch+json)",
            ));
        }
    }
    let patch: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid JSON merge patch: {e}")))?;
    if !patch.is_object() {
        return Err(ApiError::bad_request("a merge patch must be a JSON object"));
    }
    let explicit_rv = resource_version_of(&patch)?;
    // Retry on a concurrent write unless the client pinned a version.
    for attempt in 0..5 {
        let current = state.store.get(kind, &namespace, &name).await?;
        let mut doc = json!({
            "apiVersion": api_types::API_VERSION,
            "kind": kind.as_str(),
            "metadata": {
                "name": current.name,
                "namespace": current.namespace,
                "labels": current.labels.0,
                "annotations": current.annotations.0,
            },
            "spec": current.spec,
        });
        json_patch::merge(&mut doc, &patch);
        for (field, expected) in [("name", &name), ("namespace", &namespace)] {
            if doc["metadata"][field].as_str() != Some(expected.as_str()) {
                return Err(ApiError::invalid(api_types::ValidationErrors::one(
                    format!("metadata.{field}"),
                    "cannot be changed",
                )));
            }
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
        let rv = explicit_rv.unwrap_or(current.resource_version);
        match state
            .store
            .write(&res, WriteMode::Replace { resource_version: rv }, &ChangeSource::api(&principal.name))
            .await
        {
            Ok(out) => return Ok(respond(&headers, StatusCode::OK, &out.resource.to_document())),
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
    match state.store.request_delete(kind, &namespace, &name).await? {
        Some(r) => Ok(respond(&headers, StatusCode::ACCEPTED, &r.to_document())),
        None => Ok(respond(
            &headers,
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
    let req_doc = body::one_document(&headers, &body)?;
    let req: RollbackRequest = serde_json::from_value(req_doc)
        .map_err(|e| ApiError::bad_request(format!("expected {{\"revision\": N}}: {e}")))?;
    let current = state.store.get(kind, &namespace, &name).await?;
    let rev = state.store.revision(kind, &namespace, &name, req.revision).await?;
    let doc = json!({
        "apiVersion": api_types::API_VERSION,
        "kind": kind.as_str(),
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": current.labels.0,
            "annotations": current.annotations.0,
        },
        "spec": rev.spec,
    });
    let res = validated(doc)?;
    let out = state
        .store
        .write(
            &res,
            WriteMode::Replace { resource_version: current.resource_version },
            &ChangeSource::rollback(&principal.name),
        )
        .await?;
    if out.action != crate::store::WriteAction::Unchanged {
        let msg = format!(
            "{} rolled back to the spec of generation {}; now generation {}",
            principal.name, req.revision, out.resource.generation
        );
        if let Err(e) = state.store.record_event(&out.resource, EventType::Normal, "RolledBack", &msg).await {
            tracing::warn!(error = %e, "cannot record rollback event");
        }
    }
    Ok(respond(&headers, StatusCode::OK, &out.resource.to_document()))
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
