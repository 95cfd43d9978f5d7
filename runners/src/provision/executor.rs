//! A build's work in-process: parse the build environment and run the
//! provisioner. The simulated cloud's builds and `mooring-provisioner` both go
//! through it.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{ProvisionError, ProvisionRequest, Provisioned, Provisioner, ProvisionerConfig};
use crate::cloud::codebuild::BuildExecutor;
use crate::cloud::{Ec2, NodeCloud, TargetGroups};
use crate::sim::SimCloud;

/// Runs provisioner builds against the given EC2 and target groups.
pub struct ProvisionExecutor {
    pub ec2: Arc<dyn Ec2>,
    pub targets: Arc<dyn TargetGroups>,
    pub config: ProvisionerConfig,
}

impl ProvisionExecutor {
    /// The node clients of a simulated account whose builds run the
    /// provisioner in-process against that same account.
    pub fn simulated(sim: &SimCloud, config: ProvisionerConfig) -> NodeCloud {
        sim.node_cloud(Arc::new(ProvisionExecutor { ec2: sim.ec2(), targets: sim.target_groups(), config }))
    }

    /// One build, from its environment.
    pub async fn run(&self, env: &BTreeMap<String, String>) -> Result<Provisioned, ProvisionError> {
        let req = ProvisionRequest::from_env(env)?;
        Provisioner::new(self.ec2.as_ref(), self.targets.as_ref(), self.config).run(&req).await
    }
}

#[async_trait]
impl BuildExecutor for ProvisionExecutor {
    async fn execute(&self, env: &BTreeMap<String, String>) -> Result<(), String> {
        self.run(env).await.map(|_| ()).map_err(|e| e.to_string())
    }
}
