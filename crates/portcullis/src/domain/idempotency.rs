//! Idempotency keys: a POST sent again with the same `Idempotency-Key` gets the first answer instead of
//! doing the work twice. The rules are here; `api::idempotency` applies them around every POST.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use super::Caller;
use crate::error::{Error, Result};

/// How long an answer is remembered.
pub const KEY_RETENTION: Duration = Duration::hours(24);
/// How long a request in progress holds its key. Longer than a request may run (the functions time out
/// after 30 s), so a claim is only taken over from a request that died before it could answer.
pub const CLAIM_LEASE: Duration = Duration::seconds(60);

/// A key as the caller sent it, checked: 1 to 255 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &[u8]) -> Result<Self> {
        let printable = raw.iter().all(|b| (0x20..=0x7e).contains(b));
        if (1..=255).contains(&raw.len()) && printable {
            Ok(IdempotencyKey(String::from_utf8_lossy(raw).into_owned()))
        } else {
            Err(Error::Invalid("Idempotency-Key must be 1 to 255 printable ASCII characters".into()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whose keys a key is among. Keys are per tenant, so tenants never meet each other's answers; platform
/// operators without a tenant share one scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyScope {
    Tenant(String),
    Platform,
}

impl KeyScope {
    pub fn of(caller: &Caller) -> Self {
        match &caller.tenant {
            Some((tenant_id, _)) => KeyScope::Tenant(tenant_id.clone()),
            None => KeyScope::Platform,
        }
    }

    /// The scope as stored: a tenant id, or `(platform)`, which no tenant id can be.
    pub fn label(&self) -> &str {
        match self {
            KeyScope::Tenant(tenant_id) => tenant_id,
            KeyScope::Platform => "(platform)",
        }
    }
}

/// A request's claim on its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyClaim {
    pub scope: KeyScope,
    pub key: IdempotencyKey,
    /// What the request asked for (`fingerprint`).
    pub fingerprint: String,
    /// Unique to the request: only it completes or releases the claim.
    pub holder: String,
    pub expires_at: OffsetDateTime,
    pub lease_until: OffsetDateTime,
}

impl KeyClaim {
    /// A new claim made at `now`.
    pub fn new(scope: KeyScope, key: IdempotencyKey, fingerprint: String, now: OffsetDateTime) -> Self {
        KeyClaim {
            scope,
            key,
            fingerprint,
            holder: uuid::Uuid::new_v4().to_string(),
            expires_at: now + KEY_RETENTION,
            lease_until: now + CLAIM_LEASE,
        }
    }
}

/// The answer a request got, kept to be given again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAnswer {
    pub status: u16,
    /// The headers that matter to a client (`Content-Type`, `Location`), by lower-case name.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Where the request holding a key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    InProgress,
    Answered(StoredAnswer),
}

/// What a key holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub fingerprint: String,
    pub holder: String,
    pub expires_at: OffsetDateTime,
    pub lease_until: OffsetDateTime,
    pub state: KeyState,
}

impl KeyRecord {
    /// Whether a new claim may replace the record: it expired (the table's expiry deletes lazily), or
    /// the request holding it died before it could answer.
    pub fn is_vacant(&self, now: OffsetDateTime) -> bool {
        self.expires_at <= now || (self.state == KeyState::InProgress && self.lease_until <= now)
    }
}

/// The result of claiming a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The request holds the key and does the work.
    Claimed,
    /// Another request holds it.
    Held(KeyRecord),
}

/// What a request meeting a key another request holds gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyVerdict {
    /// The same request was answered: that answer again.
    Replay(StoredAnswer),
    /// The key was used for a different request.
    Mismatch,
    /// The same request is still running.
    InProgress,
}

/// Judges a request against the record holding its key.
pub fn verdict(claim: &KeyClaim, record: KeyRecord) -> KeyVerdict {
    if record.fingerprint != claim.fingerprint {
        return KeyVerdict::Mismatch;
    }
    match record.state {
        KeyState::InProgress => KeyVerdict::InProgress,
        KeyState::Answered(answer) => KeyVerdict::Replay(answer),
    }
}

