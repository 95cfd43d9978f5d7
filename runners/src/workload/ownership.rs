//! The one ownership rule for every AWS resource Mooring manages.
//!
//! A resource is this Mooring resource's when it carries its `mooring:uid`
//! tag. Anything else found under a wanted name is a conflict — nothing is
//! changed — unless it carries no Mooring tag at all and the resource asks to
//! adopt it (`mooring/adopt: "true"`); then it is tagged and taken over, and an
//! `Adopted` event says so. A resource tagged for another Mooring resource is
//! never adopted: that resource would lose it.
//!
//! Shared infrastructure of the install (the node provisioner's CodeBuild
//! project) is owned by the install instead: it carries [`TAG_INSTALL`].

use crate::cloud::{TAG_UID, Tags};
use crate::reconcile::{ADOPT_ANNOTATION, ReconcileError, Target};

/// The tag that marks shared infrastructure (the provisioner project) as the
/// install's, with the install's name as value.
pub const TAG_INSTALL: &str = "mooring:install";

/// What an AWS resource is to a Mooring resource, by its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// It carries this resource's uid.
    Ours,
    /// It carries no `mooring:uid`.
    Unowned,
    /// It belongs to another Mooring resource (its uid).
    Other(String),
}

impl Ownership {
    /// Reads the ownership off `tags`.
    pub fn of(tags: &Tags, uid: &str) -> Ownership {
        match tags.get(TAG_UID) {
            Some(u) if u == uid => Ownership::Ours,
            Some(other) => Ownership::Other(other.clone()),
            None => Ownership::Unowned,
        }
    }
}

/// What to do with a resource found where one is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// It is ours: carry on.
    Ours,
    /// Take it over: tag it, then carry on (the caller records `Adopted`).
    Adopt,
}

/// Applies the rule to `what` (a description such as `queue jobs`) found with
/// `tags`: ours, adopt, or a `Conflict` that names it and says how to adopt.
pub(crate) fn claim<S, St: Clone>(
    target: &Target<'_, S, St>,
    tags: &Tags,
    what: &str,
) -> Result<Claim, ReconcileError> {
    match Ownership::of(tags, target.uid) {
        Ownership::Ours => Ok(Claim::Ours),
        Ownership::Unowned if target.adopts() => Ok(Claim::Adopt),
        Ownership::Unowned => Err(ReconcileError::Conflict(format!(
            "{what} exists and is not managed by Mooring (it has no {TAG_UID} tag); nothing was changed. \
             To take it over, annotate {} with {ADOPT_ANNOTATION}: \"true\"",
            target.key()
        ))),
        Ownership::Other(uid) => Err(ReconcileError::Conflict(format!(
            "{what} belongs to another Mooring resource (uid {uid}); nothing was changed"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn the_rule_as_a_table() {
        let no_annotations = BTreeMap::new();
        let adopt = BTreeMap::from([(ADOPT_ANNOTATION.to_string(), "true".to_string())]);
        let target = |annotations| Target {
            uid: "u1",
            namespace: "ns",
            name: "w",
            generation: 1,
            annotations,
            spec: &(),
            status: &(),
            fresh: false,
            now: chrono::Utc::now(),
            request: None,
            snapshot_request: None,
            owner: None,
        };
        let ours = Tags::from([(TAG_UID.to_string(), "u1".to_string())]);
        let theirs = Tags::from([(TAG_UID.to_string(), "u2".to_string())]);
        let untagged = Tags::from([("team".to_string(), "a".to_string())]);
        assert_eq!(claim(&target(&no_annotations), &ours, "queue q").unwrap(), Claim::Ours);
        assert_eq!(claim(&target(&adopt), &ours, "queue q").unwrap(), Claim::Ours);
        assert_eq!(claim(&target(&adopt), &untagged, "queue q").unwrap(), Claim::Adopt);
        let e = claim(&target(&no_annotations), &untagged, "queue q").unwrap_err();
        assert!(e.to_string().contains("mooring/adopt") && e.to_string().contains("queue q"), "{e}");
        // Another resource's: never adopted.
        let e = claim(&target(&adopt), &theirs, "queue q").unwrap_err();
        assert!(e.to_string().contains("u2"), "{e}");
    }
}
