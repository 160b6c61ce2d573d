//! In-memory ports for unit tests of the library's logic. The real path of each is tested end to end
//! in tests/ against the local stack.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::{
    AliasTarget, App, AppEvent, AppRole, AppStatus, AppUser, Caller, CertificateStatus, DnsRecord, DomainRule,
    EnvironmentState, FoundRecord, GrantedTarget, HostedZone, Invitation, InvitationState, Invitee, ListenerDefault,
    ListenerProtocol, LoadBalancerView, Mfa, NewAppRole, Registration, Resend, Resources, Role, RuleAction, Scope,
    ServiceToken, SesConfig, Target, Tenant, TenantQuotas, UserStatus,
};
use crate::error::{Error, Result};
use crate::ports::{
    AppRepository, AppRoles, AppUsers, DnsZone, Environments, History, InvitationRecords, ListenerRule, LoadBalancer,
    Page, PriorityReservations, ProtectRule, RecordClaim, RecordClaims, Removal, ServiceCredentials,
    ServiceTokenRecords, Subject, TenantRegistry, TokenVerifier, UserFilter,
};
use crate::ports::{
    CertificateAuthority, CertificateState, ClientSecret, ClientSpec, CreatedCredential, CreatedPool, FoundPool,
    PoolSpec, UserPools,
};

/// The tenant every fake caller belongs to.
pub const TENANT: &str = "t";
/// The listener and target group the fake tenant is granted, and fake apps run on.
pub const LISTENER: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/demo/1/2";
pub const TARGET_GROUP: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/demo/3";

/// Apps by id, and the domain guard (domain → app id).
#[derive(Default)]
pub struct MemoryApps {
    pub apps: Mutex<HashMap<String, App>>,
    pub domains: Mutex<HashMap<String, String>>,
}

impl MemoryApps {
    pub fn all(&self) -> Vec<App> {
        self.apps.lock().unwrap().values().cloned().collect()
    }

    pub fn insert(&self, app: App) {
        self.apps.lock().unwrap().insert(app.id.clone(), app);
    }

    pub fn app(&self, id: &str) -> App {
        self.apps.lock().unwrap()[id].clone()
    }
}

#[async_trait]
impl AppRepository for MemoryApps {
    async fn create(&self, app: &App, _: &AppEvent) -> Result<()> {
        let mut domains = self.domains.lock().unwrap();
        if domains.contains_key(&app.domain) {
            return Err(Error::Conflict(crate::domain::domain_taken(&app.domain)));
        }
        domains.insert(app.domain.clone(), app.id.clone());
        self.insert(app.clone());
        Ok(())
    }
    async fn get(&self, tenant_id: &str, app_id: &str) -> Result<Option<App>> {
        Ok(self.apps.lock().unwrap().get(app_id).filter(|a| a.tenant_id == tenant_id).cloned())
    }
    async fn list(&self, tenant_id: &str, _: u32, _: Option<&str>) -> Result<Page<App>> {
        let items = self.all().into_iter().filter(|a| a.tenant_id == tenant_id).collect();
        Ok(Page { items, next_token: None })
    }
    async fn update(&self, app: &mut App) -> Result<()> {
        app.version += 1;
        self.insert(app.clone());
        Ok(())
    }
    async fn release_domain(&self, domain: &str, app_id: &str) -> Result<()> {
        let mut domains = self.domains.lock().unwrap();
        if domains.get(domain).is_some_and(|holder| holder == app_id) {
            domains.remove(domain);
        }
        Ok(())
    }
    async fn domain_claimed(&self, domain: &str) -> Result<bool> {
        Ok(self.domains.lock().unwrap().contains_key(domain))
    }
    async fn count_live(&self, tenant_id: &str) -> Result<u32> {
        Ok(self.all().iter().filter(|a| a.tenant_id == tenant_id && a.status != AppStatus::Deleted).count() as u32)
    }
}

/// Events by subject, oldest first.
#[derive(Default)]
pub struct MemoryHistory {
    pub events: Mutex<Vec<(String, AppEvent)>>,
}

fn subject_key(subject: Subject<'_>) -> String {
    format!("{subject:?}")
}

#[async_trait]
impl History for MemoryHistory {
    async fn append(&self, subject: Subject<'_>, event: &AppEvent) -> Result<()> {
        self.events.lock().unwrap().push((subject_key(subject), event.clone()));
        Ok(())
    }
    async fn list(&self, subject: Subject<'_>, _: u32, _: Option<&str>) -> Result<Page<AppEvent>> {
        let (events, key) = (self.events.lock().unwrap(), subject_key(subject));
        let items = events.iter().rev().filter(|(id, _)| *id == key).map(|(_, e)| e.clone()).collect();
        Ok(Page { items, next_token: None })
    }
}

