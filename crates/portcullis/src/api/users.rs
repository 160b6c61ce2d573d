//! `/apps/{id}/users`: an app's admins invite, resend, list and revoke the app's users. Each app has its
//! own pool, so an invitation grants nothing beyond its app.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::apps::find_app;
use super::lambda::Operations;
use super::{ApiRequest, ApiResponse, Listing, PageRequest, authenticate, json_response, no_route, problem};
use crate::domain::{App, AppEvent, AppStatus, AppUser, Caller, Invitation, Invitee, InviteeBody, MAX_BATCH};
use crate::error::{Error, Result};
use crate::ports::{AppStore, AppUsers, TokenVerifier};
use crate::retry::Backoff;

/// Invitations in flight at once in a batch: AdminCreateUser is throttled per account.
const BATCH_CONCURRENCY: usize = 4;
/// A batch stops starting invitations after this long, so that even under throttling the answer
/// (with `failed` for what was not attempted) comes inside API Gateway's 29 s.
const BATCH_TIME_BUDGET: Duration = Duration::from_secs(20);

/// The `/apps/{id}/users` operations.
pub struct UsersApi {
    pub store: Arc<dyn AppStore>,
    pub users: Arc<dyn AppUsers>,
    pub verifier: Arc<dyn TokenVerifier>,
    pub backoff: Backoff,
}

#[derive(Debug, Deserialize)]
struct BatchBody {
    users: Option<Vec<InviteeBody>>,
}

/// One line of a batch's answer.
#[derive(Debug, Serialize, PartialEq, Eq)]
struct BatchResult {
    email: String,
    /// `invited`, `exists`, `invalid`, or `failed` (AWS trouble: the entry may be sent again).
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

#[async_trait::async_trait]
impl Operations for UsersApi {
    /// Serves one request: authenticate, route by operation, map errors to problem+json.
    async fn handle(&self, request: &ApiRequest) -> ApiResponse {
        let result = match authenticate(self.verifier.as_ref(), request).await {
            Err(e) => Err(e),
            Ok(caller) => {
                let (app_id, username) = (request.path("id"), request.path("username"));
                match (&request.method, request.resource.as_str()) {
                    (&Method::POST, "/apps/{id}/users") => self.invite(&caller, app_id, &request.body).await,
                    (&Method::GET, "/apps/{id}/users") => self.list(&caller, app_id, request).await,
                    (&Method::POST, "/apps/{id}/users/batch") => self.batch(&caller, app_id, &request.body).await,
                    (&Method::POST, "/apps/{id}/users/{username}/resend") => {
                        self.resend(&caller, app_id, username).await
                    }
                    (&Method::DELETE, "/apps/{id}/users/{username}") => self.revoke(&caller, app_id, username).await,
                    _ => return no_route(request),
                }
            }
        };
        result.unwrap_or_else(|e| problem(&e))
    }
}

impl UsersApi {
    /// `POST /apps/{id}/users`: 201 with the invited user.
    async fn invite(&self, caller: &Caller, app_id: &str, body: &str) -> Result<ApiResponse> {
        caller.require_admin()?;
        let (app, pool_id) = self.active_app(caller, app_id).await?;
        let invitee: InviteeBody = serde_json::from_str(body)
            .map_err(|e| Error::Invalid(format!("the body must be {{\"email\": …, \"name\": …}}: {e}")))?;
        let user = self.invite_one(caller, &app, &pool_id, &invitee.validate()?).await?;
        Ok(json_response(StatusCode::CREATED, &user))
    }

    /// `POST /apps/{id}/users/batch`: each address gets its own outcome; one bad one stops nothing.
    async fn batch(&self, caller: &Caller, app_id: &str, body: &str) -> Result<ApiResponse> {
        caller.require_admin()?;
        let entries = serde_json::from_str::<BatchBody>(body)
            .ok()
            .and_then(|b| b.users)
            .ok_or_else(|| Error::Invalid("the body must be {\"users\": [{\"email\": …, \"name\": …}, …]}".into()))?;
        if entries.is_empty() || entries.len() > MAX_BATCH {
            return Err(Error::Invalid(format!("'users' must hold 1 to {MAX_BATCH} entries, not {}", entries.len())));
        }
        let (app, pool_id) = self.active_app(caller, app_id).await?;

        // Validate first, so duplicates within the batch are answered without asking Cognito twice.
        let mut seen = HashSet::new();
        let checked: Vec<std::result::Result<Invitee, BatchResult>> = entries
            .iter()
            .map(|entry| {
                let invitee = entry.validate().map_err(|e| BatchResult {
                    email: entry.raw_email(),
                    outcome: "invalid",
                    detail: Some(e.to_string()),
                })?;
                if !seen.insert(invitee.email.clone()) {
                    return Err(BatchResult {
                        email: invitee.email,
                        outcome: "exists",
                        detail: Some("listed earlier in this batch".into()),
                    });
                }
                Ok(invitee)
            })
            .collect();
        let deadline = Instant::now() + BATCH_TIME_BUDGET;
        let (app, pool_id) = (&app, pool_id.as_str());
        let results: Vec<BatchResult> = stream::iter(checked)
            .map(|entry| async move {
                let invitee = match entry {
                    Ok(invitee) => invitee,
                    Err(answered) => return answered,
                };
                if Instant::now() >= deadline {
                    let detail = Some("not attempted: the batch ran out of time (throttling); send it again".into());
                    return BatchResult { email: invitee.email, outcome: "failed", detail };
                }
                let (outcome, detail) = match self.invite_one(caller, app, pool_id, &invitee).await {
                    Ok(_) => ("invited", None),
                    Err(Error::Conflict(detail)) => ("exists", Some(detail)),
                    Err(Error::Invalid(detail)) => ("invalid", Some(detail)),
                    Err(e) => {
                        tracing::error!(app_id = %app.id, error = %e, "batch invitation failed");
                        ("failed", Some("Cognito could not take this invitation now; send it again".into()))
                    }
                };
                BatchResult { email: invitee.email, outcome, detail }
            })
            .buffered(BATCH_CONCURRENCY)
            .collect()
            .await;
        Ok(json_response(StatusCode::OK, &serde_json::json!({ "results": results })))
    }

