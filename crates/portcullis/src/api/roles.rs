//! An app's roles (`/apps/{id}/roles`) and a user's roles (`/apps/{id}/users/{username}/roles`), served
//! by the users API: roles are groups of the same pool, and Cognito puts a user's groups in the
//! `cognito:groups` claim of the access token the load balancer forwards to the app.

use std::collections::BTreeSet;

use futures::future::try_join_all;
use http::StatusCode;
use serde::Deserialize;

use super::apps::find_app;
use super::users::UsersApi;
use super::{ApiRequest, ApiResponse, Listing, PageRequest, PageScope, json_response, no_content};
use crate::domain::{
    AppRole, AppRoleBody, AuditAction, Caller, Invitee, UserRoles, parse_roles, role_changes, unknown_roles,
    validate_role_name,
};
use crate::error::{Chain, Error, Result};

/// `PUT /apps/{id}/users/{username}/roles`'s body, as received.
#[derive(Debug, Deserialize)]
struct RolesBody {
    roles: Option<serde_json::Value>,
}

impl UsersApi {
    /// `POST /apps/{id}/roles`: 201 with the new role.
    pub(super) async fn create_role(&self, caller: &Caller, app_id: &str, body: &str) -> Result<ApiResponse> {
        caller.require_admin()?;
        let role = serde_json::from_str::<AppRoleBody>(body)
            .map_err(|e| Error::Invalid(format!("the body must be {{\"name\": …, \"description\": …}}: {e}")))?
            .validate()?;
        let (app, pool_id) = self.active_app(caller, app_id).await?;
        let created = self.backoff.retry(|| self.roles.create(&pool_id, &role)).await?;
        self.record(caller, &app, AuditAction::RoleCreated, format!("role '{}'", created.name)).await?;
        Ok(json_response(StatusCode::CREATED, &created))
    }

    /// `GET /apps/{id}/roles`: the app's roles, a page at a time.
    pub(super) async fn list_roles(&self, caller: &Caller, app_id: &str, request: &ApiRequest) -> Result<ApiResponse> {
        let scope = PageScope::roles(app_id);
        let page = PageRequest::from_query(&request.query, &scope)?;
        let app = find_app(self.apps.as_ref(), caller, app_id).await?;
        let Some(pool_id) = app.resources.user_pool_id.as_deref() else {
            return Ok(json_response(StatusCode::OK, &Listing::<AppRole> { items: vec![], next_token: None }));
        };
        let roles = self.backoff.retry(|| self.roles.list(pool_id, page.limit, page.next_token.as_deref())).await?;
        Ok(json_response(StatusCode::OK, &Listing::sealed(roles.items, roles.next_token, &scope)?))
    }

    /// `DELETE /apps/{id}/roles/{role}`: 204; whoever held the role no longer does (once their access
    /// token is renewed: the load balancer's session keeps the one it has, up to an hour).
    pub(super) async fn delete_role(&self, caller: &Caller, app_id: &str, role: &str) -> Result<ApiResponse> {
        caller.require_admin()?;
        let role = validate_role_name(role)?;
        let (app, pool_id) = self.active_app(caller, app_id).await?;
        self.backoff.retry(|| self.roles.delete(&pool_id, &role)).await?;
        self.record(caller, &app, AuditAction::RoleDeleted, format!("role '{role}', and every user's hold of it"))
            .await?;
        Ok(no_content())
    }

    /// `GET /apps/{id}/users/{username}/roles`.
    pub(super) async fn user_roles(&self, caller: &Caller, app_id: &str, username: &str) -> Result<ApiResponse> {
        let (_, pool_id) = self.active_app(caller, app_id).await?;
        let roles = self.backoff.retry(|| self.roles.held_by(&pool_id, username)).await?;
        Ok(json_response(StatusCode::OK, &UserRoles { username: username.to_string(), roles }))
    }

