//! What a preflight reports: each check of a would-be app, in the words `POST /apps` refuses with.

use serde::Serialize;

use super::{MAX_CERTIFICATES_PER_LISTENER, MAX_RULES_PER_LISTENER};

/// How a check came out. `Warn` does not stop `POST /apps`; `Fail` does (or fails the provisioning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Pass,
    Warn,
    Fail,
}

/// The checks, by their stable names in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CheckName {
    #[serde(rename = "tenant.registered")]
    TenantRegistered,
    #[serde(rename = "domain.allowed")]
    DomainAllowed,
    #[serde(rename = "domain.free")]
    DomainFree,
    #[serde(rename = "target.granted")]
    TargetGranted,
    #[serde(rename = "tenant.quota")]
    TenantQuota,
    #[serde(rename = "email.sending")]
    EmailSending,
    #[serde(rename = "dns.alias")]
    DnsAlias,
    #[serde(rename = "target.exists")]
    TargetExists,
    #[serde(rename = "listener.https")]
    ListenerHttps,
    #[serde(rename = "target.healthy")]
    TargetHealthy,
    #[serde(rename = "listener.rules")]
    ListenerRules,
    #[serde(rename = "listener.certificates")]
    ListenerCertificates,
    #[serde(rename = "exposure")]
    Exposure,
}

/// One check's outcome and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub check: CheckName,
    pub status: CheckStatus,
    pub detail: String,
}

impl Check {
    pub fn pass(check: CheckName, detail: impl Into<String>) -> Self {
        Check { check, status: CheckStatus::Pass, detail: detail.into() }
    }
    pub fn warn(check: CheckName, detail: impl Into<String>) -> Self {
        Check { check, status: CheckStatus::Warn, detail: detail.into() }
    }
    pub fn fail(check: CheckName, detail: impl Into<String>) -> Self {
        Check { check, status: CheckStatus::Fail, detail: detail.into() }
    }
    /// Pass with `ok`, fail with the refusal's own words.
    pub fn from_result(check: CheckName, result: Result<String, String>) -> Self {
        match result {
            Ok(detail) => Check::pass(check, detail),
            Err(detail) => Check::fail(check, detail),
        }
    }
}

/// `POST /apps/preflight`'s body: `ok` unless a check failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreflightReport {
    pub ok: bool,
    pub checks: Vec<Check>,
}

impl From<Vec<Check>> for PreflightReport {
    fn from(checks: Vec<Check>) -> Self {
        PreflightReport { ok: checks.iter().all(|c| c.status != CheckStatus::Fail), checks }
    }
}

/// How the refusal of a claimed domain reads, in `POST /apps` and in preflight alike.
pub fn domain_taken(domain: &str) -> String {
    format!("domain '{domain}' is already protected by another app; delete that app first")
}

/// Room for one more rule on the listener (the app's), warning within 10 of the ALB's limit.
pub fn rule_headroom(rules: usize) -> Check {
    headroom(CheckName::ListenerRules, "rules", rules, MAX_RULES_PER_LISTENER, 10)
}

/// Room for one more certificate on the listener (the app's), warning within 3 of the ALB's limit.
pub fn certificate_headroom(certificates: usize) -> Check {
    headroom(CheckName::ListenerCertificates, "certificates", certificates, MAX_CERTIFICATES_PER_LISTENER, 3)
}

fn headroom(check: CheckName, what: &str, used: usize, limit: usize, margin: usize) -> Check {
    let detail = format!("the listener has {used} of the ALB's {limit} {what}");
    if used >= limit {
        Check::fail(check, format!("{detail}; the app needs one more: remove one first"))
    } else if used + margin >= limit {
        Check::warn(check, format!("{detail}; close to the limit"))
    } else {
        Check::pass(check, detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headroom_warns_near_the_alb_limits_and_fails_at_them() {
        assert_eq!(rule_headroom(0).status, CheckStatus::Pass);
        assert_eq!(rule_headroom(89).status, CheckStatus::Pass);
        assert_eq!(rule_headroom(90).status, CheckStatus::Warn);
        assert_eq!(rule_headroom(100).status, CheckStatus::Fail);
        assert_eq!(certificate_headroom(21).status, CheckStatus::Pass);
        assert_eq!(certificate_headroom(22).status, CheckStatus::Warn);
        let full = certificate_headroom(25);
        assert_eq!(full.status, CheckStatus::Fail);
        assert_eq!(
            full.detail,
            "the listener has 25 of the ALB's 25 certificates; the app needs one more: remove one first"
        );
    }

    #[test]
    fn a_report_is_ok_unless_a_check_failed_and_names_checks_as_the_api_does() {
        let warned = PreflightReport::from(vec![
            Check::pass(CheckName::DomainFree, "free"),
            Check::warn(CheckName::EmailSending, "50 a day"),
        ]);
        assert!(warned.ok);
        let failed = PreflightReport::from(vec![Check::fail(CheckName::Exposure, "open")]);
        assert!(!failed.ok);
        let json = serde_json::to_value(&failed).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"ok": false, "checks": [{"check": "exposure", "status": "fail", "detail": "open"}]})
        );
    }
}
