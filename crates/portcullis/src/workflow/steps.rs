//! The task steps, over the ports. Read top-down, each reads like its ASL state.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::error_names::{CERTIFICATE_NOT_ISSUED, ENVIRONMENT_NOT_READY, INVALID_TARGET, QUOTA_EXCEEDED};
use super::{CaughtError, StepError, StepName, StepRequest};
use crate::domain::{
    App, AppError, AppEvent, AppStatus, CertificateProgress, EmailSending, MAX_CERTIFICATES_PER_LISTENER,
    MAX_RULES_PER_LISTENER, Poll, Step, Target, WORKFLOW_ACTOR, invitation_message, lowest_free_priority,
    pool_domain_prefix,
};
use crate::error::Error;
use crate::ports::{
    AppStore, CertificateAuthority, ClientSpec, Environments, ListenerRule, LoadBalancer, PoolSpec, ProtectRule,
    UserPools,
};

type StepResult<T = Value> = Result<T, StepError>;

/// Runs the workflow's task steps.
pub struct Provisioner {
    pub store: Arc<dyn AppStore>,
    pub certificates: Arc<dyn CertificateAuthority>,
    pub load_balancer: Arc<dyn LoadBalancer>,
    pub environments: Arc<dyn Environments>,
    pub user_pools: Arc<dyn UserPools>,
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn poll_output(poll: Poll) -> StepResult {
    serde_json::to_value(poll).map_err(|e| StepError::from(Error::Upstream(e.to_string())))
}

impl Provisioner {
    /// Runs the step the request names and returns what the state machine keeps of it.
    pub async fn run(&self, request: StepRequest) -> StepResult {
        let mut app = self.store.get(&request.tenant_id, &request.app_id).await?.ok_or_else(|| {
            Error::NotFound(format!("app {} of tenant {} is gone", request.app_id, request.tenant_id))
        })?;
        let poll = || request.poll.ok_or_else(|| StepError::from(Error::Invalid("this step needs 'poll'".into())));
        match request.step {
            StepName::RequestCertificate => self.request_certificate(&mut app).await,
            StepName::CheckCertificate => self.check_certificate(&mut app, poll()?).await,
            StepName::CheckEnvironment => self.check_environment(&mut app, poll()?).await,
            StepName::CreateAuth => self.create_auth(&mut app).await,
            StepName::WireListener => self.wire_listener(&mut app).await,
            StepName::Activate => self.activate(&mut app).await,
            StepName::Teardown => self.teardown(&mut app).await,
            StepName::MarkFailed => {
                self.mark_failed(&mut app, request.error.as_ref(), request.teardown_error().as_ref()).await
            }
            StepName::MarkDeleted => self.mark_deleted(&mut app).await,
        }
    }

    async fn record(&self, app: &App, action: &str, detail: String) -> StepResult<()> {
        let event =
            AppEvent { at: OffsetDateTime::now_utc(), actor: WORKFLOW_ACTOR.into(), action: action.into(), detail };
        Ok(self.store.append_event(&app.id, &event).await?)
    }

    /// RequestCertificate: ask ACM for a DNS-validated certificate (idempotent on the app id) and show its
    /// validation record.
    async fn request_certificate(&self, app: &mut App) -> StepResult {
        if app.resources.certificate_arn.is_none() {
            let token = app.id.replace('-', "");
            let arn = self.certificates.request(&app.domain, &token, &app.id).await?;
            app.resources.certificate_arn = Some(arn.clone());
            self.store.update(app).await?;
            self.record(app, "certificate.requested", arn).await?;
        }
        let arn = app.resources.certificate_arn.clone().unwrap_or_default();
        let state = self.certificates.describe(&arn).await?;
        app.resources.certificate_status = Some(state.status);
        app.resources.validation_record = state.validation_record.or(app.resources.validation_record.take());
        app.step = Some(Step::DnsValidation);
        self.store.update(app).await?;
        Ok(json!({}))
    }

