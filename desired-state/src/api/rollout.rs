//! `POST /v1/namespaces/{ns}/relays/{name}/rollout`: an operator's answer to
//! a relay's rollout (`mooring rollout promote|abort`). The request is kept
//! beside the resource (neither spec nor status), recorded as an event, and
//! announced on the change feed; the controller acts on it for the service
//! deployment it names, and only for that one.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use api_types::rollout::{DeploymentState, RolloutAction, RolloutRequest, RolloutStatus};
use api_types::{EventType, Kind};

use super::SharedState;
use super::body::{self, LimitedBody, P, respond};
use super::error::ApiError;
use super::resources::authorize;
use crate::auth::{Principal, Role};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RolloutBody {
    action: RolloutAction,
}

/// Records `promote` or `abort` for the relay's rollout in progress. The write
/// role on the namespace is needed. 404 for a kind without rollouts; 409 when
/// no rollout is in progress (nothing to answer), or for `promote` when the
/// spec has no manual gate.
pub async fn rollout(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    P((namespace, plural, name)): P<(String, String, String)>,
    headers: HeaderMap,
    LimitedBody(body): LimitedBody,
) -> Result<Response, ApiError> {
    let kind = authorize(&principal, &plural, &namespace, Role::Write)?;
    if kind != Kind::Relay {
        return Err(ApiError::not_found(format!("{plural} have no rollouts (relays do)")));
    }
    let doc = body::one_document(&headers, &body)?;
    let req: RolloutBody = serde_json::from_value(doc)
        .map_err(|e| ApiError::bad_request(format!("expected {{\"action\": \"promote\" | \"abort\"}}: {e}")))?;
    let current = state.store.get(kind, &namespace, &name).await?;
    let rollout: Option<RolloutStatus> =
        current.status.get("rollout").cloned().and_then(|v| serde_json::from_value(v).ok());
    let Some(rollout) = rollout.filter(|r| r.state.advancing()) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "NoRolloutInProgress",
            format!(
                "relay {namespace}/{name} has no rollout in progress (blue/green, canary and linear rollouts can be \
                 promoted or aborted while ECS deploys them)"
            ),
        ));
    };
    let manual = current
        .spec
        .pointer("/deployment/verify/approval")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|a| a == "Manual");
    if req.action == RolloutAction::Promote && !manual {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "NoManualGate",
            format!(
                "relay {namespace}/{name} has no manual gate to promote (spec.deployment.verify.approval is not \
                 Manual): its rollout goes on by itself; `abort` rolls it back"
            ),
        ));
    }
    let request = RolloutRequest {
        action: req.action,
        service_deployment_arn: rollout.service_deployment_arn.clone(),
        by: principal.name.clone(),
        at: chrono::Utc::now(),
    };
    let row = state.store.request_rollout(kind, &namespace, &name, &request).await?;
    let (reason, what) = match req.action {
        RolloutAction::Promote => ("RolloutPromoteRequested", "promote"),
        RolloutAction::Abort => ("RolloutAbortRequested", "abort (roll back)"),
    };
    let message = format!("{} asked to {what} {}", principal.name, rollout.service_deployment_arn);
    let type_ = if req.action == RolloutAction::Abort { EventType::Warning } else { EventType::Normal };
    state.store.record_event(&row, type_, reason, &message).await?;
    let waiting = rollout.state == DeploymentState::InProgress && rollout.waiting_for.is_some();
    Ok(respond(
        &headers,
        StatusCode::ACCEPTED,
        &serde_json::json!({"request": request, "rollout": rollout, "gateWaiting": waiting}),
    ))
}
