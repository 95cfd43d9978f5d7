//! Backups of a node's data volume: EBS snapshots on a schedule
//! (`dataVolume.backup {every, keep}`) or on request (`mooring node
//! snapshot`), tagged with the node's uid at birth and pruned to `keep`.
//!
//! CreateSnapshot takes no client token, so a snapshot is an intent first:
//! one pass records `{number, started}` in status ([`plan`] says when), the
//! next looks for a snapshot tagged `mooring:snapshot=<number>` and creates
//! it only if there is none. A crash between the create and the status write
//! finds the snapshot by its tag instead of taking a second one. Later passes
//! follow it to `completed` (it becomes the node's last good snapshot, the
//! one a lost volume is restored from) or `error` (a warning; the schedule
//! goes on from the failed attempt).
//!
//! Only snapshots carrying the node's `mooring:uid` and a `mooring:snapshot`
//! tag are ever deleted: those past `keep`, oldest first, never the last good
//! one, never one still pending.

use std::time::Duration;

use api_types::Event;
use api_types::node::{BackupStatus, SnapshotAttempt, SnapshotRecord, SnapshotRequest, VolumeBackup};
use chrono::{DateTime, Utc};

use crate::cloud::snapshots::{Snapshot, SnapshotState, Snapshots};
use crate::cloud::{CloudResult, TAG_NAME, TAG_UID, Tags};

/// The tag with a snapshot's number (its attempt in [`BackupStatus`]).
pub const TAG_SNAPSHOT: &str = "mooring:snapshot";

/// What a pass does about backups, decided from status, the spec, the
/// operator's request and the clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Nothing due; the next scheduled snapshot is at `next` (none without a
    /// schedule).
    Idle { next: Option<DateTime<Utc>> },
    /// Record a new attempt; the next pass takes it.
    Start { attempt: SnapshotAttempt, request: Option<DateTime<Utc>> },
    /// Take the recorded attempt's snapshot, or follow it.
    Follow(SnapshotAttempt),
}

/// What the node's backups need now (pure).
pub fn plan(
    spec: Option<&VolumeBackup>,
    status: &BackupStatus,
    request: Option<&SnapshotRequest>,
    now: DateTime<Utc>,
) -> Plan {
    if let Some(attempt) = &status.in_flight {
        return Plan::Follow(attempt.clone());
    }
    let attempt = |why: String| SnapshotAttempt { number: status.sequence + 1, id: None, started: now, why };
    if let Some(r) = request.filter(|r| status.request_handled.is_none_or(|handled| r.at > handled)) {
        return Plan::Start { attempt: attempt(format!("requested by {}", r.by)), request: Some(r.at) };
    }
    let Some(every) = spec.and_then(VolumeBackup::interval).and_then(|d| chrono::Duration::from_std(d).ok()) else {
        return Plan::Idle { next: None };
    };
    match status.last_started.and_then(|last| last.checked_add_signed(every)) {
        Some(next) if now < next => Plan::Idle { next: Some(next) },
        _ => Plan::Start { attempt: attempt("schedule".into()), request: None },
    }
}

/// The node's completed snapshots to delete so that `keep` remain: oldest
/// first, never `last_good` (pure).
pub fn past_retention(snapshots: &[Snapshot], keep: u32, last_good: Option<&str>) -> Vec<String> {
    let mut done: Vec<&Snapshot> =
        snapshots.iter().filter(|s| s.state == SnapshotState::Completed && s.tags.contains_key(TAG_SNAPSHOT)).collect();
    // Newest first: by start time, then by number.
    let number = |s: &Snapshot| s.tags.get(TAG_SNAPSHOT).and_then(|n| n.parse::<u32>().ok()).unwrap_or(0);
    done.sort_by(|a, b| b.started.cmp(&a.started).then(number(b).cmp(&number(a))));
    done.iter().skip(keep as usize).filter(|s| Some(s.id.as_str()) != last_good).map(|s| s.id.clone()).collect()
}

/// The node a pass works for.
pub struct Backed<'a> {
    pub uid: &'a str,
    /// `namespace/name`, for messages and the snapshot's description.
    pub key: &'a str,
    /// The data volume recorded in status.
    pub volume_id: &'a str,
    pub spec: Option<&'a VolumeBackup>,
    /// The spec's user tags, put on each snapshot too.
    pub user_tags: &'a Tags,
}

/// The outcome of a pass: the new backup status, what happened, and when to
/// look again.
#[derive(Debug, Clone, PartialEq)]
pub struct Pass {
    pub status: BackupStatus,
    pub events: Vec<Event>,
    pub requeue: Option<Duration>,
}

/// Looks again this soon while a snapshot is pending.
pub const POLL: Duration = Duration::from_secs(10);

