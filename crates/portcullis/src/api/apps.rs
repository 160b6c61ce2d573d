//! `/apps`: create, list, read, change, delete and repair protected apps.

use std::sync::Arc;

use http::{Method, StatusCode};
use time::OffsetDateTime;

use super::{
    ApiRequest, ApiResponse, AppView, Listing, Operations, PageRequest, PageScope, authenticate, json_response,
    no_route, respond, with_location,
};
use crate::config::WorkflowTiming;
use crate::domain::{
    AccessPolicy, App, AppError, AppEvent, AppStatus, AuditAction, Caller, NewApp, Resources, SettingsChange,
    SettingsPatch, Step, Tenant, not_registered, validate_new_app,
};
use crate::error::{Chain, Error, Result};
use crate::ports::{
    AppRepository, Environments, History, LoadBalancer, Subject, TenantRegistry, TokenVerifier, Workflow,
};
use crate::workflow::{DriftCheck, Execution};

/// The `/apps` operations.
pub struct AppsApi {
    pub apps: Arc<dyn AppRepository>,
    pub history: Arc<dyn History>,
    pub tenants: Arc<dyn TenantRegistry>,
    pub workflow: Arc<dyn Workflow>,
    pub verifier: Arc<dyn TokenVerifier>,
    pub timing: WorkflowTiming,
    /// Read only, for the preflight.
    pub load_balancer: Arc<dyn LoadBalancer>,
    pub environments: Arc<dyn Environments>,
    /// Looks at an ACTIVE app again and puts back what Portcullis owns (`POST /apps/{id}/repair`); none:
    /// repair is refused as misconfigured.
    pub drift: Option<Arc<DriftCheck>>,
}

/// The operations, by openapi.yaml's `operationId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    CreateApp,
    Preflight,
    ListApps,
    GetApp,
    DeleteApp,
    ListAppEvents,
    RepairApp,
    UpdateApp,
}

impl Route {
    fn of(request: &ApiRequest) -> Option<Route> {
        Some(match (&request.method, request.resource.as_str()) {
            (&Method::POST, "/apps") => Route::CreateApp,
            (&Method::POST, "/apps/preflight") => Route::Preflight,
            (&Method::GET, "/apps") => Route::ListApps,
            (&Method::GET, "/apps/{id}") => Route::GetApp,
            (&Method::DELETE, "/apps/{id}") => Route::DeleteApp,
            (&Method::GET, "/apps/{id}/events") => Route::ListAppEvents,
            (&Method::POST, "/apps/{id}/repair") => Route::RepairApp,
            (&Method::PATCH, "/apps/{id}") => Route::UpdateApp,
            _ => return None,
        })
    }

    fn operation_id(self) -> &'static str {
        match self {
            Route::CreateApp => "createApp",
            Route::Preflight => "preflightApp",
            Route::ListApps => "listApps",
            Route::GetApp => "getApp",
            Route::DeleteApp => "deleteApp",
            Route::ListAppEvents => "listAppEvents",
            Route::RepairApp => "repairApp",
            Route::UpdateApp => "updateApp",
        }
    }
}

#[async_trait::async_trait]
impl Operations for AppsApi {
    async fn handle(&self, request: &ApiRequest) -> ApiResponse {
        let Some(route) = Route::of(request) else { return no_route(request) };
        respond(route.operation_id(), request, async {
            let caller = authenticate(self.verifier.as_ref(), request).await?;
            match route {
                Route::CreateApp => self.create(&caller, request).await,
                Route::Preflight => self.preflight(&caller, request).await,
                Route::ListApps => self.list(&caller, request).await,
                Route::GetApp => self.get(&caller, request.path("id")).await,
                Route::DeleteApp => self.delete(&caller, request.path("id")).await,
                Route::ListAppEvents => self.events(&caller, request).await,
                Route::RepairApp => self.repair(&caller, request.path("id")).await,
                Route::UpdateApp => self.update(&caller, request.path("id"), &request.body).await,
            }
        })
        .await
    }
}

