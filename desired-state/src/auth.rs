//! Who is calling, and what they may do.
//!
//! A caller presents a bearer token: an API token (looked up by its SHA-256) or,
//! when OIDC is configured, a JWT from the issuer (for example a Cognito user
//! pool). Either way the caller becomes a [`Principal`] with scopes
//! `ROLE:NAMESPACE`, where `read < write < admin` and `*` is every namespace.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tokio::sync::RwLock;

use crate::store::{Store, StoreError, token_hash_of};

/// What a scope lets a caller do; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Read,
    Write,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }
}

/// `ROLE:NAMESPACE` or `ROLE:*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub role: Role,
    /// `None` is every namespace.
    pub namespace: Option<String>,
}

/// A scope string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid scope {0:?}: use ROLE:NAMESPACE with ROLE read, write or admin and NAMESPACE a namespace or *")]
pub struct ScopeError(pub String);

impl FromStr for Scope {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Scope, ScopeError> {
        let (role, ns) = s.split_once(':').unwrap_or((s, "*"));
        let role = match role {
            "read" => Role::Read,
            "write" => Role::Write,
            "admin" => Role::Admin,
            _ => return Err(ScopeError(s.into())),
        };
        let namespace = match ns {
            "*" => None,
            n if !n.is_empty()
                && n.len() <= 63
                && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') =>
            {
                Some(n.to_string())
            }
            _ => return Err(ScopeError(s.into())),
        };
        Ok(Scope { role, namespace })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.role.as_str(), self.namespace.as_deref().unwrap_or("*"))
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Token name or OIDC subject; recorded as the actor of changes.
    pub name: String,
    pub scopes: Vec<Scope>,
}

impl Principal {
    /// Whether the caller may act with `role` in `namespace`.
    pub fn allows(&self, role: Role, namespace: &str) -> bool {
        self.scopes.iter().any(|s| s.role >= role && s.namespace.as_deref().is_none_or(|n| n == namespace))
    }

    /// Whether the caller has `role` in every namespace.
    pub fn allows_everywhere(&self, role: Role) -> bool {
        self.scopes.iter().any(|s| s.role >= role && s.namespace.is_none())
    }

    /// The namespaces the caller may act in with `role`; `None` means all.
    pub fn namespaces(&self, role: Role) -> Option<Vec<String>> {
        if self.allows_everywhere(role) {
            return None;
        }
        let mut v: Vec<String> =
            self.scopes.iter().filter(|s| s.role >= role).filter_map(|s| s.namespace.clone()).collect();
        v.sort();
        v.dedup();
        Some(v)
    }
}