    /// `PUT /apps/{id}/users/{username}/roles`: the user holds exactly these roles. Safe to send again:
    /// a change cut short by throttling is finished by the next.
    pub(super) async fn set_user_roles(
        &self,
        caller: &Caller,
        app_id: &str,
        username: &str,
        body: &str,
    ) -> Result<ApiResponse> {
        caller.require_admin()?;
        let shape = || Error::Invalid("the body must be {\"roles\": [role name, …]}".into());
        let wanted = serde_json::from_str::<RolesBody>(body).map_err(|_| shape())?.roles.ok_or_else(shape)?;
        let wanted = parse_roles(Some(&wanted))?;
        let (app, pool_id) = self.active_app(caller, app_id).await?;
        let held = self.backoff.retry(|| self.roles.held_by(&pool_id, username)).await?;
        let (give, take) = role_changes(&held, &wanted);
        if give.is_empty() && take.is_empty() {
            return Ok(json_response(StatusCode::OK, &UserRoles { username: username.to_string(), roles: held }));
        }
        self.check_roles_exist(&pool_id, &give.iter().cloned().collect()).await?;
        for role in &give {
            self.backoff.retry(|| self.roles.give(&pool_id, username, role)).await?;
        }
        for role in &take {
            self.backoff.retry(|| self.roles.take(&pool_id, username, role)).await?;
        }
        let listed = |roles: &BTreeSet<String>| match roles.is_empty() {
            true => "none".to_string(),
            false => roles.iter().cloned().collect::<Vec<_>>().join(", "),
        };
        let detail = format!("{username}: roles {} (were {})", listed(&wanted), listed(&held));
        self.record(caller, &app, AuditAction::UserRolesChanged, detail).await?;
        Ok(json_response(StatusCode::OK, &UserRoles { username: username.to_string(), roles: wanted }))
    }

    /// 422 naming every role of `roles` the app does not have; each asked once.
    pub(super) async fn check_roles_exist(&self, pool_id: &str, roles: &BTreeSet<String>) -> Result<()> {
        let unknown = self.unknown_of(pool_id, roles).await?;
        match unknown.is_empty() {
            true => Ok(()),
            false => Err(unknown_roles(&unknown.iter().map(String::as_str).collect::<Vec<_>>())),
        }
    }

    async fn unknown_of(&self, pool_id: &str, roles: &BTreeSet<String>) -> Result<BTreeSet<String>> {
        let found = try_join_all(roles.iter().map(|role| async move {
            let exists = self.backoff.retry(|| self.roles.exists(pool_id, role)).await?;
            Ok::<_, Error>((role.clone(), exists))
        }))
        .await?;
        Ok(found.into_iter().filter(|(_, exists)| !exists).map(|(role, _)| role).collect())
    }

    /// A batch's entries with the roles they name checked, each role once: an entry naming a role the
    /// app does not have is answered `invalid`, as a bad address is.
    pub(super) async fn screen_roles<R>(
        &self,
        pool_id: &str,
        screened: Vec<std::result::Result<Invitee, R>>,
        refuse: impl Fn(Invitee, String) -> R,
    ) -> Result<Vec<std::result::Result<Invitee, R>>> {
        let named: BTreeSet<String> = screened.iter().flatten().flat_map(|i| i.roles.iter().cloned()).collect();
        let unknown = self.unknown_of(pool_id, &named).await?;
        Ok(screened
            .into_iter()
            .map(|entry| {
                let invitee = entry?;
                let missing: Vec<&str> = invitee.roles.intersection(&unknown).map(String::as_str).collect();
                match missing.is_empty() {
                    true => Ok(invitee),
                    false => {
                        let detail = unknown_roles(&missing).to_string();
                        Err(refuse(invitee, detail))
                    }
                }
            })
            .collect())
    }

