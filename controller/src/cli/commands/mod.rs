//! One module per client command. Each takes its clap arguments and an
//! [`ApiClient`](super::client::ApiClient), prints to stdout, and returns the
//! process exit code, so `cli::run` only dispatches.

pub mod apply;
pub mod delete;
pub mod describe;
pub mod edit;
pub mod get;
pub mod history;
pub mod logs;
pub mod node;
pub mod policy;
pub mod release;
pub mod rollback;
pub mod rollout;
pub mod sync;
pub mod token;
pub mod version;
pub mod wait;

use api_types::Kind;
use api_types::meta::{CLUSTER_NAMESPACE, DEFAULT_NAMESPACE};
use clap::Args;

/// The one resource a command acts on: `KIND NAME [-n NS]`, shared so every
/// command spells kind, name and namespace the same way.
#[derive(Args, Debug, Clone)]
pub struct Target {
    /// The kind: node, relay, worker or policy (singular, plural or capitalised).
    pub kind: Kind,
    /// The resource's name.
    pub name: String,
    /// The namespace of the resource [default: `default`; for a policy, none:
    /// the cluster-scoped one].
    #[arg(short, long)]
    pub namespace: Option<String>,
}

/// The namespace a command means when `-n` is not given: `default`, except
/// for policies, where no namespace means the cluster-scoped policy.
pub fn namespace_or_default(kind: Kind, namespace: Option<&str>) -> &str {
    match namespace {
        Some(ns) => ns,
        None if kind.may_be_cluster_scoped() => CLUSTER_NAMESPACE,
        None => DEFAULT_NAMESPACE,
    }
}

impl Target {
    /// The namespace, with the default applied (see [`namespace_or_default`]).
    pub fn ns(&self) -> &str {
        namespace_or_default(self.kind, self.namespace.as_deref())
    }

    /// `relay "gateway"`, as kubectl names a resource in messages.
    pub fn display(&self) -> String {
        format!("{} {:?}", self.kind.as_str().to_ascii_lowercase(), self.name)
    }

    /// `relay.mooring/payments/gateway`, as `apply` prints resources.
    pub fn reference(&self) -> String {
        super::plan::resource_ref(self.kind.as_str(), self.ns(), &self.name)
    }
}
