//! The drift check and repair over the ports: look again at an ACTIVE app's resources, record its
//! `health` (and a history event when it changes), and put back what Portcullis owns. The scheduled check
//! runs in the provisioner (`lambda::run_event`, event `{"checkDrift": {…}}`); repair runs in apps-api
//! (`POST /apps/{id}/repair`), synchronously, each AWS call retried like the API's other calls.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Deserialize;
use time::OffsetDateTime;

use crate::domain::{
    App, AppEvent, AppStatus, AuditAction, FindingCode, Health, Observed, WORKFLOW_ACTOR, client_name, findings,
};
use crate::error::{Chain, Error, Result};
use crate::ports::{
    AppRepository, CertificateAuthority, ClientSpec, History, LoadBalancer, LoginInspection, ProtectRule,
    RuleInspection, Subject, TenantRegistry, UserPools,
};
use crate::retry::Backoff;

use super::every_active_app;

/// The scheduled check's event (the template's `DriftCheckSchedule` input): `{"checkDrift": {"limit": 50}}`.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct CheckDrift {
    /// At most this many apps per run, the longest unchecked first: bounded work, whatever the fleet.
    #[serde(default = "CheckDrift::default_limit")]
    pub limit: usize,
}

impl CheckDrift {
    fn default_limit() -> usize {
        50
    }
}

/// What a scheduled run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftRun {
    pub checked: usize,
    pub drifted: usize,
    /// Apps whose check failed this time (logged); the next run looks again.
    pub failed: usize,
}

/// Looks at ACTIVE apps again, and repairs them.
pub struct DriftCheck {
    pub apps: Arc<dyn AppRepository>,
    pub history: Arc<dyn History>,
    pub tenants: Arc<dyn TenantRegistry>,
    pub certificates: Arc<dyn CertificateAuthority>,
    pub load_balancer: Arc<dyn LoadBalancer>,
    pub rules: Arc<dyn RuleInspection>,
    pub logins: Arc<dyn LoginInspection>,
    pub user_pools: Arc<dyn UserPools>,
}

impl DriftCheck {
    /// The scheduled run: every ACTIVE app of every tenant is a candidate; at most `limit` are checked,
    /// never checked or checked longest ago first. One app's failure does not stop the others.
    pub async fn run(&self, request: CheckDrift) -> Result<DriftRun> {
        let mut candidates = every_active_app(self.tenants.as_ref(), self.apps.as_ref()).await?;
        candidates.sort_by_key(|app| app.health.as_ref().map(|h| h.checked_at));
        let mut run = DriftRun::default();
        for mut app in candidates.into_iter().take(request.limit) {
            match self.check(&mut app, WORKFLOW_ACTOR).await {
                Ok(health) => {
                    run.checked += 1;
                    run.drifted += usize::from(!health.findings.is_empty());
                }
                Err(e) => {
                    run.failed += 1;
                    tracing::warn!(app_id = %app.id, tenant = %app.tenant_id, error = %Chain(&e), "drift check failed");
                }
            }
        }
        tracing::info!(checked = run.checked, drifted = run.drifted, failed = run.failed, "drift check done");
        Ok(run)
    }

    /// Looks at the app now and records the result on it; a change of health goes into its history.
    pub async fn check(&self, app: &mut App, actor: &str) -> Result<Health> {
        let observed = self.observe(app).await?;
        let health = Health::of(findings(app, &observed), OffsetDateTime::now_utc());
        let mut changed = health.changed_from(app.health.as_ref());
        app.health = Some(health.clone());
        // Another check or a repair may have written the app since it was read: write onto the newer one.
        let mut attempts = 0;
        while let Err(conflict @ Error::Conflict(_)) = self.apps.update(app).await {
            attempts += 1;
            let newer = self.apps.get(&app.tenant_id, &app.id).await?;
            match newer {
                Some(newer) if attempts < 3 && newer.status == AppStatus::Active => {
                    changed = health.changed_from(newer.health.as_ref());
                    *app = App { health: Some(health.clone()), ..newer };
                }
                _ => return Err(conflict),
            }
        }
        if changed {
            let event = AppEvent::now(actor, AuditAction::AppHealthChanged, health.summary());
            self.history.append(Subject::App(&app.id), &event).await?;
        }
        Ok(health)
    }

    /// What AWS shows now of the app's resources.
    async fn observe(&self, app: &App) -> Result<Observed> {
        let r = &app.resources;
        let listener = r.listener()?;
        let (rule, _) = r.rule()?;
        let pool = r.pool()?;
        let certificate = r.certificate()?;
        let retry = Backoff::default();
        Ok(Observed {
            rule: retry.retry(|| self.rules.rule_settings(listener, rule)).await?,
            certificate_attached: retry
                .retry(|| self.load_balancer.listener_certificates(listener))
                .await?
                .iter()
                .any(|c| c == certificate),
            certificate: match retry.retry(|| self.certificates.describe(certificate)).await {
                Ok(state) => Some(state.status),
                Err(Error::NotFound(_)) => None,
                Err(other) => return Err(other),
            },
            pool_exists: retry.retry(|| self.logins.pool_exists(pool.id)).await?,
            client: retry.retry(|| self.logins.client_settings(pool.id, r.client().unwrap_or_default())).await?,
            domain_pool: retry.retry(|| self.logins.domain_holder(r.pool_domain().unwrap_or_default())).await?,
            load_balancer: retry.retry(|| self.load_balancer.snapshot(listener)).await?,
        })
    }