/// Reservations on one listener: priority → app id.
#[derive(Default)]
pub struct MemoryReservations {
    pub held: Mutex<BTreeMap<u32, String>>,
}

#[async_trait]
impl PriorityReservations for MemoryReservations {
    async fn reserved(&self, _: &str) -> Result<BTreeMap<u32, String>> {
        Ok(self.held.lock().unwrap().clone())
    }
    async fn reserve(&self, _: &str, priority: u32, app_id: &str) -> Result<()> {
        let mut held = self.held.lock().unwrap();
        match held.get(&priority) {
            Some(holder) if holder != app_id => Err(Error::PriorityInUse(format!("{priority} is taken"))),
            _ => {
                held.insert(priority, app_id.into());
                Ok(())
            }
        }
    }
    async fn release(&self, _: &str, priority: u32, app_id: &str) -> Result<()> {
        let mut held = self.held.lock().unwrap();
        if held.get(&priority).is_some_and(|holder| holder == app_id) {
            held.remove(&priority);
        }
        Ok(())
    }
}

/// One app pool's users; `resend` gives a user a fresh invitation and is recorded. Pool ids in
/// `broken` answer every call with an upstream failure.
#[derive(Default)]
pub struct MemoryAppUsers {
    pub users: Mutex<Vec<(String, AppUser)>>,
    pub resent: Mutex<Vec<String>>,
    /// Users whose access was ended.
    pub ended: Mutex<Vec<String>>,
    pub broken: Mutex<Vec<String>>,
}

/// A user invited at the epoch who has not signed in, as a pool lists them.
pub fn invited_user(username: &str, email: &str) -> AppUser {
    let epoch = OffsetDateTime::UNIX_EPOCH;
    AppUser {
        username: username.into(),
        email: email.into(),
        name: None,
        status: UserStatus::ForceChangePassword,
        enabled: true,
        invited_at: epoch,
        invited_by: None,
        invitation: InvitationState::of(UserStatus::ForceChangePassword, epoch, epoch),
        access_expires_at: None,
        access_ended_at: None,
    }
}

impl MemoryAppUsers {
    /// Adds a user in FORCE_CHANGE_PASSWORD to the pool.
    pub fn invited(&self, pool_id: &str, username: &str) {
        let user = invited_user(username, &format!("{username}@example.com"));
        self.users.lock().unwrap().push((pool_id.into(), user));
    }

    fn check(&self, pool_id: &str) -> Result<()> {
        match self.broken.lock().unwrap().iter().any(|p| p == pool_id) {
            true => Err(Error::upstream("the pool is unavailable")),
            false => Ok(()),
        }
    }
}

#[async_trait]
impl AppUsers for MemoryAppUsers {
    async fn invite(&self, _: &str, _: &Invitee) -> Result<AppUser> {
        Err(Error::internal("not used"))
    }
    async fn resend(&self, pool_id: &str, username: &str) -> Result<()> {
        self.check(pool_id)?;
        self.resent.lock().unwrap().push(username.into());
        Ok(())
    }
    async fn list(&self, pool_id: &str, filter: UserFilter, _: u32, _: Option<&str>) -> Result<Page<AppUser>> {
        self.check(pool_id)?;
        let items = self
            .users
            .lock()
            .unwrap()
            .iter()
            .filter(|(pool, user)| {
                pool == pool_id && (filter == UserFilter::Everyone || user.status == UserStatus::ForceChangePassword)
            })
            .map(|(_, user)| user.clone())
            .collect();
        Ok(Page { items, next_token: None })
    }
    async fn revoke(&self, _: &str, _: &str) -> Result<()> {
        Err(Error::internal("not used"))
    }
    async fn end_access(&self, pool_id: &str, username: &str) -> Result<()> {
        self.check(pool_id)?;
        self.ended.lock().unwrap().push(username.into());
        Ok(())
    }
}

/// One pool's roles and who holds them; `give` fails for the roles in `refused`.
#[derive(Default)]
pub struct MemoryRoles {
    pub roles: Mutex<BTreeSet<String>>,
    pub held: Mutex<BTreeMap<String, BTreeSet<String>>>,
    pub refused: Mutex<BTreeSet<String>>,
}

