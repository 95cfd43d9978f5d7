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

/// The message with AWS request ids taken out (` (request id 1a2b…)`, as
/// Mooring's AWS errors end), so repeats of one failure group into one event
/// with a count instead of a row per attempt: every AWS answer has a new id.
pub fn without_request_ids(message: &str) -> std::borrow::Cow<'_, str> {
    const MARK: &str = " (request id ";
    if !message.contains(MARK) {
        return std::borrow::Cow::Borrowed(message);
    }
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(MARK) {
        out.push_str(&rest[..start]);
        match rest[start..].find(')') {
            Some(end) => rest = &rest[start + end + 1..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod request_id_tests {
    use super::without_request_ids;

    #[test]
    fn request_ids_are_taken_out() {
        let cases = [
            ("plain message", "plain message"),
            (
                "InvalidSubnetID.NotFound: subnet-0a1b2c3d does not exist (request id 5f2c-11aa)",
                "InvalidSubnetID.NotFound: subnet-0a1b2c3d does not exist",
            ),
            ("a (request id 1) then b (request id 2); c", "a then b; c"),
            ("cut short (request id 7", "cut short"),
            ("(not a request id) stays", "(not a request id) stays"),
        ];
        for (given, expected) in cases {
            assert_eq!(without_request_ids(given), expected, "{given}");
        }
    }
}
