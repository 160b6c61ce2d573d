//! An app's access policy: which addresses may be invited, and for how long their access lasts; and
//! whether its users sign in with a second factor.

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::validate::validate_host;
use crate::error::{Error, Result};

/// Most email domains one policy lists.
pub const MAX_EMAIL_DOMAINS: usize = 50;
/// Longest access one invitation can be given: ten years.
pub const MAX_ACCESS_DAYS: u32 = 3650;

/// Who may be invited to an app, and for how long.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessPolicy {
    /// Invitations go only to addresses at these domains or their subdomains; empty: any address.
    #[serde(default)]
    pub allowed_email_domains: Vec<String>,
    /// How many days an invited user's access lasts when the invitation names no end; none: until
    /// revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_access_days: Option<u32>,
}

impl AccessPolicy {
    /// `Forbidden`, naming the rule, unless the (validated, lower-case) address may be invited.
    pub fn admit(&self, email: &str) -> Result<()> {
        if self.allowed_email_domains.is_empty() {
            return Ok(());
        }
        let host = email.rsplit_once('@').map(|(_, host)| host).unwrap_or_default();
        let allowed = self
            .allowed_email_domains
            .iter()
            .any(|domain| host == domain || host.strip_suffix(domain.as_str()).is_some_and(|sub| sub.ends_with('.')));
        if allowed {
            return Ok(());
        }
        Err(Error::Forbidden(format!(
            "{email} is not at a domain the app's access policy allows (allowedEmailDomains: {})",
            self.allowed_email_domains.join(", ")
        )))
    }

    /// When an invitation's access ends: the end it names, else the policy's default from `now`, else
    /// never.
    pub fn access_ends(&self, named: Option<OffsetDateTime>, now: OffsetDateTime) -> Option<OffsetDateTime> {
        named.or_else(|| self.default_access_days.map(|days| now + Duration::days(days.into())))
    }
}

/// Whether an app's users sign in with a one-time code from an authenticator app (TOTP) as well as their
/// password. The names are part of the API contract.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Mfa {
    #[default]
    Off,
    /// Each user may set up a code.
    Optional,
    /// Every user sets one up at their first sign-in, and gives a code at every sign-in.
    Required,
}

impl Mfa {
    /// The contract name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mfa::Off => "OFF",
            Mfa::Optional => "OPTIONAL",
            Mfa::Required => "REQUIRED",
        }
    }
}

/// Reads `mfa`: OFF, OPTIONAL or REQUIRED; `None` when absent or null.
pub fn parse_mfa(value: Option<&serde_json::Value>) -> Result<Option<Mfa>> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|_| Error::Invalid("mfa must be OFF, OPTIONAL or REQUIRED".into())),
    }
}

/// Reads a list of email domains (`field`): host names, lower-cased; `None` when absent or null.
pub fn parse_email_domains(value: Option<&serde_json::Value>, field: &str) -> Result<Option<Vec<String>>> {
    let shape = || Error::Invalid(format!("{field} must be a list of at most {MAX_EMAIL_DOMAINS} domain names"));
    let items = match value {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(serde_json::Value::Array(items)) if items.len() <= MAX_EMAIL_DOMAINS => items,
        Some(_) => return Err(shape()),
    };
    let mut domains: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let text = item.as_str().ok_or_else(shape)?;
        let domain = text.strip_suffix('.').unwrap_or(text).to_ascii_lowercase();
        let not_a_domain = || Error::Invalid(format!("{field}: '{domain}' is not a domain name (e.g. example.com)"));
        // validate_host would trim white space, and measures the name without its trailing dot.
        if domain.trim() != domain || text.len() > 253 {
            return Err(not_a_domain());
        }
        validate_host(&domain).map_err(|_| not_a_domain())?;
        if !domains.contains(&domain) {
            domains.push(domain);
        }
    }
    Ok(Some(domains))
}

/// Reads `defaultAccessDays`: 1 to [`MAX_ACCESS_DAYS`]; `None` when absent or null.
pub fn parse_access_days(value: Option<&serde_json::Value>) -> Result<Option<u32>> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .filter(|days| (1..=u64::from(MAX_ACCESS_DAYS)).contains(days))
            .and_then(|days| u32::try_from(days).ok())
            .map(Some)
            .ok_or_else(|| {
                Error::Invalid(format!("defaultAccessDays must be a whole number from 1 to {MAX_ACCESS_DAYS}"))
            }),
    }
}

