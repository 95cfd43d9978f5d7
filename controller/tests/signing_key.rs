//! The revision-signing key can come from Secrets Manager (moto, over HTTP with
//! the real SDK).

use controller::keys::{KeySettings, key_source};
use desired_state::signing::Signer;
use runners::aws::{AwsContext, AwsSettings};

#[tokio::test]
async fn the_signing_key_is_read_from_secrets_manager() {
    let endpoint = std::env::var("MOORING_AWS_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4566".into());
    let aws = AwsSettings { endpoint: Some(endpoint), region: Some("us-east-1".into()) };
    let aws = AwsContext::new(aws);
    let client = aws_sdk_secretsmanager::Client::new(aws.config().await);
    let seed = hex::encode([42u8; 32]);
    let name = format!("mooring-signing-{}", uuid::Uuid::new_v4().simple());
    let arn = client.create_secret().name(&name).secret_string(&seed).send().await.expect("moto answers").arn.unwrap();

    let settings = KeySettings { arn: Some(arn.clone()), ..Default::default() };
    let signer =
        Signer::load(&key_source(&settings, std::path::Path::new("/nonexistent"), &aws).await.unwrap()).unwrap();
    let expected = Signer::load(&desired_state::signing::KeySource::Inline(seed)).unwrap();
    assert_eq!(signer.key_id(), expected.key_id());

    // A missing secret is a clear error naming the ARN.
    let missing = KeySettings { arn: Some(format!("{arn}-gone")), ..Default::default() };
    let err = key_source(&missing, std::path::Path::new("/nonexistent"), &aws).await.unwrap_err().to_string();
    assert!(err.contains("-gone"), "{err}");
    client.delete_secret().secret_id(&name).force_delete_without_recovery(true).send().await.unwrap();
}
