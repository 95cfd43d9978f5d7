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
use crate::cloud::{CloudResult, ErrorKind, TAG_NAME, TAG_UID, Tags};

/// The tag with a snapshot's number (its attempt in [`BackupStatus`]).
pub const TAG_SNAPSHOT: &str = "mooring:snapshot";

/// What a pass does about backups, decided from status, the spec, the
/// operator's request and the clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Nothing due; the next scheduled snapshot is at `next` (none without a
    /// schedule).
    Idle { next: Option<DateTime<Utc>> },
    /// Record a new attempt (with the request it answers, if any); the next
    /// pass takes it.
    Start(SnapshotAttempt),
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
    let attempt = |why: String, requested: Option<DateTime<Utc>>| SnapshotAttempt {
        number: status.sequence + 1,
        id: None,
        started: now,
        why,
        requested,
    };
    if let Some(r) = request.filter(|r| status.request_handled.is_none_or(|handled| r.at > handled)) {
        return Plan::Start(attempt(format!("requested by {}", r.by), Some(r.at)));
    }
    let Some(every) = spec.and_then(VolumeBackup::interval).and_then(|d| chrono::Duration::from_std(d).ok()) else {
        return Plan::Idle { next: None };
    };
    let Some(last) = status.last_started else {
        return Plan::Start(attempt("schedule".into(), None));
    };
    match last.checked_add_signed(every) {
        Some(next) if now < next => Plan::Idle { next: Some(next) },
        Some(_) => Plan::Start(attempt("schedule".into(), None)),
        // Not with an interval the schema allows.
        None => Plan::Idle { next: None },
    }
}

fn number_of(s: &Snapshot) -> Option<u32> {
    s.tags.get(TAG_SNAPSHOT).and_then(|n| n.parse().ok())
}

/// The node's snapshots to delete so that `keep` completed ones remain:
/// older completed ones, never `last_good`, and every one that ended in
/// `error` (pure). Only numbered snapshots (the node's backups) count.
pub fn past_retention(snapshots: &[Snapshot], keep: u32, last_good: Option<&str>) -> Vec<String> {
    let mut done: Vec<&Snapshot> =
        snapshots.iter().filter(|s| s.state == SnapshotState::Completed && number_of(s).is_some()).collect();
    // Newest first: by start time, then by number.
    done.sort_by(|a, b| b.started.cmp(&a.started).then(number_of(b).cmp(&number_of(a))));
    let failed = snapshots.iter().filter(|s| s.state == SnapshotState::Error && number_of(s).is_some());
    done.iter()
        .skip(keep as usize)
        .copied()
        .chain(failed)
        .filter(|s| Some(s.id.as_str()) != last_good)
        .map(|s| s.id.clone())
        .collect()
}