/// Why a caller was not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("unknown or revoked token")]
    UnknownToken,
    #[error("invalid JWT: {0}")]
    InvalidJwt(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// OIDC settings (a Cognito user pool, or any issuer with a JWKS).
#[derive(Debug, Clone)]
pub struct OidcConfig {
    pub issuer: String,
    /// Checked against `aud` (ID tokens) or `client_id` (Cognito access tokens).
    pub audience: Option<String>,
    pub jwks: JwksSource,
    /// The claim holding group names that are scopes (`cognito:groups`).
    pub groups_claim: String,
}

/// Where the issuer's signing keys come from.
#[derive(Debug, Clone)]
pub enum JwksSource {
    Url(String),
    File(PathBuf),
}

/// Authenticates bearer tokens. API-token lookups are cached for a few seconds
/// (a revoked token stops working within [`TOKEN_CACHE_TTL`]).
pub struct Authenticator {
    store: Store,
    oidc: Option<OidcConfig>,
    jwks: RwLock<Option<(JwkSet, Instant)>>,
    http: reqwest::Client,
    cache: Mutex<HashMap<String, (Principal, Instant)>>,
}

/// How long an API token lookup is trusted.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);
const JWKS_REFRESH: Duration = Duration::from_secs(300);

impl Authenticator {
    pub fn new(store: Store, oidc: Option<OidcConfig>) -> Self {
        Authenticator {
            store,
            oidc,
            jwks: RwLock::new(None),
            http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Authenticates the value of an `Authorization` header.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        if let Some(oidc) = &self.oidc
            && token.split('.').count() == 3
        {
            return self.verify_jwt(oidc, token).await;
        }
        let key = token_hash_of(token);
        if let Some((p, at)) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key)
            && at.elapsed() < TOKEN_CACHE_TTL
        {
            return Ok(p.clone());
        }
        let record = self.store.find_token(token).await?.ok_or(AuthError::UnknownToken)?;
        let principal =
            Principal { name: record.name, scopes: record.scopes.iter().filter_map(|s| s.parse().ok()).collect() };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(key, (principal.clone(), Instant::now()));
        Ok(principal)
    }

    async fn verify_jwt(&self, oidc: &OidcConfig, token: &str) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| AuthError::InvalidJwt(e.to_string()))?;
        if matches!(header.alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
            return Err(AuthError::InvalidJwt("symmetric algorithms are not accepted".into()));
        }
        let kid = header.kid.clone().unwrap_or_default();
        let mut key = self.find_key(oidc, &kid, false).await?;
        if key.is_none() {
            // The issuer may have rotated its keys.
            key = self.find_key(oidc, &kid, true).await?;
        }
        let key = key.ok_or_else(|| AuthError::InvalidJwt(format!("no key {kid:?} in the issuer's JWKS")))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[oidc.issuer.as_str()]);
        validation.validate_aud = false;
        validation.leeway = 30;
        let data = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|e| AuthError::InvalidJwt(e.to_string()))?;
        let claims = data.claims;
        if let Some(aud) = &oidc.audience {
            let matches = |v: &Value| match v {
                Value::String(s) => s == aud,
                Value::Array(a) => a.iter().any(|x| x.as_str() == Some(aud)),
                _ => false,
            };
            let ok = claims.get("aud").is_some_and(matches) || claims.get("client_id").is_some_and(matches);
            if !ok {
                return Err(AuthError::InvalidJwt(format!("audience is not {aud:?}")));
            }
        }
        let name = ["cognito:username", "username", "email", "sub"]
            .iter()
            .find_map(|c| claims.get(*c).and_then(Value::as_str))
            .unwrap_or("oidc-user")
            .to_string();
        let scopes = claims
            .get(&oidc.groups_claim)
            .and_then(Value::as_array)
            .map(|groups| groups.iter().filter_map(Value::as_str).filter_map(|g| g.parse().ok()).collect())
            .unwrap_or_default();
        Ok(Principal { name: format!("oidc:{name}"), scopes })
    }

    async fn find_key(&self, oidc: &OidcConfig, kid: &str, refresh: bool) -> Result<Option<DecodingKey>, AuthError> {
        {
            let cached = self.jwks.read().await;
            if let Some((set, at)) = cached.as_ref()
                && !refresh
                && at.elapsed() < JWKS_REFRESH
            {
                return Ok(pick(set, kid));
            }
            if refresh && cached.as_ref().is_some_and(|(_, at)| at.elapsed() < Duration::from_secs(30)) {
                return Ok(cached.as_ref().and_then(|(set, _)| pick(set, kid)));
            }
        }
        let set: JwkSet = match &oidc.jwks {
            JwksSource::File(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| AuthError::InvalidJwt(format!("cannot read JWKS file {}: {e}", path.display())))?;
                serde_json::from_str(&text).map_err(|e| AuthError::InvalidJwt(format!("bad JWKS file: {e}")))?
            }
            JwksSource::Url(url) => self
                .http
                .get(url)
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| AuthError::InvalidJwt(format!("cannot fetch JWKS from {url}: {e}")))?
                .json()
                .await
                .map_err(|e| AuthError::InvalidJwt(format!("bad JWKS from {url}: {e}")))?,
        };
        let key = pick(&set, kid);
        *self.jwks.write().await = Some((set, Instant::now()));
        Ok(key)
    }
}

fn pick(set: &JwkSet, kid: &str) -> Option<DecodingKey> {
    let jwk = if kid.is_empty() { set.keys.first() } else { set.find(kid) }?;
    DecodingKey::from_jwk(jwk).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_order() {
        let p =
            Principal { name: "t".into(), scopes: vec!["write:payments".parse().unwrap(), "read:*".parse().unwrap()] };
        assert!(p.allows(Role::Read, "anything"));
        assert!(p.allows(Role::Write, "payments"));
        assert!(!p.allows(Role::Write, "default"));
        assert!(!p.allows(Role::Admin, "payments"));
        assert_eq!(p.namespaces(Role::Read), None);
        assert_eq!(p.namespaces(Role::Write), Some(vec!["payments".to_string()]));
        assert_eq!("admin".parse::<Scope>().unwrap().to_string(), "admin:*");
        for bad in ["root:*", "write:", "write:Payments", "write:a b"] {
            assert!(bad.parse::<Scope>().is_err(), "{bad}");
        }
    }
}