impl AppsApi {
    /// `POST /apps`: record the app, claim its domain, start provisioning. 202 with the app.
    async fn create(&self, caller: &Caller, request: &ApiRequest) -> Result<ApiResponse> {
        let tenant_id = caller.require_admin()?;
        let new = validate_new_app(&request.body)?;
        let tenant = self.check_grants(tenant_id, &new).await?;
        // Without a list of its own, the app takes the tenant's default (an explicit [] is "any address").
        let allowed_email_domains =
            new.allowed_email_domains.unwrap_or_else(|| tenant.registration.default_allowed_email_domains.clone());
        let now = OffsetDateTime::now_utc();
        let mut app = App {
            id: uuid::Uuid::now_v7().to_string(),
            tenant_id: tenant_id.to_string(),
            name: new.name,
            domain: new.domain,
            target: new.target,
            session_timeout_seconds: new.session_timeout_seconds,
            dns_alias: new.dns_alias,
            auto_resend: new.auto_resend,
            access_policy: AccessPolicy { allowed_email_domains, default_access_days: new.default_access_days },
            mfa: new.mfa,
            status: AppStatus::Provisioning,
            step: Some(Step::Certificate),
            resources: Resources::default(),
            error: None,
            created_by: caller.actor.clone(),
            created_at: now,
            updated_at: now,
            version: 1,
            deletion_version: None,
            health: None,
            settings_change: None,
        };
        tracing::Span::current().record("app_id", app.id.as_str());
        let detail = format!("{} for {}", app.name, app.domain);
        self.apps.create(&app, &AppEvent::now(&caller.actor, AuditAction::AppCreated, detail)).await?;
        if let Err(not_started) = self.workflow.start(&Execution::provision(&app, self.timing)).await {
            if let Err(cleanup) = self.mark_not_started(&mut app).await {
                tracing::error!(app_id = %app.id, error = %Chain(&not_started), "provisioning could not be started");
                return Err(cleanup);
            }
            return Err(not_started);
        }
        tracing::info!(app_id = %app.id, domain = %app.domain, "provisioning started");
        let response = json_response(StatusCode::ACCEPTED, &AppView::from(&app));
        Ok(with_location(response, &format!("/apps/{}", app.id)))
    }

    /// The tenant's grants allow the app: the tenant is registered, the domain is allowed, the target is
    /// granted, an alias record asked for has a hosted zone to go into, and another live app fits in the
    /// quota. Refused in the preflight's words.
    async fn check_grants(&self, tenant_id: &str, new: &NewApp) -> Result<Tenant> {
        let tenant = self.tenants.get(tenant_id).await?.ok_or_else(|| Error::Forbidden(not_registered(tenant_id)))?;
        tenant.check_domain(&new.domain).map_err(Error::Forbidden)?;
        tenant.check_target(&new.target).map_err(Error::Forbidden)?;
        if new.dns_alias {
            tenant.check_dns_alias().map_err(Error::Forbidden)?;
        }
        tenant.check_quota(self.apps.count_live(tenant_id).await?).map_err(Error::QuotaExceeded)?;
        Ok(tenant)
    }

    /// Leaves nothing half-done when provisioning could not start: the app is recorded as failed and
    /// its domain freed.
    async fn mark_not_started(&self, app: &mut App) -> Result<()> {
        app.status = AppStatus::Failed;
        app.error = Some(AppError {
            step: Step::Certificate,
            code: "WorkflowNotStarted".into(),
            message: "provisioning could not be started; delete the app and try again".into(),
        });
        self.apps.update(app).await?;
        self.apps.release_domain(&app.domain, &app.id).await
    }

    /// `GET /apps`: the caller's tenant's apps, a page at a time.
    async fn list(&self, caller: &Caller, request: &ApiRequest) -> Result<ApiResponse> {
        let tenant_id = caller.tenant_id()?;
        let scope = PageScope::apps(tenant_id);
        let page = PageRequest::from_query(&request.query, &scope)?;
        let apps = self.apps.list(tenant_id, page.limit, page.next_token.as_deref()).await?;
        let body = Listing::sealed(apps.items.iter().map(AppView::from).collect(), apps.next_token, &scope)?;
        Ok(json_response(StatusCode::OK, &body))
    }

    /// `GET /apps/{id}`.
    async fn get(&self, caller: &Caller, app_id: &str) -> Result<ApiResponse> {
        let app = find_app(self.apps.as_ref(), caller, app_id).await?;
        Ok(json_response(StatusCode::OK, &AppView::from(&app)))
    }

