//! The NodeSet reconciler: keeps a set's members — Node resources named
//! `{set}-{ordinal}` — equal to its template, through the store's own write
//! path (source `controller`, the set as owner), so each member's history,
//! events and teardown are a Node's. The Node reconciler provisions each
//! member; the set's own AWS calls are Route53's, with `spec.discovery`: it
//! keeps the members' DNS records in a private zone
//! ([`runners::workload::discovery`]).
//!
//! Each pass reads the members, decides with the pure [`plan`] what to create,
//! update or delete, writes that, and reports counts and conditions. A
//! template change replaces members highest ordinal first, never taking more
//! than `maxUnavailable` members out of `Ready` at once; a member that is not
//! `Ready` already is updated at once (it costs no availability, and a set
//! stuck on a bad template is fixed by a new one, not by hand). Members are
//! read again every `poll` while anything is in flight.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use api_types::condition::{Condition, ConditionStatus, ConditionType, Conditions};
use api_types::meta::{API_VERSION, ObjectMeta, reconcile_paused};
use api_types::nodeset::{
    Discovery, DiscoveryStatus, MemberStatus, NodeSetSpec, NodeSetStatus, ORDINAL_LABEL, REVISION_ANNOTATION,
    SET_LABEL, SetUpdateStrategy, WRITTEN_ANNOTATION, member_name,
};
use api_types::{AnyResource, Event, Kind, NodeStatus, Resource};
use desired_state::store::{Store, StoreError, StoredResource};
use runners::cloud::dns::{RecordChange, RecordType};
use runners::cloud::gated::Gated;
use runners::cloud::{Dns, ErrorKind};
use runners::reconcile::{ADOPT_ANNOTATION, ReconcileError, Retry};
use runners::workload::discovery::{self, Wanted};

use crate::reconcile::{Context, DynReconciler, PAUSED_REASON, Step};

/// Condition reasons of a NodeSet.
pub mod reason {
    /// `Ready=True`: every member is `Ready`.
    pub const ALL_MEMBERS_READY: &str = "AllMembersReady";
    /// `Ready=False`: some members are missing or not `Ready` (named).
    pub const MEMBERS_NOT_READY: &str = "MembersNotReady";
    /// `Progressing=True`: members are being replaced with the new template.
    pub const ROLLING_UPDATE: &str = "RollingUpdate";
    /// `Progressing=True`: members are being created or removed.
    pub const SCALING: &str = "Scaling";
    /// `Progressing=False`: every member is on the template.
    pub const ROLLOUT_COMPLETE: &str = "RolloutComplete";
    /// `Progressing=False`: members below `partition` keep an older template.
    pub const PARTITION_HELD: &str = "PartitionHeld";
    /// `Degraded=True`: a member reports `Degraded` (its failed build or health check).
    pub const MEMBER_FAILED: &str = "MemberFailed";
    /// `Degraded=True`: a member stayed not `Ready` past `progressDeadlineSeconds`.
    pub const MEMBER_NOT_READY: &str = "MemberNotReady";
    /// `Ready=False`: the set is being deleted, its members first.
    pub const DELETING: &str = "Deleting";
}

/// How often the set looks at its members.
#[derive(Debug, Clone, Copy)]
pub struct NodeSetConfig {
    /// While members are created, replaced or removed.
    pub poll: Duration,
    /// When everything is settled (a member may still fail later).
    pub resync: Duration,
}

impl Default for NodeSetConfig {
    fn default() -> Self {
        NodeSetConfig { poll: Duration::from_secs(2), resync: Duration::from_secs(30) }
    }
}

/// One member, as [`plan`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub ordinal: u32,
    /// The set revision its spec was written from.
    pub revision: Option<String>,
    /// `Ready` at its latest generation.
    pub available: bool,
    /// Its deletion was asked for.
    pub deleting: bool,
}

/// One change to the members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create(u32),
    Update(u32),
    Delete(u32),
}

