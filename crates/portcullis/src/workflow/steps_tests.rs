//! Unit tests of the steps' decisions over in-memory ports, for the paths no emulator can produce
//! (a lost write after a create, a priority taken between choosing and using it). The real path of
//! every step is tested end to end in tests/ against the local stack.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{AppRef, FailureName, Provisioner, StepInput};
use crate::domain::{
    App, AppStatus, CertificateStatus, EnvironmentState, ListenerDefault, ListenerProtocol, ListenerView,
    LoadBalancerView, Resources, RuleAction, RuleCondition, RuleView, Step, Target,
};
use crate::error::Result;
use crate::fakes::{
    self, MemoryApps, MemoryClaims, MemoryHistory, MemoryInvitations, MemoryListener, MemoryReservations,
    MemoryTenants, MemoryZone,
};
use crate::ports::*;

use fakes::{LISTENER, TARGET_GROUP};

/// Ports the tested steps do not reach, or reach only to delete.
struct Quiet;

#[async_trait]
impl CertificateAuthority for Quiet {
    async fn request(&self, _: &str, _: &str, _: &str) -> Result<String> {
        unreachable!()
    }
    async fn describe(&self, _: &str) -> Result<CertificateState> {
        Ok(CertificateState { status: CertificateStatus::Issued, validation_record: None })
    }
    async fn delete(&self, _: &str) -> Result<()> {
        Ok(())
    }
    async fn find(&self, _: &str, _: &str) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

#[async_trait]
impl Environments for Quiet {
    async fn environment(&self, _: &str) -> Result<Option<EnvironmentState>> {
        unreachable!()
    }
    async fn load_balancer(&self, _: &str) -> Result<Option<String>> {
        unreachable!()
    }
}

#[async_trait]
impl UserPools for Quiet {
    async fn create_pool(&self, _: &PoolSpec) -> Result<CreatedPool> {
        unreachable!()
    }
    async fn set_mfa(&self, _: &str, _: crate::domain::Mfa) -> Result<()> {
        unreachable!()
    }
    async fn update_pool(&self, _: &str, _: &PoolSpec, _: crate::domain::Mfa) -> Result<()> {
        unreachable!()
    }
    async fn create_client(&self, _: &str, _: &ClientSpec) -> Result<String> {
        unreachable!()
    }
    async fn create_domain(&self, _: &str, _: &str) -> Result<String> {
        unreachable!()
    }
    async fn delete_domain(&self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    async fn delete_client(&self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    async fn delete_pool(&self, _: &str) -> Result<()> {
        Ok(())
    }
    async fn find_pools(&self, _: &str) -> Result<Vec<FoundPool>> {
        Ok(Vec::new())
    }
    async fn find_client(&self, _: &str, _: &str) -> Result<Option<String>> {
        unreachable!()
    }
}

/// An app that has its certificate (attached) and pool, about to be wired.
fn app_ready_for_wiring() -> App {
    let mut app = fakes::app("app-1", AppStatus::Provisioning);
    app.target = Target::Alb { listener_arn: LISTENER.into(), target_group_arn: TARGET_GROUP.into() };
    app.step = Some(Step::Listener);
    app.resources = Resources {
        certificate_arn: Some("arn:cert".into()),
        listener_arn: Some(LISTENER.into()),
        target_group_arn: Some(TARGET_GROUP.into()),
        user_pool_id: Some("pool".into()),
        user_pool_arn: Some("arn:pool".into()),
        client_id: Some("client-1".into()),
        pool_domain_prefix: Some("pc-grafana".into()),
        listener_certificate_attached: true,
        ..Default::default()
    };
    app
}

struct World {
    apps: Arc<MemoryApps>,
    history: Arc<MemoryHistory>,
    reservations: Arc<MemoryReservations>,
    listener: Arc<MemoryListener>,
    zone: Arc<MemoryZone>,
    claims: Arc<MemoryClaims>,
    invitations: Arc<MemoryInvitations>,
    provisioner: Provisioner,
}

fn world(app: App) -> World {
    let apps = Arc::new(MemoryApps::default());
    apps.insert(app);
    let history = Arc::new(MemoryHistory::default());
    let reservations = Arc::new(MemoryReservations::default());
    let listener = Arc::new(MemoryListener::default());
    let (zone, claims) = (Arc::new(MemoryZone::default()), Arc::new(MemoryClaims::default()));
    let invitations = Arc::new(MemoryInvitations::default());
    let provisioner = Provisioner {
        apps: apps.clone(),
        history: history.clone(),
        priorities: reservations.clone(),
        tenants: Arc::new(MemoryTenants::granting_the_fakes()),
        certificates: Arc::new(Quiet),
        load_balancer: listener.clone(),
        environments: Arc::new(Quiet),
        user_pools: Arc::new(Quiet),
        dns: zone.clone(),
        record_claims: claims.clone(),
        invitations: invitations.clone(),
    };
    World { apps, history, reservations, listener, zone, claims, invitations, provisioner }
}

fn app_ref() -> AppRef {
    AppRef { tenant_id: fakes::TENANT.into(), app_id: "app-1".into(), execution: None }
}

fn rule(arn: &str, priority: u32, host: &str, client: Option<&str>) -> ListenerRule {
    ListenerRule { arn: arn.into(), priority, hosts: vec![host.into()], cognito_client_id: client.map(str::to_string) }
}

#[tokio::test]
async fn wiring_takes_the_lowest_free_priority_and_reserves_it() {
    let w = world(app_ready_for_wiring());
    w.listener.rules.lock().unwrap().push(rule("arn:other", 1, "other.example.com", None));
    w.reservations.held.lock().unwrap().insert(2, "app-2".into());
    w.provisioner.run(StepInput::WireListener(app_ref())).await.unwrap();
    let created = w.listener.created.lock().unwrap().clone();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].priority, 3);
    assert_eq!(created[0].host, "grafana.example.com");
    assert_eq!(w.reservations.held.lock().unwrap().get(&3).map(String::as_str), Some("app-1"));
    let app = w.apps.app("app-1");
    assert_eq!(app.resources.listener_rule_arn.as_deref(), Some("arn:rule/3"));
}

#[tokio::test]
async fn wiring_adopts_its_own_rule_after_a_lost_write() {
    let w = world(app_ready_for_wiring());
    w.listener.rules.lock().unwrap().push(rule("arn:mine", 7, "grafana.example.com", Some("client-1")));
    w.provisioner.run(StepInput::WireListener(app_ref())).await.unwrap();
    assert!(w.listener.created.lock().unwrap().is_empty(), "no second rule");
    let app = w.apps.app("app-1");
    assert_eq!(app.resources.listener_rule_arn.as_deref(), Some("arn:mine"));
    assert_eq!(app.resources.rule_priority, Some(7));
}

#[tokio::test]
async fn wiring_refuses_a_rule_for_its_host_that_it_did_not_make() {
    let w = world(app_ready_for_wiring());
    w.listener.rules.lock().unwrap().push(rule("arn:foreign", 7, "grafana.example.com", None));
    let err = w.provisioner.run(StepInput::WireListener(app_ref())).await.unwrap_err();
    assert_eq!(err.name, FailureName::InvalidTarget);
    assert!(err.message.contains("arn:foreign"));
    w.listener.rules.lock().unwrap()[0].cognito_client_id = Some("someone-elses-client".into());
    assert_eq!(
        w.provisioner.run(StepInput::WireListener(app_ref())).await.unwrap_err().name,
        FailureName::InvalidTarget
    );
    assert!(w.listener.created.lock().unwrap().is_empty());
}

/// Reservations another app makes between this app's read and its write: the read sees none of them.
struct RacedReservations {
    inner: MemoryReservations,
}

#[async_trait]
impl PriorityReservations for RacedReservations {
    async fn reserved(&self, _: &str) -> Result<BTreeMap<u32, String>> {
        Ok(BTreeMap::new())
    }
    async fn reserve(&self, listener: &str, priority: u32, app_id: &str) -> Result<()> {
        self.inner.reserve(listener, priority, app_id).await
    }
    async fn release(&self, listener: &str, priority: u32, app_id: &str) -> Result<()> {
        self.inner.release(listener, priority, app_id).await
    }
}

#[tokio::test]
async fn wiring_that_loses_a_reservation_race_takes_the_next_free_priority() {
    let mut w = world(app_ready_for_wiring());
    let raced = RacedReservations { inner: MemoryReservations::default() };
    raced.inner.held.lock().unwrap().extend([(1, "app-2".to_string()), (2, "app-3".to_string())]);
    let raced = Arc::new(raced);
    w.provisioner.priorities = raced.clone();
    w.provisioner.run(StepInput::WireListener(app_ref())).await.unwrap();
    let created = w.listener.created.lock().unwrap().clone();
    assert_eq!(created.iter().map(|r| r.priority).collect::<Vec<_>>(), vec![3]);
    assert_eq!(raced.inner.held.lock().unwrap().get(&3).map(String::as_str), Some("app-1"));
    assert_eq!(w.apps.app("app-1").resources.rule_priority, Some(3));
}

#[tokio::test]
async fn a_priority_taken_outside_portcullis_is_given_back_for_the_retry() {
    let w = world(app_ready_for_wiring());
    w.listener.taken_by_others.lock().unwrap().push(1);
    let err = w.provisioner.run(StepInput::WireListener(app_ref())).await.unwrap_err();
    assert_eq!(err.name, FailureName::PriorityInUse);
    assert!(w.reservations.held.lock().unwrap().is_empty(), "reservation released");
    assert_eq!(w.apps.app("app-1").resources.rule_priority, None);
}

#[tokio::test]
async fn teardown_removes_what_was_made_and_every_reservation_the_app_holds() {
    let mut app = app_ready_for_wiring();
    app.resources.listener_rule_arn = Some("arn:rule/3".into());
    app.resources.rule_priority = Some(3);
    let w = world(app);
    w.listener.certificates.lock().unwrap().extend(["arn:default".to_string(), "arn:cert".to_string()]);
    // 3 is recorded; 9 was reserved but its recording was lost; 4 belongs to another app.
    w.reservations.held.lock().unwrap().extend([(3, "app-1".into()), (9, "app-1".into()), (4, "app-2".into())]);
    w.provisioner.run(StepInput::Teardown(app_ref())).await.unwrap();
    w.provisioner.run(StepInput::Teardown(app_ref())).await.unwrap(); // and again: nothing breaks
    assert_eq!(w.listener.deleted.lock().unwrap().as_slice(), ["arn:rule/3"]);
    assert_eq!(w.listener.certificates.lock().unwrap().as_slice(), ["arn:default"]);
    assert_eq!(w.reservations.held.lock().unwrap().clone(), BTreeMap::from([(4, "app-2".to_string())]));
    let app = w.apps.app("app-1");
    assert_eq!(app.resources.listener_rule_arn, None);
    assert_eq!(app.resources.user_pool_id, None);
    assert_eq!(app.resources.certificate_arn, None);
    assert_eq!(app.resources.listener_arn.as_deref(), Some(LISTENER), "what was found stays");
}

#[tokio::test]
async fn teardown_forgets_the_apps_invitations_and_no_others() {
    let w = world(app_ready_for_wiring());
    let invitation = |username: &str| crate::domain::Invitation {
        username: username.into(),
        email: format!("{username}@example.com"),
        invited_by: "admin".into(),
        invited_at: time::OffsetDateTime::UNIX_EPOCH,
        last_sent_at: time::OffsetDateTime::UNIX_EPOCH,
        auto_resends: 0,
        access_expires_at: None,
        access_ended_at: None,
    };
    for (app, user) in [("app-1", "alice"), ("app-1", "bob"), ("app-2", "carol")] {
        w.invitations.records.lock().unwrap().insert((app.into(), user.into()), invitation(user));
    }
    w.provisioner.run(StepInput::Teardown(app_ref())).await.unwrap();
    let left: Vec<_> = w.invitations.records.lock().unwrap().keys().cloned().collect();
    assert_eq!(left, [("app-2".to_string(), "carol".to_string())]);
}

#[tokio::test]
async fn a_step_run_out_of_order_is_an_internal_failure_and_calls_nothing() {
    let mut app = app_ready_for_wiring();
    app.resources.user_pool_arn = None;
    let w = world(app);
    let err = w.provisioner.run(StepInput::WireListener(app_ref())).await.unwrap_err();
    assert_eq!(err.name, FailureName::Internal, "{err}");
    assert!(err.message.contains("user pool"), "{err}");
    assert!(w.listener.created.lock().unwrap().is_empty(), "no rule with an empty pool");
}

#[tokio::test]
async fn a_rule_without_a_login_is_never_taken_for_ours() {
    let mut app = app_ready_for_wiring();
    app.resources.client_id = None;
    let w = world(app);
    w.listener.rules.lock().unwrap().push(rule("arn:plain", 7, "grafana.example.com", None));
    let err = w.provisioner.run(StepInput::WireListener(app_ref())).await.unwrap_err();
    assert_eq!(err.name, FailureName::InvalidTarget);
}

#[tokio::test]
async fn a_vanished_app_is_app_not_found() {
    let w = world(app_ready_for_wiring());
    w.apps.apps.lock().unwrap().clear();
    let err = w.provisioner.run(StepInput::Activate(app_ref())).await.unwrap_err();
    assert_eq!(err.name, FailureName::AppNotFound);
}

const HTTP_LISTENER: &str = "arn:listener/http";

/// The app wired (rule 3 on the HTTPS listener) on a load balancer whose listeners have these defaults.
fn wired_on(http_default: RuleAction, https_default: RuleAction, https_rules: Vec<RuleView>) -> (World, App) {
    let mut app = app_ready_for_wiring();
    app.resources.listener_rule_arn = Some("arn:rule/3".into());
    app.resources.rule_priority = Some(3);
    let w = world(app.clone());
    let ours = RuleView {
        arn: "arn:rule/3".into(),
        priority: 3,
        conditions: vec![RuleCondition::HostHeader(vec![app.domain.clone()])],
        actions: vec![
            RuleAction::AuthenticateCognito { client_id: "client-1".into() },
            RuleAction::Forward { target_groups: vec![TARGET_GROUP.into()] },
        ],
    };
    let listener = |arn: &str, port, protocol, default, rules| ListenerView {
        arn: arn.into(),
        port,
        protocol,
        default_actions: vec![default],
        rules,
    };
    let mut rules = vec![ours];
    rules.extend(https_rules);
    *w.listener.view.lock().unwrap() = Some(LoadBalancerView {
        listeners: vec![
            listener(HTTP_LISTENER, 80, ListenerProtocol::Http, http_default, vec![]),
            listener(LISTENER, 443, ListenerProtocol::Https, https_default, rules),
        ],
    });
    (w, app)
}

fn forward_to_app() -> RuleAction {
    RuleAction::Forward { target_groups: vec![TARGET_GROUP.into()] }
}

#[tokio::test]
async fn a_beanstalk_alb_is_closed_recorded_and_restored_exactly_on_teardown() {
    let (w, mut app) = wired_on(forward_to_app(), forward_to_app(), vec![]);
    app.target = Target::ElasticBeanstalk { environment_name: "env".into() };
    w.apps.apps.lock().unwrap().insert(app.id.clone(), app);
    w.provisioner.run(StepInput::VerifyProtection(app_ref())).await.unwrap();
    let restore = ListenerDefault::Forward { target_group_arn: TARGET_GROUP.into() };
    assert_eq!(
        w.listener.defaults_set.lock().unwrap().clone(),
        vec![
            (HTTP_LISTENER.to_string(), ListenerDefault::RedirectToHttps),
            (LISTENER.to_string(), ListenerDefault::NotFound)
        ]
    );
    let recorded = w.apps.app("app-1").resources.closed_routes;
    assert_eq!(recorded.len(), 2);
    assert!(recorded.iter().all(|c| c.original == restore));

    // Again (a retried step): nothing is open, nothing more changes.
    w.provisioner.run(StepInput::VerifyProtection(app_ref())).await.unwrap();
    assert_eq!(w.listener.defaults_set.lock().unwrap().len(), 2);

    w.listener.defaults_set.lock().unwrap().clear();
    w.provisioner.run(StepInput::Teardown(app_ref())).await.unwrap();
    let set = w.listener.defaults_set.lock().unwrap().clone();
    assert_eq!(set, vec![(LISTENER.to_string(), restore.clone()), (HTTP_LISTENER.to_string(), restore)]);
    assert!(w.apps.app("app-1").resources.closed_routes.is_empty());
}

#[tokio::test]
async fn a_shared_alb_with_a_route_around_the_login_fails_and_is_left_alone() {
    let (w, _) = wired_on(RuleAction::Redirect, forward_to_app(), vec![]);
    let err = w.provisioner.run(StepInput::VerifyProtection(app_ref())).await.unwrap_err();
    assert_eq!(err.name, FailureName::TargetExposed);
    assert!(err.message.contains(LISTENER) && err.message.contains("default action"), "{err}");
    assert!(w.listener.defaults_set.lock().unwrap().is_empty(), "a shared load balancer is not changed");
    assert!(w.apps.app("app-1").resources.closed_routes.is_empty());
}

#[tokio::test]
async fn on_a_beanstalk_alb_a_shadowing_rule_fails_before_anything_is_closed() {
    let wildcard = RuleView {
        arn: "arn:rule/wild".into(),
        priority: 1,
        conditions: vec![RuleCondition::HostHeader(vec!["*.EXAMPLE.com".into()])],
        actions: vec![RuleAction::Forward { target_groups: vec!["arn:tg/other".into()] }],
    };
    let (w, mut app) = wired_on(forward_to_app(), forward_to_app(), vec![wildcard]);
    app.target = Target::ElasticBeanstalk { environment_name: "env".into() };
    w.apps.apps.lock().unwrap().insert(app.id.clone(), app);
    let err = w.provisioner.run(StepInput::VerifyProtection(app_ref())).await.unwrap_err();
    assert_eq!(err.name, FailureName::TargetExposed);
    assert!(err.message.contains("arn:rule/wild (priority 1)"), "{err}");
    assert!(!err.message.contains("default action"), "closable routes are not reported: {err}");
    assert!(w.listener.defaults_set.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_grant_withdrawn_while_waiting_stops_the_app_before_the_load_balancer() {
    let mut w = world(app_ready_for_wiring());
    w.provisioner.tenants = Arc::new(MemoryTenants::default());
    let err = w.provisioner.run(StepInput::WireListener(app_ref())).await.unwrap_err();
    assert_eq!(err.name, FailureName::TargetNotGranted);
    assert!(err.message.contains("not registered"), "{err}");

    let mut app = app_ready_for_wiring();
    app.target = Target::Alb { listener_arn: LISTENER.into(), target_group_arn: "arn:tg/not-granted".into() };
    let w = world(app);
    let err = w.provisioner.run(StepInput::WireListener(app_ref())).await.unwrap_err();
    assert_eq!(err.name, FailureName::TargetNotGranted);
    assert!(err.message.contains("not one granted"), "{err}");
    assert!(w.listener.created.lock().unwrap().is_empty() && w.listener.certificates.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_deleted_app_is_not_provisioned_further_nor_marked_failed_by_its_provisioning() {
    let mut app = app_ready_for_wiring();
    app.status = AppStatus::Deleting;
    let w = world(app);
    let err = w.provisioner.run(StepInput::WireListener(app_ref())).await.unwrap_err();
    assert_eq!(err.name, FailureName::Cancelled);
    assert!(w.listener.created.lock().unwrap().is_empty());

    let report = |execution: &str| {
        let input = serde_json::json!({"step": "markFailed", "tenantId": fakes::TENANT, "appId": "app-1",
            "execution": execution, "error": {"Error": "Cancelled", "Cause": "x"}});
        serde_json::from_value::<StepInput>(input).unwrap()
    };
    w.provisioner.run(report("app-1")).await.unwrap();
    assert_eq!(w.apps.app("app-1").status, AppStatus::Deleting, "the deletion owns the app");
    w.provisioner.run(report("app-1-delete-3")).await.unwrap();
    assert_eq!(w.apps.app("app-1").status, AppStatus::Failed, "a failed deletion is reported");
}

#[tokio::test]
async fn a_retried_activate_whose_write_landed_is_done() {
    let mut app = app_ready_for_wiring();
    app.status = AppStatus::Active;
    let w = world(app);
    w.provisioner.run(StepInput::Activate(app_ref())).await.unwrap();
    assert_eq!(w.apps.app("app-1").status, AppStatus::Active);
}

// DNS automation: the validation record and the app's alias in the tenant's hosted zone.

use crate::domain::{
    AuditAction, DnsRecord, FoundRecord, HostedZone, RecordState, RecordValue, ValidationRecord, ZoneRecord,
};
use fakes::ZONE;

/// The fake tenant, with the hosted zone [`ZONE`] (`example.com.`).
fn with_zone(w: &mut World) {
    let tenants = MemoryTenants::granting_the_fakes();
    tenants.tenants.lock().unwrap().get_mut(fakes::TENANT).unwrap().registration.hosted_zone_id = Some(ZONE.into());
    w.provisioner.tenants = Arc::new(tenants);
}

fn acm_record() -> ValidationRecord {
    ValidationRecord {
        name: "_x.grafana.example.com.".into(),
        record_type: "CNAME".into(),
        value: "_y.acm-validations.aws.".into(),
    }
}

fn validation_dns() -> DnsRecord {
    DnsRecord::validation(&acm_record()).unwrap()
}

/// An app whose certificate was just requested, with its validation record known.
fn app_with_certificate(id: &str) -> App {
    let mut app = fakes::app(id, AppStatus::Provisioning);
    app.step = Some(Step::DnsValidation);
    app.resources.certificate_arn = Some("arn:cert".into());
    app.resources.validation_record = Some(acm_record());
    app
}

fn app_ref_of(id: &str) -> AppRef {
    AppRef { tenant_id: fakes::TENANT.into(), app_id: id.into(), execution: None }
}

fn actions(w: &World) -> Vec<(AuditAction, String)> {
    w.history.events.lock().unwrap().iter().map(|(_, e)| (e.action, e.detail.clone())).collect()
}

#[tokio::test]
async fn the_validation_record_goes_into_the_tenants_zone_once_and_teardown_removes_it() {
    let mut w = world(app_with_certificate("app-1"));
    with_zone(&mut w);
    w.provisioner.run(StepInput::PublishValidationRecord(app_ref())).await.unwrap();
    w.provisioner.run(StepInput::PublishValidationRecord(app_ref())).await.unwrap(); // a retry writes nothing more
    assert_eq!(w.zone.upserts.lock().unwrap().clone(), vec![validation_dns()]);
    let placed = w.apps.app("app-1").resources.validation_dns.unwrap();
    assert_eq!((placed.zone_id.as_str(), placed.state), (ZONE, RecordState::Published));
    assert_eq!(placed.record.name, "_x.grafana.example.com.");
    assert_eq!(w.claims.claims(ZONE, &placed.record.name).await.unwrap().len(), 1);
    let published = actions(&w);
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].0, AuditAction::DnsValidationPublished);
    assert!(published[0].1.contains("_y.acm-validations.aws.") && published[0].1.contains(ZONE), "{published:?}");

    w.provisioner.run(StepInput::Teardown(app_ref())).await.unwrap();
    assert_eq!(w.zone.deletes.lock().unwrap().clone(), vec![validation_dns()]);
    assert!(w.zone.records.lock().unwrap().is_empty());
    assert!(w.claims.claims(ZONE, &placed.record.name).await.unwrap().is_empty());
    assert_eq!(w.apps.app("app-1").resources.validation_dns, None);
    let removed = actions(&w).into_iter().find(|(a, _)| *a == AuditAction::DnsRecordsRemoved).unwrap();
    assert!(removed.1.ends_with("removed"), "{removed:?}");
}

#[tokio::test]
async fn without_a_hosted_zone_nothing_is_written_and_the_record_stays_on_show() {
    let w = world(app_with_certificate("app-1"));
    w.provisioner.run(StepInput::PublishValidationRecord(app_ref())).await.unwrap();
    assert!(w.zone.upserts.lock().unwrap().is_empty());
    let app = w.apps.app("app-1");
    assert_eq!(app.resources.validation_dns, None);
    assert_eq!(app.resources.validation_record, Some(acm_record()));
    w.provisioner.run(StepInput::Teardown(app_ref())).await.unwrap();
    assert!(w.zone.deletes.lock().unwrap().is_empty());
    assert!(!actions(&w).iter().any(|(a, _)| *a == AuditAction::DnsRecordsRemoved));
}

#[tokio::test]
async fn a_record_not_given_yet_is_pending_for_the_state_machine_to_retry() {
    let mut app = app_with_certificate("app-1");
    app.resources.validation_record = None;
    let mut w = world(app);
    with_zone(&mut w);
    let err = w.provisioner.run(StepInput::PublishValidationRecord(app_ref())).await.unwrap_err();
    assert_eq!(err.name, FailureName::ValidationRecordPending, "{err}");
    assert!(w.zone.upserts.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_validation_record_outside_the_apps_domain_is_never_written() {
    let mut app = app_with_certificate("app-1");
    app.resources.validation_record = Some(ValidationRecord { name: "_x.other.example.com.".into(), ..acm_record() });
    let mut w = world(app);
    with_zone(&mut w);
    let err = w.provisioner.run(StepInput::PublishValidationRecord(app_ref())).await.unwrap_err();
    assert_eq!(err.name, FailureName::AwsError, "{err}");
    assert!(err.message.contains("not under grafana.example.com"), "{err}");
    assert!(w.zone.upserts.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_zone_that_is_missing_private_or_does_not_cover_the_domain_fails_before_anything_is_written() {
    for zone in [
        None,
        Some(HostedZone { id: ZONE.into(), name: "example.com.".into(), private: true }),
        Some(HostedZone { id: ZONE.into(), name: "other.org.".into(), private: false }),
    ] {
        let mut w = world(app_with_certificate("app-1"));
        with_zone(&mut w);
        *w.zone.zone.lock().unwrap() = zone;
        let err = w.provisioner.run(StepInput::PublishValidationRecord(app_ref())).await.unwrap_err();
        assert_eq!(err.name, FailureName::HostedZoneMismatch, "{err}");
        assert!(err.message.contains(ZONE) && err.message.contains("PUT /tenants/t"), "{err}");
        assert!(w.zone.upserts.lock().unwrap().is_empty());
        assert_eq!(w.apps.app("app-1").resources.validation_dns, None);
    }
}

#[tokio::test]
async fn a_different_record_at_the_name_is_never_replaced() {
    let mut w = world(app_with_certificate("app-1"));
    with_zone(&mut w);
    let foreign = FoundRecord::Known(RecordValue::Cname { value: "elsewhere.example.org.".into(), ttl: 60 });
    w.zone.foreign.lock().unwrap().push((validation_dns().name, foreign));
    let err = w.provisioner.run(StepInput::PublishValidationRecord(app_ref())).await.unwrap_err();
    assert_eq!(err.name, FailureName::DnsRecordConflict, "{err}");
    assert!(err.message.contains("elsewhere.example.org."), "{err}");
    assert!(w.zone.upserts.lock().unwrap().is_empty());
    assert_eq!(w.apps.app("app-1").resources.validation_dns, None, "nothing recorded, so teardown touches nothing");
}

#[tokio::test]
async fn the_same_record_made_outside_portcullis_is_used_and_left_in_place() {
    let mut w = world(app_with_certificate("app-1"));
    with_zone(&mut w);
    // Say, made for a certificate of the same name that the environment already has.
    w.zone.records.lock().unwrap().push(validation_dns());
    w.provisioner.run(StepInput::PublishValidationRecord(app_ref())).await.unwrap();
    assert!(w.zone.upserts.lock().unwrap().is_empty());
    assert_eq!(w.apps.app("app-1").resources.validation_dns.unwrap().state, RecordState::Found);
    w.provisioner.run(StepInput::Teardown(app_ref())).await.unwrap();
    assert!(w.zone.deletes.lock().unwrap().is_empty());
    assert_eq!(w.zone.records.lock().unwrap().clone(), vec![validation_dns()]);
    let removed = actions(&w).into_iter().find(|(a, _)| *a == AuditAction::DnsRecordsRemoved).unwrap();
    assert!(removed.1.contains("left in place"), "{removed:?}");
}

/// Stores `id` as a live app that wrote the validation record and claims it.
async fn another_app_relying_on_the_record(w: &World, id: &str, status: AppStatus) {
    let mut other = app_with_certificate(id);
    other.status = status;
    other.resources.validation_dns =
        Some(ZoneRecord { zone_id: ZONE.into(), record: validation_dns(), state: RecordState::Published });
    w.apps.insert(other);
    let claim = RecordClaim { tenant_id: fakes::TENANT.into(), app_id: id.into() };
    w.claims.claim(ZONE, &validation_dns().name, &claim).await.unwrap();
    if !w.zone.records.lock().unwrap().contains(&validation_dns()) {
        w.zone.records.lock().unwrap().push(validation_dns());
    }
}

#[tokio::test]
async fn a_record_another_live_app_relies_on_is_kept_until_the_last_of_them_goes() {
    let mut w = world(app_with_certificate("app-1"));
    with_zone(&mut w);
    another_app_relying_on_the_record(&w, "app-2", AppStatus::Active).await;
    // app-2 wrote it: app-1 relies on it too, rather than taking it for someone else's.
    w.provisioner.run(StepInput::PublishValidationRecord(app_ref())).await.unwrap();
    assert_eq!(w.apps.app("app-1").resources.validation_dns.unwrap().state, RecordState::Published);

    w.provisioner.run(StepInput::Teardown(app_ref())).await.unwrap();
    assert!(w.zone.deletes.lock().unwrap().is_empty(), "app-2 still relies on it");
    assert_eq!(w.zone.records.lock().unwrap().clone(), vec![validation_dns()]);
    let kept = actions(&w).into_iter().find(|(a, _)| *a == AuditAction::DnsRecordsRemoved).unwrap();
    assert!(kept.1.contains("kept: another app relies on it") && !kept.1.contains("app-2"), "{kept:?}");

    w.provisioner.run(StepInput::Teardown(app_ref_of("app-2"))).await.unwrap();
    assert_eq!(w.zone.deletes.lock().unwrap().clone(), vec![validation_dns()], "the last one removes it");
    assert!(w.zone.records.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_claim_of_an_app_that_is_gone_or_deleted_keeps_nothing() {
    let mut w = world(app_with_certificate("app-1"));
    with_zone(&mut w);
    another_app_relying_on_the_record(&w, "app-2", AppStatus::Deleted).await;
    let stale = RecordClaim { tenant_id: fakes::TENANT.into(), app_id: "app-vanished".into() };
    w.claims.claim(ZONE, &validation_dns().name, &stale).await.unwrap();
    // Nobody live wrote the record that is there: it is someone else's.
    w.provisioner.run(StepInput::PublishValidationRecord(app_ref())).await.unwrap();
    assert_eq!(w.apps.app("app-1").resources.validation_dns.unwrap().state, RecordState::Found);

    let mut app = w.apps.app("app-1");
    app.resources.validation_dns.as_mut().unwrap().state = RecordState::Published;
    w.apps.insert(app);
    w.provisioner.run(StepInput::Teardown(app_ref())).await.unwrap();
    assert_eq!(w.zone.deletes.lock().unwrap().clone(), vec![validation_dns()]);
}

#[tokio::test]
async fn a_write_recorded_but_not_confirmed_is_finished_by_the_retry_and_removed_by_teardown_either_way() {
    let mut app = app_with_certificate("app-1");
    app.resources.validation_dns =
        Some(ZoneRecord { zone_id: ZONE.into(), record: validation_dns(), state: RecordState::Writing });
    let mut w = world(app.clone());
    with_zone(&mut w);
    w.provisioner.run(StepInput::PublishValidationRecord(app_ref())).await.unwrap();
    assert_eq!(w.zone.upserts.lock().unwrap().clone(), vec![validation_dns()]);
    assert_eq!(w.apps.app("app-1").resources.validation_dns.unwrap().state, RecordState::Published);

    // Died between recording and writing, then the app failed: the teardown still asks, and "already
    // gone" is done.
    let w = world(app);
    w.provisioner.run(StepInput::Teardown(app_ref())).await.unwrap();
    assert_eq!(w.zone.deletes.lock().unwrap().clone(), vec![validation_dns()]);
    let removed = actions(&w).into_iter().find(|(a, _)| *a == AuditAction::DnsRecordsRemoved).unwrap();
    assert!(removed.1.contains("already gone"), "{removed:?}");
}

#[tokio::test]
async fn a_record_changed_since_portcullis_wrote_it_is_left_alone() {
    let mut app = app_with_certificate("app-1");
    app.resources.validation_dns =
        Some(ZoneRecord { zone_id: ZONE.into(), record: validation_dns(), state: RecordState::Published });
    let w = world(app);
    let changed = DnsRecord {
        name: validation_dns().name,
        value: RecordValue::Cname { value: "someone.else.".into(), ttl: 300 },
    };
    w.zone.records.lock().unwrap().push(changed.clone());
    w.provisioner.run(StepInput::Teardown(app_ref())).await.unwrap();
    assert_eq!(w.zone.records.lock().unwrap().clone(), vec![changed]);
    let removed = actions(&w).into_iter().find(|(a, _)| *a == AuditAction::DnsRecordsRemoved).unwrap();
    assert!(removed.1.contains("left alone"), "{removed:?}");
}

fn app_asking_for_an_alias() -> App {
    let mut app = app_ready_for_wiring();
    app.dns_alias = true;
    app.resources.listener_rule_arn = Some("arn:rule/3".into());
    app.resources.rule_priority = Some(3);
    app
}

#[tokio::test]
async fn the_alias_is_written_only_when_asked_for_and_removed_on_teardown() {
    let mut w = world(app_ready_for_wiring());
    with_zone(&mut w);
    w.provisioner.run(StepInput::PublishDnsAlias(app_ref())).await.unwrap();
    assert!(w.zone.upserts.lock().unwrap().is_empty(), "not asked for");

    let mut w = world(app_asking_for_an_alias());
    with_zone(&mut w);
    w.provisioner.run(StepInput::PublishDnsAlias(app_ref())).await.unwrap();
    let alias = DnsRecord::alias("grafana.example.com", fakes::load_balancer_alias());
    assert_eq!(w.zone.upserts.lock().unwrap().clone(), vec![alias.clone()]);
    let placed = w.apps.app("app-1").resources.alias_dns.unwrap();
    assert_eq!((placed.state, placed.record.name.as_str()), (RecordState::Published, "grafana.example.com."));
    assert!(actions(&w).iter().any(|(a, _)| *a == AuditAction::DnsAliasPublished));

    w.provisioner.run(StepInput::Teardown(app_ref())).await.unwrap();
    assert_eq!(w.zone.deletes.lock().unwrap().clone(), vec![alias]);
    assert_eq!(w.listener.deleted.lock().unwrap().as_slice(), ["arn:rule/3"]);
    assert_eq!(w.apps.app("app-1").resources.alias_dns, None);
}

#[tokio::test]
async fn an_alias_over_a_record_someone_else_made_fails_and_one_without_a_zone_fails_clearly() {
    let mut w = world(app_asking_for_an_alias());
    with_zone(&mut w);
    w.zone.foreign.lock().unwrap().push(("grafana.example.com.".into(), FoundRecord::Other("A".into())));
    let err = w.provisioner.run(StepInput::PublishDnsAlias(app_ref())).await.unwrap_err();
    assert_eq!(err.name, FailureName::DnsRecordConflict, "{err}");
    assert!(err.message.contains("without dnsAlias"), "{err}");
    assert!(w.zone.upserts.lock().unwrap().is_empty());

    // The operator took the zone away while the app waited.
    let w = world(app_asking_for_an_alias());
    let err = w.provisioner.run(StepInput::PublishDnsAlias(app_ref())).await.unwrap_err();
    assert_eq!(err.name, FailureName::HostedZoneMismatch, "{err}");
    assert!(err.message.contains("no hosted zone"), "{err}");
}

/// ACM keeps a detached certificate "in use" for a while: its deletion fails and the teardown is retried.
struct InUse;

#[async_trait]
impl CertificateAuthority for InUse {
    async fn request(&self, _: &str, _: &str, _: &str) -> Result<String> {
        unreachable!()
    }
    async fn describe(&self, _: &str) -> Result<CertificateState> {
        unreachable!()
    }
    async fn delete(&self, _: &str) -> Result<()> {
        Err(crate::error::Error::retryable("the certificate is in use"))
    }
    async fn find(&self, _: &str, _: &str) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

#[tokio::test]
async fn a_retried_teardown_removes_each_record_once_and_says_so_once() {
    let mut app = app_with_certificate("app-1");
    app.resources.validation_dns =
        Some(ZoneRecord { zone_id: ZONE.into(), record: validation_dns(), state: RecordState::Published });
    let mut w = world(app);
    w.zone.records.lock().unwrap().push(validation_dns());
    w.provisioner.certificates = Arc::new(InUse);
    let err = w.provisioner.run(StepInput::Teardown(app_ref())).await.unwrap_err();
    assert_eq!(err.name, FailureName::Retryable);
    assert_eq!(w.apps.app("app-1").resources.validation_dns, None, "forgotten as soon as it is removed");
    w.provisioner.certificates = Arc::new(Quiet);
    w.provisioner.run(StepInput::Teardown(app_ref())).await.unwrap();
    assert_eq!(w.zone.deletes.lock().unwrap().len(), 1);
    let removed: Vec<_> = actions(&w).into_iter().filter(|(a, _)| *a == AuditAction::DnsRecordsRemoved).collect();
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert!(removed[0].1.ends_with(" removed"), "{removed:?}");
}

/// What the platform reports when a run of the app ends without succeeding.
fn run_ended(name: &str, status: &str, error: Option<&str>) -> super::RunEnded {
    let input = serde_json::json!({"tenantId": fakes::TENANT, "appId": "app-1", "timing": {
        "certificate": {"pollSeconds": 1, "deadlineSeconds": 60, "maxWaitSeconds": 2},
        "environment": {"pollSeconds": 1, "deadlineSeconds": 60, "maxWaitSeconds": 2}}});
    super::RunEnded {
        name: name.into(),
        status: status.into(),
        input: input.to_string(),
        error: error.map(str::to_string),
        cause: error.map(|_| "the run went past its limit".to_string()),
    }
}

#[tokio::test]
async fn a_provisioning_run_that_ended_outside_its_catch_undoes_what_it_made_and_fails_the_app() {
    let mut app = app_ready_for_wiring();
    app.resources.listener_rule_arn = Some("arn:rule/3".into());
    let w = world(app);
    w.listener.certificates.lock().unwrap().push("arn:cert".into());
    w.provisioner.run_ended(run_ended("app-1", "ABORTED", None)).await.unwrap();
    let app = w.apps.app("app-1");
    assert_eq!(app.status, AppStatus::Failed);
    let error = app.error.expect("why it failed");
    assert_eq!((error.step, error.code.as_str()), (Step::Listener, "WorkflowAborted"));
    assert!(error.message.contains("ended ABORTED outside its error handling"), "{}", error.message);
    assert_eq!(w.listener.deleted.lock().unwrap().as_slice(), ["arn:rule/3"], "the rule is removed");
    assert!(w.listener.certificates.lock().unwrap().is_empty(), "the certificate is detached");
    assert_eq!((app.resources.certificate_arn, app.resources.user_pool_id), (None, None));

    // Reported again (the platform delivers at least once): nothing more happens.
    w.provisioner.run_ended(run_ended("app-1", "ABORTED", None)).await.unwrap();
    assert_eq!(w.listener.deleted.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_run_whose_failure_was_handled_or_that_a_delete_stopped_changes_nothing() {
    for status in [AppStatus::Failed, AppStatus::Deleting, AppStatus::Active] {
        let mut app = app_ready_for_wiring();
        app.status = status;
        let w = world(app);
        w.provisioner.run_ended(run_ended("app-1", "FAILED", Some("CertificateNotIssued"))).await.unwrap();
        let app = w.apps.app("app-1");
        assert_eq!((app.status, app.version), (status, 1), "{status:?}: untouched");
        assert!(w.listener.deleted.lock().unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_deletion_that_timed_out_fails_the_app_and_keeps_its_resources_for_the_next_delete() {
    let mut app = app_ready_for_wiring();
    app.status = AppStatus::Deleting;
    app.deletion_version = Some(3);
    let w = world(app);
    // An earlier attempt's run ending changes nothing; the current attempt's does.
    w.provisioner.run_ended(run_ended("app-1-delete-2", "TIMED_OUT", Some("States.Timeout"))).await.unwrap();
    assert_eq!(w.apps.app("app-1").status, AppStatus::Deleting);
    w.provisioner.run_ended(run_ended("app-1-delete-3", "TIMED_OUT", Some("States.Timeout"))).await.unwrap();
    let app = w.apps.app("app-1");
    assert_eq!(app.status, AppStatus::Failed);
    assert_eq!(app.error.unwrap().code, "States.Timeout");
    assert_eq!(app.resources.certificate_arn.as_deref(), Some("arn:cert"), "kept for the next delete");
}

// A step that died after AWS made something and before it was recorded: the retry adopts it, a teardown
// finds it by the app id; another app's resources are never touched.

use crate::domain::{CertificateStatus as Status, client_name, pool_name};
use fakes::{MemoryCertificates, MemoryPool, MemoryPools};

/// A pool as a step of `app_id` that died after CreateUserPool (and after CreateUserPoolClient) left it.
fn unrecorded_pool(app_id: &str, client: Option<&str>) -> MemoryPool {
    MemoryPool {
        name: pool_name("Grafana", app_id),
        app_id: app_id.into(),
        domain_prefix: Some(format!("pc-grafana-{app_id}")),
        clients: client.map(|id| (id.to_string(), client_name("grafana.example.com"))).into_iter().collect(),
        mfa: Default::default(),
    }
}

#[tokio::test]
async fn a_pool_and_client_made_before_a_lost_answer_are_adopted_not_made_twice() {
    let mut app = fakes::app("app-1", AppStatus::Provisioning);
    app.mfa = crate::domain::Mfa::Required;
    let mut w = world(app);
    let pools = Arc::new(MemoryPools::default());
    pools.put("pool-lost", unrecorded_pool("app-1", Some("client-lost")));
    pools.put("pool-of-app-2", unrecorded_pool("app-2", Some("client-2")));
    w.provisioner.user_pools = pools.clone();
    w.provisioner.run(StepInput::CreateAuth(app_ref())).await.unwrap();
    let r = w.apps.app("app-1").resources;
    assert_eq!(r.user_pool_id.as_deref(), Some("pool-lost"));
    assert_eq!(r.user_pool_arn.as_deref(), Some("arn:pool-lost"));
    assert_eq!(r.client_id.as_deref(), Some("client-lost"));
    assert!(pools.created.lock().unwrap().is_empty(), "no second pool");
    assert_eq!(pools.pool("pool-lost").unwrap().clients.len(), 1, "no second client");
    assert_eq!(pools.pool("pool-of-app-2").unwrap().clients.len(), 1, "another app's pool is untouched");
    assert_eq!(pools.pool("pool-lost").unwrap().mfa, crate::domain::Mfa::Required, "the adopted pool asks for MFA");
}

#[tokio::test]
async fn a_client_made_before_a_lost_answer_is_adopted_in_the_recorded_pool() {
    let mut app = fakes::app("app-1", AppStatus::Provisioning);
    app.resources.user_pool_id = Some("pool-1".into());
    app.resources.user_pool_arn = Some("arn:pool-1".into());
    let mut w = world(app);
    let pools = Arc::new(MemoryPools::default());
    pools.put("pool-1", unrecorded_pool("app-1", Some("client-lost")));
    w.provisioner.user_pools = pools.clone();
    w.provisioner.run(StepInput::CreateAuth(app_ref())).await.unwrap();
    assert_eq!(w.apps.app("app-1").resources.client_id.as_deref(), Some("client-lost"));
    assert_eq!(pools.pool("pool-1").unwrap().clients.len(), 1);
}

#[tokio::test]
async fn a_certificate_requested_before_a_lost_answer_is_adopted() {
    let mut w = world(fakes::app("app-1", AppStatus::Provisioning));
    let certificates = Arc::new(MemoryCertificates::default());
    let lost = ("grafana.example.com".to_string(), "app-1".to_string(), Status::PendingValidation);
    certificates.certificates.lock().unwrap().insert("arn:certificate/lost".into(), lost);
    let other = ("grafana.example.com".to_string(), "app-2".to_string(), Status::Issued);
    certificates.certificates.lock().unwrap().insert("arn:certificate/app-2".into(), other);
    w.provisioner.certificates = certificates.clone();
    w.provisioner.run(StepInput::RequestCertificate(app_ref())).await.unwrap();
    assert_eq!(w.apps.app("app-1").resources.certificate_arn.as_deref(), Some("arn:certificate/lost"));
    assert!(certificates.requested.lock().unwrap().is_empty(), "no second certificate");
}

#[tokio::test]
async fn a_rule_for_the_host_tagged_with_the_app_id_is_the_apps_and_one_tagged_for_another_app_is_refused() {
    // Made just before a lost answer: adopted (it signs in with the app's client).
    let w = world(app_ready_for_wiring());
    w.listener.rules.lock().unwrap().push(rule("arn:lost", 7, "grafana.example.com", Some("client-1")));
    w.listener.rule_tags.lock().unwrap().insert("arn:lost".into(), "app-1".into());
    w.provisioner.run(StepInput::WireListener(app_ref())).await.unwrap();
    let r = w.apps.app("app-1").resources;
    assert_eq!((r.listener_rule_arn.as_deref(), r.rule_priority), (Some("arn:lost"), Some(7)));
    assert!(w.listener.created.lock().unwrap().is_empty());

    // Made by an earlier attempt with a client the app no longer has: the app's own, so not refused as
    // foreign (for ever), but not right either: removed, and a right one made.
    let w = world(app_ready_for_wiring());
    w.listener.rules.lock().unwrap().push(rule("arn:stale", 7, "grafana.example.com", Some("client-old")));
    w.listener.rule_tags.lock().unwrap().insert("arn:stale".into(), "app-1".into());
    w.provisioner.run(StepInput::WireListener(app_ref())).await.unwrap();
    assert_eq!(w.listener.deleted.lock().unwrap().as_slice(), ["arn:stale"]);
    let created = w.listener.created.lock().unwrap().clone();
    assert_eq!((created.len(), created[0].client_id.as_str()), (1, "client-1"));

    let w = world(app_ready_for_wiring());
    w.listener.rules.lock().unwrap().push(rule("arn:theirs", 7, "grafana.example.com", Some("client-2")));
    w.listener.rule_tags.lock().unwrap().insert("arn:theirs".into(), "app-2".into());
    let err = w.provisioner.run(StepInput::WireListener(app_ref())).await.unwrap_err();
    assert_eq!(err.name, FailureName::InvalidTarget, "{err}");
    assert!(w.listener.created.lock().unwrap().is_empty());
}

#[tokio::test]
async fn teardown_removes_what_carries_the_app_id_without_a_record_and_leaves_other_apps_alone() {
    let mut app = fakes::app("app-1", AppStatus::Provisioning);
    app.resources.listener_arn = Some(LISTENER.into());
    let mut w = world(app);
    for (arn, owner) in [("arn:rule/lost", "app-1"), ("arn:rule/app-2", "app-2")] {
        w.listener.rules.lock().unwrap().push(rule(arn, 1, "x.example.com", None));
        w.listener.rule_tags.lock().unwrap().insert(arn.into(), owner.into());
    }
    let certificates = Arc::new(MemoryCertificates::default());
    for (arn, owner) in [("arn:certificate/lost", "app-1"), ("arn:certificate/app-2", "app-2")] {
        let certificate = ("grafana.example.com".to_string(), owner.to_string(), Status::Issued);
        certificates.certificates.lock().unwrap().insert(arn.into(), certificate);
        w.listener.certificates.lock().unwrap().push(arn.into());
    }
    let pools = Arc::new(MemoryPools::default());
    pools.put("pool-lost", unrecorded_pool("app-1", Some("client-lost")));
    pools.put("pool-of-app-2", unrecorded_pool("app-2", None));
    w.provisioner.certificates = certificates.clone();
    w.provisioner.user_pools = pools.clone();

    w.provisioner.run(StepInput::Teardown(app_ref())).await.unwrap();
    assert_eq!(w.listener.deleted.lock().unwrap().as_slice(), ["arn:rule/lost"]);
    assert_eq!(w.listener.certificates.lock().unwrap().as_slice(), ["arn:certificate/app-2"]);
    assert_eq!(certificates.deleted.lock().unwrap().as_slice(), ["arn:certificate/lost"]);
    assert_eq!(pools.deleted.lock().unwrap().as_slice(), ["pool-lost"]);
    assert!(pools.pool("pool-of-app-2").is_some());
    let removed = actions(&w).into_iter().find(|(a, _)| *a == AuditAction::ResourcesRemoved).unwrap();
    assert!(removed.1.contains("found by the app id without a record"), "{removed:?}");
    assert!(removed.1.contains("pool-lost") && !removed.1.contains("app-2"), "{removed:?}");

    // Again (a retried teardown): nothing of the app is left to find.
    w.provisioner.run(StepInput::Teardown(app_ref())).await.unwrap();
    assert_eq!(pools.deleted.lock().unwrap().len(), 1);
}

// The settings state machine: a change is applied where it differs, then adopted; a failed one is put
// back and dropped, the app keeping its settings.

use super::{CaughtError, FailureReport};
use crate::domain::{Mfa, SettingsChange, WORKFLOW_ACTOR};

#[tokio::test]
async fn a_settings_change_is_applied_then_adopted_and_a_failed_one_is_put_back() {
    let mut app = app_ready_for_wiring();
    app.status = AppStatus::Active;
    app.resources.listener_rule_arn = Some("rule-1".into());
    app.resources.rule_priority = Some(7);
    let mut wanted = app.settings();
    (wanted.name, wanted.mfa, wanted.session_timeout_seconds) = ("Renamed".into(), Mfa::Required, 900);
    let change = |settings| SettingsChange {
        settings,
        requested_by: "alice".into(),
        requested_at: time::OffsetDateTime::now_utc(),
        execution: "app-1-settings-1".into(),
    };
    app.settings_change = Some(change(wanted.clone()));
    let mut w = world(app);
    let pools = Arc::new(MemoryPools::default());
    pools.put("pool", unrecorded_pool("app-1", Some("client-1")));
    w.provisioner.user_pools = pools.clone();

    w.provisioner.run(StepInput::ApplySettings(app_ref())).await.unwrap();
    let mut app = w.apps.app("app-1");
    assert_eq!((app.settings(), app.settings_change.clone()), (wanted.clone(), None));
    assert_eq!(pools.pool("pool").unwrap().mfa, Mfa::Required);
    let updated = pools.updated.lock().unwrap().clone();
    assert!(updated.len() == 1 && updated[0].1.contains("Renamed") && updated[0].2 == Mfa::Required, "{updated:?}");
    let modified = w.listener.modified.lock().unwrap().clone();
    assert_eq!(modified.len(), 1);
    assert_eq!(
        (modified[0].0.as_str(), modified[0].1.session_timeout_seconds, modified[0].1.priority),
        ("rule-1", 900, 7)
    );
    let (_, event) = w.history.events.lock().unwrap().last().cloned().unwrap();
    assert_eq!((event.actor.as_str(), event.action), ("alice", AuditAction::AppUpdated));

    // A change that could not be applied: what it may have set is put back, and it is dropped.
    let mut next = wanted.clone();
    (next.mfa, next.session_timeout_seconds) = (Mfa::Off, 60);
    app.settings_change = Some(change(next));
    w.apps.update(&mut app).await.unwrap();
    pools.set_mfa("pool", Mfa::Off).await.unwrap();
    let error = CaughtError { error: "AwsError".into(), cause: Some("ModifyRule refused".into()) };
    let report = FailureReport { app: app_ref(), error: Some(error), teardown: None };
    w.provisioner.run(StepInput::SettingsFailed(report)).await.unwrap();
    let app = w.apps.app("app-1");
    assert_eq!((app.settings(), app.settings_change), (wanted, None), "the app keeps its settings");
    assert_eq!(pools.pool("pool").unwrap().mfa, Mfa::Required, "MFA put back");
    assert_eq!(w.listener.modified.lock().unwrap().last().unwrap().1.session_timeout_seconds, 900, "the rule put back");
    let (_, event) = w.history.events.lock().unwrap().last().cloned().unwrap();
    assert_eq!(event.action, AuditAction::AppUpdateFailed);
    assert!(
        event.detail.contains("ModifyRule refused") && event.detail.contains("keeps its settings"),
        "{}",
        event.detail
    );
}

#[tokio::test]
async fn a_deleted_app_drops_its_pending_settings_change_and_says_so() {
    let mut app = fakes::app("app-1", AppStatus::Deleting);
    let mut wanted = app.settings();
    wanted.mfa = Mfa::Required;
    app.settings_change = Some(SettingsChange {
        settings: wanted,
        requested_by: "alice".into(),
        requested_at: time::OffsetDateTime::now_utc(),
        execution: "app-1-settings-1".into(),
    });
    let w = world(app);

    w.provisioner.run(StepInput::MarkDeleted(app_ref())).await.unwrap();
    let app = w.apps.app("app-1");
    assert_eq!((app.status, app.settings_change), (AppStatus::Deleted, None));
    let events = w.history.events.lock().unwrap().clone();
    let recorded: Vec<_> = events.iter().map(|(_, e)| (e.actor.as_str(), e.action)).collect();
    assert_eq!(recorded[..], [("alice", AuditAction::AppUpdateFailed), (WORKFLOW_ACTOR, AuditAction::AppDeleted)]);
    assert!(events[0].1.detail.contains("mfa OFF → REQUIRED could not be applied: the app was deleted"), "{events:?}");
}
