//! Simulated ElastiCache: Redis replication groups that go `creating` →
//! `available` (or `create-failed`, as a test asks) and `deleting` →
//! gone as time passes.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{ACCOUNT, Ctx, Inner, REGION, Slot, check_tags};
use crate::cloud::caches::{Caches, ReplicationGroup, ReplicationGroupChange, ReplicationGroupInput};
use crate::cloud::{CloudError, CloudResult, ErrorKind, Op, Tags, ops};

/// AWS allows at most this many read replicas in a node group.
const MAX_REPLICAS: u32 = 5;

/// The ARN of a replication group.
pub(super) fn group_arn(id: &str) -> String {
    format!("arn:aws:elasticache:{REGION}:{ACCOUNT}:replicationgroup:{id}")
}

/// The ElastiCache facade of a [`super::SimCloud`].
pub(super) struct SimCaches(pub(super) Arc<Inner>);

/// One replication group; `status` is as of `since`.
#[derive(Debug, Clone)]
struct GroupRec {
    id: String,
    status: &'static str,
    since: Instant,
    node_type: String,
    members: u32,
    tags: Tags,
    /// Its creation fails (`creating` → `create-failed`).
    fails: bool,
}

impl GroupRec {
    /// Brings the group up to now; false when it is gone.
    fn settle(&mut self, ctx: &Ctx<'_>) -> bool {
        let due = ctx.now >= self.since + ctx.cfg.cache_create_delay;
        match self.status {
            "creating" if due && self.fails => {
                self.status = "create-failed";
                true
            }
            "creating" | "modifying" if due => {
                self.status = "available";
                true
            }
            "deleting" if due => false,
            _ => true,
        }
    }

    fn to_group(&self) -> ReplicationGroup {
        ReplicationGroup {
            id: self.id.clone(),
            arn: group_arn(&self.id),
            status: self.status.to_owned(),
            primary_endpoint: (self.status == "available" || self.status == "modifying")
                .then(|| format!("{}.sim.cache.amazonaws.com:6379", self.id)),
            node_type: Some(self.node_type.clone()),
            members: self.members,
        }
    }
}

/// Everything ElastiCache holds.
#[derive(Default)]
pub(super) struct CacheState {
    groups: BTreeMap<String, Slot<GroupRec>>,
    /// How many of the next creations fail.
    failing: u32,
}

fn invalid(op: &Op, msg: impl Into<String>) -> CloudError {
    CloudError::new(op, ErrorKind::Invalid, msg)
}

/// AWS's replication group id rules: 1–40 characters, letters, digits and
/// hyphens, starting with a letter, no two hyphens in a row, no hyphen at the end.
fn valid_id(id: &str) -> bool {
    id.len() <= 40
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !id.contains("--")
        && !id.ends_with('-')
}

impl CacheState {
    /// The group's slot, settled to now (a group whose deletion finished is
    /// removed, without counting as a write).
    fn settled(&mut self, id: &str, ctx: &Ctx<'_>) -> Option<&mut Slot<GroupRec>> {
        let slot = self.groups.get_mut(id)?;
        if let Some(g) = slot.cur.as_mut()
            && !g.settle(ctx)
        {
            slot.cur = None;
        }
        Some(slot)
    }

    pub(super) fn describe(&mut self, id: &str, ctx: &Ctx<'_>) -> Option<ReplicationGroup> {
        self.settled(&id.to_ascii_lowercase(), ctx)?.view(ctx).map(GroupRec::to_group)
    }

    pub(super) fn create(&mut self, input: &ReplicationGroupInput, ctx: &Ctx<'_>) -> CloudResult<ReplicationGroup> {
        let op = ops::CREATE_REPLICATION_GROUP;
        // ElastiCache stores ids in lowercase.
        let id = input.id.to_ascii_lowercase();
        if !valid_id(&id) {
            return Err(invalid(&op, format!("InvalidParameterValue: Invalid replication group id {:?}.", input.id)));
        }
        if !input.node_type.starts_with("cache.") {
            return Err(invalid(&op, format!("InvalidParameterValue: Invalid node type {:?}.", input.node_type)));
        }
        if input.replicas > MAX_REPLICAS {
            return Err(invalid(
                &op,
                format!("InvalidParameterValue: At most {MAX_REPLICAS} replicas per node group."),
            ));
        }
        check_tags(&op, &input.tags)?;
        if self.settled(&id, ctx).is_some_and(|s| s.cur.is_some()) {
            return Err(CloudError::new(
                &op,
                ErrorKind::AlreadyExists,
                format!("ReplicationGroupAlreadyExists: Replication group {id} already exists."),
            ));
        }
        let rec = GroupRec {
            id: id.clone(),
            status: "creating",
            since: ctx.now,
            node_type: input.node_type.clone(),
            members: 1 + input.replicas,
            tags: input.tags.clone(),
            fails: self.failing > 0,
        };
        self.failing = self.failing.saturating_sub(1);
        let out = rec.to_group();
        *self.groups.entry(id).or_default().write(ctx.now) = Some(rec);
        Ok(out)
    }

