//! `/apps/{id}/users`: an app's admins invite, resend, list and revoke the app's users. Each app has its
//! own pool, so an invitation grants nothing beyond its app. Its roles (`/apps/{id}/roles`, and a user's
//! roles) are served here too, in `super::roles`: they are the same pool's groups.

use std::collections::HashSet;
use std::sync::Arc;

use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::apps::find_app;
use super::{
    ApiRequest, ApiResponse, Listing, Operations, PageRequest, PageScope, authenticate, json_response, no_content,
    no_route, respond,
};
use crate::domain::{
    App, AppEvent, AppStatus, AppUser, AuditAction, BatchOutcome, Caller, Invitation, InvitationStatus, Invitee,
    InviteeBody, MAX_BATCH, Resend, invitation_expiry,
};
use crate::error::{Chain, Error, Result};
use crate::invitations::{REQUEST_SEND_BUDGET, Resender, within_budget};
use crate::ports::{AppRepository, AppRoles, AppUsers, History, InvitationRecords, Subject, TokenVerifier, UserFilter};
use crate::retry::Backoff;

/// The `/apps/{id}/users` operations.
pub struct UsersApi {
    pub apps: Arc<dyn AppRepository>,
    pub history: Arc<dyn History>,
    pub invitations: Arc<dyn InvitationRecords>,
    pub users: Arc<dyn AppUsers>,
    pub roles: Arc<dyn AppRoles>,
    pub verifier: Arc<dyn TokenVerifier>,
    pub backoff: Backoff,
}

/// The operations, by openapi.yaml's `operationId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    InviteUser,
    ListUsers,
    InviteUsers,
    ResendInvitation,
    ResendExpiredInvitations,
    RevokeUser,
    CreateRole,
    ListRoles,
    DeleteRole,
    GetUserRoles,
    SetUserRoles,
}

impl Route {
    fn of(request: &ApiRequest) -> Option<Route> {
        Some(match (&request.method, request.resource.as_str()) {
            (&Method::POST, "/apps/{id}/users") => Route::InviteUser,
            (&Method::GET, "/apps/{id}/users") => Route::ListUsers,
            (&Method::POST, "/apps/{id}/users/batch") => Route::InviteUsers,
            (&Method::POST, "/apps/{id}/users/{username}/resend") => Route::ResendInvitation,
            (&Method::POST, "/apps/{id}/users/resend-expired") => Route::ResendExpiredInvitations,
            (&Method::DELETE, "/apps/{id}/users/{username}") => Route::RevokeUser,
            (&Method::POST, "/apps/{id}/roles") => Route::CreateRole,
            (&Method::GET, "/apps/{id}/roles") => Route::ListRoles,
            (&Method::DELETE, "/apps/{id}/roles/{role}") => Route::DeleteRole,
            (&Method::GET, "/apps/{id}/users/{username}/roles") => Route::GetUserRoles,
            (&Method::PUT, "/apps/{id}/users/{username}/roles") => Route::SetUserRoles,
            _ => return None,
        })
    }

    fn operation_id(self) -> &'static str {
        match self {
            Route::InviteUser => "inviteUser",
            Route::ListUsers => "listUsers",
            Route::InviteUsers => "inviteUsers",
            Route::ResendInvitation => "resendInvitation",
            Route::ResendExpiredInvitations => "resendExpiredInvitations",
            Route::RevokeUser => "revokeUser",
            Route::CreateRole => "createRole",
            Route::ListRoles => "listRoles",
            Route::DeleteRole => "deleteRole",
            Route::GetUserRoles => "getUserRoles",
            Route::SetUserRoles => "setUserRoles",
        }
    }
}

#[derive(Debug, Deserialize)]
struct BatchBody {
    /// Objects only: serde would also read `[email, name]` as an entry.
    users: Option<Vec<serde_json::Map<String, serde_json::Value>>>,
}

/// The answer to a resend.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Resent<'a> {
    username: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    resent_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

