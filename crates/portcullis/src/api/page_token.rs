//! Page tokens sealed by Portcullis: a listing's `nextToken` is the store's own position (a DynamoDB
//! key, a Cognito pagination token) with an HMAC-SHA256 over it and the listing it belongs to (which
//! tenant's apps, which app's users or events). A forged, altered or foreign token is refused as 400
//! before any store sees it, so a caller can neither reach another listing's page nor make a store fail.
//!
//! The key is per deployment (`PORTCULLIS_PAGE_TOKEN_KEY`, at least 32 characters; on AWS the template
//! parameter `PageTokenKey`, NoEcho). Changing it only invalidates the tokens handed out so far.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::domain::InvitationStatus;
use crate::error::{Error, Result};

/// The environment variable holding the key.
pub const KEY_VARIABLE: &str = "PORTCULLIS_PAGE_TOKEN_KEY";
/// Shorter keys are refused at start-up.
pub const MIN_KEY_LENGTH: usize = 32;

/// Which listing a token belongs to; a token opens only in the listing that sealed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageScope(String);

impl PageScope {
    /// A tenant's apps.
    pub fn apps(tenant_id: &str) -> Self {
        PageScope(format!("apps\n{tenant_id}"))
    }
    /// An app's history.
    pub fn app_events(app_id: &str) -> Self {
        PageScope(format!("app-events\n{app_id}"))
    }
    /// An app's users, all or those whose invitation is in one state (a token of one listing is no
    /// good for another).
    pub fn users(app_id: &str, invitation: Option<InvitationStatus>) -> Self {
        match invitation {
            None => PageScope(format!("users\n{app_id}")),
            Some(status) => PageScope(format!("users\n{app_id}\n{}", status.as_str())),
        }
    }
    /// An app's roles.
    pub fn roles(app_id: &str) -> Self {
        PageScope(format!("roles\n{app_id}"))
    }
    /// The tenant registry.
    pub fn tenants() -> Self {
        PageScope("tenants".into())
    }
    /// A tenant registration's history.
    pub fn tenant_events(tenant_id: &str) -> Self {
        PageScope(format!("tenant-events\n{tenant_id}"))
    }
}

/// Seals and opens page tokens with the deployment's key. The key never leaves this type (no `Debug`
/// of it, no logging).
#[derive(Clone)]
pub struct PageSeal {
    key: Vec<u8>,
}

impl std::fmt::Debug for PageSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageSeal(<key>)")
    }
}

impl PageSeal {
    /// A seal with `key`; a short key is a deployment fault.
    pub fn new(key: &str) -> Result<Self> {
        if key.len() < MIN_KEY_LENGTH {
            return Err(Error::config(format!(
                "{KEY_VARIABLE} must be at least {MIN_KEY_LENGTH} characters (e.g. `openssl rand -base64 32`)"
            )));
        }
        Ok(PageSeal { key: key.as_bytes().to_vec() })
    }

    /// The deployment's seal, read from the environment once per cold start (`install` sets it first).
    pub fn get() -> Result<&'static PageSeal> {
        #[cfg(test)]
        install_test_key();
        if let Some(seal) = SEAL.get() {
            return Ok(seal);
        }
        let seal = PageSeal::new(&std::env::var(KEY_VARIABLE).unwrap_or_default())
            .map_err(|e| Error::config(format!("{e}; it is not set or too short")))?;
        Ok(SEAL.get_or_init(|| seal))
    }

    /// Checks the environment's key at start-up, so a missing one stops the cold start, not a listing.
    pub fn install() -> Result<()> {
        Self::get().map(|_| ())
    }

    fn mac(&self, scope: &PageScope, position: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(scope.0.as_bytes());
        mac.update(b"\0");
        mac.update(position);
        mac
    }

    /// The token a caller gets for the store's `position` in the listing `scope`.
    pub fn seal(&self, scope: &PageScope, position: &str) -> String {
        let tag = self.mac(scope, position.as_bytes()).finalize().into_bytes();
        format!("{}.{}", URL_SAFE_NO_PAD.encode(position), URL_SAFE_NO_PAD.encode(tag))
    }

    /// The store's position in a token this listing sealed; anything else is the caller's 400.
    pub fn open(&self, scope: &PageScope, token: &str) -> Result<String> {
        let invalid = || Error::Invalid("nextToken is not a token this listing returned".into());
        let (position, tag) = token.split_once('.').ok_or_else(invalid)?;
        let position = URL_SAFE_NO_PAD.decode(position).map_err(|_| invalid())?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| invalid())?;
        self.mac(scope, &position).verify_slice(&tag).map_err(|_| invalid())?;
        String::from_utf8(position).map_err(|_| invalid())
    }
}

static SEAL: OnceLock<PageSeal> = OnceLock::new();

/// Unit tests share one key.
#[cfg(test)]
fn install_test_key() {
    SEAL.get_or_init(|| PageSeal::new("test-key-test-key-test-key-test-key").unwrap());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn seal() -> PageSeal {
        PageSeal::new("k".repeat(32).as_str()).unwrap()
    }

    #[test]
    fn a_sealed_position_opens_in_its_own_listing_only() {
        let scope = PageScope::users("app-1", None);
        let token = seal().seal(&scope, "cognito-position");
        assert_eq!(seal().open(&scope, &token).unwrap(), "cognito-position");
        for foreign in [
            PageScope::users("app-2", None),
            PageScope::users("app-1", Some(InvitationStatus::Expired)),
            PageScope::app_events("app-1"),
            PageScope::apps("app-1"),
        ] {
            assert_eq!(seal().open(&foreign, &token).unwrap_err().kind(), ErrorKind::Invalid, "{foreign:?}");
        }
        let other_key = PageSeal::new(&"x".repeat(40)).unwrap();
        assert!(other_key.open(&scope, &token).is_err());
    }

    #[test]
    fn forged_or_altered_tokens_are_the_callers_400() {
        let scope = PageScope::apps("t1");
        let token = seal().seal(&scope, r#"{"pk":"TENANT#t1","sk":"APP#1"}"#);
        let (position, tag) = token.split_once('.').unwrap();
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(r#"{"pk":"TENANT#t2","sk":"APP#1"}"#));
        for bad in
            ["", ".", "garbage", "a.b", &forged, &format!("{position}.{}", &tag[1..]), &format!("{position}x.{tag}")]
        {
            let err = seal().open(&scope, bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Invalid, "{bad}");
            assert_eq!(err.to_string(), "nextToken is not a token this listing returned");
        }
    }

    #[test]
    fn a_short_key_is_a_deployment_fault_and_the_key_is_never_printed() {
        assert_eq!(PageSeal::new("short").unwrap_err().kind(), ErrorKind::Config);
        let seal = PageSeal::new(&"s3cret".repeat(6)).unwrap();
        assert!(!format!("{seal:?}").contains("s3cret"));
    }
}
