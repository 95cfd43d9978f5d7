//! API tokens: a random secret shown once, stored as its SHA-256, with scopes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Store, StoreError};

/// A token as stored (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct TokenRecord {
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// SHA-256 of a token secret, hex.
pub fn token_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl Store {
    /// Creates a token and returns its secret (shown once).
    pub async fn create_token(&self, name: &str, scopes: &[String]) -> Result<String, StoreError> {
        let secret = format!("mooring_{}", URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()));
        let res = sqlx::query("INSERT INTO api_tokens (name, token_hash, scopes) VALUES ($1, $2, $3)")
            .bind(name)
            .bind(token_hash(&secret))
            .bind(scopes)
            .execute(&self.pool)
            .await;
        match res {
            Ok(_) => Ok(secret),
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("23505") => {
                Err(StoreError::TokenExists(name.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Makes `secret` a token named `name` with `scopes`, idempotently (the
    /// bootstrap token: the same value twice changes nothing; a new value
    /// replaces the old one).
    pub async fn ensure_token(&self, name: &str, secret: &str, scopes: &[String]) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_tokens (name, token_hash, scopes) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET token_hash = EXCLUDED.token_hash, scopes = EXCLUDED.scopes",
        )
        .bind(name)
        .bind(token_hash(secret))
        .bind(scopes)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The token a secret belongs to, if any.
    pub async fn find_token(&self, secret: &str) -> Result<Option<TokenRecord>, StoreError> {
        Ok(sqlx::query_as("SELECT name, scopes, created_at FROM api_tokens WHERE token_hash = $1")
            .bind(token_hash(secret))
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Every token, by name.
    pub async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        Ok(sqlx::query_as("SELECT name, scopes, created_at FROM api_tokens ORDER BY name")
            .fetch_all(&self.pool)
            .await?)
    }

    /// Deletes a token.
    pub async fn delete_token(&self, name: &str) -> Result<(), StoreError> {
        let n = sqlx::query("DELETE FROM api_tokens WHERE name = $1").bind(name).execute(&self.pool).await?;
        if n.rows_affected() == 0 {
            return Err(StoreError::TokenNotFound(name.to_string()));
        }
        Ok(())
    }
}
