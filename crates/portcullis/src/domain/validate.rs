//! Validation of a create-app request. Every rejection says exactly what is wrong.

use serde::Deserialize;

use super::{Mfa, Target, parse_access_days, parse_email_domains, parse_mfa};
use crate::error::{Error, Result};

/// Default ALB session lifetime for an app's users: a working day.
pub const DEFAULT_SESSION_TIMEOUT_SECONDS: u32 = 8 * 3600;
/// ALB's upper bound for `SessionTimeout` (7 days).
pub const MAX_SESSION_TIMEOUT_SECONDS: u32 = 604_800;

/// The body of `POST /apps`, as received: every field optional so that a missing one gets its own
/// message instead of a serde error.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateAppBody {
    name: Option<serde_json::Value>,
    domain: Option<serde_json::Value>,
    target: Option<serde_json::Value>,
    session_timeout_seconds: Option<serde_json::Value>,
    dns_alias: Option<serde_json::Value>,
    auto_resend: Option<serde_json::Value>,
    allowed_email_domains: Option<serde_json::Value>,
    default_access_days: Option<serde_json::Value>,
    mfa: Option<serde_json::Value>,
}

/// A validated request for a new app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApp {
    pub name: String,
    /// Lower-case FQDN without a trailing dot.
    pub domain: String,
    pub target: Target,
    pub session_timeout_seconds: u32,
    /// Point the domain at the load balancer in the tenant's hosted zone once the app is protected.
    pub dns_alias: bool,
    /// Resend invitations the day before they expire.
    pub auto_resend: bool,
    /// The domains invitations may go to, if the request names them (else the tenant's default).
    pub allowed_email_domains: Option<Vec<String>>,
    pub default_access_days: Option<u32>,
    pub mfa: Mfa,
}

/// Parses and validates the body of `POST /apps`.
pub fn validate_new_app(body: &str) -> Result<NewApp> {
    let body: CreateAppBody = serde_json::from_str(body)
        .map_err(|e| Error::Invalid(format!("the body is not a JSON object of the expected shape: {e}")))?;
    let name = validate_name(required_string(body.name, "name")?)?;
    let domain = validate_app_domain(&required_string(body.domain, "domain")?)?;
    let target = parse_target(body.target.ok_or_else(|| missing("target"))?, "target")?;
    let session_timeout_seconds = match body.session_timeout_seconds {
        None | Some(serde_json::Value::Null) => DEFAULT_SESSION_TIMEOUT_SECONDS,
        Some(v) => parse_session_timeout(&v)?,
    };
    let dns_alias = optional_flag(body.dns_alias, "dnsAlias")?;
    let auto_resend = optional_flag(body.auto_resend, "autoResend")?;
    let allowed_email_domains = parse_email_domains(body.allowed_email_domains.as_ref(), "allowedEmailDomains")?;
    let default_access_days = parse_access_days(body.default_access_days.as_ref())?;
    let mfa = parse_mfa(body.mfa.as_ref())?.unwrap_or_default();
    Ok(NewApp {
        name,
        domain,
        target,
        session_timeout_seconds,
        dns_alias,
        auto_resend,
        allowed_email_domains,
        default_access_days,
        mfa,
    })
}

/// Reads `sessionTimeoutSeconds`: 1 to the load balancer's 7 days.
pub(crate) fn parse_session_timeout(value: &serde_json::Value) -> Result<u32> {
    value
        .as_u64()
        .filter(|s| (1..=u64::from(MAX_SESSION_TIMEOUT_SECONDS)).contains(s))
        .and_then(|s| u32::try_from(s).ok())
        .ok_or_else(|| {
            Error::Invalid(format!(
                "sessionTimeoutSeconds must be a whole number from 1 to {MAX_SESSION_TIMEOUT_SECONDS}"
            ))
        })
}

/// A true-or-false field, false when absent.
fn optional_flag(value: Option<serde_json::Value>, field: &str) -> Result<bool> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(false),
        Some(serde_json::Value::Bool(flag)) => Ok(flag),
        Some(_) => Err(Error::Invalid(format!("{field} must be true or false"))),
    }
}

fn missing(field: &str) -> Error {
    Error::Invalid(format!("'{field}' is required"))
}

pub(crate) fn required_string(value: Option<serde_json::Value>, field: &str) -> Result<String> {
    match value {
        None | Some(serde_json::Value::Null) => Err(missing(field)),
        Some(serde_json::Value::String(s)) => Ok(s),
        Some(_) => Err(Error::Invalid(format!("'{field}' must be a string"))),
    }
}

/// Names appear in invitation emails and pool names: keep them plain.
pub(crate) fn validate_name(name: String) -> Result<String> {
    let name = name.trim().to_string();
    let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || " ._-".contains(c));
    let starts_ok = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if name.is_empty() || name.len() > 64 || !ok_chars || !starts_ok {
        return Err(Error::Invalid(format!(
            "name '{name}' must be 1 to 64 characters of letters, digits, spaces, '.', '_' or '-', \
             starting with a letter or digit"
        )));
    }
    Ok(name)
}

