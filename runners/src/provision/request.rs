//! What a provisioner build is asked to do, and how it travels: the controller
//! turns a [`ProvisionRequest`] into the build's environment (CodeBuild's
//! `environmentVariablesOverride`, or a local subprocess's environment), and
//! `mooring-provisioner` reads it back from there. One type, both directions,
//! so the two sides cannot disagree.

use std::collections::BTreeMap;

use api_types::node::NodeSpec;

/// The environment variable names of a build.
pub mod env {
    pub const ACTION: &str = "MOORING_NODE_ACTION";
    pub const TOKEN: &str = "MOORING_NODE_TOKEN";
    pub const UID: &str = "MOORING_NODE_UID";
    pub const NAMESPACE: &str = "MOORING_NODE_NAMESPACE";
    pub const NAME: &str = "MOORING_NODE_NAME";
    pub const GENERATION: &str = "MOORING_NODE_GENERATION";
    pub const SPEC: &str = "MOORING_NODE_SPEC";
    pub const INCARNATION: &str = "MOORING_NODE_INCARNATION";
    pub const RESTORE_FROM: &str = "MOORING_NODE_RESTORE_FROM";
    pub const OWNER: &str = "MOORING_NODE_OWNER";
}

/// Create-or-update, or tear down (the action recorded in the node's build status).
pub use api_types::node::BuildAction as Action;

/// One provisioning job for one node.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvisionRequest {
    pub action: Action,
    /// The build's idempotency token (also names the build's intent in status).
    pub token: String,
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub generation: i64,
    /// The node's incarnation (see `NodeStatus::incarnation`): part of the
    /// instance's and the data volume's client tokens.
    pub incarnation: u32,
    pub spec: NodeSpec,
    /// The snapshot a data volume created by this run starts from (see
    /// `BuildStatus::restore_from`).
    pub restore_from: Option<String>,
    /// The uid of the NodeSet the node is a member of, if it is one.
    pub owner: Option<String>,
}

/// A build environment that does not describe a request.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{0} is invalid: {1}")]
    Invalid(&'static str, String),
}

impl ProvisionRequest {
    /// The build's environment.
    pub fn to_env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::from([
            (env::ACTION.to_string(), self.action.as_str().to_string()),
            (env::TOKEN.to_string(), self.token.clone()),
            (env::UID.to_string(), self.uid.clone()),
            (env::NAMESPACE.to_string(), self.namespace.clone()),
            (env::NAME.to_string(), self.name.clone()),
            (env::GENERATION.to_string(), self.generation.to_string()),
            (env::INCARNATION.to_string(), self.incarnation.to_string()),
            (env::SPEC.to_string(), serde_json::to_string(&self.spec).unwrap_or_default()),
        ]);
        if let Some(snapshot) = &self.restore_from {
            env.insert(env::RESTORE_FROM.to_string(), snapshot.clone());
        }
        if let Some(owner) = &self.owner {
            env.insert(env::OWNER.to_string(), owner.clone());
        }
        env
    }

    /// Reads a request from a build's environment.
    pub fn from_env(vars: &BTreeMap<String, String>) -> Result<ProvisionRequest, RequestError> {
        let get = |k: &'static str| vars.get(k).filter(|v| !v.is_empty()).ok_or(RequestError::Missing(k));
        let (namespace, name) = (get(env::NAMESPACE)?, get(env::NAME)?);
        let spec: serde_json::Value =
            serde_json::from_str(get(env::SPEC)?).map_err(|e| RequestError::Invalid(env::SPEC, e.to_string()))?;
        // The same validation the API applies, so a build never acts on a spec
        // the API would have refused.
        let doc = serde_json::json!({
            "apiVersion": api_types::API_VERSION, "kind": "Node",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec,
        });
        let spec = match api_types::validate_document(doc) {
            Ok(api_types::AnyResource::Node(node)) => node.spec,
            Ok(_) => return Err(RequestError::Invalid(env::SPEC, "not a node spec".into())),
            Err(errors) => return Err(RequestError::Invalid(env::SPEC, errors.to_string())),
        };
        Ok(ProvisionRequest {
            action: get(env::ACTION)?.parse().map_err(|e| RequestError::Invalid(env::ACTION, e))?,
            token: get(env::TOKEN)?.clone(),
            uid: get(env::UID)?.clone(),
            namespace: namespace.clone(),
            name: name.clone(),
            generation: get(env::GENERATION)?
                .parse()
                .map_err(|e: std::num::ParseIntError| RequestError::Invalid(env::GENERATION, e.to_string()))?,
            // Builds started before incarnations existed carry none: the first.
            incarnation: match vars.get(env::INCARNATION).filter(|v| !v.is_empty()) {
                None => 0,
                Some(v) => v
                    .parse()
                    .map_err(|e: std::num::ParseIntError| RequestError::Invalid(env::INCARNATION, e.to_string()))?,
            },
            spec,
            restore_from: match vars.get(env::RESTORE_FROM).filter(|v| !v.is_empty()) {
                Some(v) if api_types::validate::matches(api_types::patterns::SNAPSHOT_ID, v) => Some(v.clone()),
                Some(v) => return Err(RequestError::Invalid(env::RESTORE_FROM, format!("{v:?} is not a snapshot id"))),
                None => None,
            },
            owner: vars.get(env::OWNER).filter(|v| !v.is_empty()).cloned(),
        })
    }
}
