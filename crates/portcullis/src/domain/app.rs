//! A protected app: what the caller asked for, where provisioning is, and every AWS resource made for it
//! (so that teardown finds every piece).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{AccessPolicy, CertificateStatus, Closure, EmailSending, Health, Mfa, SettingsChange, ZoneRecord};
use crate::error::{Error, Result};

/// Lifecycle status. The names are part of the API contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AppStatus {
    Provisioning,
    Active,
    Failed,
    Deleting,
    Deleted,
}

impl AppStatus {
    /// The contract name of the status, as it appears in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            AppStatus::Provisioning => "PROVISIONING",
            AppStatus::Active => "ACTIVE",
            AppStatus::Failed => "FAILED",
            AppStatus::Deleting => "DELETING",
            AppStatus::Deleted => "DELETED",
        }
    }
}

/// Where provisioning is. The names are part of the API contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Step {
    Certificate,
    DnsValidation,
    Environment,
    Auth,
    Listener,
    /// Removing resources (compensation or deletion); not shown while provisioning.
    Teardown,
}

impl Step {
    /// The contract name of the step, as it appears in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Certificate => "CERTIFICATE",
            Step::DnsValidation => "DNS_VALIDATION",
            Step::Environment => "ENVIRONMENT",
            Step::Auth => "AUTH",
            Step::Listener => "LISTENER",
            Step::Teardown => "TEARDOWN",
        }
    }
}

/// Where the app runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", rename_all_fields = "camelCase", deny_unknown_fields)]
pub enum Target {
    /// A shared ALB: Portcullis adds a host-header rule to its HTTPS listener.
    Alb { listener_arn: String, target_group_arn: String },
    /// An Elastic Beanstalk environment: its ALB and HTTPS listener are discovered.
    #[serde(rename = "elasticbeanstalk")]
    ElasticBeanstalk { environment_name: String },
}

/// The DNS record that proves control of the domain to ACM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationRecord {
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: String,
    pub value: String,
}

/// Why provisioning (or teardown) failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppError {
    pub step: Step,
    pub code: String,
    pub message: String,
}

/// Every AWS resource Portcullis made (or found) for an app. Each is recorded as soon as it exists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    pub certificate_arn: Option<String>,
    pub certificate_status: Option<CertificateStatus>,
    pub validation_record: Option<ValidationRecord>,
    /// The HTTPS listener and target group in use (given, or discovered from an EB environment).
    pub listener_arn: Option<String>,
    pub target_group_arn: Option<String>,
    pub user_pool_id: Option<String>,
    pub user_pool_arn: Option<String>,
    /// How the pool sends invitations.
    pub email_sending: Option<EmailSending>,
    pub client_id: Option<String>,
    /// The Cognito hosted domain prefix and its full host name.
    pub pool_domain_prefix: Option<String>,
    pub pool_domain_host: Option<String>,
    /// True once the certificate is attached to the listener.
    #[serde(default)]
    pub listener_certificate_attached: bool,
    pub rule_priority: Option<u32>,
    pub listener_rule_arn: Option<String>,
    /// Routes around the login closed on the environment's own load balancer, restored on delete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub closed_routes: Vec<Closure>,
    /// The certificate's validation record in the tenant's hosted zone, recorded before it is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_dns: Option<ZoneRecord>,
    /// The app's host name aliased to its load balancer in the tenant's hosted zone (asked for with
    /// `dnsAlias`), recorded before it is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias_dns: Option<ZoneRecord>,
}

/// A recorded user pool: what the listener rule and the pool's deletion need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolRef<'a> {
    pub id: &'a str,
    pub arn: &'a str,
}

/// A value a later step needs from an earlier one; missing means the steps ran out of order (a bug),
/// never an AWS call with an empty id.
fn recorded<'a>(value: &'a Option<String>, what: &str) -> Result<&'a str> {
    value
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::internal(format!("no {what} is recorded for the app: a step ran out of order")))
}

impl Resources {
    /// The requested certificate.
    pub fn certificate(&self) -> Result<&str> {
        recorded(&self.certificate_arn, "certificate")
    }

    /// The HTTPS listener the app is wired on (given, or discovered).
    pub fn listener(&self) -> Result<&str> {
        recorded(&self.listener_arn, "listener")
    }

    /// The target group the app's rule forwards to.
    pub fn target_group(&self) -> Result<&str> {
        recorded(&self.target_group_arn, "target group")
    }

    /// The app's user pool.
    pub fn pool(&self) -> Result<PoolRef<'_>> {
        Ok(PoolRef {
            id: recorded(&self.user_pool_id, "user pool")?,
            arn: recorded(&self.user_pool_arn, "user pool ARN")?,
        })
    }

    /// The pool's app client the ALB signs in with.
    pub fn client(&self) -> Result<&str> {
        recorded(&self.client_id, "app client")
    }

    /// The pool's hosted-domain prefix.
    pub fn pool_domain(&self) -> Result<&str> {
        recorded(&self.pool_domain_prefix, "pool domain")
    }

    /// The app's listener rule and its priority.
    pub fn rule(&self) -> Result<(&str, u32)> {
        let priority = self
            .rule_priority
            .ok_or_else(|| Error::internal("no rule priority is recorded for the app: a step ran out of order"))?;
        Ok((recorded(&self.listener_rule_arn, "listener rule")?, priority))
    }
}

