//! The settings state machine's steps (`statemachine/settings.asl.json`): a change of an ACTIVE app's
//! settings that reaches beyond Portcullis's records is applied to the app's pool and listener rule,
//! then adopted; if it cannot be, what was applied is put back and the app keeps its settings. The app
//! stays ACTIVE throughout: no setting here can open a route around the login.

use super::drift::protect_rule;
use super::steps::{Provisioner, StepResult};
use super::{FailureReport, StepOutput};
use crate::domain::{App, AppSettings, AppStatus, AuditAction, SettingsChange};
use crate::error::Chain;

impl Provisioner {
    /// ApplySettings: set the requested MFA, invitation and session timeout where they differ from the
    /// app's, then adopt the settings and record who changed what. Each call sets a whole value, so a
    /// retry after a partial run is harmless. An app no longer ACTIVE (being deleted) is left alone.
    pub(super) async fn apply_settings(&self, app: &mut App) -> StepResult {
        let Some(change) = self.pending_change(app) else { return Ok(StepOutput::Done) };
        self.set_in_aws(app, &app.settings(), &change.settings).await?;
        let before = app.settings();
        app.adopt(change.settings.clone());
        app.settings_change = None;
        self.apps.update(app).await?;
        let detail = change.settings.changes_from(&before);
        self.record_by(app, &change.requested_by, AuditAction::AppUpdated, detail).await?;
        Ok(StepOutput::Done)
    }

    /// SettingsFailed: put back what ApplySettings may have set, drop the change, and record why. The
    /// app keeps the settings it had.
    pub(super) async fn settings_failed(&self, app: &mut App, report: &FailureReport) -> StepResult {
        let Some(change) = self.pending_change(app) else { return Ok(StepOutput::Done) };
        let why = report.error.as_ref().map(|e| e.message()).unwrap_or_else(|| "no reason given".into());
        let changes = change.settings.changes_from(&app.settings());
        let mut detail = format!("{changes} could not be applied: {why}; the app keeps its settings");
        if let Err(failure) = self.set_in_aws(app, &change.settings, &app.settings()).await {
            tracing::error!(error = %Chain(&failure), "could not put the app's settings back");
            detail.push_str(&format!(
                " (putting them back failed too: {}; POST /apps/{{id}}/repair puts the rule back)",
                failure.message
            ));
        }
        app.settings_change = None;
        self.apps.update(app).await?;
        self.record_by(app, &change.requested_by, AuditAction::AppUpdateFailed, detail).await?;
        Ok(StepOutput::Done)
    }

    /// The change to apply, if the app is still ACTIVE and has one.
    fn pending_change(&self, app: &App) -> Option<SettingsChange> {
        app.settings_change.clone().filter(|_| app.status == AppStatus::Active)
    }

    /// Sets in the pool and the rule what differs between `from` and `to`.
    async fn set_in_aws(&self, app: &App, from: &AppSettings, to: &AppSettings) -> StepResult<()> {
        let pool = app.resources.pool()?.id.to_string();
        if to.mfa != from.mfa {
            self.user_pools.set_mfa(&pool, to.mfa).await?;
        }
        if to.name != from.name {
            // The invitation names the app; every other pool setting is set again as made.
            let mut renamed = app.clone();
            renamed.adopt(to.clone());
            let spec = self.pool_spec(&renamed).await?;
            self.user_pools.update_pool(&pool, &spec, to.mfa).await?;
        }
        if to.session_timeout_seconds != from.session_timeout_seconds {
            let (rule_arn, priority) = app.resources.rule()?;
            let mut timed = app.clone();
            timed.session_timeout_seconds = to.session_timeout_seconds;
            let rule = protect_rule(&timed, app.resources.listener()?, priority)?;
            self.load_balancer.modify_rule(rule_arn, &rule).await?;
        }
        Ok(())
    }
}
