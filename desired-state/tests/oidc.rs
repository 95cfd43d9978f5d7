//! OIDC: JWTs from a configured issuer (a Cognito user pool, say) authenticate,
//! and their groups become scopes.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::relay;
use desired_state::api::ApiConfig;
use desired_state::auth::{JwksSource, OidcConfig};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::PgPool;

const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_TEST";

struct Issuer {
    key: SigningKey,
    kid: String,
}

impl Issuer {
    fn new(kid: &str) -> Issuer {
        Issuer { key: SigningKey::from_bytes(&rand::random::<[u8; 32]>()), kid: kid.into() }
    }

    fn jwk(&self) -> serde_json::Value {
        json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": self.kid,
               "x": URL_SAFE_NO_PAD.encode(self.key.verifying_key().to_bytes())})
    }

    fn token(&self, claims: serde_json::Value) -> String {
        let der = self.key.to_pkcs8_der().unwrap();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(der.as_bytes())).unwrap()
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[sqlx::test(migrations = false)]
async fn cognito_style_jwts_authenticate_with_group_scopes(pool: PgPool) {
    let issuer = Issuer::new("key-1");
    let dir = std::env::temp_dir().join(format!("mooring-jwks-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let jwks_path = dir.join("jwks.json");
    std::fs::write(&jwks_path, json!({"keys": [issuer.jwk()]}).to_string()).unwrap();
    let api = common::start_with(
        pool,
        ApiConfig {
            oidc: Some(OidcConfig {
                issuer: ISSUER.into(),
                audience: "app-client".into(),
                jwks: JwksSource::File(jwks_path),
                groups_claim: "cognito:groups".into(),
                group_scopes: ["payments-devs=write:payments", "everyone=read:*", "platform=admin:*"]
                    .iter()
                    .map(|m| m.parse().unwrap())
                    .collect(),
            }),
            redis_prefix: common::unique_prefix(),
            ..Default::default()
        },
    )
    .await;
    let claims = |groups: serde_json::Value, exp_offset: i64| {
        json!({"iss": ISSUER, "client_id": "app-client", "cognito:username": "alice", "cognito:groups": groups,
               "exp": (now() as i64 + exp_offset), "iat": now(), "token_use": "access"})
    };
    let alice = issuer.token(claims(json!(["payments-devs", "everyone"]), 600));
    let create = api
        .call(
            Method::POST,
            "/v1/namespaces/payments/relays",
            Some(&alice),
            Some(("application/json", relay("gw", "payments", "nginx:1").to_string())),
        )
        .await;
    assert_eq!(create.status, StatusCode::CREATED, "{}", create.text);
    let revs = api.call(Method::GET, "/v1/namespaces/payments/relays/gw/revisions", Some(&alice), None).await;
    assert_eq!(revs.body["items"][0]["actor"], "oidc:alice");
    // Groups grant their mapped scopes only: no write outside payments.
    let elsewhere = api
        .call(
            Method::POST,
            "/v1/namespaces/default/relays",
            Some(&alice),
            Some(("application/json", relay("gw", "default", "nginx:1").to_string())),
        )
        .await;
    assert_eq!(elsewhere.status, StatusCode::FORBIDDEN);

    // A group named like a scope, or `admin`, grants nothing: only the mapping does.
    for groups in [json!(["admin"]), json!(["admin:*", "write:payments"])] {
        let named = issuer.token(claims(groups.clone(), 600));
        let r = api.call(Method::GET, "/v1/tokens", Some(&named), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{groups}: {}", r.text);
        let r = api.call(Method::GET, "/v1/namespaces/payments/relays", Some(&named), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{groups}: {}", r.text);
    }
    let platform = issuer.token(claims(json!(["platform"]), 600));
    assert_eq!(api.call(Method::GET, "/v1/tokens", Some(&platform), None).await.status, StatusCode::OK);

    // Expired, wrong audience, no audience, wrong issuer, no issuer, no
    // expiry, unknown key, tampered: 401.
    let expired = issuer.token(claims(json!(["platform"]), -3600));
    let mut wrong_aud = claims(json!(["platform"]), 600);
    wrong_aud["client_id"] = json!("other-client");
    let mut no_aud = claims(json!(["platform"]), 600);
    no_aud.as_object_mut().unwrap().remove("client_id");
    let mut wrong_iss = claims(json!(["platform"]), 600);
    wrong_iss["iss"] = json!("https://evil.example");
    let mut no_iss = claims(json!(["platform"]), 600);
    no_iss.as_object_mut().unwrap().remove("iss");
    let mut no_exp = claims(json!(["platform"]), 600);
    no_exp.as_object_mut().unwrap().remove("exp");
    let stranger = Issuer::new("key-1").token(claims(json!(["platform"]), 600));
    let mut tampered = alice.clone();
    tampered.insert(tampered.len() / 2, 'x');
    for (what, token) in [
        ("expired", expired),
        ("wrong audience", issuer.token(wrong_aud)),
        ("no audience", issuer.token(no_aud)),
        ("wrong issuer", issuer.token(wrong_iss)),
        ("no issuer", issuer.token(no_iss)),
        ("no expiry", issuer.token(no_exp)),
        ("unknown key", stranger),
        ("tampered", tampered),
    ] {
        let r = api.call(Method::GET, "/v1/relays", Some(&token), None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {}", r.text);
    }
    // API tokens still work beside OIDC.
    assert_eq!(api.get("/v1/relays").await.status, StatusCode::OK);
    std::fs::remove_dir_all(dir).ok();
}