#[async_trait]
impl AppRoles for MemoryRoles {
    async fn create(&self, _: &str, role: &NewAppRole) -> Result<AppRole> {
        if !self.roles.lock().unwrap().insert(role.name.clone()) {
            return Err(Error::Conflict(format!("the app already has a role named '{}'", role.name)));
        }
        let created_at = OffsetDateTime::UNIX_EPOCH;
        Ok(AppRole { name: role.name.clone(), description: role.description.clone(), created_at })
    }
    async fn list(&self, _: &str, _: u32, _: Option<&str>) -> Result<Page<AppRole>> {
        let created_at = OffsetDateTime::UNIX_EPOCH;
        let roles = self.roles.lock().unwrap();
        let items = roles.iter().map(|name| AppRole { name: name.clone(), description: None, created_at }).collect();
        Ok(Page { items, next_token: None })
    }
    async fn exists(&self, _: &str, name: &str) -> Result<bool> {
        Ok(self.roles.lock().unwrap().contains(name))
    }
    async fn delete(&self, _: &str, name: &str) -> Result<()> {
        match self.roles.lock().unwrap().remove(name) {
            true => Ok(()),
            false => Err(Error::NotFound(format!("the app has no role '{name}'"))),
        }
    }
    async fn held_by(&self, _: &str, username: &str) -> Result<BTreeSet<String>> {
        Ok(self.held.lock().unwrap().get(username).cloned().unwrap_or_default())
    }
    async fn give(&self, _: &str, username: &str, role: &str) -> Result<()> {
        if self.refused.lock().unwrap().contains(role) {
            return Err(Error::upstream("the pool is unavailable"));
        }
        self.held.lock().unwrap().entry(username.into()).or_default().insert(role.into());
        Ok(())
    }
    async fn take(&self, _: &str, username: &str, role: &str) -> Result<()> {
        self.held.lock().unwrap().entry(username.into()).or_default().remove(role);
        Ok(())
    }
}

/// Invitations by (app id, username).
#[derive(Default)]
pub struct MemoryInvitations {
    pub records: Mutex<HashMap<(String, String), Invitation>>,
}

#[async_trait]
impl InvitationRecords for MemoryInvitations {
    async fn put(&self, app: &App, invitation: &Invitation) -> Result<()> {
        self.records.lock().unwrap().insert((app.id.clone(), invitation.username.clone()), invitation.clone());
        Ok(())
    }
    async fn get_many(&self, app_id: &str, usernames: &[String]) -> Result<HashMap<String, Invitation>> {
        let records = self.records.lock().unwrap();
        Ok(usernames
            .iter()
            .filter_map(|u| records.get(&(app_id.to_string(), u.clone())).map(|i| (u.clone(), i.clone())))
            .collect())
    }
    async fn mark_sent(&self, app_id: &str, username: &str, at: OffsetDateTime, by: Resend) -> Result<()> {
        if let Some(record) = self.records.lock().unwrap().get_mut(&(app_id.into(), username.into())) {
            record.last_sent_at = at;
            record.auto_resends += u32::from(by == Resend::Automatic);
        }
        Ok(())
    }
    async fn delete(&self, app_id: &str, username: &str) -> Result<()> {
        self.records.lock().unwrap().remove(&(app_id.into(), username.into()));
        Ok(())
    }
    async fn list(&self, app_id: &str) -> Result<Vec<Invitation>> {
        let records = self.records.lock().unwrap();
        Ok(records.iter().filter(|((app, _), _)| app == app_id).map(|(_, i)| i.clone()).collect())
    }
    async fn mark_access_ended(&self, app_id: &str, username: &str, at: OffsetDateTime) -> Result<()> {
        if let Some(record) = self.records.lock().unwrap().get_mut(&(app_id.into(), username.into())) {
            record.access_ended_at = Some(at);
        }
        Ok(())
    }
    async fn forget_all(&self, app_id: &str) -> Result<()> {
        self.records.lock().unwrap().retain(|(app, _), _| app != app_id);
        Ok(())
    }
}

/// Registered tenants by id, and the hand-written SES identities.
#[derive(Default)]
pub struct MemoryTenants {
    pub tenants: Mutex<HashMap<String, Tenant>>,
    pub legacy: Mutex<HashMap<String, SesConfig>>,
}

