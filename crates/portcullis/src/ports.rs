//! Ports: what the domain needs from the outside world, in domain types. Adapters (`crate::adapters`)
//! implement them on aws-sdk-rust; unit tests implement them in memory.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::{
    AliasTarget, App, AppEvent, AppRole, AppUser, Caller, CertificateStatus, ClaimOutcome, ClientSettings, DnsRecord,
    EnvironmentState, FoundRecord, HostedZone, Invitation, Invitee, KeyClaim, ListenerDefault, ListenerProtocol,
    LoadBalancerView, Mfa, NewAppRole, Resend, RuleSettings, Scope, ServiceToken, SesConfig, SesIdentity, StoredAnswer,
    Tenant, ValidationRecord,
};
use crate::error::Result;
use crate::workflow::Execution;

/// One page of a listing, with an opaque token for the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

/// Apps and the domain guard that keeps one app per host name.
#[async_trait]
pub trait AppRepository: Send + Sync {
    /// Stores a new app, claims its domain and records its first event, atomically. `Conflict` if the
    /// domain is taken.
    async fn create(&self, app: &App, event: &AppEvent) -> Result<()>;
    /// The app, if it belongs to this tenant.
    async fn get(&self, tenant_id: &str, app_id: &str) -> Result<Option<App>>;
    /// The tenant's apps, oldest first.
    async fn list(&self, tenant_id: &str, limit: u32, next_token: Option<&str>) -> Result<Page<App>>;
    /// Writes `app` if nobody changed it since it was read (its `version`), then bumps the version.
    /// `Conflict` if somebody did.
    async fn update(&self, app: &mut App) -> Result<()>;
    /// Frees the app's domain for reuse (only if this app holds it).
    async fn release_domain(&self, domain: &str, app_id: &str) -> Result<()>;
    /// How many of the tenant's apps are not DELETED.
    async fn count_live(&self, tenant_id: &str) -> Result<u32>;
    /// Whether an app (of any tenant) holds the domain.
    async fn domain_claimed(&self, domain: &str) -> Result<bool>;
}

/// Whose history an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    App(&'a str),
    Tenant(&'a str),
}

