//! The tenant registry, run by platform operators (`/tenants…`), and a tenant's view of its own
//! registration (`GET /tenant`).

use std::sync::Arc;

use http::{Method, StatusCode};
use serde::Serialize;
use time::OffsetDateTime;

use super::service_tokens::ServiceTokenManagement;
use super::{
    ApiRequest, ApiResponse, Listing, Operations, PageRequest, PageScope, authenticate, json_response, no_content,
    no_route, respond,
};
use crate::domain::{
    AppEvent, AuditAction, Caller, Registration, Tenant, not_registered, validate_registration, validate_tenant_id,
};
use crate::error::{Error, Result};
use crate::ports::{AppRepository, History, Subject, TenantRegistry, TokenVerifier};

/// The registry operations.
pub struct TenantsApi {
    pub tenants: Arc<dyn TenantRegistry>,
    pub apps: Arc<dyn AppRepository>,
    pub history: Arc<dyn History>,
    pub verifier: Arc<dyn TokenVerifier>,
    pub service_tokens: ServiceTokenManagement,
}

/// The operations, by openapi.yaml's `operationId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    RegisterTenant,
    GetTenant,
    ListTenants,
    DeleteTenant,
    ListTenantEvents,
    GetOwnTenant,
    CreateServiceToken,
    ListServiceTokens,
    RevokeServiceToken,
}

impl Route {
    fn of(request: &ApiRequest) -> Option<Route> {
        Some(match (&request.method, request.resource.as_str()) {
            (&Method::PUT, "/tenants/{tenantId}") => Route::RegisterTenant,
            (&Method::GET, "/tenants/{tenantId}") => Route::GetTenant,
            (&Method::GET, "/tenants") => Route::ListTenants,
            (&Method::DELETE, "/tenants/{tenantId}") => Route::DeleteTenant,
            (&Method::GET, "/tenants/{tenantId}/events") => Route::ListTenantEvents,
            (&Method::GET, "/tenant") => Route::GetOwnTenant,
            (&Method::POST, "/tenant/service-tokens") => Route::CreateServiceToken,
            (&Method::GET, "/tenant/service-tokens") => Route::ListServiceTokens,
            (&Method::DELETE, "/tenant/service-tokens/{clientId}") => Route::RevokeServiceToken,
            _ => return None,
        })
    }

    /// Everything but a tenant's own registration and service tokens is for platform operators.
    fn needs_platform(self) -> bool {
        !matches!(
            self,
            Route::GetOwnTenant | Route::CreateServiceToken | Route::ListServiceTokens | Route::RevokeServiceToken
        )
    }

    fn operation_id(self) -> &'static str {
        match self {
            Route::RegisterTenant => "registerTenant",
            Route::GetTenant => "getTenant",
            Route::ListTenants => "listTenants",
            Route::DeleteTenant => "deleteTenant",
            Route::ListTenantEvents => "listTenantEvents",
            Route::GetOwnTenant => "getOwnTenant",
            Route::CreateServiceToken => "createServiceToken",
            Route::ListServiceTokens => "listServiceTokens",
            Route::RevokeServiceToken => "revokeServiceToken",
        }
    }
}

/// A tenant as the API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TenantView<'a> {
    id: &'a str,
    #[serde(flatten)]
    registration: &'a Registration,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl<'a> From<&'a Tenant> for TenantView<'a> {
    fn from(tenant: &'a Tenant) -> Self {
        TenantView {
            id: &tenant.id,
            registration: &tenant.registration,
            created_at: tenant.created_at,
            updated_at: tenant.updated_at,
        }
    }
}

#[async_trait::async_trait]
impl Operations for TenantsApi {
    async fn handle(&self, request: &ApiRequest) -> ApiResponse {
        let Some(route) = Route::of(request) else { return no_route(request) };
        let tenant_id = request.path("tenantId");
        respond(route.operation_id(), request, async {
            let caller = authenticate(self.verifier.as_ref(), request).await?;
            if route.needs_platform() {
                caller.require_platform()?;
            }
            match route {
                Route::RegisterTenant => self.register(&caller, tenant_id, &request.body).await,
                Route::GetTenant => self.get(tenant_id).await,
                Route::ListTenants => self.list(request).await,
                Route::DeleteTenant => self.delete(&caller, tenant_id).await,
                Route::ListTenantEvents => self.events(tenant_id, request).await,
                Route::GetOwnTenant => self.own(&caller).await,
                Route::CreateServiceToken => {
                    self.service_tokens.create(&caller, self.history.as_ref(), &request.body).await
                }
                Route::ListServiceTokens => self.service_tokens.list(&caller).await,
                Route::RevokeServiceToken => {
                    let client_id = request.path("clientId");
                    self.service_tokens.revoke(&caller, self.history.as_ref(), client_id).await
                }
            }
        })
        .await
    }
}