    pub(super) fn delete(&mut self, id: &str, ctx: &Ctx<'_>) -> CloudResult<()> {
        let op = ops::DELETE_REPLICATION_GROUP;
        let Some(slot) = self.settled(&id.to_ascii_lowercase(), ctx) else { return Ok(()) };
        match slot.cur.as_ref().map(|g| g.status) {
            None => Ok(()),
            Some("available" | "create-failed") => {
                if let Some(g) = slot.write(ctx.now) {
                    g.status = "deleting";
                    g.since = ctx.now;
                }
                Ok(())
            }
            // As in AWS: only an available (or failed) group can be deleted.
            Some(status) => Err(invalid(
                &op,
                format!("InvalidReplicationGroupState: Replication group {id} is {status}, not available."),
            )),
        }
    }

    /// The group an ARN names, settled, for a read or a write.
    fn by_arn(&mut self, op: &Op, arn: &str, ctx: &Ctx<'_>) -> CloudResult<&mut Slot<GroupRec>> {
        let not_found =
            || CloudError::new(op, ErrorKind::NotFound, format!("ReplicationGroupNotFoundFault: {arn} not found."));
        let prefix = format!("arn:aws:elasticache:{REGION}:{ACCOUNT}:replicationgroup:");
        let id = arn.strip_prefix(&prefix).ok_or_else(not_found)?;
        match self.settled(id, ctx) {
            Some(slot) if slot.cur.is_some() => Ok(slot),
            _ => Err(not_found()),
        }
    }

    pub(super) fn tags(&mut self, arn: &str, ctx: &Ctx<'_>) -> CloudResult<Tags> {
        let slot = self.by_arn(&ops::LIST_TAGS_FOR_RESOURCE, arn, ctx)?;
        Ok(slot.view(ctx).map(|g| g.tags.clone()).unwrap_or_default())
    }

    pub(super) fn add_tags(&mut self, arn: &str, tags: &Tags, ctx: &Ctx<'_>) -> CloudResult<()> {
        let op = ops::ADD_TAGS_TO_RESOURCE;
        let slot = self.by_arn(&op, arn, ctx)?;
        let mut all = slot.cur.as_ref().map(|g| g.tags.clone()).unwrap_or_default();
        all.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        check_tags(&op, &all)?;
        if let Some(g) = slot.write(ctx.now) {
            g.tags = all;
        }
        Ok(())
    }

    /// Starts a modification: the group is `modifying` for the creation delay.
    fn modify(&mut self, op: &Op, id: &str, ctx: &Ctx<'_>, f: impl FnOnce(&mut GroupRec)) -> CloudResult<()> {
        let id = id.to_ascii_lowercase();
        let Some(slot) = self.settled(&id, ctx).filter(|s| s.cur.is_some()) else {
            return Err(CloudError::new(
                op,
                ErrorKind::NotFound,
                format!("ReplicationGroupNotFoundFault: Replication group {id} not found."),
            ));
        };
        match slot.cur.as_ref().map(|g| g.status) {
            Some("available") => {}
            Some(status) => {
                return Err(invalid(
                    op,
                    format!("InvalidReplicationGroupState: Replication group {id} is {status}, not available."),
                ));
            }
            None => {}
        }
        if let Some(g) = slot.write(ctx.now) {
            f(g);
            g.status = "modifying";
            g.since = ctx.now;
        }
        Ok(())
    }