impl MemoryTenants {
    /// [`TENANT`], allowed `*.example.com` and granted [`LISTENER`] and [`TARGET_GROUP`] as `shared`.
    pub fn granting_the_fakes() -> Self {
        let registration = Registration {
            display_name: None,
            allowed_domains: vec![DomainRule::Suffix("example.com".into())],
            targets: vec![GrantedTarget {
                id: "shared".into(),
                target: Target::Alb { listener_arn: LISTENER.into(), target_group_arn: TARGET_GROUP.into() },
            }],
            hosted_zone_id: None,
            ses: None,
            quotas: TenantQuotas::default(),
            default_allowed_email_domains: vec![],
        };
        let now = OffsetDateTime::UNIX_EPOCH;
        let tenant = Tenant { id: TENANT.into(), registration, created_at: now, updated_at: now, version: 1 };
        let tenants = MemoryTenants::default();
        tenants.tenants.lock().unwrap().insert(TENANT.into(), tenant);
        tenants
    }
}

#[async_trait]
impl TenantRegistry for MemoryTenants {
    async fn get(&self, tenant_id: &str) -> Result<Option<Tenant>> {
        Ok(self.tenants.lock().unwrap().get(tenant_id).cloned())
    }
    async fn list(&self, _: u32, _: Option<&str>) -> Result<Page<Tenant>> {
        let mut items: Vec<Tenant> = self.tenants.lock().unwrap().values().cloned().collect();
        items.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(Page { items, next_token: None })
    }
    async fn put(&self, tenant: &mut Tenant, _: Option<&Tenant>) -> Result<()> {
        let mut tenants = self.tenants.lock().unwrap();
        let taken = tenants.values().filter(|other| other.id != tenant.id).any(|other| {
            other
                .registration
                .targets
                .iter()
                .any(|o| tenant.registration.targets.iter().any(|t| t.exclusive_key() == o.exclusive_key()))
        });
        if taken {
            return Err(Error::Conflict("a target is granted to another tenant".into()));
        }
        tenant.version += 1;
        tenants.insert(tenant.id.clone(), tenant.clone());
        Ok(())
    }
    async fn delete(&self, tenant: &Tenant) -> Result<()> {
        self.tenants.lock().unwrap().remove(&tenant.id);
        Ok(())
    }
    async fn legacy_ses(&self, tenant_id: &str) -> Result<Option<SesConfig>> {
        Ok(self.legacy.lock().unwrap().get(tenant_id).cloned())
    }
}

/// Every token is a caller of [`TENANT`] with this role.
pub struct FixedCaller(pub Role);

#[async_trait]
impl TokenVerifier for FixedCaller {
    async fn verify(&self, _: &str) -> Result<Caller> {
        Ok(Caller { actor: "sub-1 (admin@example.com)".into(), tenant: Some((TENANT.into(), self.0)), platform: false })
    }
}

/// An app of [`TENANT`] in `status`, with nothing recorded yet.
pub fn app(id: &str, status: AppStatus) -> App {
    App {
        id: id.into(),
        tenant_id: TENANT.into(),
        name: "Grafana".into(),
        domain: "grafana.example.com".into(),
        target: Target::Alb { listener_arn: LISTENER.into(), target_group_arn: TARGET_GROUP.into() },
        session_timeout_seconds: 3600,
        dns_alias: false,
        auto_resend: false,
        access_policy: Default::default(),
        mfa: Default::default(),
        status,
        step: None,
        resources: Resources::default(),
        error: None,
        created_by: "me".into(),
        created_at: OffsetDateTime::UNIX_EPOCH,
        updated_at: OffsetDateTime::UNIX_EPOCH,
        version: 1,
        deletion_version: None,
        health: None,
        settings_change: None,
    }
}

/// Stores an ACTIVE app with a pool, and returns it.
pub fn active_app(apps: &MemoryApps) -> App {
    let mut active = app(&uuid::Uuid::now_v7().to_string(), AppStatus::Active);
    active.resources.user_pool_id = Some("pool".into());
    apps.insert(active.clone());
    active
}

/// A listener whose rules the test sets; `taken_by_others` makes `create_rule` answer PriorityInUse.
#[derive(Default)]
pub struct MemoryListener {
    pub rules: Mutex<Vec<ListenerRule>>,
    pub certificates: Mutex<Vec<String>>,
    pub created: Mutex<Vec<ProtectRule>>,
    pub deleted: Mutex<Vec<String>>,
    pub taken_by_others: Mutex<Vec<u32>>,
    /// What `snapshot` answers; `set_default` changes it and is recorded.
    pub view: Mutex<Option<LoadBalancerView>>,
    pub defaults_set: Mutex<Vec<(String, ListenerDefault)>>,
    /// The app id each rule is tagged with, by rule ARN (`create_rule` tags the rules it makes).
    pub rule_tags: Mutex<HashMap<String, String>>,
    /// Rules modified, with what they were set to.
    pub modified: Mutex<Vec<(String, ProtectRule)>>,
}

