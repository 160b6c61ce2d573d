//! Drift: whether an ACTIVE app still stands as Portcullis made it. Compares the app's record with what
//! AWS shows now (an [`Observed`], read by the workflow through the ports) and names every difference as
//! a [`Finding`]: a stable code, a sentence for a human, and whether Portcullis owns the fix.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::LoadBalancerView;
use super::{App, CertificateProgress, CertificateStatus, Entry, Exposure, ProtectedApp, exposures};

/// The OAuth scopes the app's client and the rule's login ask for (`openid email`), sorted: the adapters
/// sort what they read, so that the order AWS answers in is not drift.
pub const LOGIN_SCOPES: [&str; 2] = ["email", "openid"];

/// A listener rule's conditions and actions, as far as an app's protection goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSettings {
    /// The host names of its host-header conditions.
    pub hosts: Vec<String>,
    /// How many conditions of any other kind it has (path, header, …).
    pub other_conditions: usize,
    /// Its authenticate-cognito action, if it has one.
    pub login: Option<LoginSettings>,
    /// The target groups its forward action sends to (none: no forward).
    pub forward_to: Vec<String>,
    /// How many actions of any other kind it has (redirect, fixed response, OIDC login, …).
    pub other_actions: usize,
}

/// A rule's authenticate-cognito action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSettings {
    pub user_pool_arn: String,
    pub client_id: String,
    pub pool_domain: String,
    pub session_timeout_seconds: Option<u32>,
    /// Its scopes, sorted.
    pub scopes: Vec<String>,
    /// True when an unauthenticated request is sent to sign in (not allowed through, not denied).
    pub authenticates_unauthenticated: bool,
}

/// An app client's OAuth settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    pub callback_urls: Vec<String>,
    pub logout_urls: Vec<String>,
    /// True when the authorization-code flow is the only OAuth flow it allows.
    pub code_flow_only: bool,
    /// Its scopes, sorted.
    pub scopes: Vec<String>,
}

/// What AWS shows now of an ACTIVE app's resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The app's recorded rule; `None` if it is gone.
    pub rule: Option<RuleSettings>,
    /// Whether the certificate is attached to the app's listener.
    pub certificate_attached: bool,
    /// The certificate's status; `None` if it is gone.
    pub certificate: Option<CertificateStatus>,
    pub pool_exists: bool,
    /// The app client's settings; `None` if it (or its pool) is gone.
    pub client: Option<ClientSettings>,
    /// The pool the app's hosted-domain prefix belongs to now; `None` if the prefix is free.
    pub domain_pool: Option<String>,
    /// Every listener and rule of the app's load balancer.
    pub load_balancer: LoadBalancerView,
}

/// What kind of drift a finding is. The names are part of the API (`health.findings[].code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FindingCode {
    RuleMissing,
    RuleChanged,
    CertificateDetached,
    CertificateNotIssued,
    PoolMissing,
    ClientMissing,
    ClientChanged,
    DomainMissing,
    DomainTaken,
    RouteAroundLogin,
}

impl FindingCode {
    /// Whether Portcullis can put it back: only what it made and can make again as it was. A deleted pool
    /// took its users with it; a certificate that is no longer issued, a domain prefix another pool took
    /// and a route someone else made are not Portcullis's to fix.
    pub fn repairable(self) -> bool {
        matches!(
            self,
            FindingCode::RuleMissing
                | FindingCode::RuleChanged
                | FindingCode::CertificateDetached
                | FindingCode::ClientMissing
                | FindingCode::ClientChanged
                | FindingCode::DomainMissing
        )
    }
}

/// One difference between the app's record and AWS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub code: FindingCode,
    pub detail: String,
    pub repairable: bool,
}

impl Finding {
    fn new(code: FindingCode, detail: impl Into<String>) -> Self {
        Finding { code, detail: detail.into(), repairable: code.repairable() }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.detail)
    }
}

/// Whether the app stands as made. The names are part of the API (`health.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthStatus {
    Ok,
    Drifted,
}

/// The last drift check of an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub status: HealthStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
    pub findings: Vec<Finding>,
}

impl Health {
    /// The result of a check made at `checked_at`.
    pub fn of(findings: Vec<Finding>, checked_at: OffsetDateTime) -> Health {
        let status = if findings.is_empty() { HealthStatus::Ok } else { HealthStatus::Drifted };
        Health { status, checked_at, findings }
    }

