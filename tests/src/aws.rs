//! The local AWS (moto) as tests see it: Mooring's own facades to inspect what
//! the servers did, and the SDK for what Mooring never does (create clusters,
//! look up the default VPC). One SDK configuration for all of it.

use runners::aws::AwsSettings;
use runners::cloud::{Cloud, NodeCloud};

/// moto, at `MOORING_AWS_ENDPOINT` (default `http://127.0.0.1:4566`).
pub struct Moto {
    pub endpoint: String,
    /// Mooring's facades over the SDK, pointed at moto.
    pub cloud: Cloud,
    sdk: aws_config::SdkConfig,
}

impl Moto {
    pub async fn connect() -> Moto {
        Moto::region("us-east-1").await
    }

    /// The same moto, seen from another region (moto keeps regions apart, as AWS does).
    pub async fn in_region(&self, region: &str) -> Moto {
        Moto::region(region).await
    }

    async fn region(region: &str) -> Moto {
        let endpoint = std::env::var("MOORING_AWS_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4566".into());
        let settings = AwsSettings { endpoint: Some(endpoint.clone()), region: Some(region.into()) };
        let sdk = runners::aws::sdk_config(&settings).await;
        Moto { cloud: runners::aws::cloud_from(&sdk), sdk, endpoint }
    }

    /// Creates an ECS cluster (idempotent, as in AWS).
    pub async fn ensure_cluster(&self, name: &str) {
        aws_sdk_ecs::Client::new(&self.sdk)
            .create_cluster()
            .cluster_name(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("creating cluster {name} in moto at {}: {e:?}", self.endpoint));
    }

    /// A subnet of moto's default VPC (nodes need one that exists).
    pub async fn default_subnet(&self) -> String {
        let out = aws_sdk_ec2::Client::new(&self.sdk).describe_subnets().send().await.expect("moto subnets");
        out.subnets().iter().find_map(|s| s.subnet_id.clone()).expect("moto has a default VPC with subnets")
    }

    /// Mooring's node facades over the SDK, pointed at moto.
    pub fn node_cloud(&self) -> NodeCloud {
        runners::aws::node_cloud_from(&self.sdk)
    }
}