    pub(super) fn modify_group(&mut self, id: &str, change: &ReplicationGroupChange, ctx: &Ctx<'_>) -> CloudResult<()> {
        let op = ops::MODIFY_REPLICATION_GROUP;
        if let Some(t) = change.node_type.as_ref().filter(|t| !t.starts_with("cache.")) {
            return Err(invalid(&op, format!("InvalidParameterValue: Invalid node type {t:?}.")));
        }
        self.modify(&op, id, ctx, |g| {
            if let Some(t) = &change.node_type {
                g.node_type = t.clone();
            }
        })
    }

    pub(super) fn set_replicas(&mut self, id: &str, from: u32, to: u32, ctx: &Ctx<'_>) -> CloudResult<()> {
        let op = if to >= from { ops::INCREASE_REPLICA_COUNT } else { ops::DECREASE_REPLICA_COUNT };
        if to > MAX_REPLICAS {
            return Err(invalid(
                &op,
                format!("InvalidParameterValue: At most {MAX_REPLICAS} replicas per node group."),
            ));
        }
        self.modify(&op, id, ctx, |g| g.members = 1 + to)
    }

    pub(super) fn remove_tags(&mut self, arn: &str, keys: &[String], ctx: &Ctx<'_>) -> CloudResult<()> {
        let op = ops::REMOVE_TAGS_FROM_RESOURCE;
        let slot = self.by_arn(&op, arn, ctx)?;
        let Some(g) = slot.cur.as_ref() else { return Ok(()) };
        // As in AWS, removing a tag the group does not have fails (TagNotFound).
        if let Some(k) = keys.iter().find(|k| !g.tags.contains_key(*k)) {
            return Err(CloudError::new(&op, ErrorKind::NotFound, format!("TagNotFound: tag {k} not found on {arn}.")));
        }
        if let Some(g) = slot.write(ctx.now) {
            for k in keys {
                g.tags.remove(k);
            }
        }
        Ok(())
    }

    /// The next `times` creations fail.
    pub(super) fn fail_creations(&mut self, times: u32) {
        self.failing = times;
    }

    pub(super) fn all(&mut self, ctx: &Ctx<'_>) -> Vec<ReplicationGroup> {
        let ids: Vec<String> = self.groups.keys().cloned().collect();
        ids.iter().filter_map(|id| self.settled(id, ctx)?.cur.as_ref().map(GroupRec::to_group)).collect()
    }
}

#[async_trait]
impl Caches for SimCaches {
    async fn describe_replication_group(&self, id: &str) -> CloudResult<Option<ReplicationGroup>> {
        self.0.call(ops::DESCRIBE_REPLICATION_GROUPS, id, |st, ctx| Ok(st.cache.describe(id, ctx))).await
    }

    async fn create_replication_group(&self, input: &ReplicationGroupInput) -> CloudResult<ReplicationGroup> {
        self.0.call(ops::CREATE_REPLICATION_GROUP, &input.id, |st, ctx| st.cache.create(input, ctx)).await
    }

    async fn delete_replication_group(&self, id: &str) -> CloudResult<()> {
        self.0.call(ops::DELETE_REPLICATION_GROUP, id, |st, ctx| st.cache.delete(id, ctx)).await
    }

    async fn remove_tags(&self, arn: &str, keys: &[String]) -> CloudResult<()> {
        self.0.call(ops::REMOVE_TAGS_FROM_RESOURCE, arn, |st, ctx| st.cache.remove_tags(arn, keys, ctx)).await
    }

    async fn add_tags(&self, arn: &str, tags: &Tags) -> CloudResult<()> {
        self.0.call(ops::ADD_TAGS_TO_RESOURCE, arn, |st, ctx| st.cache.add_tags(arn, tags, ctx)).await
    }

    async fn tags(&self, arn: &str) -> CloudResult<Tags> {
        self.0.call(ops::LIST_TAGS_FOR_RESOURCE, arn, |st, ctx| st.cache.tags(arn, ctx)).await
    }

    async fn modify_replication_group(&self, id: &str, change: &ReplicationGroupChange) -> CloudResult<()> {
        self.0.call(ops::MODIFY_REPLICATION_GROUP, id, |st, ctx| st.cache.modify_group(id, change, ctx)).await
    }

    async fn set_replicas(&self, id: &str, from: u32, to: u32) -> CloudResult<()> {
        let op = if to >= from { ops::INCREASE_REPLICA_COUNT } else { ops::DECREASE_REPLICA_COUNT };
        self.0.call(op, id, |st, ctx| st.cache.set_replicas(id, from, to, ctx)).await
    }
}