#[async_trait]
impl LoadBalancer for MemoryListener {
    async fn listener_protocol(&self, _: &str) -> Result<Option<ListenerProtocol>> {
        Ok(Some(ListenerProtocol::Https))
    }
    async fn https_listener(&self, _: &str) -> Result<Option<String>> {
        Ok(Some(LISTENER.into()))
    }
    async fn default_target_group(&self, _: &str, _: &str) -> Result<Option<String>> {
        Ok(Some(TARGET_GROUP.into()))
    }
    async fn has_healthy_target(&self, _: &str) -> Result<bool> {
        Ok(true)
    }
    async fn listener_certificates(&self, _: &str) -> Result<Vec<String>> {
        Ok(self.certificates.lock().unwrap().clone())
    }
    async fn attach_certificate(&self, _: &str, certificate_arn: &str) -> Result<()> {
        self.certificates.lock().unwrap().push(certificate_arn.into());
        Ok(())
    }
    async fn detach_certificate(&self, _: &str, certificate_arn: &str) -> Result<()> {
        self.certificates.lock().unwrap().retain(|c| c != certificate_arn);
        Ok(())
    }
    async fn rules(&self, _: &str) -> Result<Vec<ListenerRule>> {
        Ok(self.rules.lock().unwrap().clone())
    }
    async fn create_rule(&self, rule: &ProtectRule) -> Result<String> {
        if self.taken_by_others.lock().unwrap().contains(&rule.priority) {
            return Err(Error::PriorityInUse(format!("priority {} is in use", rule.priority)));
        }
        self.created.lock().unwrap().push(rule.clone());
        let arn = format!("arn:rule/{}", rule.priority);
        self.rule_tags.lock().unwrap().insert(arn.clone(), rule.app_id.clone());
        Ok(arn)
    }
    async fn delete_rule(&self, rule_arn: &str) -> Result<()> {
        self.deleted.lock().unwrap().push(rule_arn.into());
        Ok(())
    }
    async fn modify_rule(&self, rule_arn: &str, rule: &ProtectRule) -> Result<()> {
        self.modified.lock().unwrap().push((rule_arn.into(), rule.clone()));
        Ok(())
    }
    async fn snapshot(&self, _: &str) -> Result<LoadBalancerView> {
        Ok(self.view.lock().unwrap().clone().expect("the test sets the load balancer"))
    }
    async fn set_default(&self, listener_arn: &str, default: &ListenerDefault) -> Result<()> {
        self.defaults_set.lock().unwrap().push((listener_arn.into(), default.clone()));
        let action = match default {
            ListenerDefault::Forward { target_group_arn } => {
                RuleAction::Forward { target_groups: vec![target_group_arn.clone()] }
            }
            ListenerDefault::RedirectToHttps => RuleAction::Redirect,
            ListenerDefault::NotFound => RuleAction::FixedResponse,
        };
        let mut view = self.view.lock().unwrap();
        let listener = view.iter_mut().flat_map(|v| v.listeners.iter_mut()).find(|l| l.arn == listener_arn);
        listener.expect("a listener of the test's load balancer").default_actions = vec![action];
        Ok(())
    }
    async fn alias_target(&self, _: &str) -> Result<Option<AliasTarget>> {
        Ok(Some(load_balancer_alias()))
    }
    async fn app_rules(&self, _: &str, app_id: &str) -> Result<Vec<ListenerRule>> {
        let tags = self.rule_tags.lock().unwrap();
        let rules = self.rules.lock().unwrap();
        Ok(rules.iter().filter(|r| tags.get(&r.arn).is_some_and(|tagged| tagged == app_id)).cloned().collect())
    }
}

/// Certificates by ARN: (domain, app id tag, status); deletes are recorded.
#[derive(Default)]
pub struct MemoryCertificates {
    pub certificates: Mutex<BTreeMap<String, (String, String, CertificateStatus)>>,
    pub requested: Mutex<Vec<String>>,
    pub deleted: Mutex<Vec<String>>,
}

