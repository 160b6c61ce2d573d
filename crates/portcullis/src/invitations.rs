//! Sending invitations again, as the API's admins ask (one user, or every expired one) and as the
//! scheduled reminder does for apps with `autoResend`: one path, so each resend is sent, recorded and
//! audited the same way.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde::Serialize;
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::domain::{App, AppEvent, AppUser, AuditAction, InvitationStatus, MAX_AUTO_RESENDS, Resend};
use crate::error::{Chain, Error, Result};
use crate::ports::{AppUsers, History, InvitationRecords, Subject, UserFilter};
use crate::retry::Backoff;

/// Sends in flight at once: Cognito's AdminCreateUser is throttled per account.
pub const SEND_CONCURRENCY: usize = 4;
/// A request stops starting sends after this long, so that even under throttling its answer (with what
/// was not attempted) comes inside API Gateway's 29 s.
pub const REQUEST_SEND_BUDGET: Duration = Duration::from_secs(20);

/// Runs `work` on each item, a few at a time, answers in order; once `budget` is spent, the remaining
/// items get `late(item)` without being attempted.
pub async fn within_budget<T, R, Fut>(
    items: Vec<T>,
    budget: Duration,
    work: impl Fn(T) -> Fut,
    late: impl Fn(T) -> R,
) -> Vec<R>
where
    Fut: Future<Output = R>,
{
    let deadline = Instant::now() + budget;
    let (work, late) = (&work, &late);
    stream::iter(items)
        .map(|item| async move { if Instant::now() >= deadline { late(item) } else { work(item).await } })
        .buffered(SEND_CONCURRENCY)
        .collect()
        .await
}

/// What became of one resend. The outcome names are part of the API contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResendResult {
    pub username: String,
    pub email: String,
    pub outcome: ResendOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResendOutcome {
    Resent,
    /// Not sent now (upstream trouble, or out of time): asking again may send it.
    Failed,
}

/// Sends invitations again and records each.
#[derive(Clone)]
pub struct Resender {
    pub users: Arc<dyn AppUsers>,
    pub invitations: Arc<dyn InvitationRecords>,
    pub history: Arc<dyn History>,
    pub backoff: Backoff,
}

/// Pages read while collecting a pool's users who have not signed in.
const PAGE: u32 = 60;

impl Resender {
    /// Every enabled user of the pool who has not signed in yet, with the invitation state Portcullis
    /// recorded. A disabled one (their access ended) is left out: sending to them would be no use.
    pub async fn not_signed_in(&self, app: &App, pool_id: &str) -> Result<Vec<AppUser>> {
        let mut found = Vec::new();
        let mut next_token = None;
        loop {
            let page = self
                .backoff
                .retry(|| self.users.list(pool_id, UserFilter::NotSignedIn, PAGE, next_token.as_deref()))
                .await?;
            let enabled = page.items.into_iter().filter(|user| user.enabled).collect();
            found.extend(self.with_records(app, enabled).await?);
            next_token = page.next_token;
            if next_token.is_none() {
                return Ok(found);
            }
        }
    }

    /// The users with what Portcullis recorded of their invitations.
    pub async fn with_records(&self, app: &App, users: Vec<AppUser>) -> Result<Vec<AppUser>> {
        let usernames: Vec<String> = users.iter().map(|u| u.username.clone()).collect();
        let records = self.invitations.get_many(&app.id, &usernames).await?;
        let now = OffsetDateTime::now_utc();
        Ok(users
            .into_iter()
            .map(|user| match records.get(&user.username) {
                Some(record) => user.with_record(record, now),
                None => user,
            })
            .collect())
    }

    /// Sends one invitation again (a new temporary password, a fresh validity), records when, and adds
    /// `detail` to the app's history. Returns when it was sent.
    pub async fn resend(
        &self,
        app: &App,
        pool_id: &str,
        username: &str,
        (actor, how): (&str, Resend),
        detail: String,
    ) -> Result<OffsetDateTime> {
        self.backoff.retry(|| self.users.resend(pool_id, username)).await?;
        let now = OffsetDateTime::now_utc();
        self.invitations.mark_sent(&app.id, username, now, how).await?;
        let event = AppEvent::now(actor, AuditAction::UserInvitationResent, detail);
        self.history.append(Subject::App(&app.id), &event).await?;
        Ok(now)
    }

    /// Resends each user's invitation within the budget; one failure stops nothing.
    pub async fn resend_each(
        &self,
        app: &App,
        pool_id: &str,
        users: Vec<AppUser>,
        by: (&str, Resend),
        budget: Duration,
    ) -> Vec<ResendResult> {
        let result = |user: &AppUser, outcome, detail: Option<&str>| ResendResult {
            username: user.username.clone(),
            email: user.email.clone(),
            outcome,
            detail: detail.map(str::to_string),
        };
        within_budget(
            users,
            budget,
            |user| async move {
                match self.resend(app, pool_id, &user.username, by, history_detail(&user, by.1)).await {
                    Ok(_) => result(&user, ResendOutcome::Resent, None),
                    // The user signed in meanwhile, or was removed: there is nothing to send.
                    Err(e @ (Error::Conflict(_) | Error::NotFound(_))) => {
                        result(&user, ResendOutcome::Failed, Some(&e.to_string()))
                    }
                    Err(e) => {
                        tracing::error!(app_id = %app.id, error = %Chain(&e), "resending an invitation failed");
                        result(&user, ResendOutcome::Failed, Some("Cognito could not send it now; ask again"))
                    }
                }
            },
            |user| result(&user, ResendOutcome::Failed, Some("not attempted: out of time (throttling); ask again")),
        )
        .await
    }
}

/// What the app's history says of a resend to a listed user.
fn history_detail(user: &AppUser, how: Resend) -> String {
    let who = format!("{} ({})", user.email, user.username);
    match how {
        Resend::ByAdmin if user.invitation.status == InvitationStatus::Expired => format!("{who}: it had expired"),
        Resend::ByAdmin => who,
        Resend::Automatic => format!(
            "{who}: automatically, before it expired ({} of {MAX_AUTO_RESENDS})",
            user.invitation.auto_resends + 1
        ),
    }
}