/// What to write now, from the members as they are. Pure.
///
/// - Every missing ordinal below `replicas` is created (all at once: new
///   members take nothing out of service).
/// - Members at or above `replicas` go highest first, one at a time.
/// - Outdated members at or above `partition` are updated highest first:
///   those already not `Ready` at once, the others while fewer than
///   `maxUnavailable` members are unavailable (missing ones count).
pub fn plan(replicas: u32, strategy: &SetUpdateStrategy, revision: &str, members: &[Member]) -> Vec<Action> {
    let by_ordinal: BTreeMap<u32, &Member> = members.iter().map(|m| (m.ordinal, m)).collect();
    let mut actions: Vec<Action> = (0..replicas).filter(|i| !by_ordinal.contains_key(i)).map(Action::Create).collect();
    let missing = actions.len() as u32;
    let excess: Vec<&Member> = by_ordinal.range(replicas..).map(|(_, m)| *m).collect();
    if !excess.iter().any(|m| m.deleting)
        && let Some(last) = excess.last()
    {
        actions.push(Action::Delete(last.ordinal));
    }
    let in_range: Vec<&Member> = by_ordinal.range(..replicas).map(|(_, m)| *m).collect();
    let unavailable = missing + in_range.iter().filter(|m| !m.available || m.deleting).count() as u32;
    let outdated: Vec<&Member> = in_range
        .iter()
        .rev()
        .filter(|m| m.ordinal >= strategy.partition && !m.deleting && m.revision.as_deref() != Some(revision))
        .copied()
        .collect();
    actions.extend(outdated.iter().filter(|m| !m.available).map(|m| Action::Update(m.ordinal)));
    let budget = strategy.max_unavailable.saturating_sub(unavailable) as usize;
    actions.extend(outdated.iter().filter(|m| m.available).take(budget).map(|m| Action::Update(m.ordinal)));
    actions
}

/// The NodeSet reconciler, over the store (members) and Route53 (their DNS records).
pub struct NodeSets {
    store: Store,
    dns: Arc<dyn Dns>,
    config: NodeSetConfig,
}

impl NodeSets {
    pub fn new(store: Store, dns: Arc<dyn Dns>, config: NodeSetConfig) -> NodeSets {
        NodeSets { store, dns, config }
    }
}

/// A member as read from the store.
struct Observed<'a> {
    row: &'a StoredResource,
    status: NodeStatus,
    member: Member,
    /// When the set last wrote the member's spec.
    written_at: chrono::DateTime<chrono::Utc>,
}

impl<'a> Observed<'a> {
    fn new(row: &'a StoredResource) -> Option<Observed<'a>> {
        let ordinal = row.labels.0.get(ORDINAL_LABEL)?.parse().ok()?;
        let status: NodeStatus = serde_json::from_value(row.status.clone()).unwrap_or_default();
        let current = status.observed_generation == Some(row.generation);
        let deleting = row.deletion_timestamp.is_some();
        let available = current
            && !deleting
            && condition(&status, ConditionType::Ready).is_some_and(|c| c.status == ConditionStatus::True);
        let member =
            Member { ordinal, revision: row.annotations.0.get(REVISION_ANNOTATION).cloned(), available, deleting };
        let written_at = row
            .annotations
            .0
            .get(WRITTEN_ANNOTATION)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or(row.created_at, |t| t.with_timezone(&chrono::Utc));
        Some(Observed { row, status, member, written_at })
    }

    /// Why the member counts as failed, if it does: it reports `Degraded` for
    /// its latest generation, or it has not been `Ready` for longer than the
    /// deadline — counted from when the set last wrote it, or from when it
    /// stopped being Ready if that came later.
    fn failure(&self, deadline: Duration, now: chrono::DateTime<chrono::Utc>) -> Option<(&'static str, String)> {
        if self.member.available || self.member.deleting {
            return None;
        }
        let name = &self.row.name;
        if let Some(d) = condition(&self.status, ConditionType::Degraded)
            && d.status == ConditionStatus::True
            && d.observed_generation == Some(self.row.generation)
        {
            return Some((reason::MEMBER_FAILED, format!("{name}: {} ({})", d.message, d.reason)));
        }
        let ready = condition(&self.status, ConditionType::Ready);
        let since = match ready {
            Some(c) if c.status != ConditionStatus::True && c.last_transition_time > self.written_at => {
                c.last_transition_time
            }
            _ => self.written_at,
        };
        let waited = (now - since).to_std().unwrap_or_default();
        (waited > deadline).then(|| {
            let why = ready.map_or_else(|| "no status yet".to_string(), |c| format!("{}: {}", c.reason, c.message));
            (
                reason::MEMBER_NOT_READY,
                format!(
                    "{name} has not been Ready for {}s (deadline {}s): {why}",
                    waited.as_secs(),
                    deadline.as_secs()
                ),
            )
        })
    }

    fn status(&self) -> MemberStatus {
        MemberStatus {
            name: self.row.name.clone(),
            ordinal: self.member.ordinal,
            revision: self.member.revision.clone(),
            ready: self.member.available,
            instance_id: self.status.instance_id.clone(),
            private_ip: self.status.private_ip.clone(),
        }
    }
}

fn condition(status: &NodeStatus, type_: ConditionType) -> Option<&Condition> {
    status.conditions.iter().find(|c| c.type_ == type_)
}

/// A refused member write is a conflict (retried when something changes);
/// anything else is the store failing (retried with backoff).
fn store_error(e: StoreError) -> ReconcileError {
    match e {
        StoreError::Conflict { .. }
        | StoreError::Owned { .. }
        | StoreError::AlreadyExists { .. }
        | StoreError::NameTaken { .. }
        | StoreError::Invalid { .. }
        | StoreError::NotFound { .. } => ReconcileError::Conflict(e.to_string()),
        other => ReconcileError::Store(other.to_string()),
    }
}

/// The document of member `ordinal`. A member that exists keeps its subnet
/// (`subnet`): its data volume cannot move to another availability zone, so a
/// changed `subnetIds` applies to members created later.
fn member_document(
    set: &StoredResource,
    spec: &NodeSetSpec,
    revision: &str,
    ordinal: u32,
    subnet: Option<String>,
    now: chrono::DateTime<chrono::Utc>,
) -> AnyResource {
    let mut node = spec.member_spec(&set.name, ordinal);
    if let Some(subnet) = subnet {
        node.subnet_id = subnet;
    }
    let annotations = BTreeMap::from([
        (REVISION_ANNOTATION.to_string(), revision.to_string()),
        (WRITTEN_ANNOTATION.to_string(), desired_state::store::rfc3339(now)),
    ]);
    let metadata = ObjectMeta {
        name: member_name(&set.name, ordinal),
        namespace: set.namespace.clone(),
        labels: BTreeMap::from([
            (SET_LABEL.to_string(), set.name.clone()),
            (ORDINAL_LABEL.to_string(), ordinal.to_string()),
        ]),
        annotations,
        ..Default::default()
    };
    AnyResource::Node(Resource {
        api_version: API_VERSION.to_string(),
        kind: Kind::Node,
        metadata,
        spec: node,
        status: NodeStatus::default(),
    })
}

impl NodeSets {
    /// The status while the set is paused: as it was, `Synced=False`.
    fn paused(&self, ctx: &Context<'_>, r: &StoredResource, old: &NodeSetStatus) -> Step {
        let message =
            "reconciliation is paused: no member is created, changed or deleted until the annotation is removed";
        let g = r.generation;
        let reported = vec![Condition::sync_failed(PAUSED_REASON, message, g, ctx.now)];
        step(old.clone(), old, reported, g, vec![], self.config.resync)
    }