/// One line of a batch's answer.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
struct BatchResult {
    email: String,
    outcome: BatchOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

impl BatchResult {
    fn new(email: String, outcome: BatchOutcome, detail: impl Into<Option<String>>) -> Self {
        BatchResult { email, outcome, detail: detail.into() }
    }
}

#[async_trait::async_trait]
impl Operations for UsersApi {
    async fn handle(&self, request: &ApiRequest) -> ApiResponse {
        let Some(route) = Route::of(request) else { return no_route(request) };
        let (app_id, username) = (request.path("id"), request.path("username"));
        respond(route.operation_id(), request, async {
            let caller = authenticate(self.verifier.as_ref(), request).await?;
            match route {
                Route::InviteUser => self.invite(&caller, app_id, &request.body).await,
                Route::ListUsers => self.list(&caller, app_id, request).await,
                Route::InviteUsers => self.batch(&caller, app_id, &request.body).await,
                Route::ResendInvitation => self.resend(&caller, app_id, username).await,
                Route::ResendExpiredInvitations => self.resend_expired(&caller, app_id).await,
                Route::RevokeUser => self.revoke(&caller, app_id, username).await,
                Route::CreateRole => self.create_role(&caller, app_id, &request.body).await,
                Route::ListRoles => self.list_roles(&caller, app_id, request).await,
                Route::DeleteRole => self.delete_role(&caller, app_id, request.path("role")).await,
                Route::GetUserRoles => self.user_roles(&caller, app_id, username).await,
                Route::SetUserRoles => self.set_user_roles(&caller, app_id, username, &request.body).await,
            }
        })
        .await
    }
}

impl UsersApi {
    /// `POST /apps/{id}/users`: 201 with the invited user.
    async fn invite(&self, caller: &Caller, app_id: &str, body: &str) -> Result<ApiResponse> {
        caller.require_admin()?;
        let (app, pool_id) = self.active_app(caller, app_id).await?;
        let invitee: InviteeBody = serde_json::from_str(body)
            .map_err(|e| Error::Invalid(format!("the body must be {{\"email\": …, \"name\": …}}: {e}")))?;
        let invitee = invitee.validate()?;
        self.check_roles_exist(&pool_id, &invitee.roles).await?;
        let user = self.invite_one(caller, &app, &pool_id, &invitee).await?;
        Ok(json_response(StatusCode::CREATED, &user))
    }

    /// `POST /apps/{id}/users/batch`: each address gets its own outcome; one bad one stops nothing.
    async fn batch(&self, caller: &Caller, app_id: &str, body: &str) -> Result<ApiResponse> {
        caller.require_admin()?;
        let entries = parse_batch(body)?;
        let (app, pool_id) = self.active_app(caller, app_id).await?;
        let refuse = |invitee: Invitee, detail| BatchResult::new(invitee.email, BatchOutcome::Invalid, detail);
        let screened = self.screen_roles(&pool_id, screen(&entries), refuse).await?;
        let results = self.invite_within_budget(caller, &app, &pool_id, screened).await;
        Ok(json_response(StatusCode::OK, &serde_json::json!({ "results": results })))
    }

    /// Invites the screened entries a few at a time, in order; once the time budget is spent, the rest
    /// are answered `failed` without being attempted.
    async fn invite_within_budget(
        &self,
        caller: &Caller,
        app: &App,
        pool_id: &str,
        screened: Vec<std::result::Result<Invitee, BatchResult>>,
    ) -> Vec<BatchResult> {
        within_budget(
            screened,
            REQUEST_SEND_BUDGET,
            |entry| async move {
                match entry {
                    Err(answered) => answered,
                    Ok(invitee) => self.invite_entry(caller, app, pool_id, invitee).await,
                }
            },
            |entry| match entry {
                Err(answered) => answered,
                Ok(invitee) => BatchResult::new(
                    invitee.email,
                    BatchOutcome::Failed,
                    "not attempted: the batch ran out of time (throttling); send it again".to_string(),
                ),
            },
        )
        .await
    }

    /// One batch entry's outcome.
    async fn invite_entry(&self, caller: &Caller, app: &App, pool_id: &str, invitee: Invitee) -> BatchResult {
        match self.invite_one(caller, app, pool_id, &invitee).await {
            Ok(_) => BatchResult::new(invitee.email, BatchOutcome::Invited, None),
            Err(Error::Conflict(detail)) => BatchResult::new(invitee.email, BatchOutcome::Exists, detail),
            // An address outside the app's access policy is one the batch cannot take, as a bad one.
            Err(Error::Invalid(detail) | Error::Forbidden(detail)) => {
                BatchResult::new(invitee.email, BatchOutcome::Invalid, detail)
            }
            Err(e) => {
                tracing::error!(error = %Chain(&e), "batch invitation failed");
                let detail = "Cognito could not take this invitation now; send it again".to_string();
                BatchResult::new(invitee.email, BatchOutcome::Failed, detail)
            }
        }
    }