#[async_trait]
impl CertificateAuthority for MemoryCertificates {
    async fn request(&self, domain: &str, token: &str, app_id: &str) -> Result<String> {
        let arn = format!("arn:certificate/{token}-{}", self.requested.lock().unwrap().len());
        self.requested.lock().unwrap().push(arn.clone());
        let certificate = (domain.to_string(), app_id.to_string(), CertificateStatus::PendingValidation);
        self.certificates.lock().unwrap().insert(arn.clone(), certificate);
        Ok(arn)
    }
    async fn describe(&self, arn: &str) -> Result<CertificateState> {
        let status = self.certificates.lock().unwrap().get(arn).map(|c| c.2).unwrap_or(CertificateStatus::Unknown);
        Ok(CertificateState { status, validation_record: None })
    }
    async fn delete(&self, arn: &str) -> Result<()> {
        self.deleted.lock().unwrap().push(arn.into());
        self.certificates.lock().unwrap().remove(arn);
        Ok(())
    }
    async fn find(&self, domain: &str, app_id: &str) -> Result<Vec<String>> {
        let certificates = self.certificates.lock().unwrap();
        Ok(certificates
            .iter()
            .filter(|(_, (d, a, _))| d == domain && a == app_id)
            .map(|(arn, _)| arn.clone())
            .collect())
    }
}

/// User pools by id: (name, app id tag, domain prefix, clients by id → name); deletes are recorded.
#[derive(Default)]
pub struct MemoryPools {
    pub pools: Mutex<BTreeMap<String, MemoryPool>>,
    pub created: Mutex<Vec<String>>,
    pub deleted: Mutex<Vec<String>>,
    /// Pools updated: (pool id, invitation subject, MFA).
    pub updated: Mutex<Vec<(String, String, Mfa)>>,
}

/// One pool of [`MemoryPools`].
#[derive(Debug, Clone, Default)]
pub struct MemoryPool {
    pub name: String,
    pub app_id: String,
    pub domain_prefix: Option<String>,
    pub clients: BTreeMap<String, String>,
    pub mfa: Mfa,
}

impl MemoryPools {
    /// Adds a pool as a step that died after creating it left it.
    pub fn put(&self, id: &str, pool: MemoryPool) {
        self.pools.lock().unwrap().insert(id.into(), pool);
    }

    pub fn pool(&self, id: &str) -> Option<MemoryPool> {
        self.pools.lock().unwrap().get(id).cloned()
    }
}

#[async_trait]
impl UserPools for MemoryPools {
    async fn create_pool(&self, spec: &PoolSpec) -> Result<CreatedPool> {
        let id = format!("pool-{}", self.created.lock().unwrap().len() + 1);
        self.created.lock().unwrap().push(id.clone());
        self.put(&id, MemoryPool { name: spec.pool_name.clone(), app_id: spec.app_id.clone(), ..Default::default() });
        Ok(CreatedPool { arn: format!("arn:{id}"), id })
    }
    async fn set_mfa(&self, pool_id: &str, mfa: Mfa) -> Result<()> {
        let mut pools = self.pools.lock().unwrap();
        pools.get_mut(pool_id).ok_or_else(|| Error::Invalid(format!("no pool {pool_id}")))?.mfa = mfa;
        Ok(())
    }
    async fn update_pool(&self, pool_id: &str, spec: &PoolSpec, mfa: Mfa) -> Result<()> {
        self.updated.lock().unwrap().push((pool_id.into(), spec.invitation_subject.clone(), mfa));
        Ok(())
    }
    async fn create_client(&self, pool_id: &str, spec: &ClientSpec) -> Result<String> {
        let mut pools = self.pools.lock().unwrap();
        let pool = pools.get_mut(pool_id).ok_or_else(|| Error::Invalid(format!("no pool {pool_id}")))?;
        let id = format!("{pool_id}-client-{}", pool.clients.len() + 1);
        pool.clients.insert(id.clone(), spec.client_name.clone());
        Ok(id)
    }
    async fn create_domain(&self, pool_id: &str, prefix: &str) -> Result<String> {
        let mut pools = self.pools.lock().unwrap();
        let pool = pools.get_mut(pool_id).ok_or_else(|| Error::Invalid(format!("no pool {pool_id}")))?;
        pool.domain_prefix = Some(prefix.into());
        Ok(format!("{prefix}.auth.us-east-1.amazoncognito.com"))
    }
    async fn delete_domain(&self, pool_id: &str, _: &str) -> Result<()> {
        if let Some(pool) = self.pools.lock().unwrap().get_mut(pool_id) {
            pool.domain_prefix = None;
        }
        Ok(())
    }
    async fn delete_client(&self, pool_id: &str, client_id: &str) -> Result<()> {
        if let Some(pool) = self.pools.lock().unwrap().get_mut(pool_id) {
            pool.clients.remove(client_id);
        }
        Ok(())
    }
    async fn delete_pool(&self, pool_id: &str) -> Result<()> {
        self.deleted.lock().unwrap().push(pool_id.into());
        self.pools.lock().unwrap().remove(pool_id);
        Ok(())
    }
    async fn find_pools(&self, app_id: &str) -> Result<Vec<FoundPool>> {
        let pools = self.pools.lock().unwrap();
        Ok(pools
            .iter()
            .filter(|(_, p)| p.app_id == app_id && crate::domain::is_pool_name_of(&p.name, app_id))
            .map(|(id, p)| FoundPool {
                id: id.clone(),
                arn: format!("arn:{id}"),
                domain_prefix: p.domain_prefix.clone(),
            })
            .collect())
    }
    async fn find_client(&self, pool_id: &str, client_name: &str) -> Result<Option<String>> {
        let pools = self.pools.lock().unwrap();
        let clients = pools.get(pool_id).map(|p| p.clients.clone()).unwrap_or_default();
        Ok(clients.into_iter().find(|(_, name)| name == client_name).map(|(id, _)| id))
    }
}