    /// CheckCertificate: one look at the certificate; ISSUED ends the wait loop, a dead end or the
    /// deadline fails the app.
    async fn check_certificate(&self, app: &mut App, poll: Poll) -> StepResult {
        let arn = app.resources.certificate_arn.clone().unwrap_or_default();
        let state = self.certificates.describe(&arn).await?;
        let progress = CertificateProgress::of(&state.status);
        if progress == CertificateProgress::DeadEnd {
            return Err(StepError::new(
                CERTIFICATE_NOT_ISSUED,
                format!("certificate for {} is {}; ACM will not issue it", app.domain, state.status),
            ));
        }
        let issued = progress == CertificateProgress::Issued;
        let changed = app.resources.certificate_status.as_deref() != Some(state.status.as_str())
            || (app.resources.validation_record.is_none() && state.validation_record.is_some());
        if changed {
            app.resources.certificate_status = Some(state.status.clone());
            if state.validation_record.is_some() {
                app.resources.validation_record = state.validation_record;
            }
            if issued {
                app.step = Some(Step::Environment);
            }
            self.store.update(app).await?;
        }
        let next = poll.after_check(issued, now()).map_err(|late| {
            let record = app
                .resources
                .validation_record
                .as_ref()
                .map(|r| format!("; add the DNS record {} {} {}", r.name, r.record_type, r.value))
                .unwrap_or_default();
            StepError::new(
                CERTIFICATE_NOT_ISSUED,
                format!("certificate for {} not issued after {} s{record}", app.domain, late.waited_seconds),
            )
        })?;
        if issued {
            self.record(app, "certificate.issued", arn).await?;
        }
        poll_output(next)
    }

    /// CheckEnvironment: one look at the app's environment; healthy ends the wait loop. For Elastic
    /// Beanstalk, a Ready and Green environment's ALB, HTTPS listener and target group are discovered.
    async fn check_environment(&self, app: &mut App, poll: Poll) -> StepResult {
        let (ready, why_not) = match app.target.clone() {
            Target::Alb { listener_arn, target_group_arn } => {
                // The listener does not change while we wait: check it on the first look only.
                if poll.started_at.is_none() {
                    let protocol = self.load_balancer.listener_protocol(&listener_arn).await?.ok_or_else(|| {
                        StepError::new(INVALID_TARGET, format!("listener {listener_arn} does not exist"))
                    })?;
                    if protocol != "HTTPS" {
                        return Err(StepError::new(
                            INVALID_TARGET,
                            format!("listener {listener_arn} is {protocol}, not HTTPS"),
                        ));
                    }
                }
                let healthy = self.load_balancer.has_healthy_target(&target_group_arn).await?;
                if healthy {
                    app.resources.listener_arn = Some(listener_arn);
                    app.resources.target_group_arn = Some(target_group_arn.clone());
                }
                (healthy, format!("target group {target_group_arn} has no healthy target"))
            }
            Target::ElasticBeanstalk { environment_name } => {
                let env = self.environments.environment(&environment_name).await?.ok_or_else(|| {
                    StepError::new(INVALID_TARGET, format!("no Elastic Beanstalk environment '{environment_name}'"))
                })?;
                let ready = env.status == "Ready" && env.health == "Green";
                if ready {
                    self.discover_beanstalk_listener(app, &environment_name).await?;
                }
                (
                    ready,
                    format!("environment {environment_name} is {} and {}, not Ready and Green", env.status, env.health),
                )
            }
        };
        let next = poll.after_check(ready, now()).map_err(|late| {
            StepError::new(ENVIRONMENT_NOT_READY, format!("{why_not} after {} s", late.waited_seconds))
        })?;
        if ready {
            app.step = Some(Step::Auth);
            self.store.update(app).await?;
            let detail = app.resources.target_group_arn.clone().unwrap_or_default();
            self.record(app, "environment.ready", detail).await?;
        } else if app.step != Some(Step::Environment) {
            app.step = Some(Step::Environment);
            self.store.update(app).await?;
        }
        poll_output(next)
    }

    async fn discover_beanstalk_listener(&self, app: &mut App, environment_name: &str) -> StepResult<()> {
        let invalid = |what: &str| StepError::new(INVALID_TARGET, format!("environment {environment_name} {what}"));
        let load_balancer =
            self.environments.load_balancer(environment_name).await?.ok_or_else(|| invalid("has no load balancer"))?;
        let listener = self
            .load_balancer
            .https_listener(&load_balancer)
            .await?
            .ok_or_else(|| invalid("has no HTTPS listener on port 443; add one with a certificate"))?;
        let target_group = self
            .load_balancer
            .default_target_group(&listener, &load_balancer)
            .await?
            .ok_or_else(|| invalid("has no target group"))?;
        app.resources.listener_arn = Some(listener);
        app.resources.target_group_arn = Some(target_group);
        Ok(())
    }

