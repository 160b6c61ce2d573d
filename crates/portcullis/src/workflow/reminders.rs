//! The scheduled invitation reminder: for every ACTIVE app with `autoResend`, each invitation that expires
//! within a day (and has not been sent automatically `MAX_AUTO_RESENDS` times) is sent again, and its
//! app's history says so. Runs in the provisioner (`lambda::run_invocation`, event
//! `{"resendInvitations": {}}`) on the template's `InvitationReminderSchedule`.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::every_active_app;
use crate::domain::{App, Resend, WORKFLOW_ACTOR};
use crate::error::{Chain, Result};
use crate::invitations::{ResendOutcome, Resender};
use crate::ports::{AppRepository, TenantRegistry};

/// The schedule's event: `{"resendInvitations": {}}`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResendInvitations {}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReminderRun {
    /// Apps with `autoResend` looked at.
    pub apps: usize,
    pub resent: usize,
    /// Invitations (or whole apps) that could not be handled this time; the next run tries again.
    pub failed: usize,
}

/// Sends invitations of `autoResend` apps again before they expire.
pub struct InvitationReminder {
    pub apps: Arc<dyn AppRepository>,
    pub tenants: Arc<dyn TenantRegistry>,
    pub resender: Resender,
}

/// Sends per run stop starting after this long (the provisioner's timeout is 30 s); what is left waits
/// for the next run, an hour later and still inside the day before expiry.
const RUN_SEND_BUDGET: Duration = Duration::from_secs(20);

impl InvitationReminder {
    pub async fn run(&self, _: ResendInvitations) -> Result<ReminderRun> {
        let apps: Vec<App> = every_active_app(self.tenants.as_ref(), self.apps.as_ref())
            .await?
            .into_iter()
            .filter(|a| a.auto_resend)
            .collect();
        let started = tokio::time::Instant::now();
        let mut run = ReminderRun { apps: apps.len(), ..ReminderRun::default() };
        for app in &apps {
            let budget = RUN_SEND_BUDGET.saturating_sub(started.elapsed());
            match self.remind(app, budget).await {
                Ok((resent, failed)) => {
                    run.resent += resent;
                    run.failed += failed;
                }
                Err(e) => {
                    run.failed += 1;
                    tracing::warn!(app_id = %app.id, error = %Chain(&e), "invitation reminder failed");
                }
            }
        }
        tracing::info!(apps = run.apps, resent = run.resent, failed = run.failed, "invitation reminder done");
        Ok(run)
    }

    /// Resends the app's due invitations: how many were sent, and how many were not.
    async fn remind(&self, app: &App, budget: Duration) -> Result<(usize, usize)> {
        let pool_id = app.resources.pool()?.id;
        let now = OffsetDateTime::now_utc();
        let due: Vec<_> = self
            .resender
            .not_signed_in(app, pool_id)
            .await?
            .into_iter()
            .filter(|user| user.invitation.due_for_automatic_resend(now))
            .collect();
        if due.is_empty() {
            return Ok((0, 0));
        }
        let results = self.resender.resend_each(app, pool_id, due, (WORKFLOW_ACTOR, Resend::Automatic), budget).await;
        let resent = results.iter().filter(|r| r.outcome == ResendOutcome::Resent).count();
        Ok((resent, results.len() - resent))
    }
}

#[cfg(test)]
mod tests {
    use time::Duration as Age;

    use super::*;
    use crate::domain::{AppStatus, Invitation};
    use crate::fakes::{MemoryAppUsers, MemoryApps, MemoryHistory, MemoryInvitations, MemoryTenants, app};
    use crate::ports::{History, InvitationRecords, Subject};
    use crate::retry::Backoff;

    /// An ACTIVE app of the fake tenant with its own pool (`pool-<id>`).
    fn active(apps: &MemoryApps, id: &str, auto_resend: bool) -> App {
        let mut active = app(id, AppStatus::Active);
        active.auto_resend = auto_resend;
        active.resources.user_pool_id = Some(format!("pool-{id}"));
        active.resources.user_pool_arn = Some(format!("arn:pool-{id}"));
        apps.insert(active.clone());
        active
    }

    async fn sent(records: &MemoryInvitations, app: &App, username: &str, age: Age, auto_resends: u32) {
        let at = OffsetDateTime::now_utc() - age;
        let invitation = Invitation {
            username: username.into(),
            email: format!("{username}@example.com"),
            invited_by: "admin".into(),
            invited_at: at,
            last_sent_at: at,
            auto_resends,
            access_expires_at: None,
            access_ended_at: None,
        };
        records.put(app, &invitation).await.unwrap();
    }

    #[tokio::test]
    async fn due_invitations_of_auto_resend_apps_are_sent_again_and_one_broken_app_stops_nothing() {
        let (apps, pool, records, history) = (
            Arc::new(MemoryApps::default()),
            Arc::new(MemoryAppUsers::default()),
            Arc::new(MemoryInvitations::default()),
            Arc::new(MemoryHistory::default()),
        );
        let reminded = active(&apps, "a1", true);
        let plain = active(&apps, "a2", false);
        let broken = active(&apps, "a3", true);
        pool.broken.lock().unwrap().push("pool-a3".into());
        let almost_a_week = Age::days(6) + Age::hours(12);
        for (app, username, age, auto_resends) in [
            (&reminded, "due", almost_a_week, 0),
            (&reminded, "fresh", Age::hours(1), 0),
            (&reminded, "done-three-times", almost_a_week, 3),
            (&plain, "not-asked-for", almost_a_week, 0),
            (&broken, "unreachable", almost_a_week, 0),
        ] {
            pool.invited(&format!("pool-{}", app.id), username);
            sent(&records, app, username, age, auto_resends).await;
        }
        let reminder = InvitationReminder {
            apps,
            tenants: Arc::new(MemoryTenants::granting_the_fakes()),
            resender: Resender {
                users: pool.clone(),
                invitations: records.clone(),
                history: history.clone(),
                backoff: Backoff::default(),
            },
        };

        let run = reminder.run(ResendInvitations {}).await.unwrap();

        assert_eq!(run, ReminderRun { apps: 2, resent: 1, failed: 1 });
        assert_eq!(*pool.resent.lock().unwrap(), ["due"]);
        let record = records.get_many("a1", &["due".into()]).await.unwrap().remove("due").unwrap();
        assert_eq!(record.auto_resends, 1);
        assert!(OffsetDateTime::now_utc() - record.last_sent_at < Age::minutes(1), "sent now");
        let events = history.list(Subject::App("a1"), 10, None).await.unwrap().items;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].actor, WORKFLOW_ACTOR);
        assert!(events[0].detail.contains("due@example.com (due): automatically"), "{:?}", events[0]);
        assert!(events[0].detail.contains("(1 of 3)"), "{:?}", events[0]);
    }
}