/// Histories: what happened to an app or a tenant registration, and who did it.
#[async_trait]
pub trait History: Send + Sync {
    /// Appends to the subject's history.
    async fn append(&self, subject: Subject<'_>, event: &AppEvent) -> Result<()>;
    /// The subject's history, newest first.
    async fn list(&self, subject: Subject<'_>, limit: u32, next_token: Option<&str>) -> Result<Page<AppEvent>>;
}

/// Listener rule priorities reserved by apps, so that concurrent wirings never pick the same one.
#[async_trait]
pub trait PriorityReservations: Send + Sync {
    /// Priorities reserved on a listener, with the app holding each.
    async fn reserved(&self, listener_arn: &str) -> Result<BTreeMap<u32, String>>;
    /// Reserves a priority for an app; `PriorityInUse` if another app holds it.
    async fn reserve(&self, listener_arn: &str, priority: u32, app_id: &str) -> Result<()>;
    /// Releases a reservation held by this app (a no-op otherwise).
    async fn release(&self, listener_arn: &str, priority: u32, app_id: &str) -> Result<()>;
}

/// Who invited whom to an app, and when (the identity provider holds the users themselves).
#[async_trait]
pub trait InvitationRecords: Send + Sync {
    /// Records (or replaces) an invitation while the app is still ACTIVE; `Conflict` once it is not, so
    /// that no record is written after its deletion has forgotten them all.
    async fn put(&self, app: &App, invitation: &Invitation) -> Result<()>;
    /// The invitations recorded for these users, by user name (users without one are left out).
    async fn get_many(&self, app_id: &str, usernames: &[String]) -> Result<HashMap<String, Invitation>>;
    /// Notes that the invitation was sent again at `at` (and counts it, if it was automatic); none
    /// recorded (a user added outside Portcullis) is fine.
    async fn mark_sent(&self, app_id: &str, username: &str, at: OffsetDateTime, by: Resend) -> Result<()>;
    /// Forgets an invitation; none recorded is fine.
    async fn delete(&self, app_id: &str, username: &str) -> Result<()>;
    /// Every invitation recorded for the app.
    async fn list(&self, app_id: &str) -> Result<Vec<Invitation>>;
    /// Notes that the user's access was ended at `at`; none recorded is fine.
    async fn mark_access_ended(&self, app_id: &str, username: &str, at: OffsetDateTime) -> Result<()>;
    /// Forgets every invitation of the app (its pool is gone).
    async fn forget_all(&self, app_id: &str) -> Result<()>;
}

/// Idempotency keys and the answers given under them.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims the key for the request, unless a record that is not vacant (`KeyRecord::is_vacant`) holds
    /// it: then `Held` with that record.
    async fn claim(&self, claim: &KeyClaim) -> Result<ClaimOutcome>;
    /// Keeps the answer of the request holding the claim (a no-op if it no longer holds it).
    async fn answer(&self, claim: &KeyClaim, answer: &StoredAnswer) -> Result<()>;
    /// Frees the key held by the claim, so a retry runs the request again (a no-op if it no longer holds it).
    async fn release(&self, claim: &KeyClaim) -> Result<()>;
}

/// The tenant registry, run by platform operators.
#[async_trait]
pub trait TenantRegistry: Send + Sync {
    /// The tenant, if it is registered.
    async fn get(&self, tenant_id: &str) -> Result<Option<Tenant>>;
    /// Registered tenants, by id.
    async fn list(&self, limit: u32, next_token: Option<&str>) -> Result<Page<Tenant>>;
    /// Stores the tenant if nobody changed it since its `version` was read (0: a new registration), then
    /// bumps the version; claims every granted target for it and frees the ones `previous` granted and it
    /// no longer does, in the same transaction. `Conflict` if another tenant holds a target, or on a
    /// concurrent change.
    async fn put(&self, tenant: &mut Tenant, previous: Option<&Tenant>) -> Result<()>;
    /// Removes the registration and frees its targets.
    async fn delete(&self, tenant: &Tenant) -> Result<()>;
    /// An SES identity written by hand before the registry existed (`sesSourceArn`/`sesFrom`), if any.
    async fn legacy_ses(&self, tenant_id: &str) -> Result<Option<SesConfig>>;
}

/// A certificate as the certificate authority reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateState {
    pub status: CertificateStatus,
    pub validation_record: Option<ValidationRecord>,
}

/// Certificates (ACM): requested per app, DNS-validated.
#[async_trait]
pub trait CertificateAuthority: Send + Sync {
    /// Requests a DNS-validated certificate; the same token returns the same certificate.
    async fn request(&self, domain: &str, idempotency_token: &str, app_id: &str) -> Result<String>;
    async fn describe(&self, certificate_arn: &str) -> Result<CertificateState>;
    /// Deletes the certificate; already gone is fine. `Retryable` while it is still in use.
    async fn delete(&self, certificate_arn: &str) -> Result<()>;

    // Finding what an app owns without its record (a step that died after a create).
    /// The certificates for the domain tagged with the app id, whatever the app recorded.
    async fn find(&self, domain: &str, app_id: &str) -> Result<Vec<String>>;
}

/// A rule on a listener, as the wiring needs to see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerRule {
    pub arn: String,
    pub priority: u32,
    /// The host names of its host-header conditions.
    pub hosts: Vec<String>,
    /// The app client its authenticate-cognito action signs in with, if it has one.
    pub cognito_client_id: Option<String>,
}

/// The listener rule that protects an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectRule {
    pub listener_arn: String,
    pub priority: u32,
    pub host: String,
    pub user_pool_arn: String,
    pub client_id: String,
    pub pool_domain_prefix: String,
    pub session_timeout_seconds: u32,
    pub target_group_arn: String,
    /// The app the rule protects; the rule is tagged with it.
    pub app_id: String,
}

