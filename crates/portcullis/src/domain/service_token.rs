//! Service tokens: OAuth2 client-credentials clients of the operators' pool that scripts and CI use
//! instead of a person's token. Each belongs to one tenant (by the registry's record, never by a claim),
//! carries scopes, and may expire.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::error::{Error, Result};

/// The operators' pool resource server whose scopes service tokens carry (`portcullis/apps:read`, …).
pub const RESOURCE_SERVER: &str = "portcullis";
/// Service tokens one tenant may hold (expired ones count until revoked).
pub const MAX_SERVICE_TOKENS: u32 = 20;
/// The longest `expiresInDays` accepted.
pub const MAX_EXPIRES_IN_DAYS: u32 = 365;
/// How long an access token of a service token lives, in minutes (set on its app client).
pub const ACCESS_TOKEN_MINUTES: u32 = 60;

/// What a service token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    /// Every read: apps, their events and users, and preflight checks.
    #[serde(rename = "apps:read")]
    AppsRead,
    /// Create and delete apps.
    #[serde(rename = "apps:write")]
    AppsWrite,
    /// Invite, re-invite and revoke users of apps.
    #[serde(rename = "users:write")]
    UsersWrite,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::AppsRead, Scope::AppsWrite, Scope::UsersWrite];

    /// The API's name of the scope.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::AppsRead => "apps:read",
            Scope::AppsWrite => "apps:write",
            Scope::UsersWrite => "users:write",
        }
    }

    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The scope as the identity provider writes it in an access token (`portcullis/apps:read`).
    pub fn oauth_name(self) -> String {
        format!("{RESOURCE_SERVER}/{}", self.as_str())
    }

    fn bit(self) -> u8 {
        match self {
            Scope::AppsRead => 1,
            Scope::AppsWrite => 2,
            Scope::UsersWrite => 4,
        }
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// The scopes in both sets.
    pub fn and(self, other: Scopes) -> Scopes {
        Scopes(self.0 & other.0)
    }

    /// Reads an access token's `scope` claim (space-separated OAuth names); other scopes are ignored.
    pub fn from_oauth_claim(claim: &str) -> Scopes {
        claim
            .split_whitespace()
            .filter_map(|s| s.strip_prefix(RESOURCE_SERVER)?.strip_prefix('/'))
            .filter_map(Scope::parse)
            .collect()
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Scopes(iter.into_iter().fold(0, |bits, s| bits | s.bit()))
    }
}

/// A service token as the registry records it. Its secret is never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceToken {
    /// The app client's id in the operators' pool.
    pub client_id: String,
    pub tenant_id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub created_by: String,
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<OffsetDateTime>,
}

impl ServiceToken {
    /// True once its expiry has passed; a credential without one never expires.
    pub fn expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// Who it is in audit records.
    pub fn actor(&self) -> String {
        format!("service-token:{} ({})", self.client_id, self.name)
    }
}

/// A validated `POST /tenant/service-tokens` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewServiceToken {
    pub name: String,
    /// Sorted, without repeats.
    pub scopes: Vec<Scope>,
    pub expires_in_days: Option<u32>,
}

