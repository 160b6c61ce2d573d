//! Unit tests of the steps' decisions over in-memory ports, for the paths no emulator can produce
//! (a lost write after a create, a priority taken between choosing and using it). The real path of
//! every step is tested end to end in tests/ against the local stack.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{Provisioner, StepName, StepRequest};
use crate::domain::{App, AppEvent, AppStatus, Invitation, Resources, Step, Target, TenantSettings};
use crate::error::{Error, Result};
use crate::ports::*;

const LISTENER: &str = "arn:listener";

#[derive(Default)]
struct MemoryStore {
    apps: Mutex<HashMap<String, App>>,
    reservations: Mutex<BTreeMap<u32, String>>,
}

#[async_trait]
impl AppStore for MemoryStore {
    async fn create(&self, app: &App, _: &AppEvent) -> Result<()> {
        self.apps.lock().unwrap().insert(app.id.clone(), app.clone());
        Ok(())
    }
    async fn get(&self, _: &str, app_id: &str) -> Result<Option<App>> {
        Ok(self.apps.lock().unwrap().get(app_id).cloned())
    }
    async fn list(&self, _: &str, _: u32, _: Option<&str>) -> Result<Page<App>> {
        unreachable!("not a step's business")
    }
    async fn update(&self, app: &mut App) -> Result<()> {
        app.version += 1;
        self.apps.lock().unwrap().insert(app.id.clone(), app.clone());
        Ok(())
    }
    async fn release_domain(&self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    async fn append_event(&self, _: &str, _: &AppEvent) -> Result<()> {
        Ok(())
    }
    async fn list_events(&self, _: &str, _: u32, _: Option<&str>) -> Result<Page<AppEvent>> {
        unreachable!("not a step's business")
    }
    async fn reserved_priorities(&self, _: &str) -> Result<BTreeMap<u32, String>> {
        Ok(self.reservations.lock().unwrap().clone())
    }
    async fn reserve_priority(&self, _: &str, priority: u32, app_id: &str) -> Result<()> {
        let mut reservations = self.reservations.lock().unwrap();
        match reservations.get(&priority) {
            Some(holder) if holder != app_id => Err(Error::PriorityInUse(format!("{priority} is taken"))),
            _ => {
                reservations.insert(priority, app_id.into());
                Ok(())
            }
        }
    }
    async fn release_priority(&self, _: &str, priority: u32, app_id: &str) -> Result<()> {
        let mut reservations = self.reservations.lock().unwrap();
        if reservations.get(&priority).is_some_and(|holder| holder == app_id) {
            reservations.remove(&priority);
        }
        Ok(())
    }
    async fn tenant_settings(&self, _: &str) -> Result<TenantSettings> {
        Ok(TenantSettings::default())
    }
    async fn put_invitation(&self, _: &str, _: &Invitation) -> Result<()> {
        unreachable!("not a step's business")
    }
    async fn invitations(&self, _: &str, _: &[String]) -> Result<HashMap<String, Invitation>> {
        unreachable!("not a step's business")
    }
    async fn mark_invitation_sent(&self, _: &str, _: &str, _: OffsetDateTime) -> Result<()> {
        unreachable!("not a step's business")
    }
    async fn delete_invitation(&self, _: &str, _: &str) -> Result<()> {
        unreachable!("not a step's business")
    }
}

/// A listener whose rules the test sets; `taken_by_others` makes `create_rule` answer PriorityInUse.
#[derive(Default)]
struct MemoryListener {
    rules: Mutex<Vec<ListenerRule>>,
    certificates: Mutex<Vec<String>>,
    created: Mutex<Vec<ProtectRule>>,
    deleted: Mutex<Vec<String>>,
    taken_by_others: Mutex<Vec<u32>>,
}

#[async_trait]
impl LoadBalancer for MemoryListener {
    async fn listener_protocol(&self, _: &str) -> Result<Option<String>> {
        Ok(Some("HTTPS".into()))
    }
    async fn https_listener(&self, _: &str) -> Result<Option<String>> {
        Ok(Some(LISTENER.into()))
    }
    async fn default_target_group(&self, _: &str, _: &str) -> Result<Option<String>> {
        Ok(Some("arn:tg".into()))
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
        Ok(format!("arn:rule/{}", rule.priority))
    }
    async fn delete_rule(&self, rule_arn: &str) -> Result<()> {
        self.deleted.lock().unwrap().push(rule_arn.into());
        Ok(())
    }
}

/// Ports the tested steps do not reach, or reach only to delete.
struct Quiet;

#[async_trait]
impl CertificateAuthority for Quiet {
    async fn request(&self, _: &str, _: &str, _: &str) -> Result<String> {
        unreachable!()
    }
    async fn describe(&self, _: &str) -> Result<CertificateState> {
        unreachable!()
    }
    async fn delete(&self, _: &str) -> Result<()> {
        Ok(())
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
}

/// An app that has its certificate (attached) and pool, about to be wired.
fn app_ready_for_wiring() -> App {
    App {
        id: "app-1".into(),
        tenant_id: "t".into(),
        name: "Grafana".into(),
        domain: "grafana.example.com".into(),
        target: Target::Alb { listener_arn: LISTENER.into(), target_group_arn: "arn:tg".into() },
        session_timeout_seconds: 3600,
        status: AppStatus::Provisioning,
        step: Some(Step::Listener),
        resources: Resources {
            certificate_arn: Some("arn:cert".into()),
            listener_arn: Some(LISTENER.into()),
            target_group_arn: Some("arn:tg".into()),
            user_pool_id: Some("pool".into()),
            user_pool_arn: Some("arn:pool".into()),
            client_id: Some("client-1".into()),
            pool_domain_prefix: Some("pc-grafana".into()),
            listener_certificate_attached: true,
            ..Default::default()
        },
        error: None,
        created_by: "me".into(),
        created_at: OffsetDateTime::UNIX_EPOCH,
        updated_at: OffsetDateTime::UNIX_EPOCH,
        version: 1,
    }
}

struct World {
    store: Arc<MemoryStore>,
    listener: Arc<MemoryListener>,
    provisioner: Provisioner,
}

fn world(app: App) -> World {
    let store = Arc::new(MemoryStore::default());
    store.apps.lock().unwrap().insert(app.id.clone(), app);
    let listener = Arc::new(MemoryListener::default());
    let provisioner = Provisioner {
        store: store.clone(),
        certificates: Arc::new(Quiet),
        load_balancer: listener.clone(),
        environments: Arc::new(Quiet),
        user_pools: Arc::new(Quiet),
    };
    World { store, listener, provisioner }
}

fn step(step: StepName) -> StepRequest {
    StepRequest { step, tenant_id: "t".into(), app_id: "app-1".into(), poll: None, error: None, teardown: None }
}

fn rule(arn: &str, priority: u32, host: &str, client: Option<&str>) -> ListenerRule {
    ListenerRule { arn: arn.into(), priority, hosts: vec![host.into()], cognito_client_id: client.map(str::to_string) }
}

#[tokio::test]
async fn wiring_takes_the_lowest_free_priority_and_reserves_it() {
    let w = world(app_ready_for_wiring());
    w.listener.rules.lock().unwrap().push(rule("arn:other", 1, "other.example.com", None));
    w.store.reservations.lock().unwrap().insert(2, "app-2".into());
    w.provisioner.run(step(StepName::WireListener)).await.unwrap();
    let created = w.listener.created.lock().unwrap().clone();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].priority, 3);
    assert_eq!(created[0].host, "grafana.example.com");
    assert_eq!(w.store.reservations.lock().unwrap().get(&3).map(String::as_str), Some("app-1"));
    let app = w.store.apps.lock().unwrap()["app-1"].clone();
    assert_eq!(app.resources.listener_rule_arn.as_deref(), Some("arn:rule/3"));
}