impl TenantsApi {
    /// `PUT /tenants/{tenantId}`: registers the tenant, or replaces its registration. 200 with the tenant.
    async fn register(&self, caller: &Caller, tenant_id: &str, body: &str) -> Result<ApiResponse> {
        let tenant_id = validate_tenant_id(tenant_id).map_err(|e| Error::Invalid(e.to_string()))?;
        let mut registration = validate_registration(body)?;
        let previous = self.tenants.get(tenant_id).await?;
        if previous.is_none() && registration.ses.is_none() {
            // A hand-written SES identity from before the registry keeps working.
            registration.ses = self.tenants.legacy_ses(tenant_id).await?;
        }
        let now = OffsetDateTime::now_utc();
        let mut tenant = match &previous {
            Some(previous) => Tenant { registration, updated_at: now, ..previous.clone() },
            None => Tenant { id: tenant_id.to_string(), registration, created_at: now, updated_at: now, version: 0 },
        };
        self.tenants.put(&mut tenant, previous.as_ref()).await?;
        let action = if previous.is_some() { AuditAction::TenantUpdated } else { AuditAction::TenantRegistered };
        self.record(caller, tenant_id, action, summary(&tenant)).await?;
        Ok(json_response(StatusCode::OK, &TenantView::from(&tenant)))
    }

    /// `GET /tenants/{tenantId}`.
    async fn get(&self, tenant_id: &str) -> Result<ApiResponse> {
        let tenant = self.find(tenant_id).await?;
        Ok(json_response(StatusCode::OK, &TenantView::from(&tenant)))
    }

    /// `GET /tenants`: registered tenants by id, a page at a time.
    async fn list(&self, request: &ApiRequest) -> Result<ApiResponse> {
        let scope = PageScope::tenants();
        let page = PageRequest::from_query(&request.query, &scope)?;
        let tenants = self.tenants.list(page.limit, page.next_token.as_deref()).await?;
        let body = Listing::sealed(tenants.items.iter().map(TenantView::from).collect(), tenants.next_token, &scope)?;
        Ok(json_response(StatusCode::OK, &body))
    }

    /// `DELETE /tenants/{tenantId}`: 204; 409 while the tenant has apps that are not DELETED, or service
    /// tokens.
    async fn delete(&self, caller: &Caller, tenant_id: &str) -> Result<ApiResponse> {
        let tenant = self.find(tenant_id).await?;
        let live = self.apps.count_live(&tenant.id).await?;
        if live > 0 {
            return Err(Error::Conflict(format!(
                "tenant {} has {live} apps that are not DELETED; its admins delete them first",
                tenant.id
            )));
        }
        // A token outliving its tenant would still call the API as that tenant.
        let tokens = self.service_tokens.records.list(&tenant.id).await?.len();
        if tokens > 0 {
            return Err(Error::Conflict(format!(
                "tenant {} has {tokens} service tokens; its admins revoke them first",
                tenant.id
            )));
        }
        self.tenants.delete(&tenant).await?;
        self.record(caller, &tenant.id, AuditAction::TenantDeleted, summary(&tenant)).await?;
        Ok(no_content())
    }

    /// `GET /tenants/{tenantId}/events`: the registration's history, newest first. Also for a deleted
    /// tenant: the history outlives the registration.
    async fn events(&self, tenant_id: &str, request: &ApiRequest) -> Result<ApiResponse> {
        let scope = PageScope::tenant_events(tenant_id);
        let page = PageRequest::from_query(&request.query, &scope)?;
        let tenant_id = validate_tenant_id(tenant_id)?;
        let events = self.history.list(Subject::Tenant(tenant_id), page.limit, page.next_token.as_deref()).await?;
        Ok(json_response(StatusCode::OK, &Listing::sealed(events.items, events.next_token, &scope)?))
    }

