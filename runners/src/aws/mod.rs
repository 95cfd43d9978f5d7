//! The AWS SDK side of the facades: one `SdkConfig` for every client, from the
//! standard chain (environment, profile, instance/task role), with an endpoint
//! override for a local AWS such as moto.

pub mod caches;
pub mod cloudwatch;
pub mod codebuild;
pub mod ec2;
pub mod ecs;
mod ecs_rollout;
pub mod error;
pub mod logs;
pub mod queues;
pub mod route53;
pub mod scaling;
pub mod secrets;
pub mod sqs;
pub mod targets;

use std::sync::Arc;

use aws_config::default_provider::region::DefaultRegionChain;
use aws_config::environment::region::EnvironmentVariableRegionProvider;
use aws_config::meta::region::ProvideRegion;
use aws_config::profile::ProfileFileRegionProvider;
use aws_config::{BehaviorVersion, Region};

/// The region a local AWS endpoint (moto) is used with when neither the
/// setting nor the standard chain names one. Real AWS gets no such default: a
/// process that acts in the wrong region is worse than one that refuses to
/// start.
pub const LOCAL_DEFAULT_REGION: &str = "us-east-1";

/// How to reach AWS.
#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    /// `http://127.0.0.1:4566` for moto; `None` for real AWS.
    pub endpoint: Option<String>,
    /// Overrides the region of the standard chain (`--aws-region`).
    pub region: Option<String>,
}

/// Loads the shared SDK configuration from the standard chain: credentials
/// and region from the environment (`AWS_REGION`, `AWS_DEFAULT_REGION`), the
/// profile (`AWS_PROFILE`, `AWS_CONFIG_FILE`), then the task or instance
/// metadata. `settings.region` overrides the chain's region; a local endpoint
/// without any region uses [`LOCAL_DEFAULT_REGION`]. The SDK's standard retry
/// mode stays on as the last line behind Mooring's own budgets.
///
/// Load it once per process and hand the same configuration to every client
/// ([`AwsContext`] does that lazily).
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
    let region = match &settings.region {
        Some(r) => Some(Region::new(r.clone())),
        None => chain_region(settings.endpoint.is_some()).await,
    };
    let region = region.or_else(|| settings.endpoint.as_ref().map(|_| Region::from_static(LOCAL_DEFAULT_REGION)));
    if let Some(region) = region {
        loader = loader.region(region);
    }
    loader.load().await
}

/// The region of the standard chain. With a local endpoint only the
/// environment and the profile are asked: there is no metadata service to
/// ask outside AWS.
async fn chain_region(local: bool) -> Option<Region> {
    if !local {
        return DefaultRegionChain::builder().build().region().await;
    }
    match EnvironmentVariableRegionProvider::new().region().await {
        Some(region) => Some(region),
        None => ProfileFileRegionProvider::builder().build().region().await,
    }
}

/// One SDK configuration per process, loaded on first use: the signing-key
/// fetch, the AWS-event reader and every facade share it, so endpoint, region
/// and credentials agree everywhere and the chain is walked once.
#[derive(Debug)]
pub struct AwsContext {
    settings: AwsSettings,
    config: tokio::sync::OnceCell<aws_config::SdkConfig>,
}

impl AwsContext {
    pub fn new(settings: AwsSettings) -> AwsContext {
        AwsContext { settings, config: tokio::sync::OnceCell::new() }
    }

    /// The settings it loads from.
    pub fn settings(&self) -> &AwsSettings {
        &self.settings
    }

    /// The configuration, loaded by the first caller.
    pub async fn config(&self) -> &aws_config::SdkConfig {
        self.config.get_or_init(|| sdk_config(&self.settings)).await
    }

    /// The region of the configuration, if any source named one.
    pub async fn region(&self) -> Option<String> {
        self.config().await.region().map(|r| r.to_string())
    }
}

/// Who this process is in AWS: the account and principal the credentials
/// belong to (STS GetCallerIdentity) and the region it acts in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AwsIdentity {
    pub account: String,
    pub arn: String,
    pub region: String,
}

/// Why the identity could not be established.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// No setting and no source of the standard chain names a region.
    #[error("no AWS region: pass --aws-region, or set AWS_REGION / AWS_DEFAULT_REGION, or a region in the AWS profile")]
    NoRegion,
    /// STS refused or could not be reached (credentials, network).
    #[error("cannot establish the AWS identity (sts:GetCallerIdentity in {region}): {message}")]
    Sts { region: String, message: String },
}

/// Asks STS who the credentials belong to. Needs no IAM permission; it is
/// what proves, at start-up, that credentials and region work.
pub async fn identity(config: &aws_config::SdkConfig) -> Result<AwsIdentity, IdentityError> {
    let region = config.region().map(|r| r.to_string()).ok_or(IdentityError::NoRegion)?;
    let out = aws_sdk_sts::Client::new(config).get_caller_identity().send().await.map_err(|e| IdentityError::Sts {
        region: region.clone(),
        message: aws_sdk_sts::error::DisplayErrorContext(e).to_string(),
    })?;
    Ok(AwsIdentity { account: out.account.unwrap_or_default(), arn: out.arn.unwrap_or_default(), region })
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
        metrics: Arc::new(cloudwatch::SdkMetrics::new(config)),
        scaling: Arc::new(scaling::SdkAppScaling::new(config)),
        logs: Arc::new(logs::SdkLogs::new(config)),
        targets: Arc::new(targets::SdkTargetGroups::new(config)),
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
        dns: Arc::new(route53::SdkDns::new(config)),
        alarms: Arc::new(cloudwatch::SdkMetrics::new(config)),
        snapshots: Arc::new(ec2::SdkEc2::new(config)),
    }
}
