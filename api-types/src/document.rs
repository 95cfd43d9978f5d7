//! The document envelope and the enum over kinds.

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::hash::{SpecHash, spec_hash};
use crate::meta::{Kind, ObjectMeta};
use crate::node::{NodeSpec, NodeStatus};
use crate::nodeset::{NodeSetSpec, NodeSetStatus};
use crate::policy::{PolicySpec, PolicyStatus};
use crate::relay::{RelaySpec, RelayStatus};
use crate::validate::{Validate, Violations};
use crate::worker::{WorkerSpec, WorkerStatus};

/// A resource of one kind: `apiVersion`, `kind`, `metadata`, `spec`, `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resource<S, St: Default> {
    /// Always `mooring/v1`.
    pub api_version: String,
    /// `Node`, `Relay`, `Worker`, `Policy` or `NodeSet`.
    pub kind: Kind,
    pub metadata: ObjectMeta,
    /// What the user wants.
    pub spec: S,
    /// What Mooring observed; server-owned and ignored on writes.
    #[serde(default)]
    pub status: St,
}

/// Validation and identity common to every kind's spec.
pub trait Spec: Serialize + DeserializeOwned + Validate + Clone + PartialEq {
    const KIND: Kind;
}

impl<S: Spec, St: Default> Resource<S, St> {
    /// The canonical hash of the spec (see [`crate::hash`]).
    pub fn spec_hash(&self) -> SpecHash {
        spec_hash(&self.spec)
    }
}

/// A resource of any kind, typed. This is what validation returns and what the
/// store and the controller pass around when they do not care about the kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AnyResource {
    Node(Resource<NodeSpec, NodeStatus>),
    Relay(Resource<RelaySpec, RelayStatus>),
    Worker(Resource<WorkerSpec, WorkerStatus>),
    Policy(Resource<PolicySpec, PolicyStatus>),
    NodeSet(Resource<NodeSetSpec, NodeSetStatus>),
}

macro_rules! each {
    ($self:expr, $r:ident => $body:expr) => {
        match $self {
            AnyResource::Node($r) => $body,
            AnyResource::Relay($r) => $body,
            AnyResource::Worker($r) => $body,
            AnyResource::Policy($r) => $body,
            AnyResource::NodeSet($r) => $body,
        }
    };
}

impl AnyResource {
    /// Deserializes a document already known to be of `kind`. Does not run the
    /// validation rules; use [`crate::validate_document`] for input from users.
    pub fn from_value(kind: Kind, v: Value) -> Result<Self, serde_json::Error> {
        Ok(match kind {
            Kind::Node => AnyResource::Node(serde_json::from_value(v)?),
            Kind::Relay => AnyResource::Relay(serde_json::from_value(v)?),
            Kind::Worker => AnyResource::Worker(serde_json::from_value(v)?),
            Kind::Policy => AnyResource::Policy(serde_json::from_value(v)?),
            Kind::NodeSet => AnyResource::NodeSet(serde_json::from_value(v)?),
        })
    }

    pub fn kind(&self) -> Kind {
        each!(self, r => r.kind)
    }

    pub fn metadata(&self) -> &ObjectMeta {
        each!(self, r => &r.metadata)
    }

    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        each!(self, r => &mut r.metadata)
    }

    /// The spec as JSON, with defaults filled in.
    pub fn spec_value(&self) -> Value {
        each!(self, r => serde_json::to_value(&r.spec).unwrap_or(Value::Null))
    }

    /// The status as JSON.
    pub fn status_value(&self) -> Value {
        each!(self, r => serde_json::to_value(&r.status).unwrap_or(Value::Null))
    }

    /// The canonical hash of the spec.
    pub fn spec_hash(&self) -> SpecHash {
        each!(self, r => spec_hash(&r.spec))
    }

    /// The whole document as JSON.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Runs the per-kind rules (the second validation pass).
    pub(crate) fn validate_rules(&self, v: &mut Violations) {
        each!(self, r => r.spec.validate("spec", v));
        let m = self.metadata();
        if self.kind() == Kind::NodeSet && m.name.len() > crate::nodeset::MAX_NAME_LEN {
            v.push(
                "metadata.name",
                format!(
                    "must be at most {} characters: its members are named NAME-ORDINAL",
                    crate::nodeset::MAX_NAME_LEN
                ),
            );
        }
        for (k, _) in m.labels.iter().chain(m.annotations.iter()) {
            if !crate::validate::matches(LABEL_KEY, k) {
                let field = if m.labels.contains_key(k) { "labels" } else { "annotations" };
                v.push(
                    format!("metadata.{field}.{k}"),
                    "must be a label key: an optional DNS prefix and '/', then up to 63 letters, digits, '-', '_' or '.'",
                );
            }
        }
        for (k, val) in &m.labels {
            if !crate::validate::matches(LABEL_VALUE, val) {
                v.push(
                    format!("metadata.labels.{k}"),
                    "must be a label value: up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
                );
            }
        }
    }
}

/// Kubernetes label keys: `[prefix/]name`.
const LABEL_KEY: &str = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$";
/// Kubernetes label values (may be empty).
const LABEL_VALUE: &str = r"^([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$";
