//! The task steps, over the ports. Read top-down, each reads like its ASL state.

use std::collections::BTreeSet;
use std::sync::Arc;

use time::OffsetDateTime;
use tracing::Instrument;

use super::drift::{client_spec, protect_rule};
use super::{
    AppRef, CaughtError, Execution, FailureName, FailureReport, PollingInput, RunEnded, StepFailure, StepInput,
    StepOutput,
};
use crate::domain::{
    App, AppError, AppEvent, AppStatus, AuditAction, CertificateProgress, Closure, DnsRecord, EmailSending, Exposure,
    HostedZone, LoadBalancerView, MAX_CERTIFICATES_PER_LISTENER, MAX_RULES_PER_LISTENER, Placement, Poll, ProtectedApp,
    RecordState, Resources, Step, TEMPORARY_PASSWORD_VALIDITY_DAYS, Target, Tenant, WORKFLOW_ACTOR, ZoneRecord,
    certificate_token, client_name, closures, exposed, exposures, invitation_message, left_open, lowest_free_priority,
    not_registered, placement, pool_domain_prefix, pool_name, zone_covers, zone_problem,
};
use crate::endpoint::{beanstalk_endpoint, listener_problem, no_environment};
use crate::error::{Chain, Error};
use crate::ports::{
    AppRepository, CertificateAuthority, CreatedPool, DnsZone, Environments, FoundPool, History, InvitationRecords,
    ListenerRule, LoadBalancer, PoolSpec, PriorityReservations, RecordClaim, RecordClaims, Removal, Subject,
    TenantRegistry, UserPools,
};

pub(super) type StepResult<T = StepOutput> = Result<T, StepFailure>;

/// Runs the workflow's task steps.
pub struct Provisioner {
    pub apps: Arc<dyn AppRepository>,
    pub history: Arc<dyn History>,
    pub priorities: Arc<dyn PriorityReservations>,
    pub tenants: Arc<dyn TenantRegistry>,
    pub certificates: Arc<dyn CertificateAuthority>,
    pub load_balancer: Arc<dyn LoadBalancer>,
    pub environments: Arc<dyn Environments>,
    pub user_pools: Arc<dyn UserPools>,
    /// The tenants' hosted zones, and which apps rely on the records Portcullis wrote in them.
    pub dns: Arc<dyn DnsZone>,
    pub record_claims: Arc<dyn RecordClaims>,
    /// Who was invited to each app: forgotten with the app's pool.
    pub invitations: Arc<dyn InvitationRecords>,
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

impl Provisioner {
    /// Runs the task the input names, in a span naming the step, app and execution, and logs a failure
    /// once, with its cause chain.
    pub async fn run(&self, input: StepInput) -> StepResult {
        let app = input.app();
        let span = tracing::info_span!(
            "step",
            step = input.name().as_str(),
            tenant = %app.tenant_id,
            app_id = %app.app_id,
            execution = app.execution.as_deref().unwrap_or("-"),
        );
        async {
            let result = self.dispatch(input).await;
            match &result {
                Ok(_) => tracing::info!("step done"),
                Err(failure) if failure.name == FailureName::Retryable => {
                    tracing::warn!(error = %Chain(failure), "step failed; the state machine retries it")
                }
                Err(failure) => tracing::error!(error = %Chain(failure), "step failed"),
            }
            result
        }
        .instrument(span)
        .await
    }

    /// A run that ended FAILED, TIMED_OUT or ABORTED. One whose failure a Catch handled has already
    /// marked its app; one that ended where no Catch could see it (a timeout of the whole run, the
    /// history limit, a stop by hand) left the app PROVISIONING, or DELETING under this deletion: undo
    /// what provisioning made, as its Catch would have, and mark the app FAILED. Anything else is done.
    pub async fn run_ended(&self, ended: RunEnded) -> StepResult {
        let app_ref = ended.app().map_err(|e| {
            StepFailure::new(FailureName::InvalidStepRequest, format!("the ended run's input names no app: {e}"))
        })?;
        let span = tracing::info_span!("run-ended", status = %ended.status, tenant = %app_ref.tenant_id,
            app_id = %app_ref.app_id, execution = %ended.name);
        async {
            let Some(mut app) = self.apps.get(&app_ref.tenant_id, &app_ref.app_id).await? else {
                return Ok(StepOutput::Done);
            };
            if app.settings_change.as_ref().is_some_and(|change| change.execution == ended.name) {
                tracing::warn!("the settings run ended outside its error handling; the change is dropped");
                let report = FailureReport { app: app_ref.clone(), error: Some(ended.caught()), teardown: None };
                return self.settings_failed(&mut app, &report).await;
            }
            let provisioning = Execution::is_provisioning(&ended.name, &app);
            let stranded = if provisioning {
                app.status == AppStatus::Provisioning
            } else {
                app.status == AppStatus::Deleting && Execution::is_current_deletion(&ended.name, &app)
            };
            if !stranded {
                tracing::info!(app_status = app.status.as_str(), "the run's end was already handled");
                return Ok(StepOutput::Done);
            }
            tracing::warn!("the run ended outside its error handling; the app is marked FAILED");
            let mut teardown = None;
            if provisioning && let Err(failure) = self.teardown(&mut app).await {
                teardown = Some(serde_json::json!({"Error": failure.name.as_str(), "Cause": failure.message}));
                app = self.load_ref(&app_ref).await?;
            }
            let report = FailureReport { app: app_ref.clone(), error: Some(ended.caught()), teardown };
            self.mark_failed(&mut app, &report).await
        }
        .instrument(span)
        .await
    }

