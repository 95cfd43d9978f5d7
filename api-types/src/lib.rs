//! Mooring's resource model.
//!
//! Every document Mooring stores has the same envelope as a Kubernetes object:
//! `apiVersion`, `kind`, `metadata`, `spec` and a server-owned `status`. This crate
//! defines the kinds ([`Node`], [`NodeSet`], [`Relay`], [`Worker`], and the
//! admission [`Policy`]), their JSON Schemas,
//! the validation that runs before anything is stored (every violation, each with
//! its field path), the canonical spec hash that decides whether a spec changed,
//! and the helpers that keep status conditions honest.
//!
//! The crate is pure: no I/O, no async runtime. Everything that stores or applies
//! a document builds on it.

pub mod common;
pub mod condition;
pub mod document;
pub mod event;
pub mod hash;
pub mod meta;
pub mod names;
pub mod node;
pub mod nodeset;
pub mod parse;
pub mod patterns;
pub mod policy;
pub mod references;
pub mod relay;
pub mod rollout;
pub mod schema;
pub mod status;
pub mod validate;
pub mod worker;

pub use condition::{Condition, ConditionStatus, ConditionType, Conditions};
pub use document::{AnyResource, Resource};
pub use event::{Event, EventType};
pub use hash::{SpecHash, spec_hash};
pub use meta::{API_VERSION, Kind, ObjectMeta};
pub use node::{Node, NodeSpec, NodeStatus};
pub use nodeset::{NodeSet, NodeSetSpec, NodeSetStatus};
pub use parse::{Limit, ParseError, ParseLimits, parse_documents, parse_documents_within, parse_json_within};
pub use policy::{Policy, PolicySpec};
pub use references::{Reference, ReferenceKind};
pub use relay::{Relay, RelaySpec, RelayStatus};
pub use status::Status;
pub use validate::{FieldError, ValidationErrors, validate_document};
pub use worker::{Worker, WorkerSpec, WorkerStatus};