    /// `GET /apps/{id}/users[?invitation=PENDING|ACCEPTED|EXPIRED]`: the pool's users with Portcullis's
    /// invitation records. A filtered page may hold fewer than `limit` users and still have a next one.
    async fn list(&self, caller: &Caller, app_id: &str, request: &ApiRequest) -> Result<ApiResponse> {
        let wanted = request.query.get("invitation").map(|v| InvitationStatus::parse(v)).transpose()?;
        let scope = PageScope::users(app_id, wanted);
        let page = PageRequest::from_query(&request.query, &scope)?;
        let app = find_app(self.apps.as_ref(), caller, app_id).await?;
        let Some(pool_id) = app.resources.user_pool_id.as_deref() else {
            return Ok(json_response(StatusCode::OK, &Listing::<AppUser> { items: vec![], next_token: None }));
        };
        // Pending and expired invitations are the pool's users who have not signed in: ask for those only.
        let filter = match wanted {
            Some(InvitationStatus::Pending | InvitationStatus::Expired) => UserFilter::NotSignedIn,
            Some(InvitationStatus::Accepted) | None => UserFilter::Everyone,
        };
        let users =
            self.backoff.retry(|| self.users.list(pool_id, filter, page.limit, page.next_token.as_deref())).await?;
        let items = self
            .resender()
            .with_records(&app, users.items)
            .await?
            .into_iter()
            .filter(|user| wanted.is_none_or(|status| user.invitation.status == status))
            .collect();
        Ok(json_response(StatusCode::OK, &Listing::sealed(items, users.next_token, &scope)?))
    }

    /// `POST /apps/{id}/users/{username}/resend`: a new temporary password and a fresh validity.
    async fn resend(&self, caller: &Caller, app_id: &str, username: &str) -> Result<ApiResponse> {
        caller.require_admin()?;
        let (app, pool_id) = self.active_app(caller, app_id).await?;
        let by = (caller.actor.as_str(), Resend::ByAdmin);
        let resent_at = self.resender().resend(&app, &pool_id, username, by, username.to_string()).await?;
        let body = Resent { username, resent_at, expires_at: invitation_expiry(resent_at) };
        Ok(json_response(StatusCode::ACCEPTED, &body))
    }

    /// `POST /apps/{id}/users/resend-expired`: every expired invitation sent again, each with its outcome.
    async fn resend_expired(&self, caller: &Caller, app_id: &str) -> Result<ApiResponse> {
        caller.require_admin()?;
        let (app, pool_id) = self.active_app(caller, app_id).await?;
        let resender = self.resender();
        let expired: Vec<AppUser> = resender
            .not_signed_in(&app, &pool_id)
            .await?
            .into_iter()
            .filter(|user| user.invitation.status == InvitationStatus::Expired)
            .collect();
        let by = (caller.actor.as_str(), Resend::ByAdmin);
        let results = resender.resend_each(&app, &pool_id, expired, by, REQUEST_SEND_BUDGET).await;
        Ok(json_response(StatusCode::OK, &serde_json::json!({ "results": results })))
    }

    fn resender(&self) -> Resender {
        Resender {
            users: self.users.clone(),
            invitations: self.invitations.clone(),
            history: self.history.clone(),
            backoff: self.backoff,
        }
    }

    /// `DELETE /apps/{id}/users/{username}`: signed out everywhere and removed from the app's pool.
    async fn revoke(&self, caller: &Caller, app_id: &str, username: &str) -> Result<ApiResponse> {
        caller.require_admin()?;
        let (app, pool_id) = self.active_app(caller, app_id).await?;
        self.backoff.retry(|| self.users.revoke(&pool_id, username)).await?;
        self.invitations.delete(&app.id, username).await?;
        let detail = format!("{username}: signed out of the app's pool and removed; {}", app.open_session_note());
        self.record(caller, &app, AuditAction::UserRevoked, detail).await?;
        Ok(no_content())
    }

