//! The domain: what an app is, what a caller may do, and the pure rules of provisioning. No AWS types.

mod access;
mod app;
mod audit;
mod caller;
mod certificate;
mod dns;
mod drift;
mod environment;
mod exposure;
mod idempotency;
mod naming;
mod poll;
mod preflight;
mod priority;
mod roles;
mod service_token;
mod settings;
mod tenant;
mod users;
mod validate;

pub use access::{
    AccessPolicy, MAX_ACCESS_DAYS, MAX_EMAIL_DOMAINS, Mfa, parse_access_days, parse_access_end, parse_email_domains,
    parse_mfa,
};
pub use app::*;
pub use audit::{AppEvent, AuditAction, WORKFLOW_ACTOR};
pub use caller::{Caller, Claims, Role};
pub use certificate::{CertificateProgress, CertificateStatus};
pub use dns::{
    AliasTarget, DnsRecord, FoundRecord, HostedZone, Placement, RecordState, RecordValue, VALIDATION_RECORD_TTL,
    ZoneRecord, placement, zone_covers, zone_problem,
};
pub use drift::{
    ClientSettings, Finding, FindingCode, Health, HealthStatus, LOGIN_SCOPES, LoginSettings, Observed, RuleSettings,
    findings,
};
pub use environment::{EnvironmentHealth, EnvironmentState, EnvironmentStatus, ListenerProtocol};
pub use exposure::{
    Closure, Entry, Exposure, ExposureKind, ListenerDefault, ListenerView, LoadBalancerView, ProtectedApp, RuleAction,
    RuleCondition, RuleView, closures, describe, exposed, exposures, host_matches, left_open,
};
pub use idempotency::{
    CLAIM_LEASE, ClaimOutcome, IdempotencyKey, KEY_RETENTION, KeyClaim, KeyRecord, KeyScope, KeyState, KeyVerdict,
    StoredAnswer, fingerprint, is_final, verdict,
};
pub use naming::{certificate_token, client_name, invitation_message, is_pool_name_of, pool_domain_prefix, pool_name};
pub use poll::{Poll, PollPolicy};
pub use preflight::{
    Check, CheckName, CheckStatus, PreflightReport, certificate_headroom, domain_taken, rule_headroom,
};
pub use priority::{MAX_CERTIFICATES_PER_LISTENER, MAX_RULES_PER_LISTENER, lowest_free_priority};
pub use roles::{
    AppRole, AppRoleBody, MAX_ROLE_NAME, MAX_ROLES_PER_USER, NewAppRole, UserRoles, parse_roles, role_changes,
    unknown_roles, validate_role_name,
};
pub use service_token::{
    ACCESS_TOKEN_MINUTES, MAX_EXPIRES_IN_DAYS, MAX_SERVICE_TOKENS, NewServiceToken, RESOURCE_SERVER, Scope, Scopes,
    ServiceToken, validate_new_service_token,
};
pub use settings::{AppSettings, SettingsChange, SettingsPatch};
pub use tenant::{
    DEFAULT_APP_QUOTA, DomainRule, GrantedTarget, Registration, SesConfig, Tenant, TenantQuotas, not_registered,
    validate_registration, validate_tenant_id,
};
pub use users::{
    AppUser, BatchOutcome, EmailSending, Invitation, InvitationState, InvitationStatus, Invitee, InviteeBody,
    MAX_AUTO_RESENDS, MAX_BATCH, Resend, SesIdentity, TEMPORARY_PASSWORD_VALIDITY_DAYS, UserStatus, invitation_expiry,
    validate_email,
};
pub use validate::{MAX_APP_DOMAIN_LENGTH, NewApp, validate_new_app};