/// The snapshot a new data volume of the node starts from: its newest
/// completed backup, as EC2 lists it now (a snapshot deleted behind
/// Mooring's back is not offered), else `from_snapshot`.
pub async fn restore_source(
    snapshots: &dyn Snapshots,
    uid: &str,
    from_snapshot: Option<&str>,
) -> CloudResult<Option<String>> {
    let mine = snapshots.snapshots_tagged(TAG_UID, &[uid.to_string()]).await?;
    let newest = mine
        .iter()
        .filter(|s| s.state == SnapshotState::Completed && number_of(s).is_some())
        .max_by(|a, b| a.started.cmp(&b.started).then(number_of(a).cmp(&number_of(b))));
    Ok(newest.map(|s| s.id.clone()).or_else(|| from_snapshot.map(str::to_string)))
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

/// Looks again this soon while a snapshot is young and pending; then every
/// [`POLL_SLOW`] (a first snapshot of a large volume takes hours).
pub const POLL: Duration = Duration::from_secs(10);
const POLL_SLOW: Duration = Duration::from_secs(60);

/// How long a snapshot the node made may be missing from DescribeSnapshots
/// (its tag filter lags behind CreateSnapshot) before it counts as gone.
const LISTING_LAG: Duration = Duration::from_secs(600);

/// How much earlier than its attempt a snapshot found by number may have
/// started (clocks of replicas and AWS differ) and still be the attempt's.
const CLOCK_SKEW: Duration = Duration::from_secs(300);

fn since(now: DateTime<Utc>, then: DateTime<Utc>) -> Duration {
    (now - then).to_std().unwrap_or(Duration::ZERO)
}

/// One pass over the node's backups: records, takes, follows and prunes.
pub async fn sync(
    snapshots: &dyn Snapshots,
    node: &Backed<'_>,
    status: &BackupStatus,
    request: Option<&SnapshotRequest>,
    now: DateTime<Utc>,
) -> CloudResult<Pass> {
    let mut pass = Pass { status: status.clone(), events: vec![], requeue: None };
    let mut attempt = match plan(node.spec, status, request, now) {
        Plan::Idle { next } => {
            pass.requeue = next.map(|at| since(at, now));
            return Ok(pass);
        }
        Plan::Start(attempt) => {
            // The intent only: the next pass (at once) takes it.
            pass.status.sequence = attempt.number;
            pass.status.last_started = Some(attempt.started);
            if attempt.requested.is_some() {
                pass.status.request_handled = attempt.requested;
            }
            pass.status.in_flight = Some(attempt);
            pass.requeue = Some(Duration::ZERO);
            return Ok(pass);
        }
        Plan::Follow(attempt) => attempt,
    };
    let mine = snapshots.snapshots_tagged(TAG_UID, &[node.uid.to_string()]).await?;
    let found = match &attempt.id {
        Some(id) => mine.iter().find(|s| &s.id == id).cloned(),
        None => {
            let by_number = mine.iter().find(|s| number_of(s) == Some(attempt.number));
            // A snapshot of that number from before the attempt is an older
            // one (the node's status was lost or restored): the attempt takes
            // the next free number instead.
            let earliest = attempt.started - chrono::Duration::from_std(CLOCK_SKEW).unwrap_or_default();
            match by_number {
                Some(s) if s.started.is_none_or(|t| t >= earliest) => Some(s.clone()),
                Some(_) => {
                    attempt.number = mine.iter().filter_map(number_of).max().unwrap_or(0).max(attempt.number) + 1;
                    pass.status.sequence = pass.status.sequence.max(attempt.number);
                    None
                }
                None => None,
            }
        }
    };
    let snapshot = match (found, &attempt.id) {
        (Some(s), _) => s,
        (None, Some(id)) if since(now, attempt.started) < LISTING_LAG => {
            // Not listed yet: EC2's listing follows CreateSnapshot shortly.
            pass.requeue = Some(POLL);
            tracing::debug!(snapshot = %id, "not listed yet");
            pass.status.in_flight = Some(attempt);
            return Ok(pass);
        }
        (None, Some(id)) => {
            pass.events.push(Event::warning(
                "SnapshotFailed",
                format!("snapshot {id} of {} is gone before it completed", node.volume_id),
            ));
            pass.status.in_flight = None;
            return Ok(pass);
        }
        (None, None) => {
            let number = attempt.number.to_string();
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
            pass.status.last_good = Some(SnapshotRecord {
                id: snapshot.id.clone(),
                started: attempt.started,
                requested: attempt.requested,
            });
            pass.events.push(Event::normal("SnapshotCompleted", format!("snapshot {} is complete", snapshot.id)));
            // The list was read before this one completed (or existed).
            let mut kept: Vec<Snapshot> = mine.into_iter().filter(|s| s.id != snapshot.id).collect();
            kept.push(snapshot.clone());
            if let Some(keep) = node.spec.map(|b| b.keep) {
                for id in past_retention(&kept, keep, Some(&snapshot.id)) {
                    // Completion is recorded whatever happens here: a snapshot
                    // that cannot be deleted (in use by an AMI, a deny) is
                    // left, and tried again after the next one.
                    match snapshots.delete_snapshot(&id).await {
                        Ok(()) => {
                            kept.retain(|s| s.id != id);
                            pass.events
                                .push(Event::normal("SnapshotDeleted", format!("snapshot {id}: past keep={keep}")));
                        }
                        Err(e) => pass.events.push(Event::warning(
                            "SnapshotNotDeleted",
                            format!("snapshot {id} is past keep={keep} but was not deleted: {e}"),
                        )),
                    }
                }
            }
            pass.status.kept =
                kept.iter().filter(|s| s.state == SnapshotState::Completed && number_of(s).is_some()).count() as u32;
        }
        SnapshotState::Error => {
            pass.status.in_flight = None;
            pass.events.push(Event::warning(
                "SnapshotFailed",
                format!(
                    "snapshot {} of {} ended in error; it is deleted with the next pruning, and the schedule goes on",
                    snapshot.id, node.volume_id
                ),
            ));
        }
        SnapshotState::Pending | SnapshotState::Other => {
            pass.requeue = Some(if since(now, attempt.started) < Duration::from_secs(120) { POLL } else { POLL_SLOW });
            pass.status.in_flight = Some(SnapshotAttempt { id: Some(snapshot.id.clone()), ..attempt });
        }
    }
    Ok(pass)
}

/// Deletes the node's backups (its numbered snapshots) when its volume went
/// with it. Returns the ids deleted, those left with why (one in use by an
/// AMI, say: left in place rather than holding the node's deletion up), and
/// how many are still pending (for a later pass). A throttled or failed call
/// is an error, to be retried.
pub async fn delete_all(snapshots: &dyn Snapshots, uid: &str) -> CloudResult<Cleared> {
    let mine = snapshots.snapshots_tagged(TAG_UID, &[uid.to_string()]).await?;
    let mut cleared = Cleared::default();
    for s in mine.iter().filter(|s| number_of(s).is_some()) {
        if s.state == SnapshotState::Pending {
            cleared.pending += 1;
            continue;
        }
        match snapshots.delete_snapshot(&s.id).await {
            Ok(()) => cleared.deleted.push(s.id.clone()),
            Err(e) if e.is(ErrorKind::NotFound) => {}
            Err(e) if e.is(ErrorKind::Invalid) => {
                cleared.left.push(format!("{}: {e}", s.id));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(cleared)
}

/// What [`delete_all`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cleared {
    pub deleted: Vec<String>,
    /// Snapshots that could not be deleted, with AWS's reason.
    pub left: Vec<String>,
    pub pending: usize,
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
        SnapshotAttempt { number, id: None, started: at(minute), why: why.into(), requested: None }
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
            (Some(&hourly), &idle, None, 0, Plan::Start(attempt(1, 0, "schedule"))),
            // Within the interval: idle until it ends.
            (Some(&hourly), &taken, None, 59, Plan::Idle { next: Some(at(60)) }),
            (Some(&hourly), &taken, None, 60, Plan::Start(attempt(5, 60, "schedule"))),
            // One in flight is followed, whatever else is due.
            (Some(&hourly), &flying, Some(&asked), 120, Plan::Follow(attempt(5, 0, "schedule"))),
            // A request is taken at once, schedule or not; once.
            (
                None,
                &taken,
                Some(&asked),
                11,
                Plan::Start(SnapshotAttempt { requested: Some(at(10)), ..attempt(5, 11, "requested by alice") }),
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
        for bad in ["", "h", "0h", "06h", "6", "6s", "-1h", "+5h", "1.5h", "123456d", "6é"] {
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
    fn retention_keeps_the_newest_completed_drops_failed_ones_and_never_the_last_good() {
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
        // A failed one (snap-3) goes whatever `keep` says.
        assert_eq!(past_retention(&all, 2, Some("snap-6")), ["snap-2", "snap-1", "snap-3"]);
        assert_eq!(past_retention(&all, 3, Some("snap-6")), ["snap-1", "snap-3"]);
        assert_eq!(past_retention(&all, 4, Some("snap-6")), ["snap-3"]);
        // The last good one stays even when it is the oldest.
        assert_eq!(past_retention(&all, 1, Some("snap-1")), ["snap-4", "snap-2", "snap-3"]);
    }
}