    /// Invites one validated address whose roles exist: the pool first (retrying throttling), then its
    /// roles, the record and history.
    async fn invite_one(&self, caller: &Caller, app: &App, pool_id: &str, invitee: &Invitee) -> Result<AppUser> {
        app.access_policy.admit(&invitee.email)?;
        let user = self.backoff.retry(|| self.users.invite(pool_id, invitee)).await?;
        self.give_roles_or_undo(pool_id, &user.username, &invitee.roles).await?;
        let now = OffsetDateTime::now_utc();
        let invitation = Invitation {
            username: user.username.clone(),
            email: user.email.clone(),
            invited_by: caller.actor.clone(),
            invited_at: now,
            last_sent_at: now,
            auto_resends: 0,
            access_expires_at: app.access_policy.access_ends(invitee.expires_at, now),
            access_ended_at: None,
        };
        self.invitations.put(app, &invitation).await?;
        let detail = format!("{} ({})", user.email, user.username);
        self.record(caller, app, AuditAction::UserInvited, detail).await?;
        Ok(user.with_record(&invitation, now))
    }

    /// The caller's app and its pool, if it is ACTIVE (409 otherwise, 404 if not theirs).
    pub(super) async fn active_app(&self, caller: &Caller, app_id: &str) -> Result<(App, String)> {
        let app = find_app(self.apps.as_ref(), caller, app_id).await?;
        match (app.status, app.resources.user_pool_id.clone()) {
            (AppStatus::Active, Some(pool_id)) => Ok((app, pool_id)),
            (status, _) => Err(Error::Conflict(format!(
                "the app is {}; its users can be managed once it is ACTIVE",
                status.as_str()
            ))),
        }
    }

