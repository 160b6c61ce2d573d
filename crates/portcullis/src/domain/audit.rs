//! Histories: what the workflow and callers did to an app, and what operators did to a tenant's
//! registration; newest first in the API.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What happened. The serialized names are part of the API contract (`GET /apps/{id}/events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditAction {
    #[serde(rename = "app.created")]
    AppCreated,
    #[serde(rename = "app.delete-requested")]
    AppDeleteRequested,
    #[serde(rename = "certificate.requested")]
    CertificateRequested,
    #[serde(rename = "certificate.issued")]
    CertificateIssued,
    #[serde(rename = "dns.validation-published")]
    DnsValidationPublished,
    #[serde(rename = "dns.alias-published")]
    DnsAliasPublished,
    #[serde(rename = "dns.records-removed")]
    DnsRecordsRemoved,
    #[serde(rename = "environment.ready")]
    EnvironmentReady,
    #[serde(rename = "auth.created")]
    AuthCreated,
    #[serde(rename = "listener.wired")]
    ListenerWired,
    #[serde(rename = "listener.routes-closed")]
    RoutesClosed,
    #[serde(rename = "listener.routes-restored")]
    RoutesRestored,
    #[serde(rename = "app.protection-verified")]
    ProtectionVerified,
    #[serde(rename = "app.active")]
    AppActive,
    #[serde(rename = "resources.removed")]
    ResourcesRemoved,
    #[serde(rename = "app.failed")]
    AppFailed,
    #[serde(rename = "app.deleted")]
    AppDeleted,
    /// A change of the app's settings (`PATCH /apps/{id}`) took effect.
    #[serde(rename = "app.updated")]
    AppUpdated,
    /// A change of the app's settings could not be applied; the app kept its settings.
    #[serde(rename = "app.update-failed")]
    AppUpdateFailed,
    #[serde(rename = "user.invited")]
    UserInvited,
    #[serde(rename = "user.invitation-resent")]
    UserInvitationResent,
    #[serde(rename = "user.revoked")]
    UserRevoked,
    /// The end of access an invitation was given came: the user was disabled and signed out.
    #[serde(rename = "user.access-ended")]
    UserAccessEnded,
    #[serde(rename = "user.roles-changed")]
    UserRolesChanged,
    #[serde(rename = "role.created")]
    RoleCreated,
    /// The role was deleted, and with it every user's hold of it.
    #[serde(rename = "role.deleted")]
    RoleDeleted,
    #[serde(rename = "tenant.registered")]
    TenantRegistered,
    #[serde(rename = "tenant.updated")]
    TenantUpdated,
    #[serde(rename = "tenant.deleted")]
    TenantDeleted,
    #[serde(rename = "service-token.created")]
    ServiceTokenCreated,
    #[serde(rename = "service-token.revoked")]
    ServiceTokenRevoked,
    /// The drift check found the app's health changed (OK ↔ DRIFTED, or other findings).
    #[serde(rename = "app.health-changed")]
    AppHealthChanged,
    /// A caller had Portcullis put back what it owns.
    #[serde(rename = "app.repaired")]
    AppRepaired,
}

/// An entry in an app's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppEvent {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who did it: the caller's name, or [`WORKFLOW_ACTOR`] for the workflow's own steps.
    pub actor: String,
    pub action: AuditAction,
    pub detail: String,
}

/// The actor name of the workflow's own steps.
pub const WORKFLOW_ACTOR: &str = "portcullis";

impl AppEvent {
    /// An event happening now.
    pub fn now(actor: impl Into<String>, action: AuditAction, detail: impl Into<String>) -> Self {
        AppEvent { at: OffsetDateTime::now_utc(), actor: actor.into(), action, detail: detail.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_keep_their_contract_names() {
        let names = [
            (AuditAction::AppCreated, "app.created"),
            (AuditAction::AppDeleteRequested, "app.delete-requested"),
            (AuditAction::CertificateRequested, "certificate.requested"),
            (AuditAction::CertificateIssued, "certificate.issued"),
            (AuditAction::DnsValidationPublished, "dns.validation-published"),
            (AuditAction::DnsAliasPublished, "dns.alias-published"),
            (AuditAction::DnsRecordsRemoved, "dns.records-removed"),
            (AuditAction::EnvironmentReady, "environment.ready"),
            (AuditAction::AuthCreated, "auth.created"),
            (AuditAction::ListenerWired, "listener.wired"),
            (AuditAction::AppActive, "app.active"),
            (AuditAction::ResourcesRemoved, "resources.removed"),
            (AuditAction::AppFailed, "app.failed"),
            (AuditAction::AppDeleted, "app.deleted"),
            (AuditAction::AppUpdated, "app.updated"),
            (AuditAction::AppUpdateFailed, "app.update-failed"),
            (AuditAction::UserInvited, "user.invited"),
            (AuditAction::UserInvitationResent, "user.invitation-resent"),
            (AuditAction::UserRevoked, "user.revoked"),
            (AuditAction::UserAccessEnded, "user.access-ended"),
            (AuditAction::UserRolesChanged, "user.roles-changed"),
            (AuditAction::RoleCreated, "role.created"),
            (AuditAction::RoleDeleted, "role.deleted"),
            (AuditAction::TenantRegistered, "tenant.registered"),
            (AuditAction::TenantUpdated, "tenant.updated"),
            (AuditAction::TenantDeleted, "tenant.deleted"),
            (AuditAction::ServiceTokenCreated, "service-token.created"),
            (AuditAction::ServiceTokenRevoked, "service-token.revoked"),
            (AuditAction::AppHealthChanged, "app.health-changed"),
            (AuditAction::AppRepaired, "app.repaired"),
        ];
        for (action, name) in names {
            assert_eq!(serde_json::to_value(action).unwrap(), name);
            assert_eq!(serde_json::from_value::<AuditAction>(name.into()).unwrap(), action);
        }
    }
}