    async fn dispatch(&self, input: StepInput) -> StepResult {
        let mut app = self.load(&input).await?;
        if input.name().provisions() && app.status != AppStatus::Provisioning {
            // A retried Activate whose write landed: done. Anything else was deleted (or cancelled)
            // while provisioning ran: make nothing more.
            if matches!(input, StepInput::Activate(_)) && app.status == AppStatus::Active {
                return Ok(StepOutput::Done);
            }
            return Err(StepFailure::new(
                FailureName::Cancelled,
                format!(
                    "app {} is {}, no longer provisioning; nothing more is made for it",
                    app.id,
                    app.status.as_str()
                ),
            ));
        }
        match input {
            StepInput::RequestCertificate(_) => self.request_certificate(&mut app).await,
            StepInput::PublishValidationRecord(_) => self.publish_validation_record(&mut app).await,
            StepInput::CheckCertificate(PollingInput { poll, .. }) => self.check_certificate(&mut app, poll).await,
            StepInput::CheckEnvironment(PollingInput { poll, .. }) => self.check_environment(&mut app, poll).await,
            StepInput::CreateAuth(_) => self.create_auth(&mut app).await,
            StepInput::WireListener(_) => self.wire_listener(&mut app).await,
            StepInput::VerifyProtection(_) => self.verify_protection(&mut app).await,
            StepInput::PublishDnsAlias(_) => self.publish_dns_alias(&mut app).await,
            StepInput::Activate(_) => self.activate(&mut app).await,
            StepInput::Teardown(_) => self.teardown(&mut app).await,
            StepInput::MarkFailed(report) => self.mark_failed(&mut app, &report).await,
            StepInput::MarkDeleted(_) => self.mark_deleted(&mut app).await,
            StepInput::ApplySettings(_) => self.apply_settings(&mut app).await,
            StepInput::SettingsFailed(report) => self.settings_failed(&mut app, &report).await,
        }
    }

    async fn load(&self, input: &StepInput) -> StepResult<App> {
        self.load_ref(input.app()).await
    }

    async fn load_ref(&self, app: &AppRef) -> StepResult<App> {
        self.apps.get(&app.tenant_id, &app.app_id).await?.ok_or_else(|| {
            StepFailure::new(
                FailureName::AppNotFound,
                format!("app {} of tenant {} is gone", app.app_id, app.tenant_id),
            )
        })
    }

    pub(super) async fn record(&self, app: &App, action: AuditAction, detail: impl Into<String>) -> StepResult<()> {
        self.record_by(app, WORKFLOW_ACTOR, action, detail).await
    }

    /// Records an event of the app as done by `actor` (who asked for what the workflow did).
    pub(super) async fn record_by(
        &self,
        app: &App,
        actor: &str,
        action: AuditAction,
        detail: impl Into<String>,
    ) -> StepResult<()> {
        Ok(self.history.append(Subject::App(&app.id), &AppEvent::now(actor, action, detail)).await?)
    }

    /// RequestCertificate: ask for a DNS-validated certificate (idempotent on the app id) and show its
    /// validation record. One tagged with the app id but not recorded (the answer was lost) is adopted.
    async fn request_certificate(&self, app: &mut App) -> StepResult {
        if app.resources.certificate_arn.is_none() {
            let arn = match self.certificates.find(&app.domain, &app.id).await?.into_iter().next() {
                Some(found) => found,
                None => self.certificates.request(&app.domain, &certificate_token(&app.id), &app.id).await?,
            };
            app.resources.certificate_arn = Some(arn.clone());
            self.apps.update(app).await?;
            self.record(app, AuditAction::CertificateRequested, arn).await?;
        }
        let state = self.certificates.describe(app.resources.certificate()?).await?;
        app.resources.certificate_status = Some(state.status);
        app.resources.validation_record = state.validation_record.or(app.resources.validation_record.take());
        app.step = Some(Step::DnsValidation);
        self.apps.update(app).await?;
        Ok(StepOutput::Done)
    }

    /// PublishValidationRecord: when the tenant has a hosted zone, put the certificate's validation record
    /// in it, so that the certificate is issued without a human; without one, the record stays on show for
    /// a human to add.
    async fn publish_validation_record(&self, app: &mut App) -> StepResult {
        if let Some(placed) = app.resources.validation_dns.clone() {
            return self.finish_placing(app, placed, RecordSlot::Validation).await;
        }
        let Some(tenant) = self.tenants.get(&app.tenant_id).await? else {
            // WireListener refuses an app of an unregistered tenant; nothing to publish meanwhile.
            return Ok(StepOutput::Done);
        };
        let Some(zone) = self.tenant_zone(&tenant, app).await? else { return Ok(StepOutput::Done) };
        let record = self.validation_record(app).await?;
        self.place(app, &zone, record, RecordSlot::Validation).await
    }

