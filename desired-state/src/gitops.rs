//! The rules of GitOps writes, as pure decisions: which labels and annotations
//! mark what a sync manages, which source owns a resource, how many resources a
//! prune may take, the order of sync waves, and which annotations belong to
//! operators rather than to git.
//!
//! The API's bulk apply (`/v1/apply?source=gitops`) enforces them and
//! `mooring sync` orders its waves with them, so both read one definition.

use std::collections::BTreeMap;
use std::fmt;

/// The label GitOps puts on what it manages; only such resources are pruned.
pub const MANAGED_BY: (&str, &str) = ("mooring/managed-by", "gitops");

/// The label naming the sync source (a repository and path, by a name the
/// pipeline chooses) that owns a resource. A sync prunes only its own source's
/// resources, so two repositories never prune each other's.
pub const SOURCE_LABEL: &str = "mooring/source";

/// The annotation that protects a resource from pruning.
pub const PRUNE_ANNOTATION: (&str, &str) = ("mooring/prune", "disabled");

/// The annotation that orders a sync: lower waves are applied first, and a
/// wave starts once the previous one is `Ready`; pruning runs last, highest
/// wave first. Absent means wave 0; negative waves are allowed.
pub const SYNC_WAVE_ANNOTATION: &str = "mooring/sync-wave";

/// Annotations operators set through the API during operations (pausing the
/// autoscaler, adopting an existing AWS resource, pausing reconciliation).
/// Git does not own them: a sync that does not declare one keeps the stored
/// value, so it is neither reported as drift nor reverted.
pub const OPERATIONAL_ANNOTATIONS: [&str; 3] = ["mooring/scaling-paused", "mooring/adopt", "mooring/reconcile"];

/// The share of a source's resources a prune may take without
/// `allowMassPrune`, in percent (argo-cd#15058, flux2#1366: an emptied or
/// truncated checkout must not wipe the fleet).
pub const DEFAULT_MAX_PRUNE_PERCENT: u8 = 30;

/// Whether `name` can name a sync source: it is stored as a label value, so it
/// follows the label value rules (1–63 of `[A-Za-z0-9._-]`, alphanumeric at
/// both ends).
pub fn valid_source_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

/// The sync wave of a resource from its annotations (0 when absent).
pub fn sync_wave(annotations: &BTreeMap<String, String>) -> Result<i32, InvalidWave> {
    match annotations.get(SYNC_WAVE_ANNOTATION) {
        None => Ok(0),
        Some(v) => v.trim().parse().map_err(|_| InvalidWave(v.clone())),
    }
}

/// A `mooring/sync-wave` annotation that is not an integer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("annotation {SYNC_WAVE_ANNOTATION} must be an integer, got {0:?}")]
pub struct InvalidWave(pub String);

/// Whether a resource asks never to be pruned.
pub fn prune_disabled(annotations: &BTreeMap<String, String>) -> bool {
    annotations.get(PRUNE_ANNOTATION.0).map(String::as_str) == Some(PRUNE_ANNOTATION.1)
}

/// The operational annotations of a stored resource that a GitOps document
/// does not declare: they are carried over to the new version.
pub fn kept_annotations<'a>(
    stored: &'a BTreeMap<String, String>,
    declared: &BTreeMap<String, String>,
) -> impl Iterator<Item = (&'a String, &'a String)> {
    stored.iter().filter(|(k, _)| OPERATIONAL_ANNOTATIONS.contains(&k.as_str()) && !declared.contains_key(*k))
}

/// Why a prune was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PruneRefusal {
    /// It would remove every resource of the source.
    All { doomed: usize },
    /// It would remove more than the allowed share.
    TooMany { doomed: usize, managed: usize, max_percent: u8 },
}

impl fmt::Display for PruneRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PruneRefusal::All { doomed } => {
                write!(f, "refusing to prune all {doomed} resources of the source")
            }
            PruneRefusal::TooMany { doomed, managed, max_percent } => write!(
                f,
                "refusing to prune {doomed} of {managed} resources of the source ({}%, more than the allowed {max_percent}%)",
                doomed * 100 / managed
            ),
        }
    }
}