    fn parse(r: &StoredResource) -> Result<(NodeSetSpec, NodeSetStatus), ReconcileError> {
        let spec = serde_json::from_value(r.spec.clone())
            .map_err(|source| ReconcileError::Unreadable { kind: Kind::NodeSet, source })?;
        Ok((spec, serde_json::from_value(r.status.clone()).unwrap_or_default()))
    }

    /// Writes one change to the members (`existing`: the member as read);
    /// returns the event that records it.
    async fn apply(
        &self,
        ctx: &Context<'_>,
        set: &StoredResource,
        spec: &NodeSetSpec,
        revision: &str,
        action: Action,
        existing: Option<&StoredResource>,
    ) -> Result<Event, ReconcileError> {
        let actor = format!("NodeSet {}/{}", set.namespace, set.name);
        match action {
            Action::Create(i) | Action::Update(i) => {
                let subnet = existing.and_then(|m| m.spec["subnetId"].as_str()).map(str::to_string);
                let doc = member_document(set, spec, revision, i, subnet, ctx.now);
                self.store.write_owned(&doc, set.uid, &actor).await.map_err(store_error)?;
                let (reason, verb) = if matches!(action, Action::Create(_)) {
                    ("MemberCreated", "created")
                } else {
                    ("MemberUpdated", "updated")
                };
                Ok(Event::normal(reason, format!("{} {verb} at revision {revision}", member_name(&set.name, i))))
            }
            Action::Delete(i) => {
                let name = member_name(&set.name, i);
                match self.store.request_delete_owned(Kind::Node, &set.namespace, &name, set.uid).await {
                    // Gone since the members were read: what was asked for.
                    Ok(_) | Err(StoreError::NotFound { .. }) => {}
                    Err(e) => return Err(store_error(e)),
                }
                Ok(Event::normal("MemberDeleted", format!("{name} deleted (scaled to {})", spec.replicas)))
            }
        }
    }
}

/// The records a set wants, from its members as read: one per member below
/// `replicas` (its private IP; left as it is while the member has none, between
/// instances), and the set's own name with every `Ready` member's IP (left as
/// it is while none is Ready; gone at zero replicas).
fn wanted_records(set: &str, spec: &NodeSetSpec, d: &Discovery, observed: &[Observed<'_>]) -> Wanted {
    let in_range: Vec<&Observed<'_>> = observed.iter().filter(|o| o.member.ordinal < spec.replicas).collect();
    let mut wanted: Wanted = in_range
        .iter()
        .map(|o| (d.member_record(set, o.member.ordinal), o.status.private_ip.clone().map(|ip| vec![ip])))
        .collect();
    if spec.replicas > 0 {
        let ready: Vec<String> =
            in_range.iter().filter(|o| o.member.available).filter_map(|o| o.status.private_ip.clone()).collect();
        wanted.insert(d.domain.clone(), (!ready.is_empty()).then_some(ready));
    }
    wanted
}

/// What the DNS part of a pass did.
#[derive(Default)]
struct DnsPass {
    /// `status.discovery` to record.
    status: Option<DiscoveryStatus>,
    events: Vec<Event>,
    error: Option<ReconcileError>,
    /// Records are still to be written or removed: look again soon.
    pending: bool,
}

impl NodeSets {
    /// Keeps the set's DNS records where `spec.discovery` says. Records are
    /// only written in the place `recorded` names — it is recorded (one pass
    /// ahead) before the first write there — and when the place changes, the
    /// old one is emptied of the set's records before the new one is recorded.
    async fn discover(
        &self,
        ctx: &Context<'_>,
        set: &StoredResource,
        spec: Option<&Discovery>,
        recorded: Option<&DiscoveryStatus>,
        wanted: &Wanted,
    ) -> DnsPass {
        let dns = Gated::new(self.dns.as_ref(), ctx.gate);
        let uid = set.uid.to_string();
        let intent = |d: &Discovery| DiscoveryStatus {
            private_zone_id: d.private_zone_id.clone(),
            domain: d.domain.clone(),
            records: vec![],
        };
        let failed = |e: ReconcileError| DnsPass {
            status: recorded.cloned(),
            events: vec![Event::warning(e.reason(), e.to_string())],
            error: Some(e),
            pending: true,
        };
        match (recorded, spec) {
            (None, None) => DnsPass::default(),
            (None, Some(d)) => DnsPass { status: Some(intent(d)), pending: true, ..Default::default() },
            (Some(rec), Some(d)) if rec.private_zone_id == d.private_zone_id && rec.domain == d.domain => {
                let adopt = set.annotations.0.get(ADOPT_ANNOTATION).is_some_and(|v| v == "true");
                let plan = match discovery::sync(
                    &dns,
                    &d.private_zone_id,
                    &d.domain,
                    &uid,
                    d.ttl_seconds,
                    wanted,
                    adopt,
                )
                .await
                {
                    Ok(plan) => plan,
                    Err(e) => return failed(e.into()),
                };
                let mut events: Vec<Event> = plan
                    .adopted
                    .iter()
                    .map(|n| Event::normal("Adopted", format!("DNS record {n} in zone {} adopted", d.private_zone_id)))
                    .collect();
                if !plan.changes.is_empty() {
                    events.push(Event::normal(
                        "DnsRecordsChanged",
                        format!(
                            "{} record change(s) in zone {} under {}",
                            plan.changes.len(),
                            d.private_zone_id,
                            d.domain
                        ),
                    ));
                }
                let error = (!plan.conflicts.is_empty()).then(|| {
                    ReconcileError::Conflict(format!(
                        "DNS record(s) {} in zone {} are not this set's (no {}NAME marker with its uid): \
                         left unchanged; remove them, or annotate the set mooring/adopt: \"true\"",
                        plan.conflicts.join(", "),
                        d.private_zone_id,
                        discovery::MARKER_PREFIX,
                    ))
                });
                events.extend(error.iter().map(|e| Event::warning(e.reason(), e.to_string())));
                let status = DiscoveryStatus { records: plan.owned, ..rec.clone() };
                DnsPass { status: Some(status), events, error, pending: false }
            }
            (Some(rec), next) => match remove_records(&dns, rec, &uid).await {
                Ok(removed) => DnsPass {
                    status: next.map(intent),
                    events: vec![Event::normal(
                        "DnsRecordsRemoved",
                        format!("{removed} record(s) removed from zone {} under {}", rec.private_zone_id, rec.domain),
                    )],
                    error: None,
                    pending: true,
                },
                Err(e) => failed(e),
            },
        }
    }
}

/// Removes every record of the set `uid` from where `rec` says they are;
/// returns how many A records went. A zone that is gone took them with it.
async fn remove_records(dns: &dyn Dns, rec: &DiscoveryStatus, uid: &str) -> Result<usize, ReconcileError> {
    match discovery::sync(dns, &rec.private_zone_id, &rec.domain, uid, 0, &Wanted::new(), false).await {
        Ok(plan) => {
            Ok(plan.changes.iter().filter(|c| matches!(c, RecordChange::Delete(r) if r.kind == RecordType::A)).count())
        }
        Err(e) if e.is(ErrorKind::MissingReference) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// The conditions of a set from its members after a pass.
fn conditions(
    spec: &NodeSetSpec,
    revision: &str,
    observed: &[Observed<'_>],
    pending: &[Action],
    errors: &[ReconcileError],
    g: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Condition> {
    let in_range: Vec<&Observed<'_>> = observed.iter().filter(|o| o.member.ordinal < spec.replicas).collect();
    let ready = in_range.iter().filter(|o| o.member.available).count() as u32;
    let excess = observed.len() - in_range.len();
    let missing = spec.replicas as usize - in_range.len().min(spec.replicas as usize);
    let mut out = vec![match errors.first() {
        None => Condition::synced(g, now),
        Some(e) => {
            let message = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
            Condition::sync_failed(e.reason(), message, g, now)
        }
    }];
    if ready == spec.replicas && excess == 0 {
        out.push(Condition::ready(
            reason::ALL_MEMBERS_READY,
            format!("{ready}/{} members Ready", spec.replicas),
            g,
            now,
        ));
    } else {
        let not_ready: Vec<String> =
            in_range.iter().filter(|o| !o.member.available).map(|o| o.row.name.clone()).collect();
        let mut message = format!("{ready}/{} members Ready", spec.replicas);
        if !not_ready.is_empty() {
            message.push_str(&format!("; not Ready: {}", not_ready.join(", ")));
        }
        if excess > 0 {
            message.push_str(&format!("; {excess} member(s) above replicas being removed"));
        }
        out.push(Condition::not_ready(reason::MEMBERS_NOT_READY, message, g, now));
    }
    let outdated: Vec<&str> = in_range
        .iter()
        .filter(|o| o.member.revision.as_deref() != Some(revision))
        .map(|o| o.row.name.as_str())
        .collect();
    let updated = in_range.len() - outdated.len();
    let rolling = in_range
        .iter()
        .any(|o| o.member.ordinal >= spec.update_strategy.partition && o.member.revision.as_deref() != Some(revision));
    // A member written at this revision that is not Ready yet is being
    // replaced (or created) right now.
    let replacing: Vec<&str> = in_range
        .iter()
        .filter(|o| !o.member.available && o.member.revision.as_deref() == Some(revision))
        .map(|o| o.row.name.as_str())
        .collect();
    let creating = missing > 0 || pending.iter().any(|a| matches!(a, Action::Create(_)));
    out.push(if rolling {
        let mut message = format!("{updated}/{} members on revision {revision}", spec.replicas);
        if !replacing.is_empty() {
            message.push_str(&format!("; waiting for {} to be Ready", replacing.join(", ")));
        }
        Condition::progressing(reason::ROLLING_UPDATE, message, g, now)
    } else if creating || excess > 0 || !pending.is_empty() {
        Condition::progressing(
            reason::SCALING,
            format!("{} of {} members exist", in_range.len(), spec.replicas),
            g,
            now,
        )
    } else if !outdated.is_empty() {
        let message = format!(
            "{} stay on their revision below partition {}; {updated}/{} members on revision {revision}",
            outdated.join(", "),
            spec.update_strategy.partition,
            spec.replicas
        );
        Condition::settled(reason::PARTITION_HELD, message, g, now)
    } else {
        Condition::settled(reason::ROLLOUT_COMPLETE, format!("every member is on revision {revision}"), g, now)
    });
    let deadline = Duration::from_secs(u64::from(spec.progress_deadline_seconds));
    let failures: Vec<(&str, String)> = in_range.iter().filter_map(|o| o.failure(deadline, now)).collect();
    out.push(match failures.first() {
        Some((reason, _)) => {
            let mut message = failures.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>().join("; ");
            if rolling {
                message.push_str("; the rollout waits for it");
            }
            Condition::degraded(reason, message, g, now)
        }
        None => Condition::not_degraded(g, now),
    });
    out
}

/// Stamps a pass's conditions and generation onto the status to write.
fn step(
    mut status: NodeSetStatus,
    old: &NodeSetStatus,
    reported: Vec<Condition>,
    g: i64,
    events: Vec<Event>,
    requeue: Duration,
) -> Step {
    let mut conditions = old.conditions.clone();
    for c in reported {
        conditions.set_condition(c);
    }
    status.conditions = conditions;
    status.observed_generation = Some(g);
    Step { status: serde_json::to_value(&status).unwrap_or_default(), events, requeue_after: Some(requeue) }
}

#[async_trait::async_trait]
impl DynReconciler for NodeSets {
    async fn reconcile(&self, ctx: &Context<'_>, r: &StoredResource) -> Result<Step, ReconcileError> {
        let (spec, old) = Self::parse(r)?;
        let g = r.generation;
        if reconcile_paused(&r.annotations.0) {
            return Ok(self.paused(ctx, r, &old));
        }
        let revision = spec.revision();
        let rows = self.store.owned_by(r.uid).await.map_err(store_error)?;
        let observed: Vec<Observed<'_>> = rows.iter().filter_map(Observed::new).collect();
        let members: Vec<Member> = observed.iter().map(|o| o.member.clone()).collect();
        let actions = plan(spec.replicas, &spec.update_strategy, &revision, &members);
        // Every action is tried: one refused member (a Node of its name that
        // is not the set's) does not hold the others back.
        let mut events = Vec::new();
        let mut errors = Vec::new();
        for action in &actions {
            let (Action::Create(i) | Action::Update(i) | Action::Delete(i)) = *action;
            let existing = observed.iter().find(|o| o.member.ordinal == i).map(|o| o.row);
            match self.apply(ctx, r, &spec, &revision, *action, existing).await {
                Ok(event) => events.push(event),
                Err(ReconcileError::Store(e)) => return Err(ReconcileError::Store(e)),
                Err(e) => {
                    events.push(Event::warning(e.reason(), e.to_string()));
                    errors.push(e);
                }
            }
        }
        let wanted = spec.discovery.as_ref().map(|d| wanted_records(&r.name, &spec, d, &observed)).unwrap_or_default();
        let dns = self.discover(ctx, r, spec.discovery.as_ref(), old.discovery.as_ref(), &wanted).await;
        match dns.error {
            // The lease is gone: the replica that holds it now writes status.
            Some(e) if matches!(e.retry(), Retry::Drop) => return Err(e),
            // The Route53 budget is spent: not a failure of the set; the
            // records are written on a later pass (pending), the rest of the
            // pass is recorded now.
            Some(e) if matches!(e.retry(), Retry::Later(_)) => {}
            Some(e) => {
                events.extend(dns.events);
                errors.push(e);
            }
            None => events.extend(dns.events),
        }
        let in_range = observed.iter().filter(|o| o.member.ordinal < spec.replicas);
        let status = NodeSetStatus {
            replicas: in_range.clone().count() as u32,
            ready_replicas: in_range.clone().filter(|o| o.member.available).count() as u32,
            updated_replicas: in_range.filter(|o| o.member.revision.as_deref() == Some(revision.as_str())).count()
                as u32,
            update_revision: Some(revision.clone()),
            members: observed.iter().map(Observed::status).collect(),
            discovery: dns.status,
            ..Default::default()
        };
        let reported = conditions(&spec, &revision, &observed, &actions, &errors, g, ctx.now);
        let settled = actions.is_empty()
            && !dns.pending
            && status.ready_replicas == spec.replicas
            && observed.len() as u32 == spec.replicas;
        let requeue = if settled { self.config.resync } else { self.config.poll };
        Ok(step(status, &old, reported, g, events, requeue))
    }

    async fn cleanup(&self, ctx: &Context<'_>, r: &StoredResource) -> Result<Option<Step>, ReconcileError> {
        let (_, old) = Self::parse(r)?;
        // A paused set is not torn down either: its finalizer holds it.
        if reconcile_paused(&r.annotations.0) {
            return Ok(Some(self.paused(ctx, r, &old)));
        }
        // The DNS records go first: they point at the members.
        let mut events = Vec::new();
        let mut status = old.clone();
        if let Some(rec) = &old.discovery {
            let removed = remove_records(&Gated::new(self.dns.as_ref(), ctx.gate), rec, &r.uid.to_string()).await?;
            events.push(Event::normal(
                "DnsRecordsRemoved",
                format!("{removed} record(s) removed from zone {} with the set", rec.private_zone_id),
            ));
            status.discovery = None;
        }
        let rows = self.store.owned_by(r.uid).await.map_err(store_error)?;
        if rows.is_empty() {
            return Ok(None);
        }
        for m in rows.iter().filter(|m| m.deletion_timestamp.is_none()) {
            self.store.request_delete_owned(m.kind, &m.namespace, &m.name, r.uid).await.map_err(store_error)?;
            events.push(Event::normal("MemberDeleted", format!("{} deleted with its set", m.name)));
        }
        let names: Vec<&str> = rows.iter().map(|m| m.name.as_str()).collect();
        let message = format!("waiting for {} member(s) to be torn down: {}", rows.len(), names.join(", "));
        let reported = vec![Condition::not_ready(reason::DELETING, message, r.generation, ctx.now)];
        Ok(Some(step(status, &old, reported, r.generation, events, self.config.poll)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(ordinal: u32, revision: &str, available: bool) -> Member {
        Member { ordinal, revision: Some(revision.into()), available, deleting: false }
    }

    fn strategy(max_unavailable: u32, partition: u32) -> SetUpdateStrategy {
        SetUpdateStrategy { max_unavailable, partition }
    }

    #[test]
    fn what_a_pass_writes_as_a_table() {
        use Action::*;
        let gone = |ordinal| Member { ordinal, revision: Some("v1".into()), available: false, deleting: true };
        // (what, replicas, strategy, members) → actions
        type Case = (&'static str, u32, SetUpdateStrategy, Vec<Member>, Vec<Action>);
        let cases: Vec<Case> = vec![
            (
                "a new set creates every member at once",
                3,
                strategy(1, 0),
                vec![],
                vec![Create(0), Create(1), Create(2)],
            ),
            ("settled: nothing", 3, strategy(1, 0), vec![m(0, "v2", true), m(1, "v2", true), m(2, "v2", true)], vec![]),
            (
                "a new template: highest ordinal first, one at a time",
                3,
                strategy(1, 0),
                vec![m(0, "v1", true), m(1, "v1", true), m(2, "v1", true)],
                vec![Update(2)],
            ),
            (
                "the replaced member is not Ready yet: wait",
                3,
                strategy(1, 0),
                vec![m(0, "v1", true), m(1, "v1", true), m(2, "v2", false)],
                vec![],
            ),
            (
                "it is Ready: the next one",
                3,
                strategy(1, 0),
                vec![m(0, "v1", true), m(1, "v1", true), m(2, "v2", true)],
                vec![Update(1)],
            ),
            (
                "maxUnavailable 2: two at once",
                3,
                strategy(2, 0),
                vec![m(0, "v1", true), m(1, "v1", true), m(2, "v1", true)],
                vec![Update(2), Update(1)],
            ),
            (
                "a member down for another reason uses the budget",
                3,
                strategy(1, 0),
                vec![m(0, "v2", false), m(1, "v1", true), m(2, "v1", true)],
                vec![],
            ),
            (
                "an outdated member that is down already is updated at once",
                3,
                strategy(1, 0),
                vec![m(0, "v1", true), m(1, "v1", true), m(2, "v1", false)],
                vec![Update(2)],
            ),
            (
                "partition 2 updates member 2 only",
                3,
                strategy(1, 2),
                vec![m(0, "v1", true), m(1, "v1", true), m(2, "v2", true)],
                vec![],
            ),
            (
                "a missing member counts as unavailable",
                3,
                strategy(1, 0),
                vec![m(0, "v1", true), m(2, "v1", true)],
                vec![Create(1)],
            ),
            (
                "scale down: the highest ordinal first",
                1,
                strategy(1, 0),
                vec![m(0, "v2", true), m(1, "v2", true), m(2, "v2", true)],
                vec![Delete(2)],
            ),
            (
                "one at a time: wait while it goes",
                1,
                strategy(1, 0),
                vec![m(0, "v2", true), m(1, "v2", true), gone(2)],
                vec![],
            ),
            ("then the next", 1, strategy(1, 0), vec![m(0, "v2", true), m(1, "v2", true)], vec![Delete(1)]),
            ("scale to zero", 0, strategy(1, 0), vec![m(0, "v2", true)], vec![Delete(0)]),
            (
                "a member whose deletion is pending is created again once it is gone",
                2,
                strategy(1, 0),
                vec![m(0, "v2", true), gone(1)],
                vec![],
            ),
        ];
        for (what, replicas, strategy, members, want) in cases {
            assert_eq!(plan(replicas, &strategy, "v2", &members), want, "{what}");
        }
    }

    fn row(name: &str, ordinal: u32, status: serde_json::Value, generation: i64, written: &str) -> StoredResource {
        StoredResource {
            labels: sqlx::types::Json(BTreeMap::from([(ORDINAL_LABEL.into(), ordinal.to_string())])),
            annotations: sqlx::types::Json(BTreeMap::from([
                (REVISION_ANNOTATION.into(), "v2".into()),
                (WRITTEN_ANNOTATION.into(), written.into()),
            ])),
            status,
            generation,
            source: "controller".into(),
            owner_uid: Some(uuid::Uuid::nil()),
            ..crate::reconcile::test_row(Kind::Node, "default", name)
        }
    }

    #[test]
    fn a_member_keeps_its_subnet_and_records_when_it_was_written() {
        let spec: NodeSetSpec = serde_json::from_value(serde_json::json!({
            "replicas": 2, "subnetIds": ["subnet-0a1b2c3d", "subnet-0b2c3d4e"],
            "template": {"software": {"name": "pulse", "version": "1", "artifact": "s3://pulse-artifacts/p.tar.gz"},
                "instanceType": "t3.large", "ami": "ami-1e749f67", "subnetId": "subnet-0a1b2c3d"}}))
        .unwrap();
        let set = row("pulse", 0, serde_json::json!({}), 1, "");
        let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let AnyResource::Node(new) = member_document(&set, &spec, "v2", 1, None, now) else { panic!("a Node") };
        assert_eq!(new.spec.subnet_id, "subnet-0b2c3d4e", "a new member goes by subnetIds");
        assert_eq!(new.metadata.name, "pulse-1");
        assert_eq!(new.metadata.labels[SET_LABEL], "pulse");
        assert_eq!(new.metadata.annotations[REVISION_ANNOTATION], "v2");
        assert_eq!(new.metadata.annotations[WRITTEN_ANNOTATION], desired_state::store::rfc3339(now));
        let kept = member_document(&set, &spec, "v3", 1, Some("subnet-0c3d4e5f".into()), now);
        let AnyResource::Node(kept) = kept else { panic!("a Node") };
        assert_eq!(kept.spec.subnet_id, "subnet-0c3d4e5f", "an existing member stays where its volume is");
    }

    #[test]
    fn a_failing_member_degrades_the_set_by_name() {
        let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let t = |s: i64| (now - chrono::Duration::seconds(s)).to_rfc3339();
        let deadline = Duration::from_secs(600);
        let degraded = serde_json::json!({"observedGeneration": 2, "conditions": [
            {"type": "Ready", "status": "False", "reason": "NotHealthy", "message": "checks failing", "lastTransitionTime": t(5), "observedGeneration": 2},
            {"type": "Degraded", "status": "True", "reason": "BuildFailed", "message": "build failed", "lastTransitionTime": t(5), "observedGeneration": 2}]});
        let slow = serde_json::json!({"observedGeneration": 2, "conditions": [
            {"type": "Ready", "status": "False", "reason": "NotHealthy", "message": "EC2 status checks have not passed yet", "lastTransitionTime": t(700), "observedGeneration": 2}]});
        let young = serde_json::json!({"observedGeneration": 2, "conditions": [
            {"type": "Ready", "status": "False", "reason": "NotHealthy", "message": "starting", "lastTransitionTime": t(60), "observedGeneration": 2}]});
        let ready = serde_json::json!({"observedGeneration": 2, "conditions": [
            {"type": "Ready", "status": "True", "reason": "NodeHealthy", "message": "", "lastTransitionTime": t(700), "observedGeneration": 2}]});
        let stale_ready = ready.clone();
        let cases = [
            (row("p-2", 2, degraded, 2, &t(900)), Some(reason::MEMBER_FAILED), "p-2: build failed"),
            // Not Ready since 700 s, written before that: the deadline is past.
            (
                row("p-1", 1, slow.clone(), 2, &t(900)),
                Some(reason::MEMBER_NOT_READY),
                "p-1 has not been Ready for 700s",
            ),
            // Down for 700 s but written (updated to fix it) 30 s ago: counted from the write.
            (row("p-1", 1, slow, 2, &t(30)), None, ""),
            (row("p-0", 0, young, 2, &t(900)), None, ""),
            (row("p-0", 0, ready.clone(), 2, &t(900)), None, ""),
            // Ready at an older generation, just updated: replacing, not failed.
            (row("p-0", 0, stale_ready.clone(), 3, &t(30)), None, ""),
            // ... and still not Ready at the new one 650 s after the write.
            (row("p-0", 0, stale_ready, 3, &t(650)), Some(reason::MEMBER_NOT_READY), "p-0 has not been Ready for 650s"),
        ];
        for (r, want, text) in cases {
            let o = Observed::new(&r).unwrap();
            let got = o.failure(deadline, now);
            assert_eq!(got.as_ref().map(|f| f.0), want, "{}", r.name);
            if let Some((_, message)) = got {
                assert!(message.contains(text), "{message}");
            }
        }
        let stale = row(
            "p-0",
            0,
            serde_json::json!({"observedGeneration": 2, "conditions": [
            {"type": "Ready", "status": "True", "reason": "NodeHealthy", "message": "", "lastTransitionTime": t(1), "observedGeneration": 2}]}),
            3,
            &t(1),
        );
        assert!(!Observed::new(&stale).unwrap().member.available, "Ready for an older generation is not available");
    }
}
