//! The envelope every document shares: API version, kind and object metadata.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::patterns;

/// The only API version this release speaks. Documents with another `apiVersion`
/// are refused rather than guessed at.
pub const API_VERSION: &str = "mooring/v1";

/// The namespace a document lands in when its metadata names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// The namespace a cluster-scoped resource (a cluster-wide `Policy`) is stored
/// under: none. In documents such a resource has no `metadata.namespace`.
pub const CLUSTER_NAMESPACE: &str = "";

/// The finalizer the controller puts on every resource so that a delete waits for
/// the AWS side to be torn down (or released, under `deletionPolicy: Retain`).
pub const FINALIZER: &str = "mooring.io/cleanup";

/// The annotation that pauses reconciliation (Crossplane's `paused`, Flux's
/// `suspend`): while a resource carries `mooring/reconcile: paused`, the
/// controller makes no AWS call that changes anything for it (deletion
/// included) and reports `Synced=False` with reason `ReconcilePaused`.
pub const RECONCILE_ANNOTATION: (&str, &str) = ("mooring/reconcile", "paused");

/// Whether a resource's annotations pause its reconciliation.
pub fn reconcile_paused(annotations: &BTreeMap<String, String>) -> bool {
    annotations.get(RECONCILE_ANNOTATION.0).map(String::as_str) == Some(RECONCILE_ANNOTATION.1)
}

/// The kinds of resource Mooring manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub enum Kind {
    /// An EC2 instance provisioned through CodeBuild.
    Node,
    /// An HTTP service on ECS behind a load balancer.
    Relay,
    /// An SQS consumer service on ECS.
    Worker,
    /// An admission policy (Rego), judged before documents are stored; never
    /// reconciled against AWS.
    Policy,
    /// A fleet of Nodes with stable ordinal members, updated one at a time.
    NodeSet,
}

impl Kind {
    /// Every kind, in a stable order.
    pub const ALL: [Kind; 5] = [Kind::Node, Kind::Relay, Kind::Worker, Kind::Policy, Kind::NodeSet];

    /// The kinds the controller reconciles (everything but Policy): a NodeSet
    /// through the Nodes it writes, the others against AWS.
    pub const RECONCILED: [Kind; 4] = [Kind::Node, Kind::Relay, Kind::Worker, Kind::NodeSet];

    /// Whether the controller reconciles this kind against AWS (and so puts
    /// its finalizer on it).
    pub fn is_reconciled(self) -> bool {
        Kind::RECONCILED.contains(&self)
    }

    /// Whether documents of this kind may be cluster-scoped (no namespace).
    pub fn may_be_cluster_scoped(self) -> bool {
        self == Kind::Policy
    }

    /// The name used in documents (`Node`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Node => "Node",
            Kind::Relay => "Relay",
            Kind::Worker => "Worker",
            Kind::Policy => "Policy",
            Kind::NodeSet => "NodeSet",
        }
    }

    /// The plural used in API paths (`nodes`).
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Node => "nodes",
            Kind::Relay => "relays",
            Kind::Worker => "workers",
            Kind::Policy => "policies",
            Kind::NodeSet => "nodesets",
        }
    }

    /// Resolves a kind from its name, plural or singular lower-case form, the way
    /// `kubectl get` accepts `node`, `nodes` or `Node`.
    pub fn from_any_name(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| {
            s == k.as_str()
                || s == k.plural()
                || s.eq_ignore_ascii_case(k.as_str())
                || s.eq_ignore_ascii_case(k.plural())
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for a string that names no kind; says which kind a typo probably meant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct UnknownKind(pub String);

impl fmt::Display for UnknownKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown kind {:?}", self.0)?;
        let names = Kind::ALL.into_iter().flat_map(|k| [k.as_str(), k.plural()]);
        if let Some(near) = crate::validate::did_you_mean(&self.0, names) {
            write!(f, " (did you mean {:?}?)", near.to_lowercase())?;
        }
        f.write_str(": expected one of Node, Relay, Worker, Policy, NodeSet")
    }
}

/// Reads a stored kind (the store keeps kinds as text).
impl TryFrom<String> for Kind {
    type Error = UnknownKind;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s).ok_or(UnknownKind(s))
    }
}

impl FromStr for Kind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::from_any_name(s).ok_or_else(|| UnknownKind(s.to_string()))
    }
}

/// Object metadata, as in Kubernetes. Clients set `name`, `namespace`, `labels` and
/// `annotations`; the server owns the rest and ignores what clients send for them,
/// except `resourceVersion`, which a replace must echo back (optimistic concurrency).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    /// DNS-1123 label, unique per namespace and kind.
    #[schemars(length(min = 1, max = 63), regex(pattern = patterns::DNS_LABEL))]
    pub name: String,
    /// DNS-1123 label; `default` when omitted, except for a Policy, which is
    /// then cluster-scoped (its namespace is empty, and left out when the
    /// document is written, so that it reads back cluster-scoped).
    #[serde(default = "default_namespace", skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1, max = 63), regex(pattern = patterns::DNS_LABEL))]
    pub namespace: String,
    /// Identifying key/value pairs used by label selectors.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Non-identifying key/value pairs (for example `mooring/prune: disabled`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Server-set unique id; stable for the life of the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<uuid::Uuid>,
    /// Server-set; bumped on every spec change, never on a status change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// Server-set opaque version for optimistic concurrency; a replace must carry
    /// the version it read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// Server-set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<DateTime<Utc>>,
    /// Server-set when a delete was requested; the resource goes once its
    /// finalizers are cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<DateTime<Utc>>,
    /// Server-set; a resource is removed only when this is empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
    /// Server-set: the git commit whose documents last created or changed the
    /// resource through a GitOps sync (`mooring sync --revision`), kept when it is
    /// later edited through the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_revision: Option<String>,
}

fn default_namespace() -> String {
    DEFAULT_NAMESPACE.to_string()
}

impl ObjectMeta {
    /// Metadata with only a name, in the default namespace.
    pub fn named(name: impl Into<String>) -> Self {
        ObjectMeta { name: name.into(), namespace: default_namespace(), ..Default::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_resolve_from_any_spelling() {
        for (s, k) in [
            ("Node", Kind::Node),
            ("nodes", Kind::Node),
            ("relay", Kind::Relay),
            ("WORKERS", Kind::Worker),
            ("policy", Kind::Policy),
            ("policies", Kind::Policy),
        ] {
            assert_eq!(s.parse::<Kind>().unwrap(), k);
        }
        assert!("pods".parse::<Kind>().is_err());
    }
}

#[cfg(test)]
mod unknown_kind_tests {
    use super::*;

    #[test]
    fn a_mistyped_kind_gets_a_suggestion() {
        let cases = [
            (
                "relya",
                "unknown kind \"relya\" (did you mean \"relay\"?): expected one of Node, Relay, Worker, Policy, NodeSet",
            ),
            (
                "wrokers",
                "unknown kind \"wrokers\" (did you mean \"workers\"?): expected one of Node, Relay, Worker, Policy, NodeSet",
            ),
            ("pods", "unknown kind \"pods\": expected one of Node, Relay, Worker, Policy, NodeSet"),
        ];
        for (given, expected) in cases {
            assert_eq!(given.parse::<Kind>().unwrap_err().to_string(), expected, "{given}");
        }
    }
}
