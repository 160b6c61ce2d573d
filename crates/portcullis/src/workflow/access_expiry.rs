//! The scheduled end of access: when an invited user's access reaches the end the invitation gave it
//! (`expiresAt`, or the app's `defaultAccessDays`), the user is disabled and signed out everywhere, and
//! the app's history says so. Runs in the provisioner (`lambda::run_invocation`, event
//! `{"endExpiredAccess": {}}`) on the template's `AccessExpirySchedule`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::every_active_app;
use crate::domain::{App, AppEvent, AuditAction, Invitation, WORKFLOW_ACTOR};
use crate::error::{Chain, Error, Result};
use crate::ports::{AppRepository, AppUsers, History, InvitationRecords, Subject, TenantRegistry};
use crate::retry::Backoff;

/// The schedule's event: `{"endExpiredAccess": {}}`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndExpiredAccess {}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessExpiryRun {
    pub ended: usize,
    /// Users (or whole apps) that could not be handled this time; the next run tries again.
    pub failed: usize,
}

/// Ends access that has reached its end.
pub struct AccessExpiry {
    pub apps: Arc<dyn AppRepository>,
    pub tenants: Arc<dyn TenantRegistry>,
    pub invitations: Arc<dyn InvitationRecords>,
    pub users: Arc<dyn AppUsers>,
    pub history: Arc<dyn History>,
    pub backoff: Backoff,
}

impl AccessExpiry {
    pub async fn run(&self, _: EndExpiredAccess) -> Result<AccessExpiryRun> {
        let mut run = AccessExpiryRun::default();
        for app in every_active_app(self.tenants.as_ref(), self.apps.as_ref()).await? {
            if let Err(e) = self.end_due(&app, &mut run).await {
                run.failed += 1;
                tracing::warn!(app_id = %app.id, error = %Chain(&e), "ending expired access failed");
            }
        }
        tracing::info!(ended = run.ended, failed = run.failed, "expired access ended");
        Ok(run)
    }

    /// Ends the access of the app's users whose end has come.
    async fn end_due(&self, app: &App, run: &mut AccessExpiryRun) -> Result<()> {
        let now = OffsetDateTime::now_utc();
        let due: Vec<Invitation> =
            self.invitations.list(&app.id).await?.into_iter().filter(|i| i.access_due_to_end(now)).collect();
        if due.is_empty() {
            return Ok(());
        }
        let pool_id = app.resources.pool()?.id;
        for invitation in &due {
            match self.end_one(app, pool_id, invitation).await {
                Ok(()) => run.ended += 1,
                Err(e) => {
                    run.failed += 1;
                    tracing::warn!(app_id = %app.id, error = %Chain(&e), "ending a user's access failed");
                }
            }
        }
        Ok(())
    }

    async fn end_one(&self, app: &App, pool_id: &str, invitation: &Invitation) -> Result<()> {
        let username = invitation.username.as_str();
        match self.backoff.retry(|| self.users.end_access(pool_id, username)).await {
            // Removed from the pool by hand: nothing left to end.
            Ok(()) | Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let now = OffsetDateTime::now_utc();
        self.invitations.mark_access_ended(&app.id, username, now).await?;
        let end = invitation.access_expires_at.and_then(|t| t.format(&Rfc3339).ok()).unwrap_or_default();
        let detail = format!(
            "{} ({username}): access ended as set ({end}); disabled and signed out of the app's pool; {}",
            invitation.email,
            app.open_session_note()
        );
        let event = AppEvent::now(WORKFLOW_ACTOR, AuditAction::UserAccessEnded, detail);
        self.history.append(Subject::App(&app.id), &event).await
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;
    use crate::domain::AppStatus;
    use crate::fakes::{MemoryAppUsers, MemoryApps, MemoryHistory, MemoryInvitations, MemoryTenants, app};

    #[tokio::test]
    async fn access_that_reached_its_end_is_ended_once_and_recorded() {
        let (apps, pool, records, history) = (
            Arc::new(MemoryApps::default()),
            Arc::new(MemoryAppUsers::default()),
            Arc::new(MemoryInvitations::default()),
            Arc::new(MemoryHistory::default()),
        );
        let mut active = app("a1", AppStatus::Active);
        active.resources.user_pool_id = Some("pool-a1".into());
        active.resources.user_pool_arn = Some("arn:pool-a1".into());
        apps.insert(active.clone());
        let now = OffsetDateTime::now_utc();
        for (username, end) in
            [("over", Some(now - Duration::hours(1))), ("later", Some(now + Duration::days(1))), ("open", None)]
        {
            let invitation = Invitation {
                username: username.into(),
                email: format!("{username}@example.com"),
                invited_by: "admin".into(),
                invited_at: now - Duration::days(30),
                last_sent_at: now - Duration::days(30),
                auto_resends: 0,
                access_expires_at: end,
                access_ended_at: None,
            };
            records.put(&active, &invitation).await.unwrap();
        }
        let expiry = AccessExpiry {
            apps,
            tenants: Arc::new(MemoryTenants::granting_the_fakes()),
            invitations: records.clone(),
            users: pool.clone(),
            history: history.clone(),
            backoff: Backoff::default(),
        };

        assert_eq!(expiry.run(EndExpiredAccess {}).await.unwrap(), AccessExpiryRun { ended: 1, failed: 0 });
        assert_eq!(*pool.ended.lock().unwrap(), ["over"]);
        let record = records.get_many("a1", &["over".into()]).await.unwrap().remove("over").unwrap();
        assert!(record.access_ended_at.is_some());
        let events = history.list(Subject::App("a1"), 10, None).await.unwrap().items;
        assert_eq!((events.len(), events[0].action), (1, AuditAction::UserAccessEnded));
        assert!(events[0].detail.contains("over@example.com (over): access ended"), "{:?}", events[0]);
        assert!(events[0].detail.contains("session timeout (3600 s)"), "{:?}", events[0]);

        assert_eq!(expiry.run(EndExpiredAccess {}).await.unwrap(), AccessExpiryRun::default(), "ended once");
    }
}