/// Load balancers (ELBv2).
#[async_trait]
pub trait LoadBalancer: Send + Sync {
    /// The listener's protocol, or `None` if there is no such listener.
    async fn listener_protocol(&self, listener_arn: &str) -> Result<Option<ListenerProtocol>>;
    /// The load balancer's HTTPS listener on port 443, if any.
    async fn https_listener(&self, load_balancer_arn: &str) -> Result<Option<String>>;
    /// The target group the listener forwards to by default, else the load balancer's first.
    async fn default_target_group(&self, listener_arn: &str, load_balancer_arn: &str) -> Result<Option<String>>;
    /// True when at least one registered target is healthy. `Invalid` if the group does not exist.
    async fn has_healthy_target(&self, target_group_arn: &str) -> Result<bool>;
    /// Certificates attached to the listener (the default one included).
    async fn listener_certificates(&self, listener_arn: &str) -> Result<Vec<String>>;
    async fn attach_certificate(&self, listener_arn: &str, certificate_arn: &str) -> Result<()>;
    /// Detaches; not attached is fine.
    async fn detach_certificate(&self, listener_arn: &str, certificate_arn: &str) -> Result<()>;
    /// The listener's rules (the default rule excluded).
    async fn rules(&self, listener_arn: &str) -> Result<Vec<ListenerRule>>;
    /// Creates the rule; `PriorityInUse` if the priority is taken.
    async fn create_rule(&self, rule: &ProtectRule) -> Result<String>;
    /// Sets the rule's conditions and actions to `rule`'s (its listener and priority stay). `NotFound` if
    /// the rule is gone.
    async fn modify_rule(&self, rule_arn: &str, rule: &ProtectRule) -> Result<()>;
    /// Deletes the rule; already gone is fine.
    async fn delete_rule(&self, rule_arn: &str) -> Result<()>;
    /// Every listener of the load balancer the listener belongs to, with its default actions and rules.
    /// `Invalid` if the listener does not exist.
    async fn snapshot(&self, listener_arn: &str) -> Result<LoadBalancerView>;
    /// Replaces the listener's default action; a listener already gone is fine.
    async fn set_default(&self, listener_arn: &str, default: &ListenerDefault) -> Result<()>;
    /// Where an alias record for an app on this listener points: the DNS name of the listener's load
    /// balancer and the zone that serves it. `None` if there is no such listener.
    async fn alias_target(&self, listener_arn: &str) -> Result<Option<AliasTarget>>;

    // Finding what an app owns without its record (a step that died after a create).
    /// The listener's rules tagged with the app id, whatever the app recorded.
    async fn app_rules(&self, listener_arn: &str, app_id: &str) -> Result<Vec<ListenerRule>>;
}

/// What deleting a record came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Deleted,
    /// Nothing by that name and type was there.
    AlreadyGone,
    /// The record there says something else now: someone changed it, so it is not Portcullis's to delete.
    Changed,
}

/// Hosted zones (DNS): a tenant's zone, read, and written only at the names of its apps' records.
#[async_trait]
pub trait DnsZone: Send + Sync {
    /// The zone, or `None` if there is no such zone.
    async fn zone(&self, zone_id: &str) -> Result<Option<HostedZone>>;
    /// Every record at exactly this name, of any type.
    async fn records_at(&self, zone_id: &str, name: &str) -> Result<Vec<FoundRecord>>;
    /// Creates the record, or sets it to this value; the same again is a no-op. `app_id` goes into the
    /// change's comment, for whoever reads the zone's history.
    async fn upsert(&self, zone_id: &str, record: &DnsRecord, app_id: &str) -> Result<()>;
    /// Deletes exactly this record (name, type and value).
    async fn delete(&self, zone_id: &str, record: &DnsRecord, app_id: &str) -> Result<Removal>;
}

/// An app relying on a DNS record Portcullis wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordClaim {
    pub tenant_id: String,
    pub app_id: String,
}

/// Which apps rely on each DNS record Portcullis wrote, so that the last of them to go removes it (the
/// certificate authority gives every certificate for a name in an account the same validation record).
#[async_trait]
pub trait RecordClaims: Send + Sync {
    /// Notes that the app relies on the record; again is fine.
    async fn claim(&self, zone_id: &str, name: &str, claim: &RecordClaim) -> Result<()>;
    /// Forgets the app's claim; none is fine.
    async fn release(&self, zone_id: &str, name: &str, app_id: &str) -> Result<()>;
    /// Every claim on the record.
    async fn claims(&self, zone_id: &str, name: &str) -> Result<Vec<RecordClaim>>;
}

/// Elastic Beanstalk environments.
#[async_trait]
pub trait Environments: Send + Sync {
    async fn environment(&self, name: &str) -> Result<Option<EnvironmentState>>;
    /// The ARN of the environment's application load balancer.
    async fn load_balancer(&self, name: &str) -> Result<Option<String>>;
}

