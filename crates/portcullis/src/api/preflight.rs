//! `POST /apps/preflight`: every check that `POST /apps` and the provisioning would make of an app,
//! reported one by one and in their words, creating nothing.

use http::StatusCode;

use super::{ApiRequest, ApiResponse, AppsApi, json_response};
use crate::domain::{
    Caller, Check, CheckName, NewApp, PreflightReport, ProtectedApp, Target, Tenant, certificate_headroom, closures,
    domain_taken, exposed, exposures, left_open, not_registered, rule_headroom, validate_new_app,
};
use crate::endpoint::{Endpoint, beanstalk_endpoint, listener_problem, no_environment};
use crate::error::{Error, Result};

impl AppsApi {
    /// Any role of the tenant may ask; a body `POST /apps` would refuse as invalid is a 400 here too.
    pub(super) async fn preflight(&self, caller: &Caller, request: &ApiRequest) -> Result<ApiResponse> {
        let tenant_id = caller.tenant_id()?;
        let new = validate_new_app(&request.body)?;
        let checks = self.checks(tenant_id, &new).await?;
        Ok(json_response(StatusCode::OK, &PreflightReport::from(checks)))
    }

    async fn checks(&self, tenant_id: &str, new: &NewApp) -> Result<Vec<Check>> {
        let domain_free = match self.apps.domain_claimed(&new.domain).await? {
            true => Check::fail(CheckName::DomainFree, domain_taken(&new.domain)),
            false => Check::pass(CheckName::DomainFree, format!("no app protects {}", new.domain)),
        };
        let Some(tenant) = self.tenants.get(tenant_id).await? else {
            return Ok(vec![Check::fail(CheckName::TenantRegistered, not_registered(tenant_id)), domain_free]);
        };
        let live = self.apps.count_live(tenant_id).await?;
        let mut checks = vec![
            Check::pass(CheckName::TenantRegistered, format!("tenant {tenant_id} is registered")),
            Check::from_result(
                CheckName::DomainAllowed,
                tenant
                    .check_domain(&new.domain)
                    .map(|()| format!("{} is within the tenant's allowed domains", new.domain)),
            ),
            domain_free,
            Check::from_result(
                CheckName::TenantQuota,
                tenant
                    .check_quota(live)
                    .map(|()| format!("{live} of the tenant's {} apps are in use", tenant.registration.quotas.apps)),
            ),
            self.email_sending(&tenant).await?,
        ];
        if new.dns_alias {
            checks.push(Check::from_result(
                CheckName::DnsAlias,
                tenant.check_dns_alias().map(|zone| {
                    format!(
                        "once the app is protected, {} is pointed at its load balancer in hosted zone {zone}",
                        new.domain
                    )
                }),
            ));
        }
        match tenant.check_target(&new.target) {
            // What is not granted is not looked at: preflight must not let a tenant probe others' resources.
            Err(refusal) => checks.push(Check::fail(CheckName::TargetGranted, refusal)),
            Ok(granted) => {
                checks.push(Check::pass(CheckName::TargetGranted, format!("target '{}' is granted", granted.id)));
                checks.extend(self.target_checks(new).await?);
            }
        }
        Ok(checks)
    }

    async fn email_sending(&self, tenant: &Tenant) -> Result<Check> {
        let through_ses = tenant.ses().is_some() || self.tenants.legacy_ses(&tenant.id).await?.is_some();
        Ok(match through_ses {
            true => Check::pass(CheckName::EmailSending, "invitations are sent through the tenant's SES identity"),
            false => Check::warn(
                CheckName::EmailSending,
                "invitations are sent by Cognito's default sender, which sends at most 50 emails a day per account \
                 and Region; a platform operator can give the tenant an SES identity (ses) with PUT /tenants/{tenantId}",
            ),
        })
    }

