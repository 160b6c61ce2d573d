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
        // The builder fails only on a bad TLS set-up, which the default client then reports on first use.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        JwksTokenVerifier { config, http, cache: RwLock::new(None), service_tokens: None }
    }

    /// Reads the issuer's keys into the cache before the first request needs them (and opens the
    /// connection to the issuer). Run during a cold start's init.
    pub async fn warm_up(&self) -> Result<()> {
        self.refresh().await.map(drop)
    }

    /// Reads the issuer's keys and caches them; returns them as read.
    async fn refresh(&self) -> Result<HashMap<String, DecodingKey>> {
        let keys = self.fetch_keys().await?;
        *self.cache.write().await = Some(CachedKeys { keys: keys.clone(), fetched_at: Instant::now() });
        Ok(keys)
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
        self.refresh().await?.remove(kid).ok_or_else(unknown_key)
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

#[cfg(test)]
mod tests {
    use base64::Engine;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;
    use time::{Duration as Days, OffsetDateTime};

    use super::*;
    use crate::domain::{Role, Scope, ServiceToken};
    use crate::fakes::MemoryServiceTokens;

    // A throwaway RSA key for these tests only (PKCS#1 DER, base64) and its public modulus (base64url).
    const PRIVATE_KEY_DER: &str = "MIIEogIBAAKCAQEAvKrPJMjcdsd1NDEUnUV28gIWvp8HVWIkC5yS9EK1yUBLvl86wGJRuH9md1GxafmWu4MyYpLt7o8/oZ7el48coneNl+cgvi5WITh7WPiV4S3ptWbYrw+7htG9mG0eXjzeT4d66jwJAE4U1JpD/63raw+HYsJ7/sqCbOKDgE/GMrH2m6PfBg0kab4WV+FX77mZ29DsUa3H+PCi/gVuopWmsK4B3NWeGQ3huy/0k60ALmdE/eDd3UKjpJ6YNePU8JYypIKbWKk4OnCddwcDLky5Aff0QohZ8dITEYE9Gb6DgvWZWwjp1PYvZkQ3D9NY3lCu+Diz/BcalNhMiV1mt1DoUQIDAQABAoH/Z7qBqPfGPofrKIbTjqRigSwk1SkaHxeWOcwb/6+twrhW7JPu+VcVFxr0eyWvJVTUSsQXL5sYtdCMa4+tUiac17ZjYuDwX5+aOymSp5gEz4kutU2WVKmRsM4gL23PBIDyuUcDjUT0rfY//aPTPv+gL3yaMvI6uhsdGkBvjFxP3A6Iai2rcSguiOoQrgve1d3eVmtewe4qDmKe1wImXzOjNZRSv84uO2Ymiemp/Vugm8UdPuOge/qrYTH4p+MMpGKIzYx4o7DPDvh1Zu6BWU1oY+OSQ2Bgu995y7H7smBGtdTqpzzUzQFLglx1wdMR/saV/nBveKR5lNtv521PALJxAoGBAPuFRwg4mQ+l4N5WVEmiEXEukWBXnh4y9tA7IVUUwCHMTXxTJzB76ers0iqEVk/ghW4pGOGtmyfKol/AV+TH622myPsQ/7o9piTuyBpruaqDP+d2y9Ap6A7hDamy47Y/LwbFixlvmT4PQYv9sWe+fBEeTWJQc4bK1DgHgZKxp085AoGBAMAG+RrKIY3Ssdb7b9z0jsdz4t0MKFwLAFKURsoytTfA+FWmjHPpYu1e2RnPo8alX2NOou5SBN+wZfvMp01SKjiZidaAqSGu+4xQ+JkhgNs3sx5AsOn6YpZMVQ7S4E6y+4rhmgi1sG9EicWu8ZomBZPP3rc7o6zYas9fF+rio8nZAoGBAOgtinmDTX+NXzu+s0XZboJtO1OU7efwobdsrgNNCWLppil61PVDnZX4ELWgvdA0cNdU5pwE1vHvct4yvq/5AFGTIXnpojb4i7MSHPOOt7A4QjhXiCLbXFTH2QXqlZt5Td7RYesUAoCwMpCYmjgrNXnT4Bk+LLaj6yzhePHCPrC5AoGBAIRoyoAEfNqUO/ina90J7SHu8LHHXlUJaPGIOL/X80k8kIBO1W5fsc1Hp5+6o42oHnwVjxeSCrZLpibYWUxhqadZh8gW84i8Zcu9UY4VogqG/8WOie7srepBPC16jxz1IaoEIfh7f+tZcT6UgRfvu8zOex4Ry6y1lgDj61QVbycRAoGADDss1FjlsVZERzWbK5ULLAvR1MqaYC2D/GRs9nGGIuN0sWK61zeCa1QSGZVdy/SGxri9Uys0k3RjhgUQdeYC6wl/wlqxjtpAeKXtZyONKS/EuWhVE5GmGdfZgtx9AQ91d7+JI2vOXFiVmw9XbW/vf7paLyzGeTbcfkLfQILZ6tw=";
    const MODULUS: &str = "vKrPJMjcdsd1NDEUnUV28gIWvp8HVWIkC5yS9EK1yUBLvl86wGJRuH9md1GxafmWu4MyYpLt7o8_oZ7el48coneNl-cgvi5WITh7WPiV4S3ptWbYrw-7htG9mG0eXjzeT4d66jwJAE4U1JpD_63raw-HYsJ7_sqCbOKDgE_GMrH2m6PfBg0kab4WV-FX77mZ29DsUa3H-PCi_gVuopWmsK4B3NWeGQ3huy_0k60ALmdE_eDd3UKjpJ6YNePU8JYypIKbWKk4OnCddwcDLky5Aff0QohZ8dITEYE9Gb6DgvWZWwjp1PYvZkQ3D9NY3lCu-Diz_BcalNhMiV1mt1DoUQ";
    const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_test";

    /// A verifier whose key cache already holds the test key (no JWKS is fetched).
    async fn verifier(records: Option<Arc<MemoryServiceTokens>>) -> JwksTokenVerifier {
        let config = TokenConfig {
            jwks_url: "http://127.0.0.1:9/unused".into(),
            issuer: ISSUER.into(),
            audiences: vec!["portal".into()],
        };
        let mut verifier = JwksTokenVerifier::new(config);
        if let Some(records) = records {
            verifier = verifier.with_service_tokens(records);
        }
        let jwk: jsonwebtoken::jwk::Jwk =
            serde_json::from_value(json!({"kty": "RSA", "kid": "k1", "alg": "RS256", "n": MODULUS, "e": "AQAB"}))
                .unwrap();
        let keys = HashMap::from([("k1".to_string(), DecodingKey::from_jwk(&jwk).unwrap())]);
        *verifier.cache.write().await = Some(CachedKeys { keys, fetched_at: Instant::now() });
        verifier
    }

    fn sign(claims: serde_json::Value) -> String {
        let der = base64::engine::general_purpose::STANDARD.decode(PRIVATE_KEY_DER).unwrap();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("k1".into());
        encode(&header, &claims, &EncodingKey::from_rsa_der(&der)).unwrap()
    }

    fn access_claims(client_id: &str, scope: &str) -> serde_json::Value {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        json!({"iss": ISSUER, "sub": client_id, "client_id": client_id, "token_use": "access", "scope": scope,
               "iat": now, "exp": now + 600})
    }

    fn record(client_id: &str, scopes: &[Scope], expires_at: Option<OffsetDateTime>) -> ServiceToken {
        ServiceToken {
            client_id: client_id.into(),
            tenant_id: "acme".into(),
            name: "ci".into(),
            scopes: scopes.to_vec(),
            created_at: OffsetDateTime::now_utc(),
            created_by: "sub-1".into(),
            expires_at,
        }
    }

    #[tokio::test]
    async fn a_recorded_service_tokens_access_token_is_its_tenants_with_the_scopes_both_hold() {
        let records = Arc::new(MemoryServiceTokens::default());
        records.tokens.lock().unwrap().insert("c1".into(), record("c1", &[Scope::AppsRead, Scope::AppsWrite], None));
        let verifier = verifier(Some(records)).await;
        // The token asks for more than the record grants (users:write): only what both hold counts.
        let token = sign(access_claims("c1", "portcullis/apps:read portcullis/users:write"));
        let caller = verifier.verify(&token).await.unwrap();
        assert_eq!(caller.tenant_id().unwrap(), "acme");
        assert_eq!(caller.tenant.as_ref().unwrap().1, Role::Service([Scope::AppsRead].into_iter().collect()));
        assert_eq!(caller.actor, "service-token:c1 (ci)");
        assert!(!caller.platform);
    }

    #[tokio::test]
    async fn unknown_revoked_expired_or_forged_access_tokens_are_refused() {
        let records = Arc::new(MemoryServiceTokens::default());
        let past = OffsetDateTime::now_utc() - Days::days(1);
        records.tokens.lock().unwrap().insert("old".into(), record("old", &[Scope::AppsRead], Some(past)));
        let verifier = verifier(Some(records)).await;
        let refused = |token: String| {
            let verifier = &verifier;
            async move { verifier.verify(&token).await.unwrap_err() }
        };
        // A person's access token: its client is the portal, not a service token.
        let err = refused(sign(access_claims("portal", "aws.cognito.signin.user.admin"))).await;
        assert!(matches!(err, Error::Unauthenticated(_)) && err.to_string().contains("not a service token"), "{err}");
        let err = refused(sign(access_claims("old", "portcullis/apps:read"))).await;
        assert!(err.to_string().contains("expired"), "{err}");
        let mut other_issuer = access_claims("old", "portcullis/apps:read");
        other_issuer["iss"] = json!("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_other");
        assert!(matches!(refused(sign(other_issuer)).await, Error::Unauthenticated(_)));
        let mut no_client = access_claims("x", "portcullis/apps:read");
        no_client.as_object_mut().unwrap().remove("client_id");
        assert!(refused(sign(no_client)).await.to_string().contains("client_id"));
        // Without service token records (a function that does not take them), only ID tokens.
        let err = self::verifier(None).await.verify(&sign(access_claims("c1", ""))).await.unwrap_err();
        assert!(err.to_string().contains("ID token"), "{err}");
    }

    #[tokio::test]
    async fn id_tokens_still_need_the_audience_tenant_and_group() {
        let verifier = verifier(Some(Arc::new(MemoryServiceTokens::default()))).await;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let id = |aud: &str| {
            sign(json!({"iss": ISSUER, "sub": "u1", "aud": aud, "token_use": "id", "custom:tenant": "acme",
                        "cognito:groups": ["viewer"], "email": "a@x.test", "email_verified": true,
                        "iat": now, "exp": now + 600}))
        };
        let caller = verifier.verify(&id("portal")).await.unwrap();
        assert_eq!(caller.tenant, Some(("acme".into(), Role::Viewer)));
        assert_eq!(caller.actor, "u1 (a@x.test)");
        assert!(matches!(verifier.verify(&id("another-client")).await, Err(Error::Unauthenticated(_))));
    }
}