/// ACM refuses a certificate whose first domain name is longer than this (it becomes the subject's
/// common name); ALB host-header values allow 128.
pub const MAX_APP_DOMAIN_LENGTH: usize = 64;

/// An app's host name: a valid host name that ACM can certify and a listener rule can match.
pub(crate) fn validate_app_domain(domain: &str) -> Result<String> {
    let fqdn = validate_host(domain)?;
    if fqdn.len() > MAX_APP_DOMAIN_LENGTH {
        return Err(Error::Invalid(format!(
            "domain '{domain}' is {} characters long; ACM certifies at most {MAX_APP_DOMAIN_LENGTH}",
            fqdn.len()
        )));
    }
    Ok(fqdn)
}

/// A host name (lower-cased, no trailing dot): no wildcards, no IP literals, at least two labels.
pub(crate) fn validate_host(domain: &str) -> Result<String> {
    let trimmed = domain.trim();
    let fqdn = trimmed.strip_suffix('.').unwrap_or(trimmed).to_ascii_lowercase();
    let invalid = |why: &str| Error::Invalid(format!("domain '{domain}' is not a valid host name: {why}"));
    if fqdn.len() > 253 {
        return Err(invalid("longer than 253 characters"));
    }
    let labels: Vec<&str> = fqdn.split('.').collect();
    if labels.len() < 2 {
        return Err(invalid("it needs at least two labels, e.g. app.example.com"));
    }
    for label in &labels {
        if label.is_empty() || label.len() > 63 {
            return Err(invalid("each label must be 1 to 63 characters"));
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(invalid("only letters, digits and '-' are allowed (no wildcards)"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid("a label may not start or end with '-'"));
        }
    }
    if labels.last().is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit())) {
        return Err(invalid("an IP address cannot be certified; use a host name"));
    }
    Ok(fqdn)
}

/// Parses a target (`field` names it in messages: `target`, `targets[]`).
pub(crate) fn parse_target(value: serde_json::Value, field: &str) -> Result<Target> {
    let target: Target = serde_json::from_value(value).map_err(|e| {
        Error::Invalid(format!(
            "{field} must be {{\"type\":\"alb\",\"listenerArn\":…,\"targetGroupArn\":…}} or \
             {{\"type\":\"elasticbeanstalk\",\"environmentName\":…}}: {e}"
        ))
    })?;
    match &target {
        Target::Alb { listener_arn, target_group_arn } => {
            check_elb_arn(listener_arn, "listener/app/", &format!("{field}.listenerArn"), "an ALB listener")?;
            check_elb_arn(target_group_arn, "targetgroup/", &format!("{field}.targetGroupArn"), "a target group")?;
        }
        Target::ElasticBeanstalk { environment_name } => {
            let n = environment_name.as_str();
            let ok = (4..=40).contains(&n.len())
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !n.starts_with('-')
                && !n.ends_with('-');
            if !ok {
                return Err(Error::Invalid(format!(
                    "{field}.environmentName '{n}' must be 4 to 40 letters, digits or '-', \
                     not starting or ending with '-'"
                )));
            }
        }
    }
    Ok(target)
}

/// `arn:PARTITION:elasticloadbalancing:REGION:ACCOUNT:RESOURCE` with the expected resource kind.
fn check_elb_arn(arn: &str, resource_prefix: &str, field: &str, what: &str) -> Result<()> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && is_partition(parts[1])
        && parts[2] == "elasticloadbalancing"
        && is_region(parts[3])
        && is_account(parts[4])
        && parts[5].strip_prefix(resource_prefix).is_some_and(|rest| {
            !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || "/-".contains(c))
        });
    if ok { Ok(()) } else { Err(Error::Invalid(format!("{field} '{arn}' is not the ARN of {what}"))) }
}

/// Free text such as a display name: surrounding white space dropped, then 1 to `max` characters
/// without control characters (openapi.yaml's pattern for such fields).
pub(crate) fn plain_text(text: &str, field: &str, max: usize) -> Result<String> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > max || text.chars().any(char::is_control) {
        return Err(Error::Invalid(format!("{field} must be 1 to {max} characters without control characters")));
    }
    Ok(text.to_string())
}