/// One pass over the node's backups: records, takes, follows and prunes.
pub async fn sync(
    snapshots: &dyn Snapshots,
    node: &Backed<'_>,
    status: &BackupStatus,
    request: Option<&SnapshotRequest>,
    now: DateTime<Utc>,
) -> CloudResult<Pass> {
    let mut pass = Pass { status: status.clone(), events: vec![], requeue: None };
    let attempt = match plan(node.spec, status, request, now) {
        Plan::Idle { next } => {
            pass.requeue = next.map(|at| (at - now).to_std().unwrap_or(Duration::ZERO));
            return Ok(pass);
        }
        Plan::Start { attempt, request } => {
            // The intent only: the next pass (at once) takes it.
            pass.status.sequence = attempt.number;
            pass.status.last_started = Some(attempt.started);
            if request.is_some() {
                pass.status.request_handled = request;
            }
            pass.status.in_flight = Some(attempt);
            pass.requeue = Some(Duration::ZERO);
            return Ok(pass);
        }
        Plan::Follow(attempt) => attempt,
    };
    let mine = snapshots.snapshots_tagged(TAG_UID, &[node.uid.to_string()]).await?;
    let number = attempt.number.to_string();
    let found = match &attempt.id {
        Some(id) => mine.iter().find(|s| &s.id == id).cloned(),
        None => mine.iter().find(|s| s.tags.get(TAG_SNAPSHOT) == Some(&number)).cloned(),
    };
    let snapshot = match (found, &attempt.id) {
        (Some(s), _) => s,
        (None, Some(id)) => {
            pass.status.in_flight = None;
            pass.events.push(Event::warning(
                "SnapshotFailed",
                format!("snapshot {id} of {} is gone before it completed", node.volume_id),
            ));
            return Ok(pass);
        }
        (None, None) => {
            let mut tags = node.user_tags.clone();
            tags.insert(TAG_UID.into(), node.uid.into());
            tags.insert(TAG_NAME.into(), node.key.into());
            tags.insert(TAG_SNAPSHOT.into(), number.clone());
            let description = format!("Mooring backup {number} of node {} ({})", node.key, attempt.why);
            let s = snapshots.create_snapshot(node.volume_id, &description, &tags).await?;
            pass.events.push(Event::normal(
                "SnapshotStarted",
                format!("snapshot {} of {} ({})", s.id, node.volume_id, attempt.why),
            ));
            s
        }
    };
    match snapshot.state {
        SnapshotState::Completed => {
            pass.status.in_flight = None;
            pass.status.last_good = Some(SnapshotRecord { id: snapshot.id.clone(), started: attempt.started });
            pass.events.push(Event::normal("SnapshotCompleted", format!("snapshot {} is complete", snapshot.id)));
            let mut kept = mine.clone();
            if !kept.iter().any(|s| s.id == snapshot.id) {
                kept.push(snapshot.clone());
            }
            // The list was read before this one completed.
            for s in kept.iter_mut().filter(|s| s.id == snapshot.id) {
                s.state = SnapshotState::Completed;
            }
            if let Some(keep) = node.spec.map(|b| b.keep) {
                for id in past_retention(&kept, keep, Some(&snapshot.id)) {
                    snapshots.delete_snapshot(&id).await?;
                    kept.retain(|s| s.id != id);
                    pass.events.push(Event::normal("SnapshotDeleted", format!("snapshot {id}: past keep={keep}")));
                }
            }
            pass.status.kept = kept
                .iter()
                .filter(|s| s.state == SnapshotState::Completed && s.tags.contains_key(TAG_SNAPSHOT))
                .count() as u32;
        }
        SnapshotState::Error => {
            pass.status.in_flight = None;
            pass.events.push(Event::warning(
                "SnapshotFailed",
                format!("snapshot {} of {} ended in error; the schedule goes on", snapshot.id, node.volume_id),
            ));
        }
        SnapshotState::Pending | SnapshotState::Other => {
            pass.status.in_flight = Some(SnapshotAttempt { id: Some(snapshot.id.clone()), ..attempt });
            pass.requeue = Some(POLL);
        }
    }
    Ok(pass)
}

