//! Kubernetes-style events: what happened to a resource, for humans.
//!
//! One definition for everyone who speaks of events: the reconcilers that
//! produce them, the store that keeps them (repeats bump a count), and the
//! API and CLI that show them.

use serde::{Deserialize, Serialize};

/// `Normal` or `Warning`, as in Kubernetes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// Something expected happened (a service was created, a build succeeded).
    Normal,
    /// Something needs attention (drift was corrected, a build failed).
    Warning,
}

impl EventType {
    /// The name in documents and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// An event a reconcile reports about its resource: the store records it with
/// the resource's identity and counts repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Normal or Warning.
    pub type_: EventType,
    /// CamelCase, machine-readable (`ServiceCreated`, `DriftCorrected`).
    pub reason: String,
    /// For humans: what happened, naming the AWS resource.
    pub message: String,
}

impl Event {
    /// A `Normal` event.
    pub fn normal(reason: &str, message: impl Into<String>) -> Event {
        Event { type_: EventType::Normal, reason: reason.into(), message: message.into() }
    }

    /// A `Warning` event.
    pub fn warning(reason: &str, message: impl Into<String>) -> Event {
        Event { type_: EventType::Warning, reason: reason.into(), message: message.into() }
    }

    /// Whether this is a warning.
    pub fn is_warning(&self) -> bool {
        self.type_ == EventType::Warning
    }
}
