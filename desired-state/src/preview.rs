//! What a resource turns into in AWS, for people to read before (and after)
//! the controller applies it: a relay's or worker's ECS task definition, a
//! node's EC2 user data.
//!
//! The rendering code lives with the runners, which this crate does not
//! depend on (it never touches AWS); the process that assembles the server
//! plugs an implementation of [`Preview`] into the API state, and
//! `GET /v1/namespaces/{ns}/{plural}/{name}/rendered` answers 404 without one.

use serde::Serialize;

use crate::store::StoredResource;

/// A rendering, in the form AWS receives it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "format", rename_all = "camelCase")]
pub enum Rendered {
    /// What RegisterTaskDefinition gets for a relay or a worker.
    #[serde(rename_all = "camelCase")]
    TaskDefinition {
        /// The task definition input, as the runners render it.
        task_definition: serde_json::Value,
    },
    /// The user data script a node's EC2 instance boots with.
    #[serde(rename_all = "camelCase")]
    UserData {
        /// The script, as text.
        user_data: String,
    },
}

/// Why a resource could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreviewError {
    /// The kind has no AWS rendering (a policy).
    #[error("a {0} has no AWS rendering")]
    NotRendered(api_types::Kind),
    /// The stored spec or status does not read as the kind's (an older
    /// format the runners no longer accept).
    #[error("the stored {field} does not read as a {kind}: {message}")]
    Unreadable { kind: api_types::Kind, field: &'static str, message: String },
}

/// Renders a stored resource the way the controller would apply it. Exists so
/// the API can show the rendering without depending on the runners.
pub trait Preview: Send + Sync {
    /// The rendering of `resource`, from its spec and the identities its
    /// status records.
    fn render(&self, resource: &StoredResource) -> Result<Rendered, PreviewError>;
}