    /// `GET /apps/{id}/events`: the app's history, newest first.
    async fn events(&self, caller: &Caller, request: &ApiRequest) -> Result<ApiResponse> {
        let scope = PageScope::app_events(request.path("id"));
        let page = PageRequest::from_query(&request.query, &scope)?;
        let app = find_app(self.apps.as_ref(), caller, request.path("id")).await?;
        let events = self.history.list(Subject::App(&app.id), page.limit, page.next_token.as_deref()).await?;
        Ok(json_response(StatusCode::OK, &Listing::sealed(events.items, events.next_token, &scope)?))
    }

    /// `DELETE /apps/{id}`: 202, and the app ends DELETED. Provisioning is cancelled first; a deletion
    /// whose deprovisioning is not running (it never started, or it ended unfinished) starts again; one
    /// under way, or done, is left as it is.
    async fn delete(&self, caller: &Caller, app_id: &str) -> Result<ApiResponse> {
        caller.require_admin()?;
        let mut app = find_app(self.apps.as_ref(), caller, app_id).await?;
        if app.status == AppStatus::Provisioning {
            // Stopped first, so no further step starts; read again, as a step in flight may have written.
            self.workflow.stop(&Execution::provision(&app, self.timing)).await?;
            app = find_app(self.apps.as_ref(), caller, app_id).await?;
        }
        // The stopped run is reported as ended, and may be marked FAILED (undone) meanwhile: then the
        // write of DELETING meets a newer app, read again, and delete what that left.
        let mut attempts = 0;
        while !self.deletion_done_or_under_way(&app).await? {
            match self.start_deletion(caller, &mut app).await {
                Err(Error::Conflict(_)) if attempts < 2 => {
                    attempts += 1;
                    app = find_app(self.apps.as_ref(), caller, app_id).await?;
                }
                outcome => {
                    outcome?;
                    break;
                }
            }
        }
        Ok(json_response(StatusCode::ACCEPTED, &AppView::from(&app)))
    }

    /// `PATCH /apps/{id}`: change an ACTIVE app's settings. What only Portcullis keeps (who may be
    /// invited, for how long, automatic resending) changes at once: 200. A change that reaches the pool or
    /// the rule too (name, MFA, session timeout) is applied by the settings workflow: 202, the app showing
    /// `settingsChange` until it is done, then `app.updated` (or `app.update-failed`) in its history.
    async fn update(&self, caller: &Caller, app_id: &str, body: &str) -> Result<ApiResponse> {
        caller.require_admin()?;
        let patch = SettingsPatch::parse(body)?;
        let mut app = find_app(self.apps.as_ref(), caller, app_id).await?;
        if app.status != AppStatus::Active {
            return Err(Error::Conflict(format!(
                "the app is {}; its settings can be changed once it is ACTIVE",
                app.status.as_str()
            )));
        }
        if let Some(change) = &app.settings_change {
            return Err(Error::Conflict(format!(
                "a change of the app's settings asked for by {} is being applied; ask again once it is done",
                change.requested_by
            )));
        }
        let current = app.settings();
        let wanted = patch.applied_to(&current);
        if wanted == current {
            return Ok(json_response(StatusCode::OK, &AppView::from(&app)));
        }
        if !wanted.reach_beyond_the_record(&current) {
            app.adopt(wanted.clone());
            self.apps.update(&mut app).await?;
            let event = AppEvent::now(&caller.actor, AuditAction::AppUpdated, wanted.changes_from(&current));
            self.history.append(Subject::App(&app.id), &event).await?;
            return Ok(json_response(StatusCode::OK, &AppView::from(&app)));
        }
        let execution = Execution::change_settings(&app, self.timing);
        app.settings_change = Some(SettingsChange {
            settings: wanted,
            requested_by: caller.actor.clone(),
            requested_at: OffsetDateTime::now_utc(),
            execution: execution.name.clone(),
        });
        self.apps.update(&mut app).await?;
        if let Err(not_started) = self.workflow.start(&execution).await {
            // Nothing half-done: the change is dropped, and the caller may ask again.
            app.settings_change = None;
            if let Err(cleanup) = self.apps.update(&mut app).await {
                tracing::error!(app_id = %app.id, error = %Chain(&not_started), "the settings change could not start");
                return Err(cleanup);
            }
            return Err(not_started);
        }
        Ok(json_response(StatusCode::ACCEPTED, &AppView::from(&app)))
    }