    /// The certificate's validation record, as it goes into the zone. The certificate authority fills it
    /// in a few seconds after the request: until then the step fails with `ValidationRecordPending`, which
    /// the state machine retries.
    async fn validation_record(&self, app: &mut App) -> StepResult<DnsRecord> {
        if app.resources.validation_record.is_none() {
            let state = self.certificates.describe(app.resources.certificate()?).await?;
            if state.validation_record.is_some() {
                app.resources.certificate_status = Some(state.status);
                app.resources.validation_record = state.validation_record;
                self.apps.update(app).await?;
            }
        }
        let Some(given) = app.resources.validation_record.as_ref() else {
            return Err(StepFailure::new(
                FailureName::ValidationRecordPending,
                format!("the validation record of the certificate for {} is not given yet", app.domain),
            ));
        };
        let record = DnsRecord::validation(given).ok_or_else(|| {
            StepFailure::new(
                FailureName::AwsError,
                format!("the certificate's validation record is a {} record, not a CNAME", given.record_type),
            )
        })?;
        // Only names under the app's own domain are written, whatever the answer says.
        if !zone_covers(&app.domain, &record.name) {
            return Err(StepFailure::new(
                FailureName::AwsError,
                format!("the certificate's validation record {} is not under {}", record.name, app.domain),
            ));
        }
        Ok(record)
    }

    /// The tenant's hosted zone, if a platform operator gave it one, once it is known to take the app's
    /// records: it exists, is public, and covers the app's domain (`HostedZoneMismatch` otherwise).
    async fn tenant_zone(&self, tenant: &Tenant, app: &App) -> StepResult<Option<HostedZone>> {
        let Some(zone_id) = tenant.hosted_zone() else { return Ok(None) };
        let zone = self.dns.zone(zone_id).await?;
        match zone_problem(&tenant.id, zone_id, zone.as_ref(), &app.domain) {
            Some(why) => Err(StepFailure::new(FailureName::HostedZoneMismatch, why)),
            None => Ok(zone),
        }
    }

    /// Places a record in the zone: refuses if another record holds its name, leaves the same record made
    /// by someone else where it is (and never removes it), and otherwise records it, then writes it.
    async fn place(&self, app: &mut App, zone: &HostedZone, wanted: DnsRecord, slot: RecordSlot) -> StepResult {
        let found = self.dns.records_at(&zone.id, &wanted.name).await?;
        let relied_on = !self.others_relying_on(&zone.id, &wanted.name, app).await?.is_empty();
        let state = match placement(&wanted, zone, &found, relied_on) {
            Placement::Conflict(why) => return Err(StepFailure::new(FailureName::DnsRecordConflict, why)),
            Placement::AlreadyThere => RecordState::Found,
            Placement::Write => RecordState::Writing,
        };
        let placed = ZoneRecord { zone_id: zone.id.clone(), record: wanted, state };
        *slot.of_mut(&mut app.resources) = Some(placed.clone());
        self.apps.update(app).await?;
        if state == RecordState::Found {
            let detail = format!("{placed}: already there, made outside Portcullis; it stays when the app goes");
            self.record(app, slot.published(), detail).await?;
            return Ok(StepOutput::Done);
        }
        self.finish_placing(app, placed, slot).await
    }

    /// Writes a record recorded as `Writing` (again, if a step died after the write) and records it
    /// published. Claimed first, so a teardown anywhere sees that this app relies on it.
    async fn finish_placing(&self, app: &mut App, placed: ZoneRecord, slot: RecordSlot) -> StepResult {
        if placed.state != RecordState::Writing {
            return Ok(StepOutput::Done);
        }
        let claim = RecordClaim { tenant_id: app.tenant_id.clone(), app_id: app.id.clone() };
        self.record_claims.claim(&placed.zone_id, &placed.record.name, &claim).await?;
        self.dns.upsert(&placed.zone_id, &placed.record, &app.id).await?;
        let published = ZoneRecord { state: RecordState::Published, ..placed };
        *slot.of_mut(&mut app.resources) = Some(published.clone());
        self.apps.update(app).await?;
        self.record(app, slot.published(), published.to_string()).await?;
        Ok(StepOutput::Done)
    }

    /// The other live apps that rely on the record, as the registry says: a claim counts only while its
    /// app exists, is not DELETED and still records the record as its own.
    async fn others_relying_on(&self, zone_id: &str, name: &str, app: &App) -> StepResult<Vec<RecordClaim>> {
        let mut relying = Vec::new();
        for claim in self.record_claims.claims(zone_id, name).await? {
            if claim.app_id == app.id {
                continue;
            }
            let Some(other) = self.apps.get(&claim.tenant_id, &claim.app_id).await? else { continue };
            let records = [&other.resources.validation_dns, &other.resources.alias_dns];
            let holds = records
                .iter()
                .filter_map(|r| r.as_ref())
                .any(|r| r.zone_id == zone_id && r.record.name.eq_ignore_ascii_case(name) && r.state.owned());
            if other.status != AppStatus::Deleted && holds {
                relying.push(claim);
            }
        }
        Ok(relying)
    }

