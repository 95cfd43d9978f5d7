//! Mooring's desired state: the Postgres store and the HTTP API in front of it.
//!
//! Postgres is the source of truth. [`store::Store`] keeps one row per resource, an
//! append-only signed revision history, a gap-free change feed that readers can
//! resume from any sequence number, Kubernetes-style events and API tokens. The
//! [`api`] module serves it over HTTP with axum. This crate never talks to AWS.

pub mod admission;
pub mod api;
pub mod auth;
pub mod gitops;
pub mod plan;
pub mod preview;
pub mod ratelimit;
pub mod redis;
pub mod selector;
pub mod signing;
pub mod store;

pub use store::{Store, StoreError};
