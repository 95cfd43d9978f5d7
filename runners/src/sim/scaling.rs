//! Simulated Application Auto Scaling: scalable targets and target-tracking
//! policies are stored and read back (as moto does); nothing acts on them.
//! Registering needs the ECS service; deregistering deletes the target's
//! policies (as AWS does).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{Inner, check_tags};
use crate::cloud::scaling::{AppScaling, ScalableTarget, TrackingPolicy};
use crate::cloud::{CloudError, CloudResult, ErrorKind, Tags, ops};

/// The Application Auto Scaling facade of a [`super::SimCloud`].
pub(super) struct SimAppScaling(pub(super) Arc<Inner>);

/// Targets by resource id, and policies by (resource id, name).
#[derive(Default)]
pub(super) struct ScalingState {
    pub(super) targets: BTreeMap<String, (ScalableTarget, Tags)>,
    pub(super) policies: BTreeMap<(String, String), TrackingPolicy>,
}

fn no_target(op: &crate::cloud::Op, resource_id: &str) -> CloudError {
    CloudError::new(
        op,
        ErrorKind::NotFound,
        format!(
            "ObjectNotFoundException: No scalable target found for service namespace: ecs, resource ID: {resource_id}"
        ),
    )
}

#[async_trait]
impl AppScaling for SimAppScaling {
    async fn describe_target(&self, resource_id: &str) -> CloudResult<Option<ScalableTarget>> {
        self.0
            .call(ops::DESCRIBE_SCALABLE_TARGETS, resource_id, |st, _| {
                Ok(st.scaling.targets.get(resource_id).map(|(t, _)| t.clone()))
            })
            .await
    }

    async fn register_target(&self, target: &ScalableTarget, tags: &Tags) -> CloudResult<()> {
        let op = ops::REGISTER_SCALABLE_TARGET;
        self.0
            .call(op, &target.resource_id, |st, ctx| {
                check_tags(&op, tags)?;
                let exists = target
                    .resource_id
                    .strip_prefix("service/")
                    .and_then(|rest| rest.split_once('/'))
                    .is_some_and(|(cluster, name)| st.ecs.service(cluster, name, ctx).is_some());
                if !exists {
                    return Err(CloudError::new(
                        &op,
                        ErrorKind::MissingReference,
                        "ValidationException: ECS service doesn't exist",
                    ));
                }
                if target.max < target.min {
                    return Err(CloudError::new(
                        &op,
                        ErrorKind::Invalid,
                        "ValidationException: max capacity below min",
                    ));
                }
                let entry = st
                    .scaling
                    .targets
                    .entry(target.resource_id.clone())
                    .or_insert_with(|| (target.clone(), Tags::new()));
                entry.0 = target.clone();
                entry.1.extend(tags.clone());
                Ok(())
            })
            .await
    }

    async fn deregister_target(&self, resource_id: &str) -> CloudResult<()> {
        let op = ops::DEREGISTER_SCALABLE_TARGET;
        self.0
            .call(op, resource_id, |st, _| {
                if st.scaling.targets.remove(resource_id).is_none() {
                    return Err(no_target(&op, resource_id));
                }
                st.scaling.policies.retain(|(rid, _), _| rid != resource_id);
                Ok(())
            })
            .await
    }

    async fn describe_policies(&self, resource_id: &str) -> CloudResult<Vec<TrackingPolicy>> {
        self.0
            .call(ops::DESCRIBE_SCALING_POLICIES, resource_id, |st, _| {
                Ok(st
                    .scaling
                    .policies
                    .iter()
                    .filter(|((rid, _), _)| rid == resource_id)
                    .map(|(_, p)| p.clone())
                    .collect())
            })
            .await
    }

    async fn put_policy(&self, resource_id: &str, policy: &TrackingPolicy) -> CloudResult<()> {
        let op = ops::PUT_SCALING_POLICY;
        self.0
            .call(op, resource_id, |st, _| {
                if !st.scaling.targets.contains_key(resource_id) {
                    return Err(no_target(&op, resource_id));
                }
                st.scaling.policies.insert((resource_id.to_string(), policy.name.clone()), policy.clone());
                Ok(())
            })
            .await
    }

    async fn delete_policy(&self, resource_id: &str, name: &str) -> CloudResult<()> {
        let op = ops::DELETE_SCALING_POLICY;
        self.0
            .call(op, resource_id, |st, _| {
                match st.scaling.policies.remove(&(resource_id.to_string(), name.to_string())) {
                    Some(_) => Ok(()),
                    None => Err(CloudError::new(
                        &op,
                        ErrorKind::NotFound,
                        format!("ObjectNotFoundException: no policy {name}"),
                    )),
                }
            })
            .await
    }
}