    /// `GET /apps/{id}/users`: Cognito's users with Portcullis's invitation records.
    async fn list(&self, caller: &Caller, app_id: &str, request: &ApiRequest) -> Result<ApiResponse> {
        let page = PageRequest::from_query(&request.query)?;
        let app = find_app(self.store.as_ref(), caller, app_id).await?;
        let Some(pool_id) = app.resources.user_pool_id.as_deref() else {
            return Ok(json_response(StatusCode::OK, &Listing::<AppUser> { items: vec![], next_token: None }));
        };
        let users = self.backoff.retry(|| self.users.list(pool_id, page.limit, page.next_token.as_deref())).await?;
        let usernames: Vec<String> = users.items.iter().map(|u| u.username.clone()).collect();
        let invitations = self.store.invitations(&app.id, &usernames).await?;
        let items = users
            .items
            .into_iter()
            .map(|mut user| {
                if let Some(invitation) = invitations.get(&user.username) {
                    user.invited_at = invitation.invited_at;
                    user.invited_by = Some(invitation.invited_by.clone());
                }
                user
            })
            .collect();
        Ok(json_response(StatusCode::OK, &Listing { items, next_token: users.next_token }))
    }

    /// `POST /apps/{id}/users/{username}/resend`: a new temporary password and a fresh 7 days.
    async fn resend(&self, caller: &Caller, app_id: &str, username: &str) -> Result<ApiResponse> {
        caller.require_admin()?;
        let (app, pool_id) = self.active_app(caller, app_id).await?;
        self.backoff.retry(|| self.users.resend(&pool_id, username)).await?;
        let now = OffsetDateTime::now_utc();
        self.store.mark_invitation_sent(&app.id, username, now).await?;
        self.record(caller, &app, "user.invitation-resent", username.to_string()).await?;
        let body = serde_json::json!({ "username": username, "resentAt": now.format(&time::format_description::well_known::Rfc3339).ok() });
        Ok(json_response(StatusCode::ACCEPTED, &body))
    }

    /// `DELETE /apps/{id}/users/{username}`: signed out everywhere and removed from the app's pool.
    async fn revoke(&self, caller: &Caller, app_id: &str, username: &str) -> Result<ApiResponse> {
        caller.require_admin()?;
        let (app, pool_id) = self.active_app(caller, app_id).await?;
        self.backoff.retry(|| self.users.revoke(&pool_id, username)).await?;
        self.store.delete_invitation(&app.id, username).await?;
        self.record(caller, &app, "user.revoked", username.to_string()).await?;
        let mut response = http::Response::new(String::new());
        *response.status_mut() = StatusCode::NO_CONTENT;
        Ok(response)
    }

    /// Invites one validated address: Cognito first (retrying throttling), then the record and history.
    async fn invite_one(&self, caller: &Caller, app: &App, pool_id: &str, invitee: &Invitee) -> Result<AppUser> {
        let mut user = self.backoff.retry(|| self.users.invite(pool_id, invitee)).await?;
        let now = OffsetDateTime::now_utc();
        let invitation = Invitation {
            username: user.username.clone(),
            email: user.email.clone(),
            invited_by: caller.display_name.clone(),
            invited_at: now,
            last_sent_at: now,
        };
        self.store.put_invitation(&app.id, &invitation).await?;
        self.record(caller, app, "user.invited", format!("{} ({})", user.email, user.username)).await?;
        user.invited_at = now;
        user.invited_by = Some(caller.display_name.clone());
        Ok(user)
    }

    /// The caller's app and its pool, if it is ACTIVE (409 otherwise, 404 if not theirs).
    async fn active_app(&self, caller: &Caller, app_id: &str) -> Result<(App, String)> {
        let app = find_app(self.store.as_ref(), caller, app_id).await?;
        match (app.status, app.resources.user_pool_id.clone()) {
            (AppStatus::Active, Some(pool_id)) => Ok((app, pool_id)),
            (status, _) => Err(Error::Conflict(format!(
                "the app is {}; its users can be managed once it is ACTIVE",
                status.as_str()
            ))),
        }
    }

    async fn record(&self, caller: &Caller, app: &App, action: &str, detail: String) -> Result<()> {
        let event = AppEvent {
            at: OffsetDateTime::now_utc(),
            actor: caller.display_name.clone(),
            action: action.into(),
            detail,
        };
        self.store.append_event(&app.id, &event).await
    }
}