/// Where [`MemoryListener`]'s load balancer answers.
pub fn load_balancer_alias() -> AliasTarget {
    AliasTarget { dns_name: "demo-1.us-east-1.elb.example.".into(), zone_id: "ZLOADBALANCER".into() }
}

/// The hosted zone [`MemoryZone`] holds: `example.com.`, public.
pub const ZONE: &str = "ZEXAMPLE";

/// One hosted zone and its records (name → records there), with every write and delete recorded.
pub struct MemoryZone {
    pub zone: Mutex<Option<HostedZone>>,
    pub records: Mutex<Vec<DnsRecord>>,
    /// Records at a name Portcullis did not make, as the zone reports them.
    pub foreign: Mutex<Vec<(String, FoundRecord)>>,
    pub upserts: Mutex<Vec<DnsRecord>>,
    pub deletes: Mutex<Vec<DnsRecord>>,
}

impl Default for MemoryZone {
    fn default() -> Self {
        MemoryZone {
            zone: Mutex::new(Some(HostedZone { id: ZONE.into(), name: "example.com.".into(), private: false })),
            records: Mutex::default(),
            foreign: Mutex::default(),
            upserts: Mutex::default(),
            deletes: Mutex::default(),
        }
    }
}

#[async_trait]
impl DnsZone for MemoryZone {
    async fn zone(&self, zone_id: &str) -> Result<Option<HostedZone>> {
        Ok(self.zone.lock().unwrap().clone().filter(|z| z.id == zone_id))
    }
    async fn records_at(&self, _: &str, name: &str) -> Result<Vec<FoundRecord>> {
        let mut found: Vec<FoundRecord> = self
            .records
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.name == name)
            .map(|r| FoundRecord::Known(r.value.clone()))
            .collect();
        found.extend(self.foreign.lock().unwrap().iter().filter(|(at, _)| at == name).map(|(_, f)| f.clone()));
        Ok(found)
    }
    async fn upsert(&self, _: &str, record: &DnsRecord, _: &str) -> Result<()> {
        self.upserts.lock().unwrap().push(record.clone());
        let mut records = self.records.lock().unwrap();
        records.retain(|r| !(r.name == record.name && r.value.record_type() == record.value.record_type()));
        records.push(record.clone());
        Ok(())
    }
    async fn delete(&self, _: &str, record: &DnsRecord, _: &str) -> Result<Removal> {
        self.deletes.lock().unwrap().push(record.clone());
        let mut records = self.records.lock().unwrap();
        let same_kind = |r: &DnsRecord| r.name == record.name && r.value.record_type() == record.value.record_type();
        Ok(match records.iter().position(same_kind) {
            None => Removal::AlreadyGone,
            Some(i) if records[i] != *record => Removal::Changed,
            Some(i) => {
                records.remove(i);
                Removal::Deleted
            }
        })
    }
}

/// Claims on records: (zone, name) → claims.
#[derive(Default)]
pub struct MemoryClaims {
    pub claims: Mutex<BTreeMap<(String, String), Vec<RecordClaim>>>,
}

#[async_trait]
impl RecordClaims for MemoryClaims {
    async fn claim(&self, zone_id: &str, name: &str, claim: &RecordClaim) -> Result<()> {
        let mut claims = self.claims.lock().unwrap();
        let on = claims.entry((zone_id.into(), name.into())).or_default();
        if !on.contains(claim) {
            on.push(claim.clone());
        }
        Ok(())
    }
    async fn release(&self, zone_id: &str, name: &str, app_id: &str) -> Result<()> {
        if let Some(on) = self.claims.lock().unwrap().get_mut(&(zone_id.into(), name.into())) {
            on.retain(|c| c.app_id != app_id);
        }
        Ok(())
    }
    async fn claims(&self, zone_id: &str, name: &str) -> Result<Vec<RecordClaim>> {
        Ok(self.claims.lock().unwrap().get(&(zone_id.into(), name.into())).cloned().unwrap_or_default())
    }
}