/// Reads an invitation's `expiresAt`: an RFC 3339 time (else `Invalid`, 400) after `now` and at most
/// [`MAX_ACCESS_DAYS`] ahead (else `Unprocessable`, 422: the contract cannot say "in the future");
/// `None` when absent or null.
pub fn parse_access_end(value: Option<&serde_json::Value>, now: OffsetDateTime) -> Result<Option<OffsetDateTime>> {
    let end = match value {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(serde_json::Value::String(text)) => OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|_| Error::Invalid("expiresAt must be an RFC 3339 time, e.g. 2027-01-31T18:00:00Z".into()))?,
        Some(_) => return Err(Error::Invalid("expiresAt must be an RFC 3339 time as a string".into())),
    };
    if end <= now {
        return Err(Error::Unprocessable("expiresAt must be in the future".into()));
    }
    if end - now > Duration::days(MAX_ACCESS_DAYS.into()) {
        return Err(Error::Unprocessable(format!("expiresAt must be at most {MAX_ACCESS_DAYS} days ahead")));
    }
    Ok(Some(end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn policy(domains: &[&str]) -> AccessPolicy {
        AccessPolicy {
            allowed_email_domains: domains.iter().map(|d| d.to_string()).collect(),
            default_access_days: None,
        }
    }

    #[test]
    fn only_addresses_at_an_allowed_domain_or_below_it_are_admitted() {
        let allowed = policy(&["example.com"]);
        assert!(allowed.admit("ann@example.com").is_ok());
        assert!(allowed.admit("ann@eng.example.com").is_ok());
        for outside in ["ann@example.org", "ann@badexample.com", "ann@example.com.evil.test"] {
            let err = allowed.admit(outside).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Forbidden, "{outside}");
            assert!(err.to_string().contains("allowedEmailDomains: example.com"), "{err}");
        }
        assert!(policy(&[]).admit("anyone@anywhere.test").is_ok(), "no list: any address");
    }

    #[test]
    fn access_ends_when_named_else_after_the_default_days_else_never() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let named = now + Duration::days(3);
        let days = AccessPolicy { default_access_days: Some(30), ..AccessPolicy::default() };
        assert_eq!(days.access_ends(Some(named), now), Some(named));
        assert_eq!(days.access_ends(None, now), Some(now + Duration::days(30)));
        assert_eq!(AccessPolicy::default().access_ends(None, now), None);
    }

    #[test]
    fn mfa_takes_the_contract_names_only() {
        assert_eq!(parse_mfa(Some(&serde_json::json!("REQUIRED"))).unwrap(), Some(Mfa::Required));
        assert_eq!(parse_mfa(None).unwrap(), None);
        for bad in [serde_json::json!("required"), serde_json::json!(true)] {
            assert!(parse_mfa(Some(&bad)).unwrap_err().to_string().contains("OFF, OPTIONAL or REQUIRED"), "{bad}");
        }
    }

    #[test]
    fn policy_fields_are_read_strictly() {
        let read = |v: serde_json::Value| parse_email_domains(Some(&v), "allowedEmailDomains");
        assert_eq!(
            read(serde_json::json!(["Example.COM.", "example.com", "b.test"])).unwrap(),
            Some(vec!["example.com".to_string(), "b.test".to_string()])
        );
        assert_eq!(read(serde_json::json!([])).unwrap(), Some(vec![]), "an explicit empty list: any address");
        for bad in [
            serde_json::json!("example.com"),
            serde_json::json!(["not a domain"]),
            serde_json::json!([" example.com"]),
            serde_json::json!([1]),
        ] {
            assert_eq!(read(bad.clone()).unwrap_err().kind(), ErrorKind::Invalid, "{bad}");
        }
        assert_eq!(parse_access_days(Some(&serde_json::json!(90))).unwrap(), Some(90));
        for bad in [serde_json::json!(0), serde_json::json!(3651), serde_json::json!("30")] {
            assert!(parse_access_days(Some(&bad)).is_err(), "{bad}");
        }
        let now = OffsetDateTime::parse("2026-11-21T12:00:00Z", &Rfc3339).unwrap();
        let end = parse_access_end(Some(&serde_json::json!("2026-12-31T18:00:00Z")), now).unwrap().unwrap();
        assert_eq!(end - now, Duration::days(40) + Duration::hours(6));
        for (bad, kind) in [
            ("2026-11-21T11:00:00Z", ErrorKind::Unprocessable),
            ("2040-01-01T00:00:00Z", ErrorKind::Unprocessable),
            ("next week", ErrorKind::Invalid),
        ] {
            assert_eq!(parse_access_end(Some(&serde_json::json!(bad)), now).unwrap_err().kind(), kind, "{bad}");
        }
    }
}
