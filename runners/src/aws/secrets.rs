//! Secrets Manager: reading a secret by ARN (the revision-signing key, in
//! production).

/// Reading the secret failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot read secret {arn}: {message}")]
pub struct SecretError {
    pub arn: String,
    pub message: String,
}

/// The string value of a secret.
pub async fn secret_string(config: &aws_config::SdkConfig, arn: &str) -> Result<String, SecretError> {
    let client = aws_sdk_secretsmanager::Client::new(config);
    let out = client.get_secret_value().secret_id(arn).send().await.map_err(|e| SecretError {
        arn: arn.to_string(),
        message: aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
    })?;
    out.secret_string
        .ok_or_else(|| SecretError { arn: arn.to_string(), message: "the secret has no string value".into() })
}
