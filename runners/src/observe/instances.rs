//! The EC2 instances of nodes and their status checks, observed in batches:
//! one DescribeInstances for up to 200 nodes (a filter on their
//! `mooring:uid` tags) and one DescribeInstanceStatus for up to 100
//! instances, where a node alone would cost one of each per reconcile.

use std::collections::HashMap;
use std::time::Duration;

use super::Observer;
use crate::cloud::ec2::{Ec2, Instance, InstanceHealth, MAX_FILTER_VALUES, MAX_INSTANCE_STATUS_IDS};
use crate::cloud::{CloudResult, TAG_UID};

/// EC2 is regional and a controller works in one region: one scope.
const REGION: &str = "";

/// Batches the observation of nodes' instances (key: the node's uid) and of
/// their status checks (key: the instance id); see the module documentation
/// of [`super`].
pub struct InstanceObserver {
    instances: Observer<Vec<Instance>>,
    checks: Observer<InstanceHealth>,
}

impl InstanceObserver {
    /// An observer that treats observations older than `stale_after` as due.
    pub fn new(stale_after: Duration) -> InstanceObserver {
        InstanceObserver {
            instances: Observer::new(stale_after, MAX_FILTER_VALUES),
            checks: Observer::new(stale_after, MAX_INSTANCE_STATUS_IDS),
        }
    }

    /// How old an observation may be before it is refreshed.
    pub fn stale_after(&self) -> Duration {
        self.instances.stale_after()
    }

    /// The instances (not terminated) tagged with the node's `uid`, as
    /// observed at most `max_age` ago (zero: by a describe sent after this
    /// call began).
    pub async fn instances(&self, ec2: &dyn Ec2, uid: &str, max_age: Duration) -> CloudResult<Vec<Instance>> {
        let found = self
            .instances
            .observe(REGION, uid, max_age, |uids| async move {
                let mut by_uid: HashMap<String, Vec<Instance>> = HashMap::new();
                for i in ec2.instances_tagged(TAG_UID, &uids).await? {
                    if let Some(uid) = i.tags.get(TAG_UID) {
                        by_uid.entry(uid.clone()).or_default().push(i);
                    }
                }
                Ok(by_uid)
            })
            .await?;
        Ok(found.unwrap_or_default())
    }

    /// The status checks of running instance `id` as observed at most
    /// `max_age` ago (`None`: EC2 reports none, as while it starts).
    pub async fn checks(&self, ec2: &dyn Ec2, id: &str, max_age: Duration) -> CloudResult<Option<InstanceHealth>> {
        self.checks
            .observe(REGION, id, max_age, |ids| async move {
                let checks = ec2.instance_health(&ids).await?;
                Ok(checks.into_iter().map(|c| (c.instance_id.clone(), c)).collect())
            })
            .await
    }

    /// Says a reconcile of the node `uid` is coming (the controller queued
    /// it), with the instance its status records, whose checks it will want.
    pub fn expect(&self, uid: &str, instance_id: Option<&str>) {
        self.instances.expect(REGION, uid);
        if let Some(id) = instance_id {
            self.checks.expect(REGION, id);
        }
    }

    /// Stops observing the status checks of an instance the node no longer
    /// uses (replaced): AWS forgets terminated instances, and an id it does
    /// not know fails a whole DescribeInstanceStatus.
    pub fn replaced(&self, instance_id: &str) {
        self.checks.forget(REGION, instance_id, true);
    }

    /// Stops observing a node and its instances (it was deleted).
    pub fn forget(&self, uid: &str, instance_ids: &[String]) {
        self.instances.forget(REGION, uid, true);
        for id in instance_ids {
            self.checks.forget(REGION, id, true);
        }
    }
}

#[cfg(test)]
mod tests {
    //! Against the simulated cloud: real EC2 semantics, counted calls.

    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::cloud::codebuild::BuildExecutor;
    use crate::cloud::ec2::InstanceInput;
    use crate::cloud::{Tags, ops};
    use crate::sim::{SimCloud, SimConfig};

    struct NoBuilds;

    #[async_trait::async_trait]
    impl BuildExecutor for NoBuilds {
        async fn execute(&self, _env: &BTreeMap<String, String>) -> Result<(), String> {
            Err("no builds here".into())
        }
    }

    fn input(uid: &str) -> InstanceInput {
        InstanceInput {
            ami: "ami-12345678".into(),
            instance_type: "t3.micro".into(),
            subnet_id: "subnet-0a1b2c3d".into(),
            security_group_ids: vec![],
            user_data: String::new(),
            instance_profile: None,
            tags: Tags::from([(TAG_UID.to_string(), uid.to_string())]),
            client_token: format!("token-{uid}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn nodes_asked_together_share_one_describe_and_a_due_sweep_is_batched() {
        let sim = SimCloud::new(SimConfig { seed: 7, ..Default::default() });
        let ec2 = sim.node_cloud(Arc::new(NoBuilds)).ec2;
        let uids: Vec<String> = (0..30).map(|i| format!("uid-{i:02}")).collect();
        let mut ids = HashMap::new();
        for uid in &uids {
            ids.insert(uid.clone(), ec2.run_instance(&input(uid)).await.unwrap().id);
        }
        // Past the simulated cloud's consistency window and status checks.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let observer = InstanceObserver::new(Duration::from_secs(3600));
        let calls = || sim.call_count(&ops::DESCRIBE_INSTANCES);
        // Asked one after another with nothing known: one describe each.
        for uid in &uids[..3] {
            let found = observer.instances(ec2.as_ref(), uid, observer.stale_after()).await.unwrap();
            assert_eq!(found.iter().map(|i| &i.id).collect::<Vec<_>>(), [&ids[uid]]);
        }
        assert_eq!(calls(), 3);
        // A sweep: the rest were announced, so the next describe takes them all.
        for uid in &uids {
            observer.expect(uid, None);
        }
        for uid in &uids {
            let found = observer.instances(ec2.as_ref(), uid, observer.stale_after()).await.unwrap();
            assert_eq!(found.len(), 1, "{uid}");
            assert_eq!(found[0].id, ids[uid]);
        }
        assert_eq!(calls(), 4, "one describe for the 27 not observed yet");
        // A fresh ask is answered only by a new describe.
        ec2.terminate_instance(&ids[&uids[0]]).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        let cached = observer.instances(ec2.as_ref(), &uids[0], observer.stale_after()).await.unwrap();
        assert_eq!(cached.len(), 1, "the cached observation");
        let fresh = observer.instances(ec2.as_ref(), &uids[0], Duration::ZERO).await.unwrap();
        assert!(fresh.iter().all(|i| i.id != ids[&uids[0]]), "{fresh:?}");
        assert_eq!(calls(), 5);
        // Status checks batch the same way.
        let before = sim.call_count(&ops::DESCRIBE_INSTANCE_STATUS);
        for uid in &uids[1..] {
            observer.expect(uid, Some(&ids[uid]));
        }
        for uid in &uids[1..] {
            observer.checks(ec2.as_ref(), &ids[uid], observer.stale_after()).await.unwrap();
        }
        assert_eq!(sim.call_count(&ops::DESCRIBE_INSTANCE_STATUS) - before, 1);
    }
}