/// An ARN's partition, as openapi.yaml's patterns state it: `aws[a-z-]*`.
pub(crate) fn is_partition(part: &str) -> bool {
    part.strip_prefix("aws").is_some_and(|rest| rest.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
}

/// An ARN's region: `[a-z0-9-]+`.
pub(crate) fn is_region(part: &str) -> bool {
    !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// An ARN's account: 12 digits.
pub(crate) fn is_account(part: &str) -> bool {
    part.len() == 12 && part.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTENER: &str =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/demo/50dc6c495c0c9188/f2f7dc8efc522ab2";
    const GROUP: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/demo/73e2d6bc24d8a067";

    fn body(name: &str, domain: &str) -> String {
        serde_json::json!({
            "name": name, "domain": domain,
            "target": {"type": "alb", "listenerArn": LISTENER, "targetGroupArn": GROUP}
        })
        .to_string()
    }

    fn detail(r: Result<NewApp>) -> String {
        match r {
            Err(Error::Invalid(d)) => d,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn accepts_and_normalises_a_good_request() {
        let app = validate_new_app(&body(" Grafana ", "Grafana.Example.com.")).unwrap();
        assert_eq!(app.name, "Grafana");
        assert_eq!(app.domain, "grafana.example.com");
        assert_eq!(app.session_timeout_seconds, DEFAULT_SESSION_TIMEOUT_SECONDS);
        assert!(!app.dns_alias, "the alias record is asked for, never assumed");
    }

    #[test]
    fn the_alias_record_is_asked_for_with_a_boolean() {
        let mut v: serde_json::Value = serde_json::from_str(&body("ok", "a.example.com")).unwrap();
        v["dnsAlias"] = serde_json::json!(true);
        assert!(validate_new_app(&v.to_string()).unwrap().dns_alias);
        v["dnsAlias"] = serde_json::json!("yes");
        assert_eq!(detail(validate_new_app(&v.to_string())), "dnsAlias must be true or false");
    }

    #[test]
    fn automatic_resends_are_asked_for_with_a_boolean() {
        let mut v: serde_json::Value = serde_json::from_str(&body("ok", "a.example.com")).unwrap();
        assert!(!validate_new_app(&v.to_string()).unwrap().auto_resend, "off unless asked for");
        v["autoResend"] = serde_json::json!(true);
        assert!(validate_new_app(&v.to_string()).unwrap().auto_resend);
        v["autoResend"] = serde_json::json!(1);
        assert_eq!(detail(validate_new_app(&v.to_string())), "autoResend must be true or false");
    }

    #[test]
    fn rejects_bad_names() {
        assert!(detail(validate_new_app(&body("", "a.example.com"))).contains("name"));
        assert!(detail(validate_new_app(&body("<script>", "a.example.com"))).contains("name"));
        assert!(detail(validate_new_app(&body(&"x".repeat(65), "a.example.com"))).contains("name"));
    }

    #[test]
    fn rejects_bad_domains() {
        for d in ["localhost", "*.example.com", "a..b.com", "-a.example.com", "10.0.0.1", "a_b.example.com"] {
            assert!(detail(validate_new_app(&body("ok", d))).contains("domain"), "{d}");
        }
    }

    #[test]
    fn rejects_domains_longer_than_acm_certifies() {
        let longest = format!("{}.example.com", "a".repeat(MAX_APP_DOMAIN_LENGTH - 12));
        assert_eq!(longest.len(), MAX_APP_DOMAIN_LENGTH);
        assert!(validate_new_app(&body("ok", &longest)).is_ok());
        let too_long = format!("a{longest}");
        assert!(detail(validate_new_app(&body("ok", &too_long))).contains("at most 64"));
    }

    #[test]
    fn rejects_bad_targets() {
        let bad_listener = serde_json::json!({
            "name": "ok", "domain": "a.example.com",
            "target": {"type": "alb", "listenerArn": "nope", "targetGroupArn": GROUP}
        });
        assert!(detail(validate_new_app(&bad_listener.to_string())).contains("target.listenerArn"));
        let unknown = serde_json::json!({"name": "ok", "domain": "a.example.com", "target": {"type": "nlb"}});
        assert!(detail(validate_new_app(&unknown.to_string())).contains("target must be"));
        let eb = serde_json::json!({
            "name": "ok", "domain": "a.example.com",
            "target": {"type": "elasticbeanstalk", "environmentName": "-x"}
        });
        assert!(detail(validate_new_app(&eb.to_string())).contains("environmentName"));
        let missing = serde_json::json!({"name": "ok", "domain": "a.example.com"});
        assert_eq!(detail(validate_new_app(&missing.to_string())), "'target' is required");
    }

    #[test]
    fn rejects_bad_session_timeouts_and_bodies() {
        let mut v: serde_json::Value = serde_json::from_str(&body("ok", "a.example.com")).unwrap();
        v["sessionTimeoutSeconds"] = serde_json::json!(0);
        assert!(detail(validate_new_app(&v.to_string())).contains("sessionTimeoutSeconds"));
        v["sessionTimeoutSeconds"] = serde_json::json!(900);
        assert_eq!(validate_new_app(&v.to_string()).unwrap().session_timeout_seconds, 900);
        assert!(detail(validate_new_app("[1,2]")).contains("JSON object"));
        assert!(detail(validate_new_app("{\"name\":1}")).contains("'name' must be a string"));
    }
}