    pub(super) async fn record(
        &self,
        caller: &Caller,
        app: &App,
        action: AuditAction,
        detail: impl Into<String>,
    ) -> Result<()> {
        self.history.append(Subject::App(&app.id), &AppEvent::now(&caller.actor, action, detail)).await
    }
}

/// The batch's entries: 1 to `MAX_BATCH` of them.
fn parse_batch(body: &str) -> Result<Vec<InviteeBody>> {
    let shape = || Error::Invalid("the body must be {\"users\": [{\"email\": …, \"name\": …}, …]}".into());
    let entries = serde_json::from_str::<BatchBody>(body).ok().and_then(|b| b.users).ok_or_else(shape)?;
    if entries.is_empty() || entries.len() > MAX_BATCH {
        return Err(Error::Invalid(format!("'users' must hold 1 to {MAX_BATCH} entries, not {}", entries.len())));
    }
    entries
        .into_iter()
        .map(|entry| serde_json::from_value(serde_json::Value::Object(entry)).map_err(|_| shape()))
        .collect()
}

/// Validates every entry first, so that an invalid one or a repeat within the batch is answered
/// without asking the pool.
fn screen(entries: &[InviteeBody]) -> Vec<std::result::Result<Invitee, BatchResult>> {
    let mut seen = HashSet::new();
    entries
        .iter()
        .map(|entry| {
            let invitee = entry
                .validate()
                .map_err(|e| BatchResult::new(entry.raw_email(), BatchOutcome::Invalid, e.to_string()))?;
            if !seen.insert(invitee.email.clone()) {
                let detail = "listed earlier in this batch".to_string();
                return Err(BatchResult::new(invitee.email, BatchOutcome::Exists, detail));
            }
            Ok(invitee)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use async_trait::async_trait;
    use tokio::time::Instant;

    use super::*;
    use crate::domain::Role;
    use crate::fakes::{
        FixedCaller, MemoryApps, MemoryHistory, MemoryInvitations, MemoryRoles, active_app, invited_user,
    };
    use crate::ports::Page;

    #[test]
    fn a_batch_entry_is_an_object_or_the_body_is_refused() {
        let entries = parse_batch(r#"{"users": [{"email": 3}, {"email": "a@b.test", "x": 1}]}"#).unwrap();
        assert_eq!(entries.len(), 2);
        for body in [r#"{"users": [[null, null]]}"#, r#"{"users": [1]}"#, r#"{"users": []}"#, "[]"] {
            assert_eq!(parse_batch(body).unwrap_err().kind(), crate::error::ErrorKind::Invalid, "{body}");
        }
    }

    /// A pool whose every invitation takes `delay` (virtual time) and succeeds.
    struct SlowPool {
        delay: Duration,
        invited: AtomicU32,
    }

    #[async_trait]
    impl AppUsers for SlowPool {
        async fn invite(&self, _: &str, invitee: &Invitee) -> Result<AppUser> {
            tokio::time::sleep(self.delay).await;
            self.invited.fetch_add(1, Ordering::SeqCst);
            Ok(invited_user(&invitee.email, &invitee.email))
        }
        async fn resend(&self, _: &str, _: &str) -> Result<()> {
            Ok(())
        }
        async fn list(&self, _: &str, _: UserFilter, _: u32, _: Option<&str>) -> Result<Page<AppUser>> {
            Ok(Page { items: vec![], next_token: None })
        }
        async fn revoke(&self, _: &str, _: &str) -> Result<()> {
            Ok(())
        }
        async fn end_access(&self, _: &str, _: &str) -> Result<()> {
            Ok(())
        }
    }

    fn batch_request(app_id: &str, count: usize) -> ApiRequest {
        let users: Vec<_> = (0..count).map(|i| serde_json::json!({"email": format!("u{i}@example.com")})).collect();
        let mut request = ApiRequest {
            method: Method::POST,
            resource: "/apps/{id}/users/batch".into(),
            path_parameters: [("id".to_string(), app_id.to_string())].into(),
            body: serde_json::json!({ "users": users }).to_string(),
            ..Default::default()
        };
        request.headers.insert(http::header::AUTHORIZATION, http::HeaderValue::from_static("Bearer t"));
        request
    }

    fn api(pool: Arc<SlowPool>, apps: Arc<MemoryApps>) -> UsersApi {
        UsersApi {
            apps,
            history: Arc::new(MemoryHistory::default()),
            invitations: Arc::new(MemoryInvitations::default()),
            users: pool,
            roles: Arc::new(MemoryRoles::default()),
            verifier: Arc::new(FixedCaller(Role::Admin)),
            backoff: Backoff::default(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_batch_answers_inside_the_gateway_timeout_with_the_rest_failed() {
        let apps = Arc::new(MemoryApps::default());
        let app = active_app(&apps);
        let pool = Arc::new(SlowPool { delay: Duration::from_secs(6), invited: AtomicU32::new(0) });
        let started = Instant::now();
        let response = api(pool.clone(), apps).handle(&batch_request(&app.id, 100)).await;
        assert_eq!(response.status(), 200, "{}", response.body());
        assert!(started.elapsed() < Duration::from_secs(29), "answered after {:?}", started.elapsed());
        let body: serde_json::Value = serde_json::from_str(response.body()).unwrap();
        let results = body["results"].as_array().unwrap();
        assert_eq!(results.len(), 100, "one result per entry");
        for (i, result) in results.iter().enumerate() {
            assert_eq!(result["email"], format!("u{i}@example.com"), "in order");
        }
        let invited = pool.invited.load(Ordering::SeqCst) as usize;
        assert!((1..100).contains(&invited), "{invited} invited before the budget ran out");
        assert!(results[..invited].iter().all(|r| r["outcome"] == "invited"), "{results:?}");
        for late in &results[invited..] {
            assert_eq!(late["outcome"], "failed");
            assert!(late["detail"].as_str().unwrap().contains("ran out of time"), "{late}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_quick_batch_invites_everyone_and_answers_repeats_and_bad_addresses_itself() {
        let apps = Arc::new(MemoryApps::default());
        let app = active_app(&apps);
        let pool = Arc::new(SlowPool { delay: Duration::from_millis(50), invited: AtomicU32::new(0) });
        let mut request = batch_request(&app.id, 0);
        request.body = r#"{"users":[{"email":"a@example.com"},{"email":"A@example.com"},{"email":"nope"}]}"#.into();
        let response = api(pool.clone(), apps).handle(&request).await;
        let body: serde_json::Value = serde_json::from_str(response.body()).unwrap();
        let outcomes: Vec<&str> =
            body["results"].as_array().unwrap().iter().map(|r| r["outcome"].as_str().unwrap()).collect();
        assert_eq!(outcomes, ["invited", "exists", "invalid"]);
        assert_eq!(pool.invited.load(Ordering::SeqCst), 1, "the repeat and the bad address never reach the pool");
    }
}