    /// CreateAuth: the app's own user pool (admins invite; nobody signs up), its OAuth client and its
    /// hosted domain. Each is recorded as soon as it exists.
    async fn create_auth(&self, app: &mut App) -> StepResult {
        app.step = Some(Step::Auth);
        if app.resources.user_pool_id.is_none() {
            let (invitation_subject, invitation_body) = invitation_message(&app.name, &app.url());
            let ses = self.store.tenant_settings(&app.tenant_id).await?.ses();
            let email_sending = if ses.is_some() { EmailSending::Ses } else { EmailSending::CognitoDefault };
            let spec = PoolSpec {
                pool_name: format!("portcullis-{}-{}", app.name.replace(' ', "-"), app.id),
                app_id: app.id.clone(),
                invitation_subject,
                invitation_body,
                ses,
            };
            let pool = self.user_pools.create_pool(&spec).await?;
            app.resources.email_sending = Some(email_sending);
            app.resources.user_pool_id = Some(pool.id);
            app.resources.user_pool_arn = Some(pool.arn);
            self.store.update(app).await?;
        }
        let pool_id = app.resources.user_pool_id.clone().unwrap_or_default();
        if app.resources.client_id.is_none() {
            let spec = ClientSpec {
                // Cognito allows 128 characters; a domain may have 253.
                client_name: format!("portcullis-{}", app.domain).chars().take(128).collect(),
                callback_url: app.callback_url(),
                logout_url: app.url(),
            };
            app.resources.client_id = Some(self.user_pools.create_client(&pool_id, &spec).await?);
            self.store.update(app).await?;
        }
        if app.resources.pool_domain_host.is_none() {
            let prefix = pool_domain_prefix(&app.name, &app.id);
            let host = self.user_pools.create_domain(&pool_id, &prefix).await?;
            app.resources.pool_domain_prefix = Some(prefix);
            app.resources.pool_domain_host = Some(host);
        }
        app.step = Some(Step::Listener);
        self.store.update(app).await?;
        self.record(app, "auth.created", pool_id).await?;
        Ok(json!({}))
    }

