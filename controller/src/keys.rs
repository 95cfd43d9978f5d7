//! Where the revision-signing key comes from, in order: a file, a Secrets
//! Manager ARN, the `MOORING_SIGNING_KEY` variable, else a development key kept
//! in the cache directory.

use std::path::{Path, PathBuf};

use desired_state::signing::KeySource;
use runners::aws::AwsContext;

/// The settings that name a key.
#[derive(Debug, Clone, Default)]
pub struct KeySettings {
    pub file: Option<PathBuf>,
    pub arn: Option<String>,
    /// The value of `MOORING_SIGNING_KEY`, if set.
    pub inline: Option<String>,
}

/// Resolves the key's source; reads the secret when an ARN is given, with the
/// process's one AWS configuration (so the secret is read in the region and
/// with the credentials everything else uses).
pub async fn key_source(settings: &KeySettings, cache_dir: &Path, aws: &AwsContext) -> anyhow::Result<KeySource> {
    if let Some(path) = &settings.file {
        return Ok(KeySource::File(path.clone()));
    }
    if let Some(arn) = &settings.arn {
        let value = runners::aws::secrets::secret_string(aws.config().await, arn).await?;
        return Ok(KeySource::Inline(value));
    }
    if let Some(inline) = settings.inline.as_ref().filter(|v| !v.trim().is_empty()) {
        return Ok(KeySource::Inline(inline.clone()));
    }
    Ok(KeySource::Dev(cache_dir.join("dev-signing.key")))
}