#[tokio::test]
async fn wiring_adopts_its_own_rule_after_a_lost_write() {
    let w = world(app_ready_for_wiring());
    w.listener.rules.lock().unwrap().push(rule("arn:mine", 7, "grafana.example.com", Some("client-1")));
    w.provisioner.run(step(StepName::WireListener)).await.unwrap();
    assert!(w.listener.created.lock().unwrap().is_empty(), "no second rule");
    let app = w.store.apps.lock().unwrap()["app-1"].clone();
    assert_eq!(app.resources.listener_rule_arn.as_deref(), Some("arn:mine"));
    assert_eq!(app.resources.rule_priority, Some(7));
}

#[tokio::test]
async fn wiring_refuses_a_rule_for_its_host_that_it_did_not_make() {
    let w = world(app_ready_for_wiring());
    w.listener.rules.lock().unwrap().push(rule("arn:foreign", 7, "grafana.example.com", None));
    let err = w.provisioner.run(step(StepName::WireListener)).await.unwrap_err();
    assert_eq!(err.name, "InvalidTarget");
    assert!(err.message.contains("arn:foreign"));
    w.listener.rules.lock().unwrap()[0].cognito_client_id = Some("someone-elses-client".into());
    assert_eq!(w.provisioner.run(step(StepName::WireListener)).await.unwrap_err().name, "InvalidTarget");
    assert!(w.listener.created.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_priority_taken_outside_portcullis_is_given_back_for_the_retry() {
    let w = world(app_ready_for_wiring());
    w.listener.taken_by_others.lock().unwrap().push(1);
    let err = w.provisioner.run(step(StepName::WireListener)).await.unwrap_err();
    assert_eq!(err.name, "PriorityInUse");
    assert!(w.store.reservations.lock().unwrap().is_empty(), "reservation released");
    assert_eq!(w.store.apps.lock().unwrap()["app-1"].resources.rule_priority, None);
}

#[tokio::test]
async fn teardown_removes_what_was_made_and_every_reservation_the_app_holds() {
    let mut app = app_ready_for_wiring();
    app.resources.listener_rule_arn = Some("arn:rule/3".into());
    app.resources.rule_priority = Some(3);
    let w = world(app);
    w.listener.certificates.lock().unwrap().extend(["arn:default".to_string(), "arn:cert".to_string()]);
    // 3 is recorded; 9 was reserved but its recording was lost; 4 belongs to another app.
    w.store.reservations.lock().unwrap().extend([(3, "app-1".into()), (9, "app-1".into()), (4, "app-2".into())]);
    w.provisioner.run(step(StepName::Teardown)).await.unwrap();
    w.provisioner.run(step(StepName::Teardown)).await.unwrap(); // and again: nothing breaks
    assert_eq!(w.listener.deleted.lock().unwrap().as_slice(), ["arn:rule/3"]);
    assert_eq!(w.listener.certificates.lock().unwrap().as_slice(), ["arn:default"]);
    assert_eq!(w.store.reservations.lock().unwrap().clone(), BTreeMap::from([(4, "app-2".to_string())]));
    let app = w.store.apps.lock().unwrap()["app-1"].clone();
    assert_eq!(app.resources.listener_rule_arn, None);
    assert_eq!(app.resources.user_pool_id, None);
    assert_eq!(app.resources.certificate_arn, None);
    assert_eq!(app.resources.listener_arn.as_deref(), Some(LISTENER), "what was found stays");
}