    /// CheckCertificate: one look at the certificate; issued ends the wait loop, a dead end or the
    /// deadline fails the app.
    async fn check_certificate(&self, app: &mut App, poll: Poll) -> StepResult {
        let arn = app.resources.certificate()?.to_string();
        let state = self.certificates.describe(&arn).await.map_err(|e| match e {
            Error::NotFound(_) => StepFailure::new(
                FailureName::CertificateNotIssued,
                format!("certificate {arn} for {} was deleted; it will not be issued", app.domain),
            ),
            other => other.into(),
        })?;
        let progress = state.status.progress();
        if progress == CertificateProgress::DeadEnd {
            return Err(StepFailure::new(
                FailureName::CertificateNotIssued,
                format!("certificate for {} is {}; it will not be issued", app.domain, state.status),
            ));
        }
        let issued = progress == CertificateProgress::Issued;
        let changed = app.resources.certificate_status != Some(state.status)
            || (app.resources.validation_record.is_none() && state.validation_record.is_some());
        if changed {
            app.resources.certificate_status = Some(state.status);
            if state.validation_record.is_some() {
                app.resources.validation_record = state.validation_record;
            }
            if issued {
                app.step = Some(Step::Environment);
            }
            self.apps.update(app).await?;
        }
        let next = poll.after_check(issued, now()).map_err(|late| {
            let record = app
                .resources
                .validation_record
                .as_ref()
                .map(|r| format!("; add the DNS record {} {} {}", r.name, r.record_type, r.value))
                .unwrap_or_default();
            StepFailure::new(
                FailureName::CertificateNotIssued,
                format!("certificate for {} not issued after {} s{record}", app.domain, late.waited_seconds),
            )
        })?;
        if issued {
            self.record(app, AuditAction::CertificateIssued, arn).await?;
        }
        Ok(StepOutput::Poll(next))
    }

    /// CheckEnvironment: one look at the app's environment; healthy ends the wait loop. For Elastic
    /// Beanstalk, a Ready and Green environment's ALB, HTTPS listener and target group are discovered.
    async fn check_environment(&self, app: &mut App, poll: Poll) -> StepResult {
        let (ready, why_not) = match app.target.clone() {
            Target::Alb { listener_arn, target_group_arn } => {
                // The listener does not change while we wait: check it on the first look only.
                if poll.started_at.is_none() {
                    self.require_https_listener(&listener_arn).await?;
                }
                let healthy = self.load_balancer.has_healthy_target(&target_group_arn).await?;
                if healthy {
                    app.resources.listener_arn = Some(listener_arn);
                    app.resources.target_group_arn = Some(target_group_arn.clone());
                }
                (healthy, format!("target group {target_group_arn} has no healthy target"))
            }
            Target::ElasticBeanstalk { environment_name } => {
                let env =
                    self.environments.environment(&environment_name).await?.ok_or_else(|| {
                        StepFailure::new(FailureName::InvalidTarget, no_environment(&environment_name))
                    })?;
                if env.is_ready() {
                    self.discover_beanstalk_listener(app, &environment_name).await?;
                }
                let why_not =
                    format!("environment {environment_name} is {} and {}, not Ready and Green", env.status, env.health);
                (env.is_ready(), why_not)
            }
        };
        let next = poll.after_check(ready, now()).map_err(|late| {
            StepFailure::new(FailureName::EnvironmentNotReady, format!("{why_not} after {} s", late.waited_seconds))
        })?;
        if ready {
            app.step = Some(Step::Auth);
            self.apps.update(app).await?;
            let detail = app.resources.target_group()?.to_string();
            self.record(app, AuditAction::EnvironmentReady, detail).await?;
        } else if app.step != Some(Step::Environment) {
            app.step = Some(Step::Environment);
            self.apps.update(app).await?;
        }
        Ok(StepOutput::Poll(next))
    }

    async fn require_https_listener(&self, listener_arn: &str) -> StepResult<()> {
        let protocol = self.load_balancer.listener_protocol(listener_arn).await?;
        match listener_problem(listener_arn, protocol.as_ref()) {
            Some(why) => Err(StepFailure::new(FailureName::InvalidTarget, why)),
            None => Ok(()),
        }
    }

    async fn discover_beanstalk_listener(&self, app: &mut App, environment_name: &str) -> StepResult<()> {
        let found =
            beanstalk_endpoint(self.environments.as_ref(), self.load_balancer.as_ref(), environment_name).await?;
        app.resources.listener_arn = Some(found.listener_arn);
        app.resources.target_group_arn = Some(found.target_group_arn);
        Ok(())
    }

    /// CreateAuth: the app's own user pool (admins invite; nobody signs up), its OAuth client and its
    /// hosted domain. Each is recorded as soon as it exists; each made before a lost answer is found by the
    /// app id (pool tag and name, client name, domain prefix) and adopted, not made twice.
    async fn create_auth(&self, app: &mut App) -> StepResult {
        app.step = Some(Step::Auth);
        if app.resources.user_pool_id.is_none() {
            self.create_pool(app).await?;
        }
        let pool_id = app.resources.pool()?.id.to_string();
        // Every time: a pool made by an attempt that died before this call is adopted above.
        self.user_pools.set_mfa(&pool_id, app.mfa).await?;
        if app.resources.client_id.is_none() {
            let client_id = match self.user_pools.find_client(&pool_id, &client_name(&app.domain)).await? {
                Some(found) => found,
                None => self.user_pools.create_client(&pool_id, &client_spec(app)).await?,
            };
            app.resources.client_id = Some(client_id);
            self.apps.update(app).await?;
        }
        if app.resources.pool_domain_host.is_none() {
            let prefix = pool_domain_prefix(&app.name, &app.id);
            let host = self.user_pools.create_domain(&pool_id, &prefix).await?;
            app.resources.pool_domain_prefix = Some(prefix);
            app.resources.pool_domain_host = Some(host);
        }
        app.step = Some(Step::Listener);
        self.apps.update(app).await?;
        self.record(app, AuditAction::AuthCreated, pool_id).await?;
        Ok(StepOutput::Done)
    }