    /// `POST /apps/{id}/repair`: look at the ACTIVE app again, put back what Portcullis owns, and answer
    /// the app with its new `health`; 409, changing nothing, when something is not Portcullis's to repair.
    async fn repair(&self, caller: &Caller, app_id: &str) -> Result<ApiResponse> {
        caller.require_admin()?;
        let mut app = find_app(self.apps.as_ref(), caller, app_id).await?;
        let drift = self.drift.as_ref().ok_or_else(|| Error::config("apps-api was built without repair"))?;
        drift.repair(&mut app, &caller.actor).await?;
        Ok(json_response(StatusCode::OK, &AppView::from(&app)))
    }

    /// DELETED, or DELETING with its deprovisioning running: nothing for a delete to do.
    async fn deletion_done_or_under_way(&self, app: &App) -> Result<bool> {
        Ok(match app.status {
            AppStatus::Deleted => true,
            AppStatus::Deleting => self.workflow.is_running(&Execution::deprovision(app, self.timing)).await?,
            AppStatus::Provisioning | AppStatus::Active | AppStatus::Failed => false,
        })
    }

    /// Writes DELETING, records who asked, and starts deprovisioning under a name new to this attempt.
    /// Should the start fail, the app stays DELETING with nothing running, which a repeated delete
    /// starts again.
    async fn start_deletion(&self, caller: &Caller, app: &mut App) -> Result<()> {
        app.status = AppStatus::Deleting;
        app.step = None;
        app.deletion_version = Some(app.version);
        self.apps.update(app).await?;
        let detail = format!("{} ({})", app.name, app.domain);
        self.history
            .append(Subject::App(&app.id), &AppEvent::now(&caller.actor, AuditAction::AppDeleteRequested, detail))
            .await?;
        self.workflow.start(&Execution::deprovision(app, self.timing)).await
    }
}