    /// WireListener: attach the certificate to the listener, reserve a free rule priority, and create the
    /// host-header rule that authenticates with Cognito and then forwards.
    async fn wire_listener(&self, app: &mut App) -> StepResult {
        let r = app.resources.clone();
        let missing = || Error::Upstream("wiring needs the listener, target group, certificate and pool".into());
        let listener = r.listener_arn.clone().ok_or_else(missing)?;
        let certificate = r.certificate_arn.clone().ok_or_else(missing)?;
        if !r.listener_certificate_attached {
            let attached = self.load_balancer.listener_certificates(&listener).await?;
            if !attached.contains(&certificate) {
                if attached.len() >= MAX_CERTIFICATES_PER_LISTENER {
                    return Err(StepError::new(
                        QUOTA_EXCEEDED,
                        format!("listener {listener} already has {} certificates, the ALB maximum", attached.len()),
                    ));
                }
                self.load_balancer.attach_certificate(&listener, &certificate).await?;
            }
            app.resources.listener_certificate_attached = true;
            self.store.update(app).await?;
        }
        if app.resources.listener_rule_arn.is_some() {
            return Ok(json!({}));
        }
        let rules = self.load_balancer.rules(&listener).await?;
        if let Some(existing) = rules.iter().find(|rule| rule.hosts.contains(&app.domain)) {
            // Ours only if it signs in with this app's client (we made it before a lost write). Anything
            // else would route the host around the login, or shadow ours: refuse, and leave it alone.
            if existing.cognito_client_id != r.client_id {
                return Err(StepError::new(
                    INVALID_TARGET,
                    format!(
                        "listener {listener} already has rule {} for {} that Portcullis did not make; \
                         remove it and create the app again",
                        existing.arn, app.domain
                    ),
                ));
            }
            app.resources.rule_priority = Some(existing.priority);
            app.resources.listener_rule_arn = Some(existing.arn.clone());
            self.store.update(app).await?;
            self.record(app, "listener.wired", format!("{} (priority {})", existing.arn, existing.priority)).await?;
            return Ok(json!({}));
        }
        let priority = match app.resources.rule_priority {
            Some(priority) => priority,
            None => self.reserve_priority(app, &listener, &rules).await?,
        };
        let rule = ProtectRule {
            listener_arn: listener.clone(),
            priority,
            host: app.domain.clone(),
            user_pool_arn: r.user_pool_arn.ok_or_else(missing)?,
            client_id: r.client_id.ok_or_else(missing)?,
            pool_domain_prefix: r.pool_domain_prefix.ok_or_else(missing)?,
            session_timeout_seconds: app.session_timeout_seconds,
            target_group_arn: r.target_group_arn.ok_or_else(missing)?,
        };
        match self.load_balancer.create_rule(&rule).await {
            Ok(rule_arn) => {
                app.resources.listener_rule_arn = Some(rule_arn.clone());
                self.store.update(app).await?;
                self.record(app, "listener.wired", format!("{rule_arn} (priority {priority})")).await?;
                Ok(json!({}))
            }
            Err(Error::PriorityInUse(message)) => {
                // A rule made outside Portcullis holds it: give it up so the retry picks another.
                self.store.release_priority(&listener, priority, &app.id).await?;
                app.resources.rule_priority = None;
                self.store.update(app).await?;
                Err(Error::PriorityInUse(message).into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The lowest priority free both on the listener and among reservations, reserved atomically.
    async fn reserve_priority(&self, app: &mut App, listener: &str, rules: &[ListenerRule]) -> StepResult<u32> {
        if rules.len() >= MAX_RULES_PER_LISTENER {
            return Err(StepError::new(
                QUOTA_EXCEEDED,
                format!("listener {listener} already has {} rules, the ALB maximum", rules.len()),
            ));
        }
        let mut taken: BTreeSet<u32> = rules.iter().map(|rule| rule.priority).collect();
        taken.extend(self.store.reserved_priorities(listener).await?.into_keys());
        let priority = lowest_free_priority(&taken)
            .ok_or_else(|| StepError::new(QUOTA_EXCEEDED, format!("listener {listener} has no free rule priority")))?;
        self.store.reserve_priority(listener, priority, &app.id).await?;
        app.resources.rule_priority = Some(priority);
        self.store.update(app).await?;
        Ok(priority)
    }

    /// Activate: the app is protected.
    async fn activate(&self, app: &mut App) -> StepResult {
        app.status = AppStatus::Active;
        app.step = None;
        app.error = None;
        self.store.update(app).await?;
        self.record(app, "app.active", app.url()).await?;
        Ok(json!({}))
    }

    /// Teardown: remove everything recorded, newest first. Every removal treats "already gone" as done,
    /// so compensation and deletion can both run it, as often as needed.
    async fn teardown(&self, app: &mut App) -> StepResult {
        let r = app.resources.clone();
        if let Some(rule) = &r.listener_rule_arn {
            self.load_balancer.delete_rule(rule).await?;
        }
        if let Some(listener) = &r.listener_arn {
            // Every reservation this app holds, also one whose recording was lost.
            for (priority, holder) in self.store.reserved_priorities(listener).await? {
                if holder == app.id {
                    self.store.release_priority(listener, priority, &app.id).await?;
                }
            }
        }
        if let (Some(listener), Some(certificate)) = (&r.listener_arn, &r.certificate_arn) {
            self.load_balancer.detach_certificate(listener, certificate).await?;
        }
        if let Some(pool) = &r.user_pool_id {
            if let Some(prefix) = &r.pool_domain_prefix {
                self.user_pools.delete_domain(pool, prefix).await?;
            }
            if let Some(client) = &r.client_id {
                self.user_pools.delete_client(pool, client).await?;
            }
            self.user_pools.delete_pool(pool).await?;
        }
        if let Some(certificate) = &r.certificate_arn {
            self.certificates.delete(certificate).await?;
        }
        // What was found (listener, target group) stays; what was made is gone.
        app.resources = crate::domain::Resources {
            listener_arn: r.listener_arn,
            target_group_arn: r.target_group_arn,
            ..Default::default()
        };
        self.store.update(app).await?;
        self.record(app, "resources.removed", "rule, listener certificate, pool, client, domain, certificate".into())
            .await?;
        Ok(json!({}))
    }

    /// MarkFailed: record why and where; the domain stays claimed until the app is deleted. If the
    /// compensation failed too, the app keeps its list of resources, so a delete can finish the job.
    async fn mark_failed(
        &self,
        app: &mut App,
        caught: Option<&CaughtError>,
        teardown_failed: Option<&CaughtError>,
    ) -> StepResult {
        let (code, mut message) = caught
            .map(|c| (c.error.clone(), c.message()))
            .unwrap_or_else(|| ("Unknown".into(), "the workflow failed without an error".into()));
        if let Some(t) = teardown_failed {
            message.push_str(&format!(
                "; cleanup is incomplete ({}: {}): delete the app to finish it",
                t.error,
                t.message()
            ));
        }
        let step = app.step.unwrap_or(Step::Teardown);
        app.error = Some(AppError { step: step.as_str().into(), code: code.clone(), message: message.clone() });
        app.status = AppStatus::Failed;
        app.step = None;
        self.store.update(app).await?;
        self.record(app, "app.failed", format!("{} at {}: {message}", code, step.as_str())).await?;
        Ok(json!({}))
    }

    /// MarkDeleted: the app is gone and its domain free for a new app.
    async fn mark_deleted(&self, app: &mut App) -> StepResult {
        app.status = AppStatus::Deleted;
        app.step = None;
        self.store.update(app).await?;
        self.store.release_domain(&app.domain, &app.id).await?;
        self.record(app, "app.deleted", app.domain.clone()).await?;
        Ok(json!({}))
    }
}
