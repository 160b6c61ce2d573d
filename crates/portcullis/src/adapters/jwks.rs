//! `TokenVerifier` for the operators' pool: RS256 signature against the issuer's JWKS (fetched once and
//! cached across invocations), expiry and issuer, then by `token_use`:
//! - an ID token of a person: its audience; the tenant and role come from the claims;
//! - an access token of a service token (client credentials, no `aud`): its `client_id` must be a
//!   recorded, unexpired service token, read from the registry on every request so that a revocation
//!   takes effect at once; the tenant comes from that record, the scopes are those both the record and
//!   the token hold.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use tokio::sync::RwLock;

use crate::config::TokenConfig;
use crate::domain::{Caller, Claims, Scopes};
use crate::error::{Error, Result};
use crate::ports::{ServiceTokenRecords, TokenVerifier};

/// Keys are re-read this often even when every `kid` is known, to pick up rotations.
const KEYS_MAX_AGE: Duration = Duration::from_secs(3600);
/// An unknown `kid` triggers a re-read at most this often, so bad tokens cannot hammer the issuer.
const REFRESH_AT_MOST_EVERY: Duration = Duration::from_secs(30);

/// The claims Portcullis reads from a Cognito ID token.
#[derive(Debug, Deserialize)]
struct IdTokenClaims {
    sub: String,
    token_use: Option<String>,
    email: Option<String>,
    /// Cognito writes a boolean; some issuers write the string "true".
    #[serde(default)]
    email_verified: Option<serde_json::Value>,
    #[serde(rename = "custom:tenant")]
    tenant: Option<String>,
    #[serde(rename = "cognito:groups", default)]
    groups: Vec<String>,
}

/// What tells the two kinds of token apart, and what an access token of a service token carries.
#[derive(Debug, Deserialize)]
struct TokenKind {
    token_use: Option<String>,
    client_id: Option<String>,
    #[serde(default)]
    scope: String,
}

struct CachedKeys {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Instant,
}

/// Verifies ID tokens of one issuer.
pub struct JwksTokenVerifier {
    config: TokenConfig,
    http: reqwest::Client,
    cache: RwLock<Option<CachedKeys>>,
    service_tokens: Option<Arc<dyn ServiceTokenRecords>>,
}

impl JwksTokenVerifier {
    pub fn new(config: TokenConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        JwksTokenVerifier { config, http, cache: RwLock::new(None), service_tokens: None }
    }

    /// Accepts access tokens of the service tokens these records know; without it, only ID tokens.
    pub fn with_service_tokens(mut self, records: Arc<dyn ServiceTokenRecords>) -> Self {
        self.service_tokens = Some(records);
        self
    }

    /// The caller behind a verified access token: a recorded, unexpired service token.
    async fn service_caller(&self, kind: TokenKind) -> Result<Caller> {
        let bad = |why: &str| Error::Unauthenticated(format!("the bearer token is not valid: {why}"));
        let records = self.service_tokens.as_ref().ok_or_else(|| bad("an ID token is required"))?;
        let client_id = kind.client_id.ok_or_else(|| bad("the access token names no client_id"))?;
        let token = records
            .by_client(&client_id)
            .await?
            .ok_or_else(|| bad("the access token's client is not a service token (revoked, or never one)"))?;
        if token.expired(time::OffsetDateTime::now_utc()) {
            return Err(bad("the service token has expired"));
        }
        let granted: Scopes = token.scopes.iter().copied().collect();
        Ok(Caller::service(&token, granted.and(Scopes::from_oauth_claim(&kind.scope))))
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, DecodingKey>> {
        let unavailable = |e: reqwest::Error| Error::Retryable {
            message: "cannot read the token issuer's keys".into(),
            source: Some(Box::new(e)),
        };
        let set: JwkSet = self
            .http
            .get(&self.config.jwks_url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)?;
        Ok(set
            .keys
            .iter()
            .filter_map(|jwk| Some((jwk.common.key_id.clone()?, DecodingKey::from_jwk(jwk).ok()?)))
            .collect())
    }

    /// The key for `kid`, from the cache or a fresh read of the JWKS.
    async fn key(&self, kid: &str) -> Result<DecodingKey> {
        {
            let cache = self.cache.read().await;
            if let Some(cached) = cache.as_ref() {
                let fresh = cached.fetched_at.elapsed() < KEYS_MAX_AGE;
                match cached.keys.get(kid) {
                    Some(key) if fresh => return Ok(key.clone()),
                    None if cached.fetched_at.elapsed() < REFRESH_AT_MOST_EVERY => {
                        return Err(unknown_key());
                    }
                    _ => {}
                }
            }
        }
        let keys = self.fetch_keys().await?;
        let key = keys.get(kid).cloned();
        *self.cache.write().await = Some(CachedKeys { keys, fetched_at: Instant::now() });
        key.ok_or_else(unknown_key)
    }
}

fn unknown_key() -> Error {
    Error::Unauthenticated("the token is not signed by a key of the expected issuer".into())
}

#[async_trait]
impl TokenVerifier for JwksTokenVerifier {
    async fn verify(&self, token: &str) -> Result<Caller> {
        let bad = |why: String| Error::Unauthenticated(format!("the bearer token is not valid: {why}"));
        let header = decode_header(token).map_err(|e| bad(e.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(bad(format!("algorithm {:?} is not accepted", header.alg)));
        }
        let kid = header.kid.ok_or_else(|| bad("it names no signing key (kid)".into()))?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        // Access tokens carry no `aud`: first the signature, issuer and expiry, to learn the token's kind.
        let mut any_audience = validation.clone();
        any_audience.validate_aud = false;
        let kind = decode::<TokenKind>(token, &key, &any_audience).map_err(|e| bad(e.to_string()))?.claims;
        if kind.token_use.as_deref() == Some("access") {
            return self.service_caller(kind).await;
        }
        // Never empty (`TokenConfig::from_env` refuses that): without it, an ID token of any client of the
        // issuer's pool would do.
        validation.set_audience(&self.config.audiences);
        let claims = decode::<IdTokenClaims>(token, &key, &validation).map_err(|e| bad(e.to_string()))?.claims;
        if claims.token_use.as_deref() != Some("id") {
            return Err(bad("an ID token is required (token_use is not 'id')".into()));
        }
        let email_verified = match &claims.email_verified {
            Some(serde_json::Value::Bool(verified)) => *verified,
            Some(serde_json::Value::String(verified)) => verified == "true",
            _ => false,
        };
        Caller::from_claims(Claims {
            subject: claims.sub,
            email: claims.email,
            email_verified,
            tenant: claims.tenant,
            groups: claims.groups,
        })
    }
}