    /// The granted target as it is now: it exists, its listener is HTTPS, it is healthy, there is room on the
    /// listener, and nothing reaches it around the login (or only what Portcullis will close).
    async fn target_checks(&self, new: &NewApp) -> Result<Vec<Check>> {
        let mut checks = Vec::new();
        let (endpoint, healthy, may_close) = match &new.target {
            Target::Alb { listener_arn, target_group_arn } => {
                let protocol = self.load_balancer.listener_protocol(listener_arn).await?;
                let problem = listener_problem(listener_arn, protocol.as_ref());
                if let (None, Some(missing)) = (&protocol, &problem) {
                    checks.push(Check::fail(CheckName::TargetExists, missing.clone()));
                    return Ok(checks);
                }
                let healthy = match self.load_balancer.has_healthy_target(target_group_arn).await {
                    Err(Error::Invalid(why)) => {
                        checks.push(Check::fail(CheckName::TargetExists, why));
                        return Ok(checks);
                    }
                    other => other?,
                };
                checks.push(Check::pass(CheckName::TargetExists, "the listener and the target group exist"));
                checks.push(match problem {
                    Some(why) => Check::fail(CheckName::ListenerHttps, why),
                    None => Check::pass(CheckName::ListenerHttps, format!("listener {listener_arn} is HTTPS")),
                });
                let endpoint =
                    Endpoint { listener_arn: listener_arn.clone(), target_group_arn: target_group_arn.clone() };
                (endpoint, healthy, false)
            }
            Target::ElasticBeanstalk { environment_name } => {
                let Some(environment) = self.environments.environment(environment_name).await? else {
                    checks.push(Check::fail(CheckName::TargetExists, no_environment(environment_name)));
                    return Ok(checks);
                };
                let endpoint =
                    match beanstalk_endpoint(self.environments.as_ref(), self.load_balancer.as_ref(), environment_name)
                        .await
                    {
                        Err(Error::Invalid(why)) => {
                            checks.push(Check::fail(CheckName::TargetExists, why));
                            return Ok(checks);
                        }
                        other => other?,
                    };
                checks.push(Check::pass(CheckName::TargetExists, format!("environment {environment_name} exists")));
                let https = format!("listener {} of the environment is HTTPS", endpoint.listener_arn);
                checks.push(Check::pass(CheckName::ListenerHttps, https));
                (endpoint, environment.is_ready(), true)
            }
        };
        checks.push(match healthy {
            true => Check::pass(CheckName::TargetHealthy, "the target is healthy now"),
            false => Check::warn(
                CheckName::TargetHealthy,
                "the target is not healthy now; provisioning waits for it until the environment deadline",
            ),
        });
        let snapshot = self.load_balancer.snapshot(&endpoint.listener_arn).await?;
        let rules = snapshot.listeners.iter().find(|l| l.arn == endpoint.listener_arn).map_or(0, |l| l.rules.len());
        checks.push(rule_headroom(rules));
        checks
            .push(certificate_headroom(self.load_balancer.listener_certificates(&endpoint.listener_arn).await?.len()));
        let app = ProtectedApp {
            host: &new.domain,
            target_group_arn: &endpoint.target_group_arn,
            // No client yet: no existing rule can be the app's own login.
            client_id: "",
            listener_arn: &endpoint.listener_arn,
            rule: None,
        };
        let open = exposures(&snapshot, &app);
        let closing = if may_close { closures(&snapshot, &app) } else { Vec::new() };
        let left = left_open(&open, &closing);
        checks.push(if !left.is_empty() {
            Check::fail(CheckName::Exposure, exposed(&left))
        } else if !closing.is_empty() {
            let closing: Vec<String> = closing.iter().map(ToString::to_string).collect();
            let detail = format!(
                "Portcullis will close the routes around the login on the environment's load balancer, and restore \
                 them on delete: {}",
                closing.join("; ")
            );
            Check::pass(CheckName::Exposure, detail)
        } else {
            Check::pass(CheckName::Exposure, "no route reaches the target group without the app's login")
        });
        Ok(checks)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http::Method;
    use http::header::{AUTHORIZATION, HeaderValue};
    use serde_json::{Value, json};

    use super::*;
    use crate::api::Operations;
    use crate::config::WorkflowTiming;
    use crate::domain::{ListenerProtocol, ListenerView, LoadBalancerView, PollPolicy, Role, RuleAction};
    use crate::fakes::{self, FixedCaller, MemoryApps, MemoryHistory, MemoryListener, MemoryTenants, NoEnvironments};
    use crate::ports::Workflow;
    use crate::workflow::Execution;

    struct NeverStarted;

    #[async_trait::async_trait]
    impl Workflow for NeverStarted {
        async fn start(&self, _: &Execution) -> Result<()> {
            panic!("a preflight starts nothing")
        }
        async fn stop(&self, _: &Execution) -> Result<()> {
            panic!("a preflight stops nothing")
        }
        async fn is_running(&self, _: &Execution) -> Result<bool> {
            panic!("a preflight looks at no execution")
        }
    }

    /// A viewer's preflight against the fakes' granted listener, whose load balancer is `view` (None: the
    /// load balancer must not be looked at).
    async fn preflight(target_group: &str, view: Option<LoadBalancerView>) -> (Value, Arc<MemoryApps>) {
        let body = json!({"name": "Grafana", "domain": "grafana.example.com",
            "target": {"type": "alb", "listenerArn": fakes::LISTENER, "targetGroupArn": target_group}});
        preflight_of(body, view).await
    }

    async fn preflight_of(body: Value, view: Option<LoadBalancerView>) -> (Value, Arc<MemoryApps>) {
        let apps = Arc::new(MemoryApps::default());
        let listener = MemoryListener::default();
        *listener.view.lock().unwrap() = view;
        let policy = PollPolicy { poll_seconds: 1, deadline_seconds: 10, max_wait_seconds: 2 };
        let api = AppsApi {
            apps: apps.clone(),
            history: Arc::new(MemoryHistory::default()),
            tenants: Arc::new(MemoryTenants::granting_the_fakes()),
            workflow: Arc::new(NeverStarted),
            verifier: Arc::new(FixedCaller(Role::Viewer)),
            timing: WorkflowTiming { certificate: policy, environment: policy },
            load_balancer: Arc::new(listener),
            environments: Arc::new(NoEnvironments),
            drift: None,
        };
        let mut request = ApiRequest {
            method: Method::POST,
            resource: "/apps/preflight".into(),
            body: body.to_string(),
            ..Default::default()
        };
        request.headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer token"));
        let response = api.handle(&request).await;
        assert_eq!(response.status(), 200, "{}", response.body());
        (serde_json::from_str(response.body()).unwrap(), apps)
    }

    fn status_of<'a>(report: &'a Value, check: &str) -> Option<&'a str> {
        report["checks"].as_array().unwrap().iter().find(|c| c["check"] == check).and_then(|c| c["status"].as_str())
    }

    #[tokio::test]
    async fn a_default_forwarding_to_the_app_fails_the_exposure_check_in_the_steps_words_and_creates_nothing() {
        let view = LoadBalancerView {
            listeners: vec![ListenerView {
                arn: fakes::LISTENER.into(),
                port: 443,
                protocol: ListenerProtocol::Https,
                default_actions: vec![RuleAction::Forward { target_groups: vec![fakes::TARGET_GROUP.into()] }],
                rules: vec![],
            }],
        };
        let (report, apps) = preflight(fakes::TARGET_GROUP, Some(view)).await;
        assert_eq!(report["ok"], false, "{report}");
        let exposure = report["checks"].as_array().unwrap().iter().find(|c| c["check"] == "exposure").unwrap();
        assert_eq!(exposure["status"], "fail");
        assert!(
            exposure["detail"]
                .as_str()
                .unwrap()
                .starts_with("the app's target group can be reached without its login: listener")
        );
        for check in [
            "tenant.registered",
            "domain.allowed",
            "domain.free",
            "target.granted",
            "tenant.quota",
            "target.exists",
            "listener.https",
            "target.healthy",
            "listener.rules",
            "listener.certificates",
        ] {
            assert_eq!(status_of(&report, check), Some("pass"), "{check}: {report}");
        }
        assert_eq!(status_of(&report, "email.sending"), Some("warn"), "{report}");
        assert!(apps.all().is_empty(), "a preflight creates nothing");
    }

    #[tokio::test]
    async fn a_target_not_granted_is_refused_in_post_apps_words_and_never_looked_at() {
        let (report, _) =
            preflight("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/theirs/9", None).await;
        assert_eq!(report["ok"], false);
        assert_eq!(status_of(&report, "target.granted"), Some("fail"));
        for probe in ["target.exists", "listener.https", "target.healthy", "exposure"] {
            assert_eq!(status_of(&report, probe), None, "{probe} must not be checked: {report}");
        }
        let detail =
            report["checks"].as_array().unwrap().iter().find(|c| c["check"] == "target.granted").unwrap()["detail"]
                .clone();
        assert!(detail.as_str().unwrap().contains("is not one granted to tenant t"), "{detail}");
    }

    #[tokio::test]
    async fn an_alias_record_without_a_hosted_zone_fails_as_post_apps_refuses_it() {
        let body = json!({"name": "Grafana", "domain": "grafana.example.com", "dnsAlias": true,
            "target": {"type": "alb", "listenerArn": fakes::LISTENER, "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/theirs/9"}});
        let (report, _) = preflight_of(body, None).await;
        assert_eq!(status_of(&report, "dns.alias"), Some("fail"), "{report}");
        let (report, _) =
            preflight("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/theirs/9", None).await;
        assert_eq!(status_of(&report, "dns.alias"), None, "checked only when asked for: {report}");
    }
}