impl NewServiceToken {
    /// When a token created at `now` expires.
    pub fn expires_at(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        self.expires_in_days.map(|days| now + Duration::days(i64::from(days)))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewServiceTokenBody {
    name: Option<String>,
    scopes: Option<Vec<String>>,
    expires_in_days: Option<serde_json::Value>,
}

/// Parses and checks a `POST /tenant/service-tokens` body.
pub fn validate_new_service_token(body: &str) -> Result<NewServiceToken> {
    let shape = "the body must be {name, scopes, expiresInDays?}";
    let body: NewServiceTokenBody = serde_json::from_str(body).map_err(|e| Error::Invalid(format!("{shape}: {e}")))?;
    let name = body.name.ok_or_else(|| Error::Invalid(format!("{shape}: 'name' is required")))?;
    let name_ok = (1..=64).contains(&name.chars().count())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '.' | '_' | '-'))
        && name.trim() == name;
    if !name_ok {
        return Err(Error::Invalid(format!(
            "name '{name}' must be 1 to 64 letters, digits, spaces, '.', '_' or '-', without leading or trailing spaces"
        )));
    }
    let requested = body.scopes.ok_or_else(|| Error::Invalid(format!("{shape}: 'scopes' is required")))?;
    let known = Scope::ALL.map(Scope::as_str).join(", ");
    let mut scopes = requested
        .iter()
        .map(|s| Scope::parse(s).ok_or_else(|| Error::Invalid(format!("scope '{s}' is not one of {known}"))))
        .collect::<Result<Vec<_>>>()?;
    if scopes.is_empty() {
        return Err(Error::Invalid(format!("scopes must name at least one of {known}")));
    }
    scopes.sort();
    scopes.dedup();
    let expires_in_days = match body.expires_in_days {
        None | Some(serde_json::Value::Null) => None,
        Some(days) => Some(
            days.as_u64()
                .and_then(|d| u32::try_from(d).ok())
                .filter(|d| (1..=MAX_EXPIRES_IN_DAYS).contains(d))
                .ok_or_else(|| {
                    Error::Invalid(format!("expiresInDays must be a whole number from 1 to {MAX_EXPIRES_IN_DAYS}"))
                })?,
        ),
    };
    Ok(NewServiceToken { name, scopes, expires_in_days })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_body_is_parsed_with_sorted_unique_scopes() {
        let new = validate_new_service_token(
            r#"{"name": "ci deploy", "scopes": ["users:write", "apps:read", "apps:read"], "expiresInDays": 30}"#,
        )
        .unwrap();
        assert_eq!(new.name, "ci deploy");
        assert_eq!(new.scopes, [Scope::AppsRead, Scope::UsersWrite]);
        assert_eq!(new.expires_in_days, Some(30));
        let now = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(new.expires_at(now), Some(now + Duration::days(30)));
        let forever = validate_new_service_token(r#"{"name": "x", "scopes": ["apps:write"]}"#).unwrap();
        assert_eq!(forever.expires_at(now), None);
    }

    #[test]
    fn bad_bodies_are_refused_with_a_reason() {
        for (body, says) in [
            ("{", "the body must be"),
            (r#"{"scopes": ["apps:read"]}"#, "'name' is required"),
            (r#"{"name": "", "scopes": ["apps:read"]}"#, "1 to 64"),
            (r#"{"name": "a/b", "scopes": ["apps:read"]}"#, "1 to 64"),
            (r#"{"name": "ci"}"#, "'scopes' is required"),
            (r#"{"name": "ci", "scopes": []}"#, "at least one"),
            (r#"{"name": "ci", "scopes": ["admin"]}"#, "scope 'admin' is not one of"),
            (r#"{"name": "ci", "scopes": ["apps:read"], "expiresInDays": 0}"#, "expiresInDays"),
            (r#"{"name": "ci", "scopes": ["apps:read"], "expiresInDays": 366}"#, "expiresInDays"),
            (r#"{"name": "ci", "scopes": ["apps:read"], "expiresInDays": "7"}"#, "expiresInDays"),
            (r#"{"name": "ci", "scopes": ["apps:read"], "tenant": "other"}"#, "unknown field"),
        ] {
            let err = validate_new_service_token(body).unwrap_err();
            assert!(matches!(err, Error::Invalid(_)), "{body}");
            assert!(err.to_string().contains(says), "{body}: {err}");
        }
    }

    #[test]
    fn token_scopes_count_only_the_resource_servers() {
        let scopes = Scopes::from_oauth_claim("portcullis/apps:read other/apps:write apps:write portcullis/x");
        assert!(scopes.contains(Scope::AppsRead));
        assert!(!scopes.contains(Scope::AppsWrite) && !scopes.contains(Scope::UsersWrite));
        let granted: Scopes = [Scope::AppsWrite, Scope::AppsRead].into_iter().collect();
        assert_eq!(scopes.and(granted), [Scope::AppsRead].into_iter().collect());
        assert_eq!(Scope::UsersWrite.oauth_name(), "portcullis/users:write");
    }

    #[test]
    fn expiry_and_actor() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(10);
        let mut token = ServiceToken {
            client_id: "c1".into(),
            tenant_id: "t".into(),
            name: "ci".into(),
            scopes: vec![Scope::AppsRead],
            created_at: now,
            created_by: "sub-1".into(),
            expires_at: None,
        };
        assert!(!token.expired(now));
        token.expires_at = Some(now);
        assert!(token.expired(now));
        assert_eq!(token.actor(), "service-token:c1 (ci)");
    }
}
