//! One module per client command. Each takes its clap arguments and an
//! [`ApiClient`](super::client::ApiClient), prints to stdout, and returns the
//! process exit code, so `cli::run` only dispatches.

pub mod apply;
pub mod delete;
pub mod describe;
pub mod get;
pub mod history;
pub mod release;
pub mod rollback;
pub mod token;
pub mod wait;

use api_types::Kind;
use api_types::meta::DEFAULT_NAMESPACE;
use clap::Args;

/// The one resource a command acts on: `KIND NAME [-n NS]`, shared so every
/// command spells kind, name and namespace the same way.
#[derive(Args, Debug, Clone)]
pub struct Target {
    /// The kind: node, relay or worker (singular, plural or capitalised).
    pub kind: Kind,
    /// The resource's name.
    pub name: String,
    /// The namespace of the resource.
    #[arg(short, long, default_value = DEFAULT_NAMESPACE)]
    pub namespace: String,
}

impl Target {
    /// `relay "gateway"`, as kubectl names a resource in messages.
    pub fn display(&self) -> String {
        format!("{} {:?}", self.kind.as_str().to_ascii_lowercase(), self.name)
    }

    /// `relay.mooring/payments/gateway`, as `apply` prints resources.
    pub fn reference(&self) -> String {
        super::plan::resource_ref(self.kind.as_str(), &self.namespace, &self.name)
    }
}
