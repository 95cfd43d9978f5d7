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

    /// The SDK configuration pointed at moto, for what a test does by hand
    /// (someone else's queue or project).
    pub fn sdk(&self) -> &aws_config::SdkConfig {
        &self.sdk
    }

    /// moto's default VPC and two of its subnets.
    pub async fn default_network(&self) -> (String, Vec<String>) {
        let ec2 = aws_sdk_ec2::Client::new(&self.sdk);
        let vpcs = ec2
            .describe_vpcs()
            .filters(aws_sdk_ec2::types::Filter::builder().name("isDefault").values("true").build())
            .send()
            .await
            .expect("moto VPCs");
        let vpc = vpcs.vpcs().first().and_then(|v| v.vpc_id.clone()).expect("moto has a default VPC");
        let subnets = ec2
            .describe_subnets()
            .filters(aws_sdk_ec2::types::Filter::builder().name("vpc-id").values(&vpc).build())
            .send()
            .await
            .expect("moto subnets");
        let ids: Vec<String> = subnets.subnets().iter().filter_map(|s| s.subnet_id.clone()).take(2).collect();
        assert_eq!(ids.len(), 2, "moto's default VPC has subnets in two zones");
        (vpc, ids)
    }

    /// Mooring's node facades over the SDK, pointed at moto.
    pub fn node_cloud(&self) -> NodeCloud {
        runners::aws::node_cloud_from(&self.sdk)
    }
}