/// A protected app, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct App {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub domain: String,
    pub target: Target,
    pub session_timeout_seconds: u32,
    /// Point the domain at the load balancer with an alias record in the tenant's hosted zone, once the
    /// app is protected.
    #[serde(default)]
    pub dns_alias: bool,
    /// Send an invitation again, automatically, the day before it expires (at most
    /// [`super::MAX_AUTO_RESENDS`] times).
    #[serde(default)]
    pub auto_resend: bool,
    /// Who may be invited, and for how long.
    #[serde(default)]
    pub access_policy: AccessPolicy,
    /// A second factor at sign-in (TOTP).
    #[serde(default)]
    pub mfa: Mfa,
    pub status: AppStatus,
    pub step: Option<Step>,
    #[serde(default)]
    pub resources: Resources,
    pub error: Option<AppError>,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Optimistic-concurrency version: every write expects the version it read.
    pub version: u64,
    /// The version the app had when its current deletion began. It names the deprovisioning execution
    /// (`Execution::deprovision`), so a later delete can ask whether that execution still runs, however
    /// often the workflow has written the app since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_version: Option<u64>,
    /// The last drift check of the app while ACTIVE; none until the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// A change of its settings the workflow is applying (`PATCH /apps/{id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings_change: Option<SettingsChange>,
}

impl App {
    /// The URL users open; the ALB rule answers for it.
    pub fn url(&self) -> String {
        format!("https://{}/", self.domain)
    }

    /// The Cognito hosted UI logout URL that returns the user to the app.
    pub fn logout_url(&self) -> Option<String> {
        let host = self.resources.pool_domain_host.as_deref()?;
        let client_id = self.resources.client_id.as_deref()?;
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", client_id)
            .append_pair("logout_uri", &self.url())
            .finish();
        Some(format!("https://{host}/logout?{query}"))
    }

    /// What ending a user's access in the pool leaves open, for the app's history: Cognito ends the
    /// user's tokens, not the load balancer's session cookie.
    pub fn open_session_note(&self) -> String {
        format!(
            "a session the load balancer already holds can last up to the app's session timeout ({} s)",
            self.session_timeout_seconds
        )
    }

    /// The OAuth callback the ALB's authenticate-cognito action uses.
    pub fn callback_url(&self) -> String {
        format!("https://{}/oauth2/idpresponse", self.domain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> App {
        let mut app = crate::fakes::app("a1", AppStatus::Provisioning);
        app.target = Target::ElasticBeanstalk { environment_name: "env".into() };
        app
    }

    #[test]
    fn logout_url_returns_to_the_app() {
        let mut app = app();
        assert_eq!(app.logout_url(), None);
        app.resources.pool_domain_host = Some("pc-x.auth.us-east-1.amazoncognito.com".into());
        app.resources.client_id = Some("abc".into());
        assert_eq!(
            app.logout_url().unwrap(),
            "https://pc-x.auth.us-east-1.amazoncognito.com/logout?client_id=abc&logout_uri=https%3A%2F%2Fgrafana.example.com%2F"
        );
    }

    #[test]
    fn a_missing_resource_is_an_internal_error_never_an_empty_id() {
        let mut resources = Resources { certificate_arn: Some(String::new()), ..Default::default() };
        let err = resources.certificate().unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::Internal);
        assert!(err.to_string().contains("certificate"), "{err}");
        assert!(resources.pool().is_err());
        resources.user_pool_id = Some("pool".into());
        resources.user_pool_arn = Some("arn:pool".into());
        assert_eq!(resources.pool().unwrap(), PoolRef { id: "pool", arn: "arn:pool" });
    }

    #[test]
    fn status_and_step_names_match_their_json() {
        for status in
            [AppStatus::Provisioning, AppStatus::Active, AppStatus::Failed, AppStatus::Deleting, AppStatus::Deleted]
        {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
        for step in
            [Step::Certificate, Step::DnsValidation, Step::Environment, Step::Auth, Step::Listener, Step::Teardown]
        {
            assert_eq!(serde_json::to_value(step).unwrap(), step.as_str());
        }
    }

    #[test]
    fn target_json_uses_contract_names() {
        let alb: Target = serde_json::from_str(r#"{"type":"alb","listenerArn":"l","targetGroupArn":"g"}"#).unwrap();
        assert_eq!(alb, Target::Alb { listener_arn: "l".into(), target_group_arn: "g".into() });
        let eb: Target = serde_json::from_str(r#"{"type":"elasticbeanstalk","environmentName":"e"}"#).unwrap();
        assert_eq!(serde_json::to_value(&eb).unwrap()["environmentName"], "e");
        assert!(serde_json::from_str::<Target>(r#"{"type":"nlb"}"#).is_err());
    }
}