    /// Gives a newly invited user their roles; if that fails, the user is removed again, so that no
    /// invitation stands with fewer roles than it was sent with.
    pub(super) async fn give_roles_or_undo(
        &self,
        pool_id: &str,
        username: &str,
        roles: &BTreeSet<String>,
    ) -> Result<()> {
        for role in roles {
            if let Err(e) = self.backoff.retry(|| self.roles.give(pool_id, username, role)).await {
                if let Err(undo) = self.backoff.retry(|| self.users.revoke(pool_id, username)).await {
                    tracing::error!(error = %Chain(&undo), "could not remove a user whose roles were not given");
                }
                return Err(e);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use async_trait::async_trait;
    use http::Method;

    use super::*;
    use crate::api::Operations;
    use crate::domain::{AppUser, Role};
    use crate::fakes::{
        FixedCaller, MemoryApps, MemoryHistory, MemoryInvitations, MemoryRoles, active_app, invited_user,
    };
    use crate::ports::{AppUsers, Page, UserFilter};
    use crate::retry::Backoff;

    /// A pool that invites everyone and counts removals.
    #[derive(Default)]
    struct Pool {
        revoked: AtomicU32,
    }

    #[async_trait]
    impl AppUsers for Pool {
        async fn invite(&self, _: &str, invitee: &Invitee) -> Result<AppUser> {
            Ok(invited_user("u-1", &invitee.email))
        }
        async fn resend(&self, _: &str, _: &str) -> Result<()> {
            Ok(())
        }
        async fn list(&self, _: &str, _: UserFilter, _: u32, _: Option<&str>) -> Result<Page<AppUser>> {
            Ok(Page { items: vec![], next_token: None })
        }
        async fn revoke(&self, _: &str, _: &str) -> Result<()> {
            self.revoked.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        async fn end_access(&self, _: &str, _: &str) -> Result<()> {
            Ok(())
        }
    }

    fn api(apps: Arc<MemoryApps>, pool: Arc<Pool>, roles: Arc<MemoryRoles>) -> UsersApi {
        UsersApi {
            apps,
            history: Arc::new(MemoryHistory::default()),
            invitations: Arc::new(MemoryInvitations::default()),
            users: pool,
            roles,
            verifier: Arc::new(FixedCaller(Role::Admin)),
            backoff: Backoff::default(),
        }
    }

    fn request(method: Method, resource: &str, app_id: &str, body: serde_json::Value) -> ApiRequest {
        let mut request = ApiRequest {
            method,
            resource: resource.into(),
            path_parameters: [("id".to_string(), app_id.to_string()), ("username".to_string(), "u-1".to_string())]
                .into(),
            body: body.to_string(),
            ..Default::default()
        };
        request.headers.insert(http::header::AUTHORIZATION, http::HeaderValue::from_static("Bearer t"));
        request
    }

    fn roles(names: &[&str]) -> Arc<MemoryRoles> {
        let roles = MemoryRoles::default();
        roles.roles.lock().unwrap().extend(names.iter().map(|n| n.to_string()));
        Arc::new(roles)
    }

    #[tokio::test]
    async fn a_user_is_given_exactly_the_roles_named_and_unknown_ones_change_nothing() {
        let apps = Arc::new(MemoryApps::default());
        let app = active_app(&apps);
        let roles = roles(&["admin", "editor", "viewer"]);
        roles.held.lock().unwrap().insert("u-1".into(), ["admin".to_string(), "viewer".to_string()].into());
        let api = api(apps, Arc::default(), roles.clone());
        let path = "/apps/{id}/users/{username}/roles";

        let response =
            api.handle(&request(Method::PUT, path, &app.id, serde_json::json!({"roles": ["editor", "owner"]}))).await;
        assert_eq!(response.status(), 422, "{}", response.body());
        assert!(response.body().contains("'owner'"), "{}", response.body());
        assert_eq!(roles.held.lock().unwrap()["u-1"].len(), 2, "nothing changed");

        let response =
            api.handle(&request(Method::PUT, path, &app.id, serde_json::json!({"roles": ["viewer", "editor"]}))).await;
        assert_eq!(response.status(), 200, "{}", response.body());
        let body: serde_json::Value = serde_json::from_str(response.body()).unwrap();
        assert_eq!(body["roles"], serde_json::json!(["editor", "viewer"]));
        let held: Vec<String> = roles.held.lock().unwrap()["u-1"].iter().cloned().collect();
        assert_eq!(held, ["editor", "viewer"]);
    }

    #[tokio::test]
    async fn an_invitation_whose_roles_cannot_be_given_is_taken_back() {
        let apps = Arc::new(MemoryApps::default());
        let app = active_app(&apps);
        let roles = roles(&["editor"]);
        roles.refused.lock().unwrap().insert("editor".into());
        let pool = Arc::new(Pool::default());
        let api = api(apps, pool.clone(), roles);
        let body = serde_json::json!({"email": "a@example.com", "roles": ["editor"]});
        let response = api.handle(&request(Method::POST, "/apps/{id}/users", &app.id, body)).await;
        assert!(response.status().is_server_error(), "{}", response.body());
        assert_eq!(pool.revoked.load(Ordering::SeqCst), 1, "the user is removed again");

        let body = serde_json::json!({"email": "b@example.com", "roles": ["nobody"]});
        let response = api.handle(&request(Method::POST, "/apps/{id}/users", &app.id, body)).await;
        assert_eq!(response.status(), 422, "an unknown role is refused before the user is made");
    }
}