    /// Whether the app's history should note going from `before` to this: the status or the findings
    /// changed (not merely the time of the check).
    pub fn changed_from(&self, before: Option<&Health>) -> bool {
        match before {
            None => true,
            Some(before) => before.status != self.status || before.findings != self.findings,
        }
    }

    /// The history event's detail.
    pub fn summary(&self) -> String {
        match self.status {
            HealthStatus::Ok => "OK: the app stands as Portcullis made it".into(),
            HealthStatus::Drifted => {
                let findings = self.findings.iter().map(Finding::to_string).collect::<Vec<_>>().join("; ");
                format!("DRIFTED: {findings}")
            }
        }
    }

    /// The findings Portcullis cannot repair.
    pub fn unrepairable(&self) -> Vec<&Finding> {
        self.findings.iter().filter(|f| !f.repairable).collect()
    }
}

/// Every difference between an ACTIVE app's record and what AWS shows now; empty when it stands as made.
/// An app whose record lacks a resource a step should have made is reported as missing that resource.
pub fn findings(app: &App, observed: &Observed) -> Vec<Finding> {
    let r = &app.resources;
    let mut found = Vec::new();
    let rule_arn = r.listener_rule_arn.as_deref().unwrap_or_default();
    match &observed.rule {
        None => found.push(Finding::new(
            FindingCode::RuleMissing,
            format!("the listener rule {rule_arn} for {} is gone: requests for the app are not signed in", app.domain),
        )),
        Some(rule) => {
            let differences = rule_differences(app, rule);
            if !differences.is_empty() {
                found.push(Finding::new(
                    FindingCode::RuleChanged,
                    format!("the listener rule {rule_arn} was changed: {}", differences.join("; ")),
                ));
            }
        }
    }
    let certificate = r.certificate_arn.as_deref().unwrap_or_default();
    match observed.certificate {
        None => found.push(Finding::new(
            FindingCode::CertificateNotIssued,
            format!("the certificate {certificate} is gone; delete the app and create it again"),
        )),
        Some(status) if status.progress() != CertificateProgress::Issued => found.push(Finding::new(
            FindingCode::CertificateNotIssued,
            format!("the certificate {certificate} is {status}, not issued; delete the app and create it again"),
        )),
        Some(_) => {}
    }
    if !observed.certificate_attached {
        found.push(Finding::new(
            FindingCode::CertificateDetached,
            format!("the certificate {certificate} is no longer attached to the listener {}", listener(app)),
        ));
    }
    let pool = r.user_pool_id.as_deref().unwrap_or_default();
    if !observed.pool_exists {
        found.push(Finding::new(
            FindingCode::PoolMissing,
            format!(
                "the user pool {pool} is gone, and its users with it: repair cannot bring them back; \
                 delete the app and create it again, then invite its users"
            ),
        ));
        // The client and the domain went with the pool: nothing more to say about them.
        return with_routes(found, app, observed);
    }
    let client = r.client_id.as_deref().unwrap_or_default();
    match &observed.client {
        None => found.push(Finding::new(FindingCode::ClientMissing, format!("the app client {client} is gone"))),
        Some(settings) => {
            let differences = client_differences(app, settings);
            if !differences.is_empty() {
                found.push(Finding::new(
                    FindingCode::ClientChanged,
                    format!("the app client {client} was changed: {}", differences.join("; ")),
                ));
            }
        }
    }
    let prefix = r.pool_domain_prefix.as_deref().unwrap_or_default();
    match observed.domain_pool.as_deref() {
        None => found.push(Finding::new(FindingCode::DomainMissing, format!("the pool's domain {prefix} is gone"))),
        Some(holder) if holder != pool => found.push(Finding::new(
            FindingCode::DomainTaken,
            format!(
                "the pool's domain {prefix} now belongs to user pool {holder}: the app's sign-in page is someone \
                 else's; delete the app and create it again"
            ),
        )),
        Some(_) => {}
    }
    with_routes(found, app, observed)
}