    /// The pool, sending invitations through the tenant's SES identity when it has one.
    async fn create_pool(&self, app: &mut App) -> StepResult<()> {
        let spec = self.pool_spec(app).await?;
        let email_sending = if spec.ses.is_some() { EmailSending::Ses } else { EmailSending::CognitoDefault };
        let pool = match self.user_pools.find_pools(&app.id).await?.into_iter().next() {
            Some(found) => CreatedPool { id: found.id, arn: found.arn },
            None => self.user_pools.create_pool(&spec).await?,
        };
        app.resources.email_sending = Some(email_sending);
        app.resources.user_pool_id = Some(pool.id);
        app.resources.user_pool_arn = Some(pool.arn);
        self.apps.update(app).await?;
        Ok(())
    }

    /// How the app's pool is made (and kept, when its settings change): its invitation names the app, and
    /// goes through the tenant's SES identity when it has one.
    pub(super) async fn pool_spec(&self, app: &App) -> StepResult<PoolSpec> {
        let (invitation_subject, invitation_body) = invitation_message(&app.name, &app.url());
        let ses = match self.tenants.get(&app.tenant_id).await?.and_then(|t| t.ses()) {
            Some(ses) => Some(ses),
            None => self.tenants.legacy_ses(&app.tenant_id).await?.map(|c| c.identity()),
        };
        Ok(PoolSpec {
            pool_name: pool_name(&app.name, &app.id),
            app_id: app.id.clone(),
            invitation_subject,
            invitation_body,
            ses,
            temporary_password_days: TEMPORARY_PASSWORD_VALIDITY_DAYS,
        })
    }

    /// WireListener: attach the certificate to the listener, then give the app's host its rule: adopt
    /// the one Portcullis already made, or reserve a free priority and create it.
    async fn wire_listener(&self, app: &mut App) -> StepResult {
        self.require_grant(app).await?;
        let listener = app.resources.listener()?.to_string();
        self.attach_certificate(app, &listener).await?;
        if app.resources.listener_rule_arn.is_some() {
            return Ok(StepOutput::Done);
        }
        let rules = self.load_balancer.rules(&listener).await?;
        if let Some(ours) = self.existing_rule_for_host(app, &listener, &rules).await? {
            app.resources.rule_priority = Some(ours.priority);
            app.resources.listener_rule_arn = Some(ours.arn.clone());
            return self.record_wired(app).await;
        }
        let priority = match app.resources.rule_priority {
            Some(priority) => priority,
            None => self.reserve_priority(app, &listener, &rules).await?,
        };
        self.create_rule(app, &listener, priority).await?;
        self.record_wired(app).await
    }

