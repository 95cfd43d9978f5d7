//! The local AWS (moto) as tests see it: Mooring's own facades to inspect what
//! the servers did, and the SDK for what Mooring never does (create clusters).

use runners::aws::AwsSettings;
use runners::cloud::Cloud;

/// moto, at `MOORING_AWS_ENDPOINT` (default `http://127.0.0.1:4566`).
pub struct Moto {
    pub endpoint: String,
    /// Mooring's facades over the SDK, pointed at moto.
    pub cloud: Cloud,
    ecs: aws_sdk_ecs::Client,
}

impl Moto {
    pub async fn connect() -> Moto {
        let endpoint = std::env::var("MOORING_AWS_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4566".into());
        let settings = AwsSettings { endpoint: Some(endpoint.clone()), region: Some("us-east-1".into()) };
        let sdk = runners::aws::sdk_config(&settings).await;
        Moto { cloud: runners::aws::cloud(&settings).await, ecs: aws_sdk_ecs::Client::new(&sdk), endpoint }
    }

    /// Creates an ECS cluster (idempotent, as in AWS).
    pub async fn ensure_cluster(&self, name: &str) {
        self.ecs
            .create_cluster()
            .cluster_name(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("creating cluster {name} in moto at {}: {e:?}", self.endpoint));
    }
}