/// Whether an answer is final for its request, so it is kept and given again: successes and the
/// request's own mistakes (400, 404, 422). Refusals about who asks (401, 403), conflicts that may clear
/// (409), throttling (429) and server failures (5xx) free the key, so a retry runs the request again.
pub fn is_final(status: u16) -> bool {
    matches!(status, 200..=399 | 400 | 404 | 422)
}

/// SHA-256 (hex) of what makes two requests the same: the method, the route with its parameters, and
/// the body, JSON bodies normalized (key order and whitespace do not count).
pub fn fingerprint(method: &str, target: &str, body: &str) -> String {
    let body = match serde_json::from_str::<Value>(body) {
        Ok(json) => canonical_json(&json),
        Err(_) => body.to_string(),
    };
    let mut hash = Sha256::new();
    for part in [method, target, &body] {
        // Length-prefixed, so no two different splits hash alike.
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// JSON with object keys sorted and no whitespace.
fn canonical_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let fields: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), canonical_json(v)))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical_json).collect::<Vec<_>>().join(",")),
        scalar => scalar.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_printable_ascii_up_to_255() {
        assert!(IdempotencyKey::parse(b"a").is_ok());
        assert!(IdempotencyKey::parse(b"0193-abc_DEF ~!").is_ok());
        assert!(IdempotencyKey::parse("k".repeat(255).as_bytes()).is_ok());
        assert!(IdempotencyKey::parse("k".repeat(256).as_bytes()).is_err());
        assert!(IdempotencyKey::parse(b"").is_err());
        assert!(IdempotencyKey::parse(b"tab\there").is_err());
        assert!(IdempotencyKey::parse("clé".as_bytes()).is_err());
    }

    #[test]
    fn fingerprints_ignore_json_layout_but_not_content() {
        let a = fingerprint("POST", "/apps", r#"{"name":"A","target":{"x":1,"y":[1,2]}}"#);
        let b = fingerprint("POST", "/apps", "{ \"target\": {\"y\": [1, 2], \"x\": 1},\n \"name\": \"A\" }");
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
        assert_ne!(a, fingerprint("POST", "/apps", r#"{"name":"B","target":{"x":1,"y":[1,2]}}"#));
        assert_ne!(a, fingerprint("POST", "/apps", r#"{"name":"A","target":{"x":1,"y":[2,1]}}"#));
        assert_ne!(a, fingerprint("POST", "/apps/preflight", r#"{"name":"A","target":{"x":1,"y":[1,2]}}"#));
        assert_ne!(fingerprint("POST", "/a", "b"), fingerprint("POST", "/ab", ""));
    }

    #[test]
    fn scopes_are_tenants_and_the_platform() {
        let caller = |tenant: Option<&str>| Caller {
            actor: "u".into(),
            tenant: tenant.map(|t| (t.to_string(), super::super::Role::Admin)),
            platform: tenant.is_none(),
        };
        assert_eq!(KeyScope::of(&caller(Some("acme"))).label(), "acme");
        assert_eq!(KeyScope::of(&caller(None)).label(), "(platform)");
    }

    #[test]
    fn expired_records_and_dead_claims_are_vacant() {
        let now = OffsetDateTime::now_utc();
        let claim = KeyClaim::new(KeyScope::Platform, IdempotencyKey::parse(b"k").unwrap(), "f".into(), now);
        let record = |state| KeyRecord {
            fingerprint: "f".into(),
            holder: claim.holder.clone(),
            expires_at: claim.expires_at,
            lease_until: claim.lease_until,
            state,
        };
        let answered = KeyState::Answered(StoredAnswer { status: 201, headers: vec![], body: String::new() });
        assert!(!record(KeyState::InProgress).is_vacant(now));
        assert!(record(KeyState::InProgress).is_vacant(now + CLAIM_LEASE));
        assert!(!record(answered.clone()).is_vacant(now + CLAIM_LEASE));
        assert!(record(answered).is_vacant(now + KEY_RETENTION));
    }

    #[test]
    fn only_answers_about_the_request_itself_are_final() {
        for status in [200, 201, 202, 400, 404, 422] {
            assert!(is_final(status), "{status}");
        }
        for status in [401, 403, 409, 429, 500, 502, 503] {
            assert!(!is_final(status), "{status}");
        }
    }
}