/// Adds every route around the login that is not the app's own rule (a changed rule is reported as such).
fn with_routes(mut found: Vec<Finding>, app: &App, observed: &Observed) -> Vec<Finding> {
    let r = &app.resources;
    let (Some(target_group), Some(client), Some(listener)) =
        (r.target_group_arn.as_deref(), r.client_id.as_deref(), r.listener_arn.as_deref())
    else {
        return found;
    };
    let own_rule = r.listener_rule_arn.as_deref().zip(r.rule_priority);
    let protected = ProtectedApp {
        host: &app.domain,
        target_group_arn: target_group,
        client_id: client,
        listener_arn: listener,
        rule: own_rule,
    };
    let is_own_rule =
        |e: &Exposure| matches!(&e.entry, Entry::Rule { arn, .. } if Some(arn.as_str()) == own_rule.map(|(a, _)| a));
    for exposure in exposures(&observed.load_balancer, &protected).iter().filter(|e| !is_own_rule(e)) {
        found.push(Finding::new(
            FindingCode::RouteAroundLogin,
            format!("{exposure}; Portcullis did not make it, so the load balancer's owner must remove it"),
        ));
    }
    found
}

fn listener(app: &App) -> &str {
    app.resources.listener_arn.as_deref().unwrap_or_default()
}

/// How the rule differs from exactly: host-header = the app's domain; authenticate-cognito with the app's
/// pool, client, domain, session timeout and `openid email`, signing in unauthenticated requests; forward to
/// the app's target group.
fn rule_differences(app: &App, rule: &RuleSettings) -> Vec<String> {
    let r = &app.resources;
    let mut differences = Vec::new();
    if rule.hosts.len() != 1 || !rule.hosts[0].eq_ignore_ascii_case(&app.domain) || rule.other_conditions > 0 {
        differences.push(format!(
            "its conditions are not exactly host-header {} (hosts {:?} and {} other conditions)",
            app.domain, rule.hosts, rule.other_conditions
        ));
    }
    match &rule.login {
        None => differences.push("it no longer signs users in".into()),
        Some(login) => {
            let expected = [
                ("user pool", r.user_pool_arn.as_deref(), Some(login.user_pool_arn.as_str())),
                ("app client", r.client_id.as_deref(), Some(login.client_id.as_str())),
                ("pool domain", r.pool_domain_prefix.as_deref(), Some(login.pool_domain.as_str())),
            ];
            for (what, want, have) in expected {
                if want != have {
                    differences.push(format!("its login uses {what} {}", have.unwrap_or_default()));
                }
            }
            if login.session_timeout_seconds != Some(app.session_timeout_seconds) {
                differences.push(format!(
                    "its session timeout is {:?} s, not {} s",
                    login.session_timeout_seconds, app.session_timeout_seconds
                ));
            }
            if login.scopes != LOGIN_SCOPES {
                differences.push(format!("its login scopes are {:?}", login.scopes));
            }
            if !login.authenticates_unauthenticated {
                differences.push("it lets unauthenticated requests through or denies them".into());
            }
        }
    }
    let target_group = r.target_group_arn.as_deref().unwrap_or_default();
    if rule.forward_to != [target_group] || rule.other_actions > 0 {
        differences.push(format!(
            "its actions are not exactly the login and a forward to {target_group} (forwards to {:?}, {} other actions)",
            rule.forward_to, rule.other_actions
        ));
    }
    differences
}

