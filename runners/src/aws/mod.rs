//! The AWS SDK side of the facades: one `SdkConfig` for every client, from the
//! standard chain (environment, profile, instance/task role), with an endpoint
//! override for a local AWS such as moto.

pub mod caches;
pub mod codebuild;
pub mod ec2;
pub mod ecs;
pub mod error;
pub mod queues;
pub mod secrets;
pub mod sqs;
pub mod targets;

use std::sync::Arc;

use aws_config::{BehaviorVersion, Region};

/// How to reach AWS.
#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    /// `http://127.0.0.1:4566` for moto; `None` for real AWS.
    pub endpoint: Option<String>,
    /// Overrides the region from the chain (default `us-east-1` when the chain has none).
    pub region: Option<String>,
}

impl AwsSettings {
    /// The region: the setting, else `AWS_REGION`, else `us-east-1`.
    pub fn region_or_default(&self) -> String {
        self.region.clone().or_else(|| std::env::var("AWS_REGION").ok()).unwrap_or_else(|| "us-east-1".into())
    }
}

/// Loads the shared SDK configuration. The SDK's standard retry mode stays on
/// as the last line behind Mooring's own budgets.
pub async fn sdk_config(settings: &AwsSettings) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(endpoint) = &settings.endpoint {
        loader = loader.endpoint_url(endpoint);
        // A local AWS takes any key; without one in the environment the chain
        // would go looking for an instance role, which only exists in AWS.
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() && std::env::var_os("AWS_PROFILE").is_none() {
            loader =
                loader.credentials_provider(aws_credential_types::Credentials::from_keys("testing", "testing", None));
        }
    }
    loader.region(Region::new(settings.region_or_default())).load().await
}

/// The cloud of the AWS SDK: every facade's client built from one
/// [`sdk_config`], so endpoint, region and credentials agree across services.
pub async fn cloud(settings: &AwsSettings) -> crate::cloud::Cloud {
    cloud_from(&sdk_config(settings).await)
}

/// The cloud of the AWS SDK over an already loaded configuration, so a caller
/// that needs [`node_cloud_from`] as well loads it once.
pub fn cloud_from(config: &aws_config::SdkConfig) -> crate::cloud::Cloud {
    crate::cloud::Cloud {
        ecs: Arc::new(ecs::SdkEcs::new(config)),
        queues: Arc::new(queues::SdkQueues::new(config)),
        caches: Arc::new(caches::SdkCaches::new(config)),
    }
}

/// The node clients of the AWS SDK (EC2, CodeBuild, ELBv2 target groups), from
/// one [`sdk_config`] like [`cloud`].
pub async fn node_cloud(settings: &AwsSettings) -> crate::cloud::NodeCloud {
    node_cloud_from(&sdk_config(settings).await)
}

/// The node clients of the AWS SDK over an already loaded configuration.
pub fn node_cloud_from(config: &aws_config::SdkConfig) -> crate::cloud::NodeCloud {
    crate::cloud::NodeCloud {
        ec2: Arc::new(ec2::SdkEc2::new(config)),
        builds: Arc::new(codebuild::SdkBuilds::new(config)),
        targets: Arc::new(targets::SdkTargetGroups::new(config)),
    }
}