/// How an app's user pool is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSpec {
    pub pool_name: String,
    pub app_id: String,
    pub invitation_subject: String,
    pub invitation_body: String,
    /// The tenant's SES identity; without one, Cognito's default sender.
    pub ses: Option<SesIdentity>,
    /// How long an invitation's temporary password works.
    pub temporary_password_days: u8,
}

/// How an app's client is made: code flow, `openid email`, callback and logout URLs, with a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSpec {
    pub client_name: String,
    pub callback_url: String,
    pub logout_url: String,
}

/// A created user pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedPool {
    pub id: String,
    pub arn: String,
}

/// A user pool found by the app id it is tagged with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundPool {
    pub id: String,
    pub arn: String,
    /// The prefix of its hosted domain, if it has one.
    pub domain_prefix: Option<String>,
}

/// App user pools (Cognito): created and deleted by the workflow.
#[async_trait]
pub trait UserPools: Send + Sync {
    async fn create_pool(&self, spec: &PoolSpec) -> Result<CreatedPool>;
    /// Sets whether the pool's users sign in with a TOTP code too; the same again is a no-op.
    async fn set_mfa(&self, pool_id: &str, mfa: Mfa) -> Result<()>;
    /// Sets the pool's invitation (and every other setting `create_pool` makes, with `mfa`), as the
    /// provider resets whatever an update leaves out.
    async fn update_pool(&self, pool_id: &str, spec: &PoolSpec, mfa: Mfa) -> Result<()>;
    /// Creates the client and returns its id (never its secret).
    async fn create_client(&self, pool_id: &str, spec: &ClientSpec) -> Result<String>;
    /// Creates the hosted domain and returns its host name.
    async fn create_domain(&self, pool_id: &str, prefix: &str) -> Result<String>;
    /// Each delete treats "already gone" as done.
    async fn delete_domain(&self, pool_id: &str, prefix: &str) -> Result<()>;
    async fn delete_client(&self, pool_id: &str, client_id: &str) -> Result<()>;
    async fn delete_pool(&self, pool_id: &str) -> Result<()>;

    // Finding what an app owns without its record (a step that died after a create).
    /// The pools named for the app (see [`crate::domain::pool_name`]) and tagged with its id.
    async fn find_pools(&self, app_id: &str) -> Result<Vec<FoundPool>>;
    /// The id of the pool's client of this name, if there is one.
    async fn find_client(&self, pool_id: &str, client_name: &str) -> Result<Option<String>>;
}

/// Which of a pool's users a listing asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserFilter {
    Everyone,
    /// Invited, and not signed in yet: their invitation is pending or expired.
    NotSignedIn,
}

/// The users of an app's pool (Cognito): invited, listed and revoked by the app's admins.
#[async_trait]
pub trait AppUsers: Send + Sync {
    /// Creates the user (email verified) and has Cognito email the invitation with a temporary password
    /// that never passes through Portcullis. `Conflict` if the email is taken; `Retryable` when throttled.
    async fn invite(&self, pool_id: &str, invitee: &Invitee) -> Result<AppUser>;
    /// Sends the invitation again with a new temporary password and expiry. `NotFound` for an unknown
    /// user, `Conflict` for one who has already signed in.
    async fn resend(&self, pool_id: &str, username: &str) -> Result<()>;
    /// A page of the pool's users (a filtered page may hold fewer than `limit`, and still have a next).
    async fn list(
        &self,
        pool_id: &str,
        filter: UserFilter,
        limit: u32,
        next_token: Option<&str>,
    ) -> Result<Page<AppUser>>;
    /// Signs the user out everywhere and removes them from the pool. `NotFound` for an unknown user.
    async fn revoke(&self, pool_id: &str, username: &str) -> Result<()>;
    /// Disables the user (no more sign-ins) and signs them out everywhere, keeping the account.
    /// `NotFound` for an unknown user.
    async fn end_access(&self, pool_id: &str, username: &str) -> Result<()>;
}