/// The caller's tenant's app, or 404 (also when the app belongs to another tenant).
pub(crate) async fn find_app(apps: &dyn AppRepository, caller: &Caller, app_id: &str) -> Result<App> {
    let not_found = || Error::NotFound(format!("no app '{app_id}'"));
    if uuid::Uuid::parse_str(app_id).is_err() {
        return Err(not_found());
    }
    apps.get(caller.tenant_id()?, app_id).await?.ok_or_else(not_found)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Mutex;

    use http::header::{AUTHORIZATION, HeaderValue};

    use super::*;
    use crate::domain::{PollPolicy, Role};
    use crate::fakes::{self, FixedCaller, MemoryApps, MemoryHistory, MemoryListener, MemoryTenants, NoEnvironments};

    /// A workflow that refuses to start, or records what it started and stopped. What it started runs
    /// until stopped; `running` may also name executions started before the test.
    #[derive(Default)]
    struct Starter {
        refuse: bool,
        started: Mutex<Vec<Execution>>,
        stopped: Mutex<Vec<Execution>>,
        running: Mutex<HashSet<String>>,
    }

    impl Starter {
        fn running(names: &[&str]) -> Self {
            Starter { running: Mutex::new(names.iter().map(|n| n.to_string()).collect()), ..Default::default() }
        }

        fn started(&self) -> Vec<Execution> {
            self.started.lock().unwrap().clone()
        }

        fn stopped(&self) -> Vec<Execution> {
            self.stopped.lock().unwrap().clone()
        }
    }

    #[async_trait::async_trait]
    impl Workflow for Starter {
        async fn start(&self, execution: &Execution) -> Result<()> {
            if self.refuse {
                return Err(Error::retryable("StartExecution throttled"));
            }
            self.started.lock().unwrap().push(execution.clone());
            self.running.lock().unwrap().insert(execution.name.clone());
            Ok(())
        }
        async fn stop(&self, execution: &Execution) -> Result<()> {
            self.stopped.lock().unwrap().push(execution.clone());
            self.running.lock().unwrap().remove(&execution.name);
            Ok(())
        }
        async fn is_running(&self, execution: &Execution) -> Result<bool> {
            Ok(self.running.lock().unwrap().contains(&execution.name))
        }
    }

    fn api(workflow: Arc<Starter>, apps: Arc<MemoryApps>, tenants: MemoryTenants) -> AppsApi {
        let policy = PollPolicy { poll_seconds: 1, deadline_seconds: 10, max_wait_seconds: 2 };
        AppsApi {
            apps,
            history: Arc::new(MemoryHistory::default()),
            tenants: Arc::new(tenants),
            workflow,
            verifier: Arc::new(FixedCaller(Role::Admin)),
            timing: WorkflowTiming { certificate: policy, environment: policy },
            load_balancer: Arc::new(MemoryListener::default()),
            environments: Arc::new(NoEnvironments),
            drift: None,
        }
    }

    fn create(domain: &str, target_group: &str) -> ApiRequest {
        let mut request = ApiRequest {
            method: Method::POST,
            resource: "/apps".into(),
            body: serde_json::json!({"name": "Grafana", "domain": domain,
                "target": {"type": "alb", "listenerArn": fakes::LISTENER, "targetGroupArn": target_group}})
            .to_string(),
            ..Default::default()
        };
        request.headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer token"));
        request
    }

    fn create_request() -> ApiRequest {
        create("grafana.example.com", fakes::TARGET_GROUP)
    }

    fn delete_request(app_id: &str) -> ApiRequest {
        let mut request = ApiRequest {
            method: Method::DELETE,
            resource: "/apps/{id}".into(),
            path_parameters: [("id".to_string(), app_id.to_string())].into(),
            ..Default::default()
        };
        request.headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer token"));
        request
    }

    /// Stores an app of the fake tenant in `status`, at `version`; returns its id.
    fn stored(apps: &MemoryApps, status: AppStatus, version: u64, deletion_version: Option<u64>) -> String {
        let id = uuid::Uuid::now_v7().to_string();
        let mut app = fakes::app(&id, status);
        (app.version, app.deletion_version) = (version, deletion_version);
        apps.insert(app);
        id
    }

    async fn accepted(api: &AppsApi, request: &ApiRequest) -> serde_json::Value {
        let response = api.handle(request).await;
        assert_eq!(response.status(), 202, "{}", response.body());
        serde_json::from_str(response.body()).unwrap()
    }

    async fn refusal(api: &AppsApi, request: &ApiRequest, status: u16) -> String {
        let response = api.handle(request).await;
        assert_eq!(response.status(), status, "{}", response.body());
        let body: serde_json::Value = serde_json::from_str(response.body()).unwrap();
        body["detail"].as_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn a_workflow_that_will_not_start_leaves_a_failed_app_and_a_free_domain() {
        let apps = Arc::new(MemoryApps::default());
        let starter = Arc::new(Starter { refuse: true, ..Default::default() });
        let response = api(starter, apps.clone(), MemoryTenants::granting_the_fakes()).handle(&create_request()).await;
        assert_eq!(response.status(), 503, "{}", response.body());
        let stored = apps.all();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].status, AppStatus::Failed);
        let error = stored[0].error.clone().unwrap();
        assert_eq!((error.step, error.code.as_str()), (Step::Certificate, "WorkflowNotStarted"));
        assert!(apps.domains.lock().unwrap().is_empty(), "the domain is free for another try");
    }

    #[tokio::test]
    async fn a_started_app_is_provisioning_under_its_own_execution_name() {
        let (apps, workflow) = (Arc::new(MemoryApps::default()), Arc::new(Starter::default()));
        let api = api(workflow.clone(), apps.clone(), MemoryTenants::granting_the_fakes());
        let response = api.handle(&create_request()).await;
        assert_eq!(response.status(), 202, "{}", response.body());
        let app = apps.all().remove(0);
        assert_eq!(app.status, AppStatus::Provisioning);
        assert_eq!(apps.domains.lock().unwrap().get("grafana.example.com"), Some(&app.id));
        assert_eq!(workflow.started(), vec![Execution::provision(&app, api.timing)]);
    }

    #[tokio::test]
    async fn an_unregistered_tenant_a_foreign_domain_or_target_are_403_and_a_full_quota_422() {
        let (apps, workflow) = (Arc::new(MemoryApps::default()), Arc::new(Starter::default()));
        let unregistered = api(workflow.clone(), apps.clone(), MemoryTenants::default());
        let detail = refusal(&unregistered, &create("a.example.com", fakes::TARGET_GROUP), 403).await;
        assert!(detail.contains("not registered") && detail.contains("PUT /tenants/t"), "{detail}");

        let api = api(workflow.clone(), apps.clone(), MemoryTenants::granting_the_fakes());
        let detail = refusal(&api, &create("a.other.test", fakes::TARGET_GROUP), 403).await;
        assert!(detail.contains("allowed domains (*.example.com)"), "{detail}");
        let detail = refusal(&api, &create("a.example.com", &format!("{}9", fakes::TARGET_GROUP)), 403).await;
        assert!(detail.contains("not one granted") && detail.contains("granted: shared"), "{detail}");

        for i in 0..crate::domain::DEFAULT_APP_QUOTA {
            let mut live = fakes::app(&format!("live-{i}"), AppStatus::Active);
            live.domain = format!("{i}.example.com");
            apps.insert(live);
        }
        let detail = refusal(&api, &create("a.example.com", fakes::TARGET_GROUP), 422).await;
        assert!(detail.contains("quotas.apps = 25"), "{detail}");
        assert_eq!(apps.all().len(), 25, "nothing was created");
        assert!(workflow.started().is_empty(), "a refused app starts no workflow");
    }

    #[tokio::test]
    async fn an_alias_record_needs_the_tenants_hosted_zone() {
        let (apps, workflow) = (Arc::new(MemoryApps::default()), Arc::new(Starter::default()));
        let mut request = create_request();
        let mut body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
        body["dnsAlias"] = true.into();
        request.body = body.to_string();
        let without_zone = api(workflow.clone(), apps.clone(), MemoryTenants::granting_the_fakes());
        let detail = refusal(&without_zone, &request, 403).await;
        assert!(detail.contains("no hosted zone") && detail.contains("hostedZoneId"), "{detail}");
        assert!(apps.all().is_empty() && workflow.started().is_empty());

        let zoned = MemoryTenants::granting_the_fakes();
        zoned.tenants.lock().unwrap().get_mut(fakes::TENANT).unwrap().registration.hosted_zone_id =
            Some("Z0123456789ABC".into());
        let created = accepted(&api(workflow, apps.clone(), zoned), &request).await;
        assert_eq!(created["dnsAlias"], true);
        assert!(apps.all()[0].dns_alias);
    }

    /// The app repository while the stopped run's end is handled: the delete's first write of the app
    /// meets a newer one, as the handler marked it FAILED (after undoing what the run made) first.
    struct RunEndHandledFirst {
        apps: Arc<MemoryApps>,
        raced: Mutex<bool>,
    }

    #[async_trait::async_trait]
    impl AppRepository for RunEndHandledFirst {
        async fn create(&self, app: &App, event: &AppEvent) -> Result<()> {
            self.apps.create(app, event).await
        }
        async fn get(&self, tenant_id: &str, app_id: &str) -> Result<Option<App>> {
            self.apps.get(tenant_id, app_id).await
        }
        async fn list(&self, tenant_id: &str, limit: u32, next_token: Option<&str>) -> Result<crate::ports::Page<App>> {
            self.apps.list(tenant_id, limit, next_token).await
        }
        async fn update(&self, app: &mut App) -> Result<()> {
            if !std::mem::replace(&mut *self.raced.lock().unwrap(), true) {
                let mut failed = self.apps.app(&app.id);
                failed.status = AppStatus::Failed;
                self.apps.update(&mut failed).await?;
                return Err(Error::Conflict(format!("app {} was changed by someone else", app.id)));
            }
            self.apps.update(app).await
        }
        async fn release_domain(&self, domain: &str, app_id: &str) -> Result<()> {
            self.apps.release_domain(domain, app_id).await
        }
        async fn count_live(&self, tenant_id: &str) -> Result<u32> {
            self.apps.count_live(tenant_id).await
        }
        async fn domain_claimed(&self, domain: &str) -> Result<bool> {
            self.apps.domain_claimed(domain).await
        }
    }

    #[tokio::test]
    async fn a_delete_that_meets_the_stopped_runs_failure_deletes_the_failed_app() {
        let memory = Arc::new(MemoryApps::default());
        let id = stored(&memory, AppStatus::Provisioning, 3, None);
        let workflow = Arc::new(Starter::running(&[&id]));
        let mut api = api(workflow.clone(), memory.clone(), MemoryTenants::granting_the_fakes());
        api.apps = Arc::new(RunEndHandledFirst { apps: memory.clone(), raced: Mutex::new(false) });
        let body = accepted(&api, &delete_request(&id)).await;
        assert_eq!(body["status"], "DELETING");
        let app = memory.app(&id);
        // Read again after the conflict: the FAILED app (version 4) is the one deleted.
        assert_eq!((app.status, app.deletion_version), (AppStatus::Deleting, Some(4)));
        assert_eq!(workflow.started(), vec![Execution::deprovision(&app, api.timing)]);
    }

    #[tokio::test]
    async fn deleting_a_provisioning_app_stops_its_provisioning_then_deprovisions_it() {
        let apps = Arc::new(MemoryApps::default());
        let id = stored(&apps, AppStatus::Provisioning, 3, None);
        let workflow = Arc::new(Starter::running(&[&id]));
        let api = api(workflow.clone(), apps.clone(), MemoryTenants::granting_the_fakes());
        let body = accepted(&api, &delete_request(&id)).await;
        assert_eq!(body["status"], "DELETING");

        let app = apps.app(&id);
        assert_eq!((app.status, app.step, app.deletion_version), (AppStatus::Deleting, None, Some(3)));
        assert_eq!(workflow.stopped(), vec![Execution::provision(&app, api.timing)]);
        let deprovision = Execution::deprovision(&app, api.timing);
        assert_eq!(deprovision.name, format!("{id}-delete-3"));
        assert_eq!(workflow.started(), vec![deprovision]);
        let events = api.history.list(Subject::App(&id), 10, None).await.unwrap().items;
        assert_eq!(events.iter().map(|e| e.action).collect::<Vec<_>>(), vec![AuditAction::AppDeleteRequested]);
    }

    #[tokio::test]
    async fn a_deleting_app_whose_deprovisioning_is_not_running_is_deprovisioned_afresh() {
        let apps = Arc::new(MemoryApps::default());
        // DELETING since version 2, and written since; its execution ended unfinished (or never began).
        let id = stored(&apps, AppStatus::Deleting, 4, Some(2));
        let workflow = Arc::new(Starter::default());
        let api = api(workflow.clone(), apps.clone(), MemoryTenants::granting_the_fakes());
        accepted(&api, &delete_request(&id)).await;

        let app = apps.app(&id);
        assert_eq!((app.status, app.version, app.deletion_version), (AppStatus::Deleting, 5, Some(4)));
        let started = workflow.started();
        assert_eq!(started.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), vec![format!("{id}-delete-4")]);
        assert!(workflow.stopped().is_empty(), "nothing to stop");
    }

    #[tokio::test]
    async fn a_deleting_app_whose_deprovisioning_runs_or_a_deleted_one_is_left_as_it_is() {
        let apps = Arc::new(MemoryApps::default());
        // The teardown has written the app since its deletion began: the execution keeps its name.
        let deleting = stored(&apps, AppStatus::Deleting, 4, Some(2));
        let deleted = stored(&apps, AppStatus::Deleted, 6, Some(2));
        let workflow = Arc::new(Starter::running(&[&format!("{deleting}-delete-2")]));
        let api = api(workflow.clone(), apps.clone(), MemoryTenants::granting_the_fakes());
        for id in [&deleting, &deleted] {
            let before = apps.app(id);
            let body = accepted(&api, &delete_request(id)).await;
            assert_eq!(body["status"], before.status.as_str());
            assert_eq!(apps.app(id), before, "unchanged");
        }
        assert!(workflow.started().is_empty() && workflow.stopped().is_empty());
    }

    #[tokio::test]
    async fn a_deletion_whose_deprovisioning_did_not_start_is_finished_by_deleting_again() {
        let apps = Arc::new(MemoryApps::default());
        let id = stored(&apps, AppStatus::Active, 5, None);
        let refusing = Arc::new(Starter { refuse: true, ..Default::default() });
        let response =
            api(refusing, apps.clone(), MemoryTenants::granting_the_fakes()).handle(&delete_request(&id)).await;
        assert_eq!(response.status(), 503, "{}", response.body());
        assert_eq!(apps.app(&id).status, AppStatus::Deleting, "DELETING, with nothing running");

        let workflow = Arc::new(Starter::default());
        accepted(&api(workflow.clone(), apps.clone(), MemoryTenants::granting_the_fakes()), &delete_request(&id)).await;
        let names: Vec<String> = workflow.started().into_iter().map(|e| e.name).collect();
        assert_eq!(names, vec![format!("{id}-delete-6")], "a name the refused attempt (delete-5) did not use");
    }
}
