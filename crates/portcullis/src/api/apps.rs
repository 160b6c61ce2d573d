//! `/apps`: create, list, read and delete protected apps.

use std::sync::Arc;

use http::{Method, StatusCode};
use time::OffsetDateTime;

use super::lambda::Operations;
use super::{
    ApiRequest, ApiResponse, AppView, Listing, PageRequest, authenticate, json_response, no_route, problem,
    with_location,
};
use crate::config::WorkflowTiming;
use crate::domain::{App, AppError, AppEvent, AppStatus, Caller, Resources, Step, validate_new_app};
use crate::error::{Error, Result};
use crate::ports::{AppStore, TokenVerifier, Workflow};

/// The `/apps` operations.
pub struct AppsApi {
    pub store: Arc<dyn AppStore>,
    pub workflow: Arc<dyn Workflow>,
    pub verifier: Arc<dyn TokenVerifier>,
    pub timing: WorkflowTiming,
}

#[async_trait::async_trait]
impl Operations for AppsApi {
    /// Serves one request: authenticate, route by operation, map errors to problem+json.
    async fn handle(&self, request: &ApiRequest) -> ApiResponse {
        let result = match authenticate(self.verifier.as_ref(), request).await {
            Err(e) => Err(e),
            Ok(caller) => match (&request.method, request.resource.as_str()) {
                (&Method::POST, "/apps") => self.create(&caller, request).await,
                (&Method::GET, "/apps") => self.list(&caller, request).await,
                (&Method::GET, "/apps/{id}") => self.get(&caller, request.path("id")).await,
                (&Method::DELETE, "/apps/{id}") => self.delete(&caller, request.path("id")).await,
                (&Method::GET, "/apps/{id}/events") => self.events(&caller, request).await,
                _ => return no_route(request),
            },
        };
        result.unwrap_or_else(|e| problem(&e))
    }
}

impl AppsApi {
    /// `POST /apps`: record the app, claim its domain, start provisioning. 202 with the app.
    async fn create(&self, caller: &Caller, request: &ApiRequest) -> Result<ApiResponse> {
        caller.require_admin()?;
        let new = validate_new_app(&request.body)?;
        let now = OffsetDateTime::now_utc();
        let mut app = App {
            id: uuid::Uuid::now_v7().to_string(),
            tenant_id: caller.tenant_id.clone(),
            name: new.name,
            domain: new.domain,
            target: new.target,
            session_timeout_seconds: new.session_timeout_seconds,
            status: AppStatus::Provisioning,
            step: Some(Step::Certificate),
            resources: Resources::default(),
            error: None,
            created_by: caller.display_name.clone(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let event = AppEvent {
            at: now,
            actor: caller.display_name.clone(),
            action: "app.created".into(),
            detail: format!("{} for {}", app.name, app.domain),
        };
        self.store.create(&app, &event).await?;
        if let Err(e) = self.workflow.start_provisioning(&self.execution_input(&app), &app.id).await {
            // Leave nothing half-done: the app is recorded as failed and its domain freed.
            tracing::error!(app_id = %app.id, error = %e, "could not start provisioning");
            app.status = AppStatus::Failed;
            app.error = Some(AppError {
                step: Step::Certificate.as_str().into(),
                code: "WorkflowNotStarted".into(),
                message: "provisioning could not be started; delete the app and try again".into(),
            });
            self.store.update(&mut app).await?;
            self.store.release_domain(&app.domain, &app.id).await?;
            return Err(e);
        }
        tracing::info!(app_id = %app.id, tenant = %app.tenant_id, domain = %app.domain, "provisioning started");
        let response = json_response(StatusCode::ACCEPTED, &AppView::from(&app));
        Ok(with_location(response, &format!("/apps/{}", app.id)))
    }

    /// `GET /apps`: the caller's tenant's apps, a page at a time.
    async fn list(&self, caller: &Caller, request: &ApiRequest) -> Result<ApiResponse> {
        let page = PageRequest::from_query(&request.query)?;
        let apps = self.store.list(&caller.tenant_id, page.limit, page.next_token.as_deref()).await?;
        let body = Listing { items: apps.items.iter().map(AppView::from).collect(), next_token: apps.next_token };
        Ok(json_response(StatusCode::OK, &body))
    }

    /// `GET /apps/{id}`.
    async fn get(&self, caller: &Caller, app_id: &str) -> Result<ApiResponse> {
        let app = find_app(self.store.as_ref(), caller, app_id).await?;
        Ok(json_response(StatusCode::OK, &AppView::from(&app)))
    }

    /// `GET /apps/{id}/events`: the app's history, newest first.
    async fn events(&self, caller: &Caller, request: &ApiRequest) -> Result<ApiResponse> {
        let page = PageRequest::from_query(&request.query)?;
        let app = find_app(self.store.as_ref(), caller, request.path("id")).await?;
        let events = self.store.list_events(&app.id, page.limit, page.next_token.as_deref()).await?;
        Ok(json_response(StatusCode::OK, &Listing { items: events.items, next_token: events.next_token }))
    }

    /// `DELETE /apps/{id}`: 202 and deprovisioning; 409 while provisioning is still running.
    async fn delete(&self, caller: &Caller, app_id: &str) -> Result<ApiResponse> {
        caller.require_admin()?;
        let mut app = find_app(self.store.as_ref(), caller, app_id).await?;
        match app.status {
            AppStatus::Provisioning => {
                return Err(Error::Conflict(
                    "the app is still being provisioned; delete it once it is ACTIVE or FAILED".into(),
                ));
            }
            // Already on its way out (or gone): deleting again changes nothing.
            AppStatus::Deleting | AppStatus::Deleted => {
                return Ok(json_response(StatusCode::ACCEPTED, &AppView::from(&app)));
            }
            AppStatus::Active | AppStatus::Failed => {}
        }
        app.status = AppStatus::Deleting;
        app.step = None;
        self.store.update(&mut app).await?;
        let event = AppEvent {
            at: OffsetDateTime::now_utc(),
            actor: caller.display_name.clone(),
            action: "app.delete-requested".into(),
            detail: format!("{} ({})", app.name, app.domain),
        };
        self.store.append_event(&app.id, &event).await?;
        // The version is new with every delete attempt; a repeat of the same start is still harmless.
        let execution_name = format!("{}-delete-{}", app.id, app.version);
        self.workflow.start_deprovisioning(&self.execution_input(&app), &execution_name).await?;
        Ok(json_response(StatusCode::ACCEPTED, &AppView::from(&app)))
    }

    /// What each execution starts with: which app, and how its wait loops poll.
    fn execution_input(&self, app: &App) -> serde_json::Value {
        serde_json::json!({ "tenantId": app.tenant_id, "appId": app.id, "timing": self.timing })
    }
}

/// The caller's tenant's app, or 404 (also when the app belongs to another tenant).
pub(crate) async fn find_app(store: &dyn AppStore, caller: &Caller, app_id: &str) -> Result<App> {
    let not_found = || Error::NotFound(format!("no app '{app_id}'"));
    if uuid::Uuid::parse_str(app_id).is_err() {
        return Err(not_found());
    }
    store.get(&caller.tenant_id, app_id).await?.ok_or_else(not_found)
}