/// The roles of an app's pool (Cognito groups) and who holds them.
#[async_trait]
pub trait AppRoles: Send + Sync {
    /// Creates the role. `Conflict` if the app has one by that name.
    async fn create(&self, pool_id: &str, role: &NewAppRole) -> Result<AppRole>;
    /// A page of the app's roles.
    async fn list(&self, pool_id: &str, limit: u32, next_token: Option<&str>) -> Result<Page<AppRole>>;
    /// Whether the app has a role by that name.
    async fn exists(&self, pool_id: &str, name: &str) -> Result<bool>;
    /// Deletes the role; whoever held it no longer does. `NotFound` if there is none by that name.
    async fn delete(&self, pool_id: &str, name: &str) -> Result<()>;
    /// The roles the user holds. `NotFound` for an unknown user.
    async fn held_by(&self, pool_id: &str, username: &str) -> Result<BTreeSet<String>>;
    /// Gives the user the role (held already is fine). `NotFound` for an unknown user or role.
    async fn give(&self, pool_id: &str, username: &str, role: &str) -> Result<()>;
    /// Takes the role from the user (not held is fine). `NotFound` for an unknown user or role.
    async fn take(&self, pool_id: &str, username: &str, role: &str) -> Result<()>;
}

/// Starting, stopping and watching the state machines' executions (Step Functions).
#[async_trait]
pub trait Workflow: Send + Sync {
    /// Starts the execution; one already started under the same name counts as started.
    async fn start(&self, execution: &Execution) -> Result<()>;
    /// Stops the execution; one that has already ended, or never started, counts as stopped.
    async fn stop(&self, execution: &Execution) -> Result<()>;
    /// Whether the execution is running now (false when it has ended or never started).
    async fn is_running(&self, execution: &Execution) -> Result<bool>;
}

/// The registry's record of service tokens: which tenant each client belongs to, its scopes and expiry.
#[async_trait]
pub trait ServiceTokenRecords: Send + Sync {
    /// Records a new service token.
    async fn put(&self, token: &ServiceToken) -> Result<()>;
    /// The service token with this client id, of any tenant (what the token verifier asks).
    async fn by_client(&self, client_id: &str) -> Result<Option<ServiceToken>>;
    /// The tenant's service tokens (at most [`crate::domain::MAX_SERVICE_TOKENS`] or so), oldest first.
    async fn list(&self, tenant_id: &str) -> Result<Vec<ServiceToken>>;
    /// Forgets the token; none recorded is fine.
    async fn delete(&self, token: &ServiceToken) -> Result<()>;
}

/// A client secret, shown once to the caller who created it: never logged (its `Debug` hides it).
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(pub String);

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(…)")
    }
}

/// A client-credentials client, as the identity provider created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedCredential {
    pub client_id: String,
    pub client_secret: ClientSecret,
}

/// The operators' pool's client-credentials clients behind service tokens (Cognito).
#[async_trait]
pub trait ServiceCredentials: Send + Sync {
    /// Creates a client with a secret, the client-credentials grant and exactly these scopes.
    async fn create(&self, client_name: &str, scopes: &[Scope]) -> Result<CreatedCredential>;
    /// Deletes the client, so that it gets no more tokens; already gone is fine.
    async fn delete(&self, client_id: &str) -> Result<()>;
}

/// Verifies bearer tokens and says who the caller is.
#[async_trait]
pub trait TokenVerifier: Send + Sync {
    /// `Unauthenticated` for a bad token, `Forbidden` for a good one without tenant or role.
    async fn verify(&self, token: &str) -> Result<Caller>;
}

// The drift check's reads: what it compares with an ACTIVE app's record beyond what the wiring reads.

/// One listener rule's conditions and actions (ELBv2).
#[async_trait]
pub trait RuleInspection: Send + Sync {
    /// The rule's settings, or `None` if the listener (or the listener itself) has no such rule.
    async fn rule_settings(&self, listener_arn: &str, rule_arn: &str) -> Result<Option<RuleSettings>>;
}

/// An app's login as Cognito has it now.
#[async_trait]
pub trait LoginInspection: Send + Sync {
    async fn pool_exists(&self, pool_id: &str) -> Result<bool>;
    /// The client's OAuth settings, or `None` if it (or its pool) is gone.
    async fn client_settings(&self, pool_id: &str, client_id: &str) -> Result<Option<ClientSettings>>;
    /// The pool that holds the hosted-domain prefix, or `None` if the prefix is free.
    async fn domain_holder(&self, prefix: &str) -> Result<Option<String>>;
}
