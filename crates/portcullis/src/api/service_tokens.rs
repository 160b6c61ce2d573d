//! A tenant's service tokens, managed by the tenant's admins (`/tenant/service-tokens…`, served by
//! tenants-api). The secret is in the creation's answer and nowhere else: not stored, not logged.

use std::sync::Arc;

use http::StatusCode;
use serde::Serialize;
use time::OffsetDateTime;

use super::{ApiResponse, Listing, json_response, no_content, with_location};
use crate::domain::{
    AppEvent, AuditAction, Caller, MAX_SERVICE_TOKENS, Scope, ServiceToken, validate_new_service_token,
};
use crate::error::{Error, Result};
use crate::ports::{History, ServiceCredentials, ServiceTokenRecords, Subject};

/// What managing service tokens needs.
pub struct ServiceTokenManagement {
    pub records: Arc<dyn ServiceTokenRecords>,
    pub credentials: Arc<dyn ServiceCredentials>,
    /// Where a service token exchanges its client id and secret for access tokens (the operators' pool's
    /// `/oauth2/token`); none when the deployment has not set it up.
    pub token_url: Option<String>,
}

/// A service token as the API lists it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceTokenView<'a> {
    client_id: &'a str,
    name: &'a str,
    scopes: &'a [Scope],
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    created_by: &'a str,
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    expires_at: Option<OffsetDateTime>,
    expired: bool,
}

impl<'a> ServiceTokenView<'a> {
    fn of(token: &'a ServiceToken, now: OffsetDateTime) -> Self {
        ServiceTokenView {
            client_id: &token.client_id,
            name: &token.name,
            scopes: &token.scopes,
            created_at: token.created_at,
            created_by: &token.created_by,
            expires_at: token.expires_at,
            expired: token.expired(now),
        }
    }
}

/// The creation's answer: the one time the secret is shown.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreatedView<'a> {
    #[serde(flatten)]
    token: ServiceTokenView<'a>,
    client_secret: &'a str,
    token_url: &'a str,
}

fn audit_scopes(scopes: &[Scope]) -> String {
    scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
}

impl ServiceTokenManagement {
    /// `POST /tenant/service-tokens`: 201 with the client id, its secret (shown once), the token URL and
    /// the scopes. 422 past [`MAX_SERVICE_TOKENS`].
    pub async fn create(&self, caller: &Caller, history: &dyn History, body: &str) -> Result<ApiResponse> {
        let tenant_id = caller.require_person_admin()?;
        let new = validate_new_service_token(body)?;
        let token_url = self
            .token_url
            .as_deref()
            .ok_or_else(|| Error::config("PORTCULLIS_SERVICE_TOKEN_URL is not set: service tokens are not set up"))?;
        let held = self.records.list(tenant_id).await?.len();
        if held >= MAX_SERVICE_TOKENS as usize {
            return Err(Error::QuotaExceeded(format!(
                "tenant {tenant_id} holds {held} service tokens, the most it may; revoke one first"
            )));
        }
        let credential = self.credentials.create(&format!("portcullis-{tenant_id}-{}", new.name), &new.scopes).await?;
        let now = OffsetDateTime::now_utc();
        let token = ServiceToken {
            client_id: credential.client_id.clone(),
            tenant_id: tenant_id.to_string(),
            name: new.name.clone(),
            scopes: new.scopes.clone(),
            created_at: now,
            created_by: caller.actor.clone(),
            expires_at: new.expires_at(now),
        };
        if let Err(err) = self.records.put(&token).await {
            // Unrecorded, the client would be a credential nobody can list or revoke.
            if let Err(undo) = self.credentials.delete(&token.client_id).await {
                tracing::error!(client_id = %token.client_id, error = %crate::error::Chain(&undo),
                    "an unrecorded service token's client could not be deleted");
            }
            return Err(err);
        }
        let expiry = token.expires_at.map(|at| format!(", expires {at}")).unwrap_or_default();
        let detail = format!(
            "service token '{}' ({}) with scopes {}{expiry}",
            token.name,
            token.client_id,
            audit_scopes(&token.scopes)
        );
        history
            .append(Subject::Tenant(tenant_id), &AppEvent::now(&caller.actor, AuditAction::ServiceTokenCreated, detail))
            .await?;
        let body = CreatedView {
            token: ServiceTokenView::of(&token, now),
            client_secret: &credential.client_secret.0,
            token_url,
        };
        let response = json_response(StatusCode::CREATED, &body);
        Ok(with_location(response, &format!("/tenant/service-tokens/{}", token.client_id)))
    }

    /// `GET /tenant/service-tokens`: the tenant's service tokens, oldest first, without secrets.
    pub async fn list(&self, caller: &Caller) -> Result<ApiResponse> {
        let tenant_id = caller.require_person_admin()?;
        let tokens = self.records.list(tenant_id).await?;
        let now = OffsetDateTime::now_utc();
        let items = tokens.iter().map(|t| ServiceTokenView::of(t, now)).collect();
        Ok(json_response(StatusCode::OK, &Listing { items, next_token: None }))
    }

    /// `DELETE /tenant/service-tokens/{clientId}`: 204; the client gets no more tokens and the API
    /// refuses the ones it has. 404 for another tenant's.
    pub async fn revoke(&self, caller: &Caller, history: &dyn History, client_id: &str) -> Result<ApiResponse> {
        let tenant_id = caller.require_person_admin()?;
        let token = self
            .records
            .by_client(client_id)
            .await?
            .filter(|t| t.tenant_id == tenant_id)
            .ok_or_else(|| Error::NotFound(format!("tenant {tenant_id} has no service token '{client_id}'")))?;
        // The client first: a failure after it leaves a record that a repeated DELETE removes.
        self.credentials.delete(&token.client_id).await?;
        self.records.delete(&token).await?;
        let detail = format!("service token '{}' ({})", token.name, token.client_id);
        history
            .append(Subject::Tenant(tenant_id), &AppEvent::now(&caller.actor, AuditAction::ServiceTokenRevoked, detail))
            .await?;
        Ok(no_content())
    }
}