    /// Puts back what Portcullis owns of an ACTIVE app, then looks again. `Conflict`, changing nothing,
    /// when a finding is not Portcullis's to repair (the detail names each and what to do instead).
    pub async fn repair(&self, app: &mut App, actor: &str) -> Result<Health> {
        if app.status != AppStatus::Active {
            return Err(Error::Conflict(format!(
                "app {} is {}: only an ACTIVE app is repaired",
                app.id,
                app.status.as_str()
            )));
        }
        let health = self.check(app, actor).await?;
        let refused = health.unrepairable();
        if !refused.is_empty() {
            let why = refused.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("; ");
            return Err(Error::Conflict(format!("Portcullis cannot repair this app, so nothing was changed: {why}")));
        }
        let codes: BTreeSet<FindingCode> = health.findings.iter().map(|f| f.code).collect();
        if codes.is_empty() {
            return Ok(health);
        }
        let retry = Backoff::default();
        let pool = app.resources.pool()?.id.to_string();
        let mut rule_stale = codes.contains(&FindingCode::RuleMissing) || codes.contains(&FindingCode::RuleChanged);
        if codes.contains(&FindingCode::ClientMissing) || codes.contains(&FindingCode::ClientChanged) {
            // A changed client is replaced, not edited: the new one is exactly as made, and the rule follows.
            let old = app.resources.client()?.to_string();
            retry.retry(|| self.user_pools.delete_client(&pool, &old)).await?;
            let spec = client_spec(app);
            app.resources.client_id = Some(retry.retry(|| self.user_pools.create_client(&pool, &spec)).await?);
            self.apps.update(app).await?;
            rule_stale = true;
        }
        if codes.contains(&FindingCode::DomainMissing) {
            let prefix = app.resources.pool_domain()?.to_string();
            retry.retry(|| self.user_pools.create_domain(&pool, &prefix)).await?;
        }
        if codes.contains(&FindingCode::CertificateDetached) {
            let (listener, certificate) = (app.resources.listener()?, app.resources.certificate()?);
            retry.retry(|| self.load_balancer.attach_certificate(listener, certificate)).await?;
        }
        if rule_stale {
            self.recreate_rule(app).await?;
        }
        let repaired = codes.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>().join(", ");
        let event = AppEvent::now(actor, AuditAction::AppRepaired, format!("put back: {repaired}"));
        self.history.append(Subject::App(&app.id), &event).await?;
        self.check(app, actor).await
    }

    /// Replaces the app's rule (gone or changed; it carries the app's tag, so it is Portcullis's) with one
    /// exactly as made, at the priority the app still holds.
    async fn recreate_rule(&self, app: &mut App) -> Result<()> {
        let retry = Backoff::default();
        let (old, priority) = app.resources.rule()?;
        let old = old.to_string();
        retry.retry(|| self.load_balancer.delete_rule(&old)).await?;
        let rule = protect_rule(app, app.resources.listener()?, priority)?;
        let arn = match retry.retry(|| self.load_balancer.create_rule(&rule)).await {
            Ok(arn) => arn,
            Err(Error::PriorityInUse(_)) => {
                return Err(Error::Conflict(format!(
                    "another rule took priority {priority} on listener {} since the app's rule went; \
                     delete the app and create it again",
                    rule.listener_arn
                )));
            }
            Err(e) => return Err(e),
        };
        app.resources.listener_rule_arn = Some(arn);
        self.apps.update(app).await
    }
}

/// The app client as Portcullis makes it: code flow, `openid email`, the app's callback and logout URLs.
pub(crate) fn client_spec(app: &App) -> ClientSpec {
    ClientSpec { client_name: client_name(&app.domain), callback_url: app.callback_url(), logout_url: app.url() }
}

/// The app's listener rule as Portcullis makes it: host-header = the domain; the app's login; forward.
pub(crate) fn protect_rule(app: &App, listener: &str, priority: u32) -> Result<ProtectRule> {
    let r = &app.resources;
    Ok(ProtectRule {
        listener_arn: listener.to_string(),
        priority,
        host: app.domain.clone(),
        user_pool_arn: r.pool()?.arn.to_string(),
        client_id: r.client()?.to_string(),
        pool_domain_prefix: r.pool_domain()?.to_string(),
        session_timeout_seconds: app.session_timeout_seconds,
        target_group_arn: r.target_group()?.to_string(),
        app_id: app.id.clone(),
    })
}