/// How the client differs from the one Portcullis made: the code flow only, `openid email`, the app's
/// callback and logout URLs.
fn client_differences(app: &App, client: &ClientSettings) -> Vec<String> {
    let mut differences = Vec::new();
    if client.callback_urls != [app.callback_url()] {
        differences.push(format!("its callback URLs are {:?}, not [{}]", client.callback_urls, app.callback_url()));
    }
    if client.logout_urls != [app.url()] {
        differences.push(format!("its logout URLs are {:?}, not [{}]", client.logout_urls, app.url()));
    }
    if !client.code_flow_only {
        differences.push("it allows OAuth flows other than the authorization code".into());
    }
    if client.scopes != LOGIN_SCOPES {
        differences.push(format!("its scopes are {:?}, not openid email", client.scopes));
    }
    differences
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AppStatus, ListenerProtocol, ListenerView, RuleAction, RuleCondition, RuleView};

    const LISTENER: &str = "arn:listener/app/lb/1/l";
    const GROUP: &str = "arn:targetgroup/app";
    const RULE: &str = "arn:listener-rule/app/lb/1/l/r";

    fn app() -> App {
        let mut app = crate::fakes::app("a1", AppStatus::Active);
        let r = &mut app.resources;
        r.certificate_arn = Some("arn:cert".into());
        r.listener_arn = Some(LISTENER.into());
        r.target_group_arn = Some(GROUP.into());
        r.user_pool_id = Some("pool".into());
        r.user_pool_arn = Some("arn:pool".into());
        r.client_id = Some("client".into());
        r.pool_domain_prefix = Some("pc-grafana-a1".into());
        r.listener_rule_arn = Some(RULE.into());
        r.rule_priority = Some(3);
        r.listener_certificate_attached = true;
        app
    }

    fn scopes() -> Vec<String> {
        LOGIN_SCOPES.iter().map(|s| s.to_string()).collect()
    }

    fn rule(app: &App) -> RuleSettings {
        RuleSettings {
            hosts: vec![app.domain.clone()],
            other_conditions: 0,
            login: Some(LoginSettings {
                user_pool_arn: "arn:pool".into(),
                client_id: "client".into(),
                pool_domain: "pc-grafana-a1".into(),
                session_timeout_seconds: Some(app.session_timeout_seconds),
                scopes: scopes(),
                authenticates_unauthenticated: true,
            }),
            forward_to: vec![GROUP.into()],
            other_actions: 0,
        }
    }

    fn load_balancer(extra_rules: Vec<RuleView>) -> LoadBalancerView {
        let mut rules = vec![RuleView {
            arn: RULE.into(),
            priority: 3,
            conditions: vec![RuleCondition::HostHeader(vec!["grafana.example.com".into()])],
            actions: vec![
                RuleAction::AuthenticateCognito { client_id: "client".into() },
                RuleAction::Forward { target_groups: vec![GROUP.into()] },
            ],
        }];
        rules.extend(extra_rules);
        LoadBalancerView {
            listeners: vec![ListenerView {
                arn: LISTENER.into(),
                port: 443,
                protocol: ListenerProtocol::Https,
                default_actions: vec![RuleAction::FixedResponse],
                rules,
            }],
        }
    }

    fn as_made(app: &App) -> Observed {
        Observed {
            rule: Some(rule(app)),
            certificate_attached: true,
            certificate: Some(CertificateStatus::Issued),
            pool_exists: true,
            client: Some(ClientSettings {
                callback_urls: vec![app.callback_url()],
                logout_urls: vec![app.url()],
                code_flow_only: true,
                scopes: scopes(),
            }),
            domain_pool: Some("pool".into()),
            load_balancer: load_balancer(Vec::new()),
        }
    }

    fn codes(app: &App, observed: &Observed) -> Vec<FindingCode> {
        findings(app, observed).iter().map(|f| f.code).collect()
    }

    #[test]
    fn an_app_as_made_is_ok() {
        let app = app();
        assert_eq!(findings(&app, &as_made(&app)), vec![]);
        let health = Health::of(Vec::new(), OffsetDateTime::UNIX_EPOCH);
        assert_eq!(health.status, HealthStatus::Ok);
        assert_eq!(serde_json::to_value(&health).unwrap()["status"], "OK");
    }

    #[test]
    fn a_missing_rule_is_found_and_repairable() {
        let app = app();
        let observed = Observed { rule: None, ..as_made(&app) };
        let found = findings(&app, &observed);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].code, FindingCode::RuleMissing);
        assert!(found[0].repairable && found[0].detail.contains(RULE), "{}", found[0].detail);
        assert_eq!(serde_json::to_value(&found[0]).unwrap()["code"], "RULE_MISSING");
    }

    #[test]
    fn every_change_to_the_rule_is_named() {
        let app = app();
        let mut changed = rule(&app);
        changed.hosts.push("other.example.com".into());
        changed.other_actions = 1;
        let login = changed.login.as_mut().unwrap();
        login.session_timeout_seconds = Some(60);
        login.client_id = "someone-elses".into();
        login.authenticates_unauthenticated = false;
        let found = findings(&app, &Observed { rule: Some(changed), ..as_made(&app) });
        // Another client's login on the app's own rule is the rule's change, not a second finding.
        assert_eq!(found.iter().map(|f| f.code).collect::<Vec<_>>(), vec![FindingCode::RuleChanged]);
        for words in ["conditions", "app client someone-elses", "session timeout", "unauthenticated", "actions"] {
            assert!(found[0].detail.contains(words), "{words}: {}", found[0].detail);
        }
        let no_login = RuleSettings { login: None, ..rule(&app) };
        let found = findings(&app, &Observed { rule: Some(no_login), ..as_made(&app) });
        assert!(found[0].detail.contains("no longer signs users in"), "{}", found[0].detail);
    }

    #[test]
    fn the_certificate_must_be_attached_and_issued() {
        let app = app();
        let detached = Observed { certificate_attached: false, ..as_made(&app) };
        assert_eq!(codes(&app, &detached), vec![FindingCode::CertificateDetached]);
        assert!(FindingCode::CertificateDetached.repairable());
        let revoked = Observed { certificate: Some(CertificateStatus::Revoked), ..as_made(&app) };
        assert_eq!(codes(&app, &revoked), vec![FindingCode::CertificateNotIssued]);
        let gone = Observed { certificate: None, ..as_made(&app) };
        let found = findings(&app, &gone);
        assert!(!found[0].repairable && found[0].detail.contains("gone"), "{}", found[0].detail);
    }

    #[test]
    fn a_missing_pool_is_not_repairable_and_says_why() {
        let app = app();
        let observed = Observed { pool_exists: false, client: None, domain_pool: None, ..as_made(&app) };
        let found = findings(&app, &observed);
        assert_eq!(found.iter().map(|f| f.code).collect::<Vec<_>>(), vec![FindingCode::PoolMissing]);
        assert!(!found[0].repairable);
        assert!(found[0].detail.contains("users") && found[0].detail.contains("delete the app"), "{}", found[0].detail);
    }

    #[test]
    fn the_client_and_the_domain_are_checked() {
        let app = app();
        assert_eq!(codes(&app, &Observed { client: None, ..as_made(&app) }), vec![FindingCode::ClientMissing]);
        let mut changed = as_made(&app);
        let client = changed.client.as_mut().unwrap();
        client.callback_urls = vec!["https://evil.example.com/oauth2/idpresponse".into()];
        client.code_flow_only = false;
        let found = findings(&app, &changed);
        assert_eq!(found[0].code, FindingCode::ClientChanged);
        assert!(
            found[0].detail.contains("evil.example.com") && found[0].detail.contains("flows"),
            "{}",
            found[0].detail
        );
        assert_eq!(codes(&app, &Observed { domain_pool: None, ..as_made(&app) }), vec![FindingCode::DomainMissing]);
        let taken = Observed { domain_pool: Some("other".into()), ..as_made(&app) };
        assert_eq!(codes(&app, &taken), vec![FindingCode::DomainTaken]);
        assert!(!FindingCode::DomainTaken.repairable());
    }

    #[test]
    fn a_route_around_the_login_is_named_and_left_to_its_owner() {
        let app = app();
        let bypass = RuleView {
            arn: "arn:listener-rule/bypass".into(),
            priority: 1,
            conditions: vec![RuleCondition::HostHeader(vec!["*.example.com".into()])],
            actions: vec![RuleAction::Forward { target_groups: vec![GROUP.into()] }],
        };
        let observed = Observed { load_balancer: load_balancer(vec![bypass]), ..as_made(&app) };
        let found = findings(&app, &observed);
        assert_eq!(found.iter().map(|f| f.code).collect::<Vec<_>>(), vec![FindingCode::RouteAroundLogin]);
        assert!(!found[0].repairable);
        assert!(found[0].detail.contains("arn:listener-rule/bypass") && found[0].detail.contains("owner"));
    }

    #[test]
    fn history_notes_a_change_of_health_only() {
        let at = OffsetDateTime::UNIX_EPOCH;
        let drifted = Health::of(vec![Finding::new(FindingCode::RuleMissing, "gone")], at);
        assert!(drifted.changed_from(None));
        let later = Health { checked_at: at + time::Duration::minutes(15), ..drifted.clone() };
        assert!(!later.changed_from(Some(&drifted)));
        let ok = Health::of(Vec::new(), at);
        assert!(ok.changed_from(Some(&drifted)));
        assert!(drifted.summary().starts_with("DRIFTED: RuleMissing: gone"), "{}", drifted.summary());
        assert_eq!(drifted.unrepairable().len(), 0);
    }
}