    /// `GET /tenant`: the caller's own tenant, for any tenant role.
    async fn own(&self, caller: &Caller) -> Result<ApiResponse> {
        let tenant_id = caller.tenant_id()?;
        let tenant = self.tenants.get(tenant_id).await?.ok_or_else(|| Error::NotFound(not_registered(tenant_id)))?;
        Ok(json_response(StatusCode::OK, &TenantView::from(&tenant)))
    }

    async fn find(&self, tenant_id: &str) -> Result<Tenant> {
        let tenant_id = validate_tenant_id(tenant_id)?;
        self.tenants.get(tenant_id).await?.ok_or_else(|| Error::NotFound(format!("no tenant '{tenant_id}'")))
    }

    async fn record(&self, caller: &Caller, tenant_id: &str, action: AuditAction, detail: String) -> Result<()> {
        self.history.append(Subject::Tenant(tenant_id), &AppEvent::now(&caller.actor, action, detail)).await
    }
}

/// What a registration grants, for its history.
fn summary(tenant: &Tenant) -> String {
    let r = &tenant.registration;
    let domains = r.allowed_domains.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    let targets = r.targets.iter().map(|t| t.id.as_str()).collect::<Vec<_>>().join(", ");
    format!("allowedDomains [{domains}]; targets [{targets}]; quotas.apps {}", r.quotas.apps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AppStatus, Role};
    use crate::domain::{Scope, ServiceToken};
    use crate::fakes::{self, MemoryApps, MemoryCredentials, MemoryHistory, MemoryServiceTokens, MemoryTenants};
    use crate::ports::ServiceTokenRecords;

    /// Every token is a platform operator (or, with a role, a tenant caller of `fakes::TENANT`).
    struct As(Option<Role>);

    #[async_trait::async_trait]
    impl TokenVerifier for As {
        async fn verify(&self, _: &str) -> Result<Caller> {
            Ok(match self.0 {
                None => Caller { actor: "op".into(), tenant: None, platform: true },
                Some(role) => {
                    Caller { actor: "t-admin".into(), tenant: Some((fakes::TENANT.into(), role)), platform: false }
                }
            })
        }
    }

    fn api(role: Option<Role>, tenants: Arc<MemoryTenants>, apps: Arc<MemoryApps>) -> TenantsApi {
        let service_tokens = ServiceTokenManagement {
            records: Arc::new(MemoryServiceTokens::default()),
            credentials: Arc::new(MemoryCredentials::default()),
            token_url: Some("https://auth.example.test/oauth2/token".into()),
        };
        TenantsApi {
            tenants,
            apps,
            history: Arc::new(MemoryHistory::default()),
            verifier: Arc::new(As(role)),
            service_tokens,
        }
    }

    fn token_api(role: Option<Role>) -> (TenantsApi, Arc<MemoryServiceTokens>, Arc<MemoryCredentials>) {
        let (records, credentials) = (Arc::new(MemoryServiceTokens::default()), Arc::new(MemoryCredentials::default()));
        let mut api = api(role, Arc::new(MemoryTenants::granting_the_fakes()), Arc::new(MemoryApps::default()));
        api.service_tokens = ServiceTokenManagement {
            records: records.clone(),
            credentials: credentials.clone(),
            token_url: Some("https://auth.example.test/oauth2/token".into()),
        };
        (api, records, credentials)
    }

    fn token_request(method: Method, resource: &str, client_id: &str, body: &str) -> ApiRequest {
        let mut request = request(method, resource, "", body);
        request.path_parameters = [("clientId".to_string(), client_id.to_string())].into();
        request
    }

    #[tokio::test]
    async fn admins_create_list_and_revoke_service_tokens_with_a_history() {
        let (api, records, credentials) = token_api(Some(Role::Admin));
        let body = r#"{"name": "ci", "scopes": ["apps:read", "users:write"], "expiresInDays": 7}"#;
        let created = api.handle(&token_request(Method::POST, "/tenant/service-tokens", "", body)).await;
        assert_eq!(created.status(), 201, "{}", created.body());
        let created: serde_json::Value = serde_json::from_str(created.body()).unwrap();
        let client_id = created["clientId"].as_str().unwrap().to_string();
        assert_eq!(created["clientSecret"], format!("secret-{client_id}"));
        assert_eq!(created["tokenUrl"], "https://auth.example.test/oauth2/token");
        assert_eq!(created["scopes"], serde_json::json!(["apps:read", "users:write"]));
        assert!(created["expiresAt"].is_string());
        assert_eq!(credentials.clients.lock().unwrap()[&client_id], [Scope::AppsRead, Scope::UsersWrite]);
        assert_eq!(records.tokens.lock().unwrap()[&client_id].tenant_id, fakes::TENANT);

        let listed = api.handle(&token_request(Method::GET, "/tenant/service-tokens", "", "")).await;
        assert_eq!(listed.status(), 200);
        assert!(!listed.body().contains("secret"), "{}", listed.body());
        let listed: serde_json::Value = serde_json::from_str(listed.body()).unwrap();
        assert_eq!(listed["items"][0]["clientId"], client_id.as_str());
        assert_eq!(listed["items"][0]["expired"], false);

        let resource = "/tenant/service-tokens/{clientId}";
        let revoked = api.handle(&token_request(Method::DELETE, resource, &client_id, "")).await;
        assert_eq!(revoked.status(), 204, "{}", revoked.body());
        assert!(credentials.clients.lock().unwrap().is_empty() && records.tokens.lock().unwrap().is_empty());
        assert_eq!(api.handle(&token_request(Method::DELETE, resource, &client_id, "")).await.status(), 404);

        let events = api.history.list(Subject::Tenant(fakes::TENANT), 10, None).await.unwrap();
        let actions: Vec<AuditAction> = events.items.iter().map(|e| e.action).collect();
        assert_eq!(actions, [AuditAction::ServiceTokenRevoked, AuditAction::ServiceTokenCreated]);
        assert!(events.items.iter().all(|e| !e.detail.contains("secret")));
    }

    #[tokio::test]
    async fn another_tenants_token_is_not_found_and_viewers_and_operators_are_refused() {
        let (api, records, _) = token_api(Some(Role::Admin));
        let theirs = ServiceToken {
            client_id: "theirs".into(),
            tenant_id: "other".into(),
            name: "ci".into(),
            scopes: vec![Scope::AppsRead],
            created_at: OffsetDateTime::now_utc(),
            created_by: "x".into(),
            expires_at: None,
        };
        records.put(&theirs).await.unwrap();
        let resource = "/tenant/service-tokens/{clientId}";
        assert_eq!(api.handle(&token_request(Method::DELETE, resource, "theirs", "")).await.status(), 404);
        let listed = api.handle(&token_request(Method::GET, "/tenant/service-tokens", "", "")).await;
        assert_eq!(listed.body(), r#"{"items":[]}"#);
        assert!(records.tokens.lock().unwrap().contains_key("theirs"));

        for role in [Some(Role::Viewer), None] {
            let (api, _, _) = token_api(role);
            let body = r#"{"name": "ci", "scopes": ["apps:read"]}"#;
            for (method, resource, body) in [
                (Method::POST, "/tenant/service-tokens", body),
                (Method::GET, "/tenant/service-tokens", ""),
                (Method::DELETE, resource, ""),
            ] {
                let answer = api.handle(&token_request(method.clone(), resource, "theirs", body)).await;
                assert_eq!(answer.status(), 403, "{role:?} {method} {resource}: {}", answer.body());
            }
        }
    }

    #[tokio::test]
    async fn a_tenant_holding_service_tokens_cannot_be_deleted() {
        let (api, records, _) = token_api(None);
        let token = ServiceToken {
            client_id: "c1".into(),
            tenant_id: fakes::TENANT.into(),
            name: "ci".into(),
            scopes: vec![Scope::AppsRead],
            created_at: OffsetDateTime::now_utc(),
            created_by: "x".into(),
            expires_at: None,
        };
        records.put(&token).await.unwrap();
        let delete = || request(Method::DELETE, "/tenants/{tenantId}", fakes::TENANT, "");
        let refused = api.handle(&delete()).await;
        assert_eq!(refused.status(), 409, "{}", refused.body());
        assert!(refused.body().contains("service tokens"), "{}", refused.body());
        records.delete(&token).await.unwrap();
        assert_eq!(api.handle(&delete()).await.status(), 204);
    }

    #[tokio::test]
    async fn service_tokens_are_validated_and_limited() {
        let (api, _, credentials) = token_api(Some(Role::Admin));
        let bad = api.handle(&token_request(Method::POST, "/tenant/service-tokens", "", r#"{"name": "ci"}"#)).await;
        assert_eq!(bad.status(), 400);
        assert_eq!(bad.headers()[http::header::CONTENT_TYPE], "application/problem+json");
        let body = r#"{"name": "ci", "scopes": ["apps:read"]}"#;
        for _ in 0..crate::domain::MAX_SERVICE_TOKENS {
            let created = api.handle(&token_request(Method::POST, "/tenant/service-tokens", "", body)).await;
            assert_eq!(created.status(), 201);
        }
        let over = api.handle(&token_request(Method::POST, "/tenant/service-tokens", "", body)).await;
        assert_eq!(over.status(), 422, "{}", over.body());
        assert_eq!(credentials.clients.lock().unwrap().len(), 20);
    }

    fn request(method: Method, resource: &str, tenant: &str, body: &str) -> ApiRequest {
        let mut request = ApiRequest {
            method,
            resource: resource.into(),
            path_parameters: [("tenantId".to_string(), tenant.to_string())].into(),
            body: body.into(),
            ..Default::default()
        };
        request.headers.insert(http::header::AUTHORIZATION, http::HeaderValue::from_static("Bearer t"));
        request
    }

    const REGISTRATION: &str = r#"{"allowedDomains": ["*.acme.test"], "targets": [
        {"id": "eb", "type": "elasticbeanstalk", "environmentName": "acme-env"}]}"#;

    #[tokio::test]
    async fn operators_register_read_and_delete_tenants_with_a_history() {
        let (tenants, apps) = (Arc::new(MemoryTenants::default()), Arc::new(MemoryApps::default()));
        let api = api(None, tenants.clone(), apps);
        let put = api.handle(&request(Method::PUT, "/tenants/{tenantId}", "acme", REGISTRATION)).await;
        assert_eq!(put.status(), 200, "{}", put.body());
        let body: serde_json::Value = serde_json::from_str(put.body()).unwrap();
        assert_eq!(body["targets"][0]["environmentName"], "acme-env");
        assert_eq!(body["quotas"]["apps"], 25);
        assert!(body.get("version").is_none());
        let again = api.handle(&request(Method::PUT, "/tenants/{tenantId}", "acme", REGISTRATION)).await;
        assert_eq!(again.status(), 200);
        let events = api.handle(&request(Method::GET, "/tenants/{tenantId}/events", "acme", "")).await;
        let events: serde_json::Value = serde_json::from_str(events.body()).unwrap();
        let actions: Vec<&str> =
            events["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions, ["tenant.updated", "tenant.registered"]);
        assert_eq!(events["items"][0]["actor"], "op");
        let deleted = api.handle(&request(Method::DELETE, "/tenants/{tenantId}", "acme", "")).await;
        assert_eq!(deleted.status(), 204);
        assert_eq!(api.handle(&request(Method::GET, "/tenants/{tenantId}", "acme", "")).await.status(), 404);
    }

    #[tokio::test]
    async fn tenant_callers_may_only_read_their_own_tenant() {
        let tenants = Arc::new(MemoryTenants::granting_the_fakes());
        for role in [Role::Admin, Role::Viewer] {
            let api = api(Some(role), tenants.clone(), Arc::new(MemoryApps::default()));
            for (method, resource) in [
                (Method::PUT, "/tenants/{tenantId}"),
                (Method::GET, "/tenants/{tenantId}"),
                (Method::GET, "/tenants"),
                (Method::DELETE, "/tenants/{tenantId}"),
                (Method::GET, "/tenants/{tenantId}/events"),
            ] {
                let answer = api.handle(&request(method.clone(), resource, fakes::TENANT, REGISTRATION)).await;
                assert_eq!(answer.status(), 403, "{method} {resource}: {}", answer.body());
            }
            let own = api.handle(&request(Method::GET, "/tenant", "", "")).await;
            assert_eq!(own.status(), 200, "{}", own.body());
        }
    }

    #[tokio::test]
    async fn a_tenant_with_live_apps_cannot_be_deleted() {
        let (tenants, apps) = (Arc::new(MemoryTenants::granting_the_fakes()), Arc::new(MemoryApps::default()));
        apps.insert(fakes::app("a1", AppStatus::Failed));
        let answer =
            api(None, tenants, apps).handle(&request(Method::DELETE, "/tenants/{tenantId}", fakes::TENANT, "")).await;
        assert_eq!(answer.status(), 409, "{}", answer.body());
    }
}