    /// The listener's rule for the app's host, if there is one, when it is ours: it signs in with this
    /// app's client (we made it before a lost answer). One that carries the app's tag but signs in with
    /// another client was made by an earlier attempt: it is removed, and a right one made. Any other would
    /// route the host around the login, or shadow ours: refuse, and leave it alone.
    async fn existing_rule_for_host<'a>(
        &self,
        app: &App,
        listener: &str,
        rules: &'a [ListenerRule],
    ) -> StepResult<Option<&'a ListenerRule>> {
        let Some(existing) = rules.iter().find(|rule| rule.hosts.contains(&app.domain)) else {
            return Ok(None);
        };
        if existing.cognito_client_id.is_some() && existing.cognito_client_id == app.resources.client_id {
            return Ok(Some(existing));
        }
        if self.load_balancer.app_rules(listener, &app.id).await?.iter().any(|r| r.arn == existing.arn) {
            self.load_balancer.delete_rule(&existing.arn).await?;
            return Ok(None);
        }
        Err(StepFailure::new(
            FailureName::InvalidTarget,
            format!(
                "listener {listener} already has rule {} for {} that Portcullis did not make; \
                 remove it and create the app again",
                existing.arn, app.domain
            ),
        ))
    }

    /// The tenant may still use the app's target: a grant withdrawn during the (long) waits stops the app
    /// before it touches the load balancer.
    async fn require_grant(&self, app: &App) -> StepResult<()> {
        let refused = |why: String| StepFailure::new(FailureName::TargetNotGranted, why);
        let tenant = self
            .tenants
            .get(&app.tenant_id)
            .await?
            .ok_or_else(|| refused(crate::domain::not_registered(&app.tenant_id)))?;
        tenant.check_target(&app.target).map_err(refused)?;
        Ok(())
    }

    /// The app's certificate on the listener (unless there), inside the ALB's certificate quota.
    async fn attach_certificate(&self, app: &mut App, listener: &str) -> StepResult<()> {
        if app.resources.listener_certificate_attached {
            return Ok(());
        }
        let certificate = app.resources.certificate()?;
        let attached = self.load_balancer.listener_certificates(listener).await?;
        if !attached.iter().any(|c| c == certificate) {
            if attached.len() >= MAX_CERTIFICATES_PER_LISTENER {
                return Err(StepFailure::new(
                    FailureName::QuotaExceeded,
                    format!("listener {listener} already has {} certificates, the ALB maximum", attached.len()),
                ));
            }
            self.load_balancer.attach_certificate(listener, certificate).await?;
        }
        app.resources.listener_certificate_attached = true;
        self.apps.update(app).await?;
        Ok(())
    }

    /// The lowest priority free both on the listener and among reservations, reserved atomically.
    async fn reserve_priority(&self, app: &mut App, listener: &str, rules: &[ListenerRule]) -> StepResult<u32> {
        if rules.len() >= MAX_RULES_PER_LISTENER {
            return Err(StepFailure::new(
                FailureName::QuotaExceeded,
                format!("listener {listener} already has {} rules, the ALB maximum", rules.len()),
            ));
        }
        let mut taken: BTreeSet<u32> = rules.iter().map(|rule| rule.priority).collect();
        taken.extend(self.priorities.reserved(listener).await?.into_keys());
        loop {
            let priority = lowest_free_priority(&taken).ok_or_else(|| {
                StepFailure::new(FailureName::QuotaExceeded, format!("listener {listener} has no free rule priority"))
            })?;
            match self.priorities.reserve(listener, priority, &app.id).await {
                Ok(()) => {
                    app.resources.rule_priority = Some(priority);
                    self.apps.update(app).await?;
                    return Ok(priority);
                }
                // Another app reserved it since we read: the next free one, not a failed step (apps wired
                // at once would otherwise all chase the same lowest priority through the state machine).
                Err(Error::PriorityInUse(_)) => {
                    taken.insert(priority);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The host-header rule that signs in with the app's pool and then forwards. A priority that a rule
    /// made outside Portcullis holds is given back, so the state machine's retry picks another.
    async fn create_rule(&self, app: &mut App, listener: &str, priority: u32) -> StepResult<()> {
        let rule = protect_rule(app, listener, priority)?;
        match self.load_balancer.create_rule(&rule).await {
            Ok(rule_arn) => {
                app.resources.listener_rule_arn = Some(rule_arn);
                Ok(())
            }
            Err(taken @ Error::PriorityInUse(_)) => {
                self.priorities.release(listener, priority, &app.id).await?;
                app.resources.rule_priority = None;
                self.apps.update(app).await?;
                Err(taken.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn record_wired(&self, app: &mut App) -> StepResult {
        self.apps.update(app).await?;
        let (rule, priority) = (app.resources.listener_rule_arn.clone(), app.resources.rule_priority);
        let detail = format!("{} (priority {})", rule.unwrap_or_default(), priority.unwrap_or_default());
        self.record(app, AuditAction::ListenerWired, detail).await?;
        Ok(StepOutput::Done)
    }

    /// VerifyProtection: prove, from every listener and rule of the load balancer, that the app's target
    /// group is reachable only through the app's own login. On an Elastic Beanstalk environment's own load
    /// balancer, the default routes that forward to the app are closed first (recorded before, restored on
    /// delete); on a shared one nothing is changed, and any route around the login fails the app.
    async fn verify_protection(&self, app: &mut App) -> StepResult {
        let listener = app.resources.listener()?.to_string();
        let snapshot = self.load_balancer.snapshot(&listener).await?;
        let open = exposures(&snapshot, &protected_app(app)?);
        if open.is_empty() {
            return self.record_protected(app, &snapshot).await;
        }
        let closing = match app.target {
            Target::ElasticBeanstalk { .. } => closures(&snapshot, &protected_app(app)?),
            Target::Alb { .. } => Vec::new(),
        };
        let left = left_open(&open, &closing);
        if !left.is_empty() {
            return Err(target_exposed(&left));
        }
        self.close_routes(app, &closing).await?;
        // Prove the state the load balancer is in now, not the plan.
        let snapshot = self.load_balancer.snapshot(&listener).await?;
        let still_open = exposures(&snapshot, &protected_app(app)?);
        if !still_open.is_empty() {
            return Err(target_exposed(&still_open));
        }
        self.record_protected(app, &snapshot).await
    }

    /// Records each closure with the app before making it, so a teardown restores it even if the step dies
    /// between the two.
    async fn close_routes(&self, app: &mut App, closing: &[Closure]) -> StepResult<()> {
        for closure in closing {
            if !app.resources.closed_routes.iter().any(|c| c.listener_arn == closure.listener_arn) {
                app.resources.closed_routes.push(closure.clone());
            }
        }
        self.apps.update(app).await?;
        for closure in closing {
            self.load_balancer.set_default(&closure.listener_arn, &closure.replacement).await?;
        }
        let detail = closing.iter().map(Closure::to_string).collect::<Vec<_>>().join("; ");
        self.record(app, AuditAction::RoutesClosed, detail).await
    }

    async fn record_protected(&self, app: &App, snapshot: &LoadBalancerView) -> StepResult {
        let rules: usize = snapshot.listeners.iter().map(|l| l.rules.len()).sum();
        let detail = format!(
            "no route around the login: {} listeners and {rules} rules of the load balancer checked",
            snapshot.listeners.len()
        );
        self.record(app, AuditAction::ProtectionVerified, detail).await?;
        Ok(StepOutput::Done)
    }

    /// PublishDnsAlias: for an app that asked for it (`dnsAlias`), point its host name at its load balancer
    /// with an alias record in the tenant's hosted zone; only now, when nothing reaches the app around its
    /// login. For an Elastic Beanstalk environment that is the environment's own load balancer.
    async fn publish_dns_alias(&self, app: &mut App) -> StepResult {
        if !app.dns_alias {
            return Ok(StepOutput::Done);
        }
        if let Some(placed) = app.resources.alias_dns.clone() {
            return self.finish_placing(app, placed, RecordSlot::Alias).await;
        }
        let tenant = self
            .tenants
            .get(&app.tenant_id)
            .await?
            .ok_or_else(|| StepFailure::new(FailureName::TargetNotGranted, not_registered(&app.tenant_id)))?;
        let zone = match self.tenant_zone(&tenant, app).await? {
            Some(zone) => zone,
            None => {
                let why = tenant.check_dns_alias().err().unwrap_or_default();
                return Err(StepFailure::new(FailureName::HostedZoneMismatch, why));
            }
        };
        let listener = app.resources.listener()?.to_string();
        let target = self.load_balancer.alias_target(&listener).await?.ok_or_else(|| {
            StepFailure::new(FailureName::InvalidTarget, format!("listener {listener} does not exist"))
        })?;
        self.place(app, &zone, DnsRecord::alias(&app.domain, target), RecordSlot::Alias).await
    }

    /// Activate: the app is protected.
    async fn activate(&self, app: &mut App) -> StepResult {
        app.status = AppStatus::Active;
        app.step = None;
        app.error = None;
        self.apps.update(app).await?;
        self.record(app, AuditAction::AppActive, app.url()).await?;
        Ok(StepOutput::Done)
    }

    /// Teardown: remove everything recorded, and everything that carries the app's id without having been
    /// recorded (a step that died after a create), newest first. Every removal treats "already gone" as done,
    /// so compensation and deletion can both run it, as often as needed. Only what carries the app's own tag
    /// or name is found: nothing of another app or anyone else.
    async fn teardown(&self, app: &mut App) -> StepResult {
        let r = app.resources.clone();
        let found = self.unrecorded(app).await?;
        // First, so the name stops leading to the load balancer before its login goes.
        if let Some(alias) = &r.alias_dns {
            self.remove_placed(app, alias, RecordSlot::Alias).await?;
        }
        // Newest first: the routes were closed after the rule was made.
        for closure in r.closed_routes.iter().rev() {
            self.load_balancer.set_default(&closure.listener_arn, &closure.original).await?;
        }
        if !r.closed_routes.is_empty() {
            let detail = r.closed_routes.iter().map(restored).collect::<Vec<_>>().join("; ");
            self.record(app, AuditAction::RoutesRestored, detail).await?;
        }
        if let Some(rule) = r.listener_rule_arn.as_deref().filter(|a| !a.is_empty()) {
            self.load_balancer.delete_rule(rule).await?;
        }
        for rule in &found.rules {
            self.load_balancer.delete_rule(rule).await?;
        }
        let certificates: Vec<&str> =
            r.certificate().into_iter().chain(found.certificates.iter().map(String::as_str)).collect();
        if let Ok(listener) = r.listener() {
            // Every reservation this app holds, also one whose recording was lost.
            for (priority, holder) in self.priorities.reserved(listener).await? {
                if holder == app.id {
                    self.priorities.release(listener, priority, &app.id).await?;
                }
            }
            for certificate in &certificates {
                self.load_balancer.detach_certificate(listener, certificate).await?;
            }
        }
        for pool in &found.pools {
            if let Some(prefix) = &pool.domain_prefix {
                self.user_pools.delete_domain(&pool.id, prefix).await?;
            }
            // Its clients go with it.
            self.user_pools.delete_pool(&pool.id).await?;
        }
        if let Some(pool) = r.user_pool_id.as_deref().filter(|p| !p.is_empty()) {
            if let Ok(prefix) = r.pool_domain() {
                self.user_pools.delete_domain(pool, prefix).await?;
            }
            if let Ok(client) = r.client() {
                self.user_pools.delete_client(pool, client).await?;
            }
            self.user_pools.delete_pool(pool).await?;
        }
        // After the pool: an invitation recorded meanwhile was refused or is already in the table.
        self.invitations.forget_all(&app.id).await?;
        if let Some(validation) = &r.validation_dns {
            self.remove_placed(app, validation, RecordSlot::Validation).await?;
        }
        for certificate in &certificates {
            self.certificates.delete(certificate).await?;
        }
        // What was found (listener, target group) stays; what was made is gone.
        app.resources =
            Resources { listener_arn: r.listener_arn, target_group_arn: r.target_group_arn, ..Default::default() };
        self.apps.update(app).await?;
        let mut detail = "rule, listener certificate, pool, client, domain, certificate".to_string();
        if !found.is_empty() {
            detail.push_str(&format!("; also, found by the app id without a record: {found}"));
        }
        self.record(app, AuditAction::ResourcesRemoved, detail).await?;
        Ok(StepOutput::Done)
    }

    /// What carries the app's id at AWS but is not recorded: made by a step that died before recording it.
    async fn unrecorded(&self, app: &App) -> StepResult<Unrecorded> {
        let r = &app.resources;
        // Rules are made only on a recorded listener; an ALB target's listener is searched before too.
        let listener = match (&app.target, r.listener()) {
            (_, Ok(recorded)) => Some(recorded),
            (Target::Alb { listener_arn, .. }, Err(_)) => Some(listener_arn.as_str()),
            (Target::ElasticBeanstalk { .. }, Err(_)) => None,
        };
        let rules = match listener {
            Some(listener) => self.load_balancer.app_rules(listener, &app.id).await?,
            None => Vec::new(),
        };
        let certificates = self.certificates.find(&app.domain, &app.id).await?;
        let pools = self.user_pools.find_pools(&app.id).await?;
        Ok(Unrecorded {
            rules: rules
                .into_iter()
                .map(|rule| rule.arn)
                .filter(|arn| r.listener_rule_arn.as_ref() != Some(arn))
                .collect(),
            certificates: certificates.into_iter().filter(|arn| r.certificate_arn.as_ref() != Some(arn)).collect(),
            pools: pools.into_iter().filter(|pool| r.user_pool_id.as_ref() != Some(&pool.id)).collect(),
        })
    }

    /// Removes a record the app placed, exactly as recorded, unless someone else made it or another live
    /// app relies on it; then forgets it (so a retried teardown does not ask again) and says what became
    /// of it.
    async fn remove_placed(&self, app: &mut App, placed: &ZoneRecord, slot: RecordSlot) -> StepResult<()> {
        let outcome = self.removal(app, placed).await?;
        *slot.of_mut(&mut app.resources) = None;
        self.apps.update(app).await?;
        self.record(app, AuditAction::DnsRecordsRemoved, format!("{placed} {outcome}")).await
    }

    async fn removal(&self, app: &App, placed: &ZoneRecord) -> StepResult<&'static str> {
        if !placed.state.owned() {
            return Ok("left in place: it was there before Portcullis");
        }
        let (zone, name) = (&placed.zone_id, &placed.record.name);
        self.record_claims.release(zone, name, &app.id).await?;
        if let Some(other) = self.others_relying_on(zone, name, app).await?.first() {
            tracing::info!(record = %placed, other_app = %other.app_id, "record kept: another app relies on it");
            return Ok("kept: another app relies on it");
        }
        Ok(match self.dns.delete(zone, &placed.record, &app.id).await? {
            Removal::Deleted => "removed",
            Removal::AlreadyGone => "was already gone",
            Removal::Changed => "left alone: it was changed since Portcullis wrote it",
        })
    }

    /// MarkFailed: record why and where; the domain stays claimed until the app is deleted. If the
    /// compensation failed too, the app keeps its list of resources, so a delete can finish the job. An app
    /// deleted meanwhile belongs to its deletion, which ends it DELETED.
    async fn mark_failed(&self, app: &mut App, report: &FailureReport) -> StepResult {
        let from_provisioning = report.app.execution.as_deref().is_some_and(|e| Execution::is_provisioning(e, app));
        if from_provisioning && matches!(app.status, AppStatus::Deleting | AppStatus::Deleted) {
            return Ok(StepOutput::Done);
        }
        let (code, mut message) = report
            .error
            .as_ref()
            .map(|c: &CaughtError| (c.error.clone(), c.message()))
            .unwrap_or_else(|| ("Unknown".into(), "the workflow failed without an error".into()));
        if let Some(t) = report.teardown_error() {
            message.push_str(&format!(
                "; cleanup is incomplete ({}: {}): delete the app to finish it",
                t.error,
                t.message()
            ));
        }
        let step = app.step.unwrap_or(Step::Teardown);
        app.error = Some(AppError { step, code: code.clone(), message: message.clone() });
        app.status = AppStatus::Failed;
        app.step = None;
        self.apps.update(app).await?;
        self.record(app, AuditAction::AppFailed, format!("{code} at {}: {message}", step.as_str())).await?;
        Ok(StepOutput::Done)
    }

    /// MarkDeleted: the app is gone and its domain free for a new app.
    /// A settings change still pending is dropped: the pool and rule it was for are gone, and its
    /// requester learns so from the history.
    async fn mark_deleted(&self, app: &mut App) -> StepResult {
        app.status = AppStatus::Deleted;
        app.step = None;
        let dropped = app.settings_change.take();
        self.apps.update(app).await?;
        self.apps.release_domain(&app.domain, &app.id).await?;
        if let Some(change) = dropped {
            let detail =
                format!("{} could not be applied: the app was deleted", change.settings.changes_from(&app.settings()));
            self.record_by(app, &change.requested_by, AuditAction::AppUpdateFailed, detail).await?;
        }
        self.record(app, AuditAction::AppDeleted, app.domain.clone()).await?;
        Ok(StepOutput::Done)
    }
}

/// The app as the exposure analysis proves it: its host, target group, login and rule.
fn protected_app(app: &App) -> StepResult<ProtectedApp<'_>> {
    let r = &app.resources;
    Ok(ProtectedApp {
        host: &app.domain,
        target_group_arn: r.target_group()?,
        client_id: r.client()?,
        listener_arn: r.listener()?,
        rule: Some(r.rule()?),
    })
}

fn target_exposed(open: &[Exposure]) -> StepFailure {
    StepFailure::new(FailureName::TargetExposed, exposed(open))
}

fn restored(closure: &Closure) -> String {
    format!("listener {} (port {}): default {} again", closure.listener_arn, closure.port, closure.original)
}

/// What a teardown found carrying the app's id that the app did not record.
struct Unrecorded {
    rules: Vec<String>,
    certificates: Vec<String>,
    pools: Vec<FoundPool>,
}

impl Unrecorded {
    fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.certificates.is_empty() && self.pools.is_empty()
    }
}

impl std::fmt::Display for Unrecorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pools = self.pools.iter().map(|p| p.id.as_str());
        let all: Vec<&str> = self.rules.iter().chain(&self.certificates).map(String::as_str).chain(pools).collect();
        f.write_str(&all.join(", "))
    }
}

/// Where an app records each kind of record it places in a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecordSlot {
    /// The certificate's validation record.
    Validation,
    /// The app's host name aliased to its load balancer.
    Alias,
}

impl RecordSlot {
    fn of_mut(self, resources: &mut Resources) -> &mut Option<ZoneRecord> {
        match self {
            RecordSlot::Validation => &mut resources.validation_dns,
            RecordSlot::Alias => &mut resources.alias_dns,
        }
    }

    fn published(self) -> AuditAction {
        match self {
            RecordSlot::Validation => AuditAction::DnsValidationPublished,
            RecordSlot::Alias => AuditAction::DnsAliasPublished,
        }
    }
}