/// The prune guard: may a sync prune `doomed` of the `managed` resources of its
/// source? Pruning all of them, or more than `max_percent` of them, needs
/// `allow_mass_prune`.
pub fn check_prune(doomed: usize, managed: usize, max_percent: u8, allow_mass_prune: bool) -> Result<(), PruneRefusal> {
    if allow_mass_prune || doomed == 0 {
        return Ok(());
    }
    if doomed >= managed {
        return Err(PruneRefusal::All { doomed });
    }
    if doomed * 100 > managed * usize::from(max_percent) {
        return Err(PruneRefusal::TooMany { doomed, managed, max_percent });
    }
    Ok(())
}

/// The order in which a prune requests deletions: highest sync wave first
/// (what later waves depend on goes last), then by key, so the order is the
/// same on every run.
pub fn prune_order<K: Ord>(mut doomed: Vec<(i32, K)>) -> Vec<K> {
    doomed.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    doomed.into_iter().map(|(_, key)| key).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn prune_guard_table() {
        use PruneRefusal::*;
        // (doomed, managed, max %, allow) → verdict
        type Case = (usize, usize, u8, bool, Result<(), PruneRefusal>);
        let cases: [Case; 10] = [
            (0, 0, 30, false, Ok(())),
            (0, 10, 30, false, Ok(())),
            (1, 10, 30, false, Ok(())),
            (3, 10, 30, false, Ok(())),
            (4, 10, 30, false, Err(TooMany { doomed: 4, managed: 10, max_percent: 30 })),
            (1, 2, 30, false, Err(TooMany { doomed: 1, managed: 2, max_percent: 30 })),
            (1, 2, 50, false, Ok(())),
            (5, 5, 100, false, Err(All { doomed: 5 })),
            (5, 5, 30, true, Ok(())),
            (9, 10, 30, true, Ok(())),
        ];
        for (doomed, managed, max, allow, want) in cases {
            assert_eq!(check_prune(doomed, managed, max, allow), want, "{doomed}/{managed} at {max}% allow={allow}");
        }
        assert_eq!(
            check_prune(4, 10, 30, false).unwrap_err().to_string(),
            "refusing to prune 4 of 10 resources of the source (40%, more than the allowed 30%)"
        );
    }

    #[test]
    fn prunes_go_highest_wave_first() {
        let doomed = vec![(0, "db"), (2, "web"), (-1, "network"), (2, "api"), (0, "cache")];
        assert_eq!(prune_order(doomed), ["api", "web", "cache", "db", "network"]);
        assert!(prune_order::<&str>(vec![]).is_empty());
    }

    #[test]
    fn waves_and_protection() {
        assert_eq!(sync_wave(&ann(&[])), Ok(0));
        assert_eq!(sync_wave(&ann(&[(SYNC_WAVE_ANNOTATION, "-2")])), Ok(-2));
        assert_eq!(sync_wave(&ann(&[(SYNC_WAVE_ANNOTATION, " 3 ")])), Ok(3));
        assert_eq!(sync_wave(&ann(&[(SYNC_WAVE_ANNOTATION, "first")])), Err(InvalidWave("first".into())));
        assert!(prune_disabled(&ann(&[("mooring/prune", "disabled")])));
        assert!(!prune_disabled(&ann(&[("mooring/prune", "enabled")])));
        assert!(!prune_disabled(&ann(&[])));
    }

    #[test]
    fn operational_annotations_not_in_git_are_kept() {
        let stored = ann(&[("mooring/scaling-paused", "true"), ("mooring/adopt", "true"), ("team", "a")]);
        let declared = ann(&[("mooring/adopt", "false")]);
        let kept: Vec<_> = kept_annotations(&stored, &declared).map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(kept, vec![("mooring/scaling-paused", "true")]);
    }

    #[test]
    fn source_names_are_label_values() {
        for ok in ["platform", "infra.prod", "team_a-apps", "a"] {
            assert!(valid_source_name(ok), "{ok}");
        }
        for bad in ["", "-x", "x-", "a/b", "a b", &"x".repeat(64)] {
            assert!(!valid_source_name(bad), "{bad}");
        }
    }
}
