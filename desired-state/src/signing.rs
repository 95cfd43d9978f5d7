//! Ed25519 signing of the revision history.
//!
//! Every revision row carries the hash of the previous revision of the same
//! resource and a signature over its own hash, so `mooring audit verify` can prove
//! that no row was altered, removed from the middle of a chain, or forged without
//! the key. The key comes from a file or an environment variable; when neither is
//! configured a development key is generated once and kept in the cache directory
//! (a warning says so).

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

/// Where the signing key comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A file holding a PKCS#8 PEM key, or a 32-byte seed in hex or base64.
    File(PathBuf),
    /// The key material itself (same formats as a file).
    Inline(String),
    /// A development key, generated on first use and kept at this path.
    Dev(PathBuf),
}

/// The key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read signing key file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write development signing key {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("signing key {origin} is neither a PKCS#8 PEM key nor a 32-byte seed in hex or base64")]
    Format { origin: String },
}

/// Signs revision hashes.
pub struct Signer {
    key: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl Signer {
    /// Loads (or for [`KeySource::Dev`], creates) the key.
    pub fn load(source: &KeySource) -> Result<Signer, KeyError> {
        let key = match source {
            KeySource::File(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|e| KeyError::Read { path: path.clone(), source: e })?;
                parse_key(&text).ok_or_else(|| KeyError::Format { origin: path.display().to_string() })?
            }
            KeySource::Inline(text) => {
                parse_key(text).ok_or_else(|| KeyError::Format { origin: "MOORING_SIGNING_KEY".into() })?
            }
            KeySource::Dev(path) => load_or_create_dev(path)?,
        };
        Ok(Signer::from_key(key))
    }

    /// A signer over a given key (tests, and key rotation tools).
    pub fn from_key(key: SigningKey) -> Signer {
        let key_id = key_id(&key.verifying_key());
        Signer { key, key_id }
    }

    /// A fresh random key (tests).
    pub fn generate() -> Signer {
        Signer::from_key(SigningKey::from_bytes(&rand::random::<[u8; 32]>()))
    }

    /// Short id of the public key, stored with every signature.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public key, hex-encoded, as stored in `signing_keys`.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().to_bytes())
    }

    /// Signs a message; the signature is hex-encoded.
    pub fn sign(&self, message: &[u8]) -> String {
        hex::encode(self.key.sign(message).to_bytes())
    }
}

/// The id of a public key: the first 16 hex digits of its SHA-256.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(Sha256::digest(key.to_bytes()))[..16].to_string()
}

/// Checks a hex signature over `message` with a hex public key.
pub fn verify(public_key_hex: &str, message: &[u8], signature_hex: &str) -> bool {
    let Some(pk) = hex::decode(public_key_hex).ok().and_then(|b| <[u8; 32]>::try_from(b).ok()) else {
        return false;
    };
    let Some(sig) = hex::decode(signature_hex).ok().and_then(|b| <[u8; 64]>::try_from(b).ok()) else {
        return false;
    };
    let Ok(vk) = VerifyingKey::from_bytes(&pk) else { return false };
    vk.verify(message, &Signature::from_bytes(&sig)).is_ok()
}

fn parse_key(text: &str) -> Option<SigningKey> {
    let t = text.trim();
    if t.starts_with("-----BEGIN") {
        return SigningKey::from_pkcs8_pem(t).ok();
    }
    let bytes = hex::decode(t).ok().or_else(|| STANDARD.decode(t).ok())?;
    let seed: [u8; 32] = bytes.try_into().ok()?;
    Some(SigningKey::from_bytes(&seed))
}

fn load_or_create_dev(path: &Path) -> Result<SigningKey, KeyError> {
    if let Ok(text) = std::fs::read_to_string(path) {
        return parse_key(&text).ok_or_else(|| KeyError::Format { origin: path.display().to_string() });
    }
    let seed: [u8; 32] = rand::random();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| KeyError::Write { path: path.to_path_buf(), source: e })?;
    }
    write_private(path, &hex::encode(seed)).map_err(|e| KeyError::Write { path: path.to_path_buf(), source: e })?;
    tracing::warn!(path = %path.display(), "no signing key configured: generated a development key; set MOORING_SIGNING_KEY_FILE in production");
    Ok(SigningKey::from_bytes(&seed))
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
        f.write_all(contents.as_bytes())
    }
    #[cfg(not(unix))]
    {
        std::fs::write(path, contents)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_tampering_fails() {
        let s = Signer::generate();
        let sig = s.sign(b"hello");
        assert!(verify(&s.public_key_hex(), b"hello", &sig));
        assert!(!verify(&s.public_key_hex(), b"hellO", &sig));
        assert!(!verify(&Signer::generate().public_key_hex(), b"hello", &sig));
        assert!(!verify(&s.public_key_hex(), b"hello", "00"));
    }

    #[test]
    fn keys_load_from_hex_base64_and_dev_files() {
        let seed = [7u8; 32];
        let a = Signer::load(&KeySource::Inline(hex::encode(seed))).unwrap();
        let b = Signer::load(&KeySource::Inline(STANDARD.encode(seed))).unwrap();
        assert_eq!(a.key_id(), b.key_id());
        assert!(Signer::load(&KeySource::Inline("nope".into())).is_err());

        let dir = std::env::temp_dir().join(format!("mooring-key-{}", uuid::Uuid::new_v4()));
        let path = dir.join("dev.key");
        let first = Signer::load(&KeySource::Dev(path.clone())).unwrap();
        let again = Signer::load(&KeySource::Dev(path.clone())).unwrap();
        assert_eq!(first.key_id(), again.key_id(), "the development key is kept");
        std::fs::remove_dir_all(dir).ok();
    }
}
