//! Everything that touches AWS.
//!
//! A narrow facade per AWS service, in domain terms, with two implementations
//! (the AWS SDK and an in-process simulated cloud). Every call passes a
//! [`gate::CallGate`] first: the controller's shared AWS rate budgets, so a
//! fleet of replicas converges as fast as AWS allows and no faster.

pub mod autoscale;
pub mod aws;
pub mod cloud;
pub mod events;
pub mod gate;
pub mod iam;
pub mod reconcile;
/// The AWS names of what a resource owns (defined with the resource model).
pub use api_types::names;
pub mod observe;
pub mod provision;
pub mod render;
pub mod sim;
pub mod workload;