/// No Elastic Beanstalk environment at all.
pub struct NoEnvironments;

#[async_trait]
impl Environments for NoEnvironments {
    async fn environment(&self, _: &str) -> Result<Option<EnvironmentState>> {
        Ok(None)
    }
    async fn load_balancer(&self, _: &str) -> Result<Option<String>> {
        Ok(None)
    }
}

/// Service token records by client id.
#[derive(Default)]
pub struct MemoryServiceTokens {
    pub tokens: Mutex<BTreeMap<String, ServiceToken>>,
}

#[async_trait]
impl ServiceTokenRecords for MemoryServiceTokens {
    async fn put(&self, token: &ServiceToken) -> Result<()> {
        self.tokens.lock().unwrap().insert(token.client_id.clone(), token.clone());
        Ok(())
    }

    async fn by_client(&self, client_id: &str) -> Result<Option<ServiceToken>> {
        Ok(self.tokens.lock().unwrap().get(client_id).cloned())
    }

    async fn list(&self, tenant_id: &str) -> Result<Vec<ServiceToken>> {
        Ok(self.tokens.lock().unwrap().values().filter(|t| t.tenant_id == tenant_id).cloned().collect())
    }

    async fn delete(&self, token: &ServiceToken) -> Result<()> {
        self.tokens.lock().unwrap().remove(&token.client_id);
        Ok(())
    }
}

/// Client-credentials clients by id, with their scopes; secrets are `secret-<id>`.
#[derive(Default)]
pub struct MemoryCredentials {
    pub clients: Mutex<BTreeMap<String, Vec<Scope>>>,
}

#[async_trait]
impl ServiceCredentials for MemoryCredentials {
    async fn create(&self, _client_name: &str, scopes: &[Scope]) -> Result<CreatedCredential> {
        let mut clients = self.clients.lock().unwrap();
        let client_id = format!("client{}", clients.len() + 1);
        clients.insert(client_id.clone(), scopes.to_vec());
        Ok(CreatedCredential { client_secret: ClientSecret(format!("secret-{client_id}")), client_id })
    }

    async fn delete(&self, client_id: &str) -> Result<()> {
        self.clients.lock().unwrap().remove(client_id);
        Ok(())
    }
}

/// Idempotency records by (scope, key), with the store's conditional claim; `now` may be moved on.
#[derive(Default)]
pub struct MemoryKeys {
    pub records: Mutex<HashMap<(String, String), crate::domain::KeyRecord>>,
    /// Added to the clock, to see records expire.
    pub later: Mutex<time::Duration>,
}

#[async_trait]
impl crate::ports::IdempotencyStore for MemoryKeys {
    async fn claim(&self, claim: &crate::domain::KeyClaim) -> Result<crate::domain::ClaimOutcome> {
        use crate::domain::{ClaimOutcome, KeyRecord, KeyState};
        let now = OffsetDateTime::now_utc() + *self.later.lock().unwrap();
        let mut records = self.records.lock().unwrap();
        let id = (claim.scope.label().to_string(), claim.key.as_str().to_string());
        if let Some(held) = records.get(&id).filter(|r| !r.is_vacant(now)) {
            return Ok(ClaimOutcome::Held(held.clone()));
        }
        let record = KeyRecord {
            fingerprint: claim.fingerprint.clone(),
            holder: claim.holder.clone(),
            expires_at: claim.expires_at,
            lease_until: claim.lease_until,
            state: KeyState::InProgress,
        };
        records.insert(id, record);
        Ok(ClaimOutcome::Claimed)
    }

    async fn answer(&self, claim: &crate::domain::KeyClaim, answer: &crate::domain::StoredAnswer) -> Result<()> {
        let mut records = self.records.lock().unwrap();
        let id = (claim.scope.label().to_string(), claim.key.as_str().to_string());
        if let Some(record) = records.get_mut(&id).filter(|r| r.holder == claim.holder) {
            record.state = crate::domain::KeyState::Answered(answer.clone());
        }
        Ok(())
    }

    async fn release(&self, claim: &crate::domain::KeyClaim) -> Result<()> {
        let mut records = self.records.lock().unwrap();
        let id = (claim.scope.label().to_string(), claim.key.as_str().to_string());
        if records.get(&id).is_some_and(|r| r.holder == claim.holder) {
            records.remove(&id);
        }
        Ok(())
    }
}
