//! Who is calling, and what they may do.
//!
//! A caller presents a bearer token: an API token (looked up by its SHA-256) or,
//! when OIDC is configured, a JWT from the issuer (for example a Cognito user
//! pool). Either way the caller becomes a [`Principal`] with scopes
//! `ROLE:NAMESPACE`, where `read < write < admin` and `*` is every namespace,
//! or `metrics`: only `/metrics` (for a Prometheus scraper).

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
    /// Scrape `/metrics`, nothing else. The metrics name resources of every
    /// namespace, so only a cluster-wide scope grants it: `metrics`, or any
    /// other role on `*`.
    Metrics,
    Read,
    Write,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Metrics => "metrics",
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
#[error(
    "invalid scope {0:?}: use ROLE:NAMESPACE with ROLE read, write or admin and NAMESPACE a namespace or *, \
     or `metrics` (cluster-wide only)"
)]
pub struct ScopeError(pub String);

impl FromStr for Scope {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Scope, ScopeError> {
        let (role, ns) = s.split_once(':').unwrap_or((s, "*"));
        let role = match role {
            "metrics" if ns == "*" => Role::Metrics,
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
///
/// A JWT is accepted only when it is signed by a key of the issuer's JWKS,
/// names the issuer in `iss`, has not expired (`exp`, both claims required),
/// and was issued for `audience` (its `aud`, or `client_id` for Cognito access
/// tokens): a user pool's other app clients are not trusted. The caller's
/// scopes come only from `group_scopes`; a group that is not mapped grants
/// nothing, whatever its name.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    pub issuer: String,
    /// Checked against `aud` (ID tokens) or `client_id` (Cognito access tokens).
    pub audience: String,
    pub jwks: JwksSource,
    /// The claim holding the caller's groups (`cognito:groups`).
    pub groups_claim: String,
    /// Which scopes each group grants.
    pub group_scopes: Vec<GroupScope>,
}

/// One `GROUP=ROLE:NAMESPACE` mapping: members of `group` get `scope`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupScope {
    pub group: String,
    pub scope: Scope,
}

/// A group mapping that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupScopeError {
    #[error("invalid group mapping {0:?}: use GROUP=ROLE:NAMESPACE, e.g. payments-devs=write:payments")]
    Shape(String),
    #[error("invalid group mapping {mapping:?}: {source}")]
    Scope { mapping: String, source: ScopeError },
}

impl FromStr for GroupScope {
    type Err = GroupScopeError;
    fn from_str(s: &str) -> Result<GroupScope, GroupScopeError> {
        let (group, scope) = s.split_once('=').ok_or_else(|| GroupScopeError::Shape(s.into()))?;
        let group = group.trim();
        if group.is_empty() {
            return Err(GroupScopeError::Shape(s.into()));
        }
        // The scope must name its namespace explicitly: `admin` alone is not `admin:*` here.
        let scope = scope.trim();
        if !scope.contains(':') {
            return Err(GroupScopeError::Shape(s.into()));
        }
        let scope = scope.parse().map_err(|source| GroupScopeError::Scope { mapping: s.into(), source })?;
        Ok(GroupScope { group: group.to_string(), scope })
    }
}

impl OidcConfig {
    /// The scopes granted to members of `groups`, through the explicit mapping only.
    pub fn scopes_for<'a>(&self, groups: impl IntoIterator<Item = &'a str>) -> Vec<Scope> {
        let groups: Vec<&str> = groups.into_iter().collect();
        let mut scopes: Vec<Scope> =
            self.group_scopes.iter().filter(|m| groups.contains(&m.group.as_str())).map(|m| m.scope.clone()).collect();
        scopes.dedup();
        scopes
    }
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
        validation.set_required_spec_claims(&["exp", "iss"]);
        // Cognito access tokens carry the app client in `client_id`, not `aud`:
        // the audience is checked below, against either.
        validation.validate_aud = false;
        validation.leeway = 30;
        let data = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|e| AuthError::InvalidJwt(e.to_string()))?;
        let claims = data.claims;
        let aud = oidc.audience.as_str();
        let matches = |v: &Value| match v {
            Value::String(s) => s == aud,
            Value::Array(a) => a.iter().any(|x| x.as_str() == Some(aud)),
            _ => false,
        };
        if !(claims.get("aud").is_some_and(matches) || claims.get("client_id").is_some_and(matches)) {
            return Err(AuthError::InvalidJwt(format!("the token was not issued for {aud:?} (aud or client_id)")));
        }
        let name = ["cognito:username", "username", "email", "sub"]
            .iter()
            .find_map(|c| claims.get(*c).and_then(Value::as_str))
            .unwrap_or("oidc-user")
            .to_string();
        let groups = claims.get(&oidc.groups_claim).and_then(Value::as_array).into_iter().flatten();
        let scopes = oidc.scopes_for(groups.filter_map(Value::as_str));
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
        let scraper = Principal { name: "prom".into(), scopes: vec!["metrics".parse().unwrap()] };
        assert!(scraper.allows_everywhere(Role::Metrics));
        assert!(!scraper.allows(Role::Read, "default"));
        assert_eq!(scraper.namespaces(Role::Read), Some(vec![]));
        assert!(p.allows_everywhere(Role::Metrics), "read:* sees every namespace anyway");
        let team = Principal { name: "team".into(), scopes: vec!["admin:payments".parse().unwrap()] };
        assert!(!team.allows_everywhere(Role::Metrics), "metrics name resources of other namespaces");
        assert_eq!("metrics".parse::<Scope>().unwrap().to_string(), "metrics:*");
        for bad in ["root:*", "write:", "write:Payments", "write:a b", "metrics:payments"] {
            assert!(bad.parse::<Scope>().is_err(), "{bad}");
        }
    }

    #[test]
    fn groups_grant_only_mapped_scopes() {
        let config = OidcConfig {
            issuer: "https://issuer".into(),
            audience: "app".into(),
            jwks: JwksSource::File(PathBuf::from("/dev/null")),
            groups_claim: "cognito:groups".into(),
            group_scopes: ["payments-devs=write:payments", "platform=admin:*", "payments-devs=read:*"]
                .iter()
                .map(|m| m.parse().unwrap())
                .collect(),
        };
        let cases: [(&[&str], &[&str]); 5] = [
            (&["payments-devs"], &["write:payments", "read:*"]),
            (&["platform"], &["admin:*"]),
            (&["admin"], &[]),
            (&["write:payments", "admin:*"], &[]),
            (&[], &[]),
        ];
        for (groups, want) in cases {
            let got: Vec<String> = config.scopes_for(groups.iter().copied()).iter().map(ToString::to_string).collect();
            assert_eq!(got, want, "{groups:?}");
        }
        for bad in ["admin", "g=admin", "=read:x", "g=root:x", "g=write:Bad"] {
            assert!(bad.parse::<GroupScope>().is_err(), "{bad}");
        }
    }
}