/// The node's snapshots that go with it when its volume is deleted: those it
/// took (tagged `mooring:snapshot`). Returns how many are still pending (left
/// for a later pass) after deleting the rest.
pub async fn delete_all(snapshots: &dyn Snapshots, uid: &str) -> CloudResult<(Vec<String>, usize)> {
    let mine = snapshots.snapshots_tagged(TAG_UID, &[uid.to_string()]).await?;
    let mut deleted = vec![];
    let mut pending = 0;
    for s in mine.iter().filter(|s| s.tags.contains_key(TAG_SNAPSHOT)) {
        if s.state == SnapshotState::Pending {
            pending += 1;
            continue;
        }
        snapshots.delete_snapshot(&s.id).await?;
        deleted.push(s.id.clone());
    }
    Ok((deleted, pending))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + minute * 60, 0).unwrap()
    }

    fn backup(every: &str) -> VolumeBackup {
        VolumeBackup { every: every.into(), keep: 3 }
    }

    fn attempt(number: u32, minute: i64, why: &str) -> SnapshotAttempt {
        SnapshotAttempt { number, id: None, started: at(minute), why: why.into() }
    }

    #[test]
    fn when_a_snapshot_is_due_as_a_table() {
        let hourly = backup("1h");
        let idle = BackupStatus::default();
        let taken = BackupStatus { sequence: 4, last_started: Some(at(0)), ..Default::default() };
        let flying = BackupStatus { in_flight: Some(attempt(5, 0, "schedule")), sequence: 5, ..taken.clone() };
        let asked = SnapshotRequest { by: "alice".into(), at: at(10) };
        let handled = BackupStatus { request_handled: Some(at(10)), ..taken.clone() };
        type Case<'a> = (Option<&'a VolumeBackup>, &'a BackupStatus, Option<&'a SnapshotRequest>, i64, Plan);
        let cases: Vec<Case<'_>> = vec![
            // No schedule, no request: nothing, ever.
            (None, &idle, None, 0, Plan::Idle { next: None }),
            // The first snapshot of a schedule is taken at once.
            (Some(&hourly), &idle, None, 0, Plan::Start { attempt: attempt(1, 0, "schedule"), request: None }),
            // Within the interval: idle until it ends.
            (Some(&hourly), &taken, None, 59, Plan::Idle { next: Some(at(60)) }),
            (Some(&hourly), &taken, None, 60, Plan::Start { attempt: attempt(5, 60, "schedule"), request: None }),
            // One in flight is followed, whatever else is due.
            (Some(&hourly), &flying, Some(&asked), 120, Plan::Follow(attempt(5, 0, "schedule"))),
            // A request is taken at once, schedule or not; once.
            (
                None,
                &taken,
                Some(&asked),
                11,
                Plan::Start { attempt: attempt(5, 11, "requested by alice"), request: Some(at(10)) },
            ),
            (Some(&hourly), &handled, Some(&asked), 11, Plan::Idle { next: Some(at(60)) }),
            (None, &handled, Some(&asked), 11, Plan::Idle { next: None }),
        ];
        for (i, (spec, status, request, now, want)) in cases.into_iter().enumerate() {
            assert_eq!(plan(spec, status, request, at(now)), want, "case {i}");
        }
    }

    #[test]
    fn intervals_parse_in_minutes_hours_and_days() {
        for (every, secs) in [("30m", 1800), ("6h", 21_600), ("1d", 86_400)] {
            assert_eq!(backup(every).interval(), Some(Duration::from_secs(secs)), "{every}");
        }
        for bad in ["", "h", "0h", "6", "6s", "-1h", "1.5h"] {
            assert_eq!(backup(bad).interval(), None, "{bad:?}");
        }
    }

    fn snap(id: &str, number: Option<u32>, minute: i64, state: SnapshotState) -> Snapshot {
        let mut tags = Tags::from([(TAG_UID.to_string(), "u".to_string())]);
        if let Some(n) = number {
            tags.insert(TAG_SNAPSHOT.into(), n.to_string());
        }
        Snapshot { id: id.into(), volume_id: "vol-1".into(), state, started: Some(at(minute)), tags }
    }

    #[test]
    fn retention_keeps_the_newest_completed_and_never_the_last_good() {
        use SnapshotState::*;
        let all = vec![
            snap("snap-1", Some(1), 0, Completed),
            snap("snap-2", Some(2), 60, Completed),
            snap("snap-3", Some(3), 120, Error),
            snap("snap-4", Some(4), 180, Completed),
            snap("snap-5", Some(5), 240, Pending),
            snap("snap-6", Some(6), 300, Completed),
            // Not one Mooring's schedule took (no number): never deleted.
            snap("snap-x", None, -60, Completed),
        ];
        assert_eq!(past_retention(&all, 2, Some("snap-6")), ["snap-2", "snap-1"]);
        assert_eq!(past_retention(&all, 3, Some("snap-6")), ["snap-1"]);
        assert!(past_retention(&all, 4, Some("snap-6")).is_empty());
        // The last good one stays even when it is the oldest.
        assert_eq!(past_retention(&all, 1, Some("snap-1")), ["snap-4", "snap-2"]);
    }
}
