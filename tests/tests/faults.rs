//! The fault matrix: every AWS call of provisioning and deprovisioning × every fault kind the emulator
//! injects (local/portcullis_local/faults.py). Each case must end in a true state: ACTIVE (a retry
//! absorbed the fault), FAILED or DELETED, with nothing left at AWS that the app's record does not own,
//! and the record agreeing with AWS. The matrix is printed (`--nocapture`).
//!
//! Each case has its own tenant, ALB, listener, target group and app, all named with one token that
//! every call of the case carries (in an ARN, a name, a host or a key), and its fault matches that
//! token: cases run side by side without faulting each other. `die-after` kills "the" provisioner
//! invocation, which is only well defined while no other runs: those cases run one at a time, last.
//!
//! `PORTCULLIS_FAULT_MATRIX=<text>` runs only the cells whose "phase action kind" contains it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_elasticloadbalancingv2::types as elbv2;
use portcullis_e2e::{Harness, TestTenant, short_id};
use reqwest::Method;
use serde_json::{Value, json};

const PROVISIONER: &str = "portcullis-provisioner";
/// Cases in flight at once (2 cores; cargo lambda runs 4 provisioners).
const PARALLEL_CASES: usize = 4;
/// Longer than provisioning's own deadline: a faulted step may go through every retry first.
const CASE_DEADLINE: Duration = Duration::from_secs(240);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    Provision,
    Deprovision,
}

/// What a fault matches besides action and caller: which of the case's names the call carries.
#[derive(Clone, Copy, Debug)]
enum Carries {
    /// The case token (tenant id, domain, app name, ALB, listener and target group names).
    Token,
    /// The certificate's ARN (known once the app has requested it).
    CertificateArn,
    /// The user pool's id (known once ACTIVE).
    PoolId,
}

/// One AWS call of a workflow: its IAM action, who makes it, and what identifies the case in it.
#[derive(Clone, Copy, Debug)]
struct Call {
    phase: Phase,
    action: &'static str,
    caller: &'static str,
    carries: Carries,
}

const fn call(phase: Phase, action: &'static str, carries: Carries) -> Call {
    Call { phase, action, caller: PROVISIONER, carries }
}

/// Every call the provisioner (and the state machines' Lambda tasks) make, from a recorded run
/// (target/iam/calls.json).
const CALLS: &[Call] = &[
    Call {
        phase: Phase::Provision,
        action: "lambda:InvokeFunction",
        caller: "portcullis-provision",
        carries: Carries::Token,
    },
    call(Phase::Provision, "dynamodb:GetItem", Carries::Token),
    call(Phase::Provision, "dynamodb:PutItem", Carries::Token),
    call(Phase::Provision, "acm:RequestCertificate", Carries::Token),
    call(Phase::Provision, "acm:DescribeCertificate", Carries::CertificateArn),
    call(Phase::Provision, "elasticloadbalancing:DescribeListeners", Carries::Token),
    call(Phase::Provision, "elasticloadbalancing:DescribeTargetHealth", Carries::Token),
    call(Phase::Provision, "cognito-idp:CreateUserPool", Carries::Token),
    call(Phase::Provision, "cognito-idp:CreateUserPoolClient", Carries::Token),
    call(Phase::Provision, "cognito-idp:CreateUserPoolDomain", Carries::Token),
    call(Phase::Provision, "elasticloadbalancing:DescribeListenerCertificates", Carries::Token),
    call(Phase::Provision, "elasticloadbalancing:AddListenerCertificates", Carries::Token),
    call(Phase::Provision, "elasticloadbalancing:DescribeRules", Carries::Token),
    call(Phase::Provision, "elasticloadbalancing:CreateRule", Carries::Token),
    Call {
        phase: Phase::Deprovision,
        action: "lambda:InvokeFunction",
        caller: "portcullis-deprovision",
        carries: Carries::Token,
    },
    call(Phase::Deprovision, "dynamodb:PutItem", Carries::Token),
    call(Phase::Deprovision, "dynamodb:DeleteItem", Carries::Token),
    call(Phase::Deprovision, "elasticloadbalancing:DeleteRule", Carries::Token),
    call(Phase::Deprovision, "elasticloadbalancing:RemoveListenerCertificates", Carries::Token),
    call(Phase::Deprovision, "cognito-idp:DeleteUserPoolDomain", Carries::Token),
    call(Phase::Deprovision, "cognito-idp:DeleteUserPoolClient", Carries::PoolId),
    call(Phase::Deprovision, "cognito-idp:DeleteUserPool", Carries::PoolId),
    call(Phase::Deprovision, "acm:DeleteCertificate", Carries::CertificateArn),
];

/// Fault kinds and how many matching attempts each fails: 3 outlasts the Rust SDK's own 3 attempts, so
/// the step itself sees the error; a lost answer or a death happens once.
const KINDS: &[(&str, u32)] =
    &[("throttle", 3), ("server-error", 3), ("timeout", 3), ("lost-answer", 1), ("die-after", 1)];

/// How one case ended.
struct Outcome {
    status: String,
    fired: u64,
    problems: Vec<String>,
}

impl Outcome {
    fn passed(&self) -> bool {
        self.problems.is_empty()
    }

    fn cell(&self) -> String {
        let mark = if !self.passed() {
            "✗"
        } else if self.fired == 0 {
            "(not reached)"
        } else {
            "✓"
        };
        format!("{} {mark}", self.status)
    }
}

/// A case's own piece of the world: tenant, listener, target and names carrying `token`.
struct Case {
    token: String,
    tenant: TestTenant,
    listener_arn: String,
    target: Value,
}

impl Case {
    async fn new(h: &Harness) -> Case {
        let token = short_id();
        let tenant = h.tenant_with_id(&format!("t-{token}")).await;
        let lb_arn = h.load_balancer(&format!("fm-{token}"), &[]).await;
        let group_arn = h.target_group(&format!("fm-{token}"), true).await;
        let not_found = elbv2::Action::builder()
            .r#type(elbv2::ActionTypeEnum::FixedResponse)
            .fixed_response_config(elbv2::FixedResponseActionConfig::builder().status_code("404").build())
            .build();
        let listener_arn = h.https_listener(&lb_arn, not_found).await;
        let target =
            h.grant(&tenant, json!({"type": "alb", "listenerArn": listener_arn, "targetGroupArn": group_arn})).await;
        Case { token, tenant, listener_arn, target }
    }

    fn domain(&self) -> String {
        format!("fm-{}.demo.test", self.token)
    }

    fn app_name(&self) -> String {
        format!("fm-{}", self.token)
    }

    /// The Cognito domain prefix Portcullis derives (domain/naming.rs: `pc-<name slug>-<id tail>`).
    fn pool_domain_prefix(&self, app_id: &str) -> String {
        let hex: Vec<char> = app_id.chars().filter(char::is_ascii_hexdigit).collect();
        let tail: String = hex[hex.len().saturating_sub(10)..].iter().collect();
        format!("pc-{}-{tail}", self.app_name())
    }

    async fn create(&self, h: &Harness) -> String {
        let body = json!({"name": self.app_name(), "domain": self.domain(), "target": self.target});
        let reply = h.call(Method::POST, "/apps", Some(&self.tenant.admin), Some(&body)).await;
        assert_eq!(reply.status, 202, "{}", reply.text);
        reply.body["id"].as_str().expect("an id").to_string()
    }

    async fn get(&self, h: &Harness, id: &str) -> Value {
        let reply = h.call(Method::GET, &format!("/apps/{id}"), Some(&self.tenant.admin), None).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.body
    }

    /// Polls the app until `done`; `None` when the case deadline passes first.
    async fn until(&self, h: &Harness, id: &str, done: impl Fn(&Value) -> bool) -> Option<Value> {
        let start = Instant::now();
        loop {
            let app = self.get(h, id).await;
            if done(&app) {
                return Some(app);
            }
            if start.elapsed() > CASE_DEADLINE {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn arm(&self, h: &Harness, call: &Call, kind: &str, count: u32, carried: &str) -> String {
        let fault =
            json!({"action": call.action, "kind": kind, "count": count, "caller": call.caller, "match": carried});
        h.arm_fault(&fault).await["id"].as_str().expect("a fault id").to_string()
    }

    /// What is at AWS for this case, as `kind id` strings.
    async fn at_aws(&self, h: &Harness, app_id: &str) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        for rule in h.listener_rules(&self.listener_arn).await {
            if !rule.is_default().unwrap_or(false) {
                found.insert(format!("rule {}", rule.rule_arn().unwrap_or_default()));
            }
        }
        let attached = h.aws.elb.describe_listener_certificates().listener_arn(&self.listener_arn).send().await;
        for certificate in attached.expect("describe_listener_certificates").certificates() {
            if !certificate.is_default().unwrap_or(false) {
                found.insert(format!("listener-certificate {}", certificate.certificate_arn().unwrap_or_default()));
            }
        }
        let mut certificates = h.aws.acm.list_certificates().into_paginator().items().send();
        while let Some(certificate) = certificates.next().await {
            let certificate = certificate.expect("list_certificates");
            if certificate.domain_name() == Some(self.domain().as_str()) {
                found.insert(format!("certificate {}", certificate.certificate_arn().unwrap_or_default()));
            }
        }
        for pool in h.user_pools_of(&self.app_name()).await {
            let clients = h.aws.cognito.list_user_pool_clients().user_pool_id(&pool).max_results(60).send().await;
            for client in clients.expect("list_user_pool_clients").user_pool_clients() {
                found.insert(format!("client {}", client.client_id().unwrap_or_default()));
            }
            found.insert(format!("pool {pool}"));
        }
        let prefix = self.pool_domain_prefix(app_id);
        let domain = h.aws.cognito.describe_user_pool_domain().domain(&prefix).send().await;
        let domain = domain.expect("describe_user_pool_domain");
        if domain.domain_description().and_then(|d| d.user_pool_id()).is_some_and(|p| !p.is_empty()) {
            found.insert(format!("domain {prefix}"));
        }
        found
    }

    /// What the app's record says it owns at AWS: everything while it is not DELETED.
    fn recorded(app: &Value) -> BTreeSet<String> {
        let mut owned = BTreeSet::new();
        if app["status"] == "DELETED" {
            return owned;
        }
        let mut add = |kind: &str, value: &Value| {
            if let Some(value) = value.as_str() {
                owned.insert(format!("{kind} {value}"));
            }
        };
        add("rule", &app["listenerRuleArn"]);
        add("certificate", &app["certificate"]["arn"]);
        add("pool", &app["auth"]["userPoolId"]);
        add("client", &app["auth"]["clientId"]);
        if app["status"] == "ACTIVE" {
            add("listener-certificate", &app["certificate"]["arn"]);
        }
        if let Some(host) = app["auth"]["domain"].as_str() {
            owned.insert(format!("domain {}", host.split('.').next().unwrap_or(host)));
        }
        owned
    }

    /// Compares AWS with the record: anything at AWS it does not own is an orphan; anything it owns that
    /// AWS lacks is a record that does not agree.
    async fn judge(&self, h: &Harness, app_id: &str, app: Option<Value>, fault: &str) -> Outcome {
        let fired = h.fault_fired(fault).await;
        let Some(app) = app else {
            let app = self.get(h, app_id).await;
            let status =
                format!("stuck {}/{}", app["status"].as_str().unwrap_or("?"), app["step"].as_str().unwrap_or("-"));
            return Outcome { status, fired, problems: vec![format!("no end state within {CASE_DEADLINE:?}: {app}")] };
        };
        let status = match app["error"]["code"].as_str() {
            Some(code) if app["status"] == "FAILED" => format!("FAILED:{code}"),
            _ => app["status"].as_str().unwrap_or("?").to_string(),
        };
        let found = self.at_aws(h, app_id).await;
        let owned = Case::recorded(&app);
        // A recorded certificate may still be attached while an app is not ACTIVE (a delete that failed).
        let attached_recorded = |r: &&String| {
            r.strip_prefix("listener-certificate ").is_some_and(|arn| owned.contains(&format!("certificate {arn}")))
        };
        let mut problems: Vec<String> =
            found.difference(&owned).filter(|r| !attached_recorded(r)).map(|r| format!("orphan {r}")).collect();
        problems.extend(owned.difference(&found).map(|r| format!("recorded but absent {r}")));
        Outcome { status, fired, problems }
    }
}

fn is_settled(app: &Value) -> bool {
    !matches!(app["status"].as_str(), Some("PROVISIONING" | "DELETING"))
}

async fn provision_case(h: &Harness, call: Call, kind: &str, count: u32) -> Outcome {
    let case = Case::new(h).await;
    let mut fault = None;
    if let Carries::Token = call.carries {
        fault = Some(case.arm(h, &call, kind, count, &case.token).await);
    }
    let id = case.create(h).await;
    if fault.is_none() {
        // The certificate's ARN is known once requested; the step that describes it comes after.
        let waiting = case.until(h, &id, |app| app["certificate"]["arn"].is_string() || is_settled(app)).await;
        let arn = waiting.as_ref().and_then(|app| app["certificate"]["arn"].as_str()).unwrap_or("none").to_string();
        fault = Some(case.arm(h, &call, kind, count, &arn).await);
    }
    let settled = case.until(h, &id, is_settled).await;
    case.judge(h, &id, settled, &fault.unwrap()).await
}

async fn deprovision_case(h: &Harness, call: Call, kind: &str, count: u32) -> Outcome {
    let case = Case::new(h).await;
    let id = case.create(h).await;
    let active = case.until(h, &id, is_settled).await.expect("the app settles");
    assert_eq!(active["status"], "ACTIVE", "without faults the app provisions: {active}");
    let carried = match call.carries {
        Carries::Token => case.token.clone(),
        Carries::CertificateArn => active["certificate"]["arn"].as_str().unwrap().to_string(),
        Carries::PoolId => active["auth"]["userPoolId"].as_str().unwrap().to_string(),
    };
    let fault = case.arm(h, &call, kind, count, &carried).await;
    let reply = h.call(Method::DELETE, &format!("/apps/{id}"), Some(&case.tenant.admin), None).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let settled = case.until(h, &id, is_settled).await;
    case.judge(h, &id, settled, &fault).await
}

async fn run_case(h: Arc<Harness>, call: Call, kind: &'static str, count: u32) -> (Call, &'static str, Outcome) {
    let outcome = match call.phase {
        Phase::Provision => provision_case(&h, call, kind, count).await,
        Phase::Deprovision => deprovision_case(&h, call, kind, count).await,
    };
    (call, kind, outcome)
}

fn print_matrix(results: &[(Call, &'static str, Outcome)]) {
    let width = 62;
    let mut table =
        format!("\nfault matrix (call × kind → end state; ✓ nothing orphaned and the record agrees)\n{:width$}", "");
    for (kind, _) in KINDS {
        table.push_str(&format!(" | {kind:<22}"));
    }
    for call in CALLS {
        let row: Vec<&(Call, &str, Outcome)> =
            results.iter().filter(|(c, _, _)| c.phase == call.phase && c.action == call.action).collect();
        if row.is_empty() {
            continue;
        }
        table.push_str(&format!("\n{:<width$}", format!("{:?} {} ({})", call.phase, call.action, call.caller)));
        for (kind, _) in KINDS {
            let cell = row.iter().find(|(_, k, _)| k == kind).map(|(_, _, o)| o.cell()).unwrap_or_else(|| "-".into());
            table.push_str(&format!(" | {cell:<22}"));
        }
    }
    println!("{table}\n");
    for (call, kind, outcome) in results.iter().filter(|(_, _, o)| !o.passed()) {
        println!("✗ {:?} {} {kind} → {}: {}", call.phase, call.action, outcome.status, outcome.problems.join("; "));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_fault_on_every_call_ends_in_a_true_state_with_nothing_orphaned() {
    let h = Arc::new(Harness::new().await);
    h.clear_faults().await;
    let only = std::env::var("PORTCULLIS_FAULT_MATRIX").unwrap_or_default();
    let mut side_by_side = Vec::new();
    let mut one_at_a_time = Vec::new();
    for call in CALLS {
        for &(kind, count) in KINDS {
            let dies = kind == "die-after";
            if dies && !call.caller.starts_with("portcullis-provisioner") {
                continue; // only a function invocation can die
            }
            if !format!("{:?} {} {kind}", call.phase, call.action).contains(&only) {
                continue;
            }
            if dies { one_at_a_time.push((*call, kind, count)) } else { side_by_side.push((*call, kind, count)) }
        }
    }

    let mut results = Vec::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(PARALLEL_CASES));
    let mut running = tokio::task::JoinSet::new();
    for (call, kind, count) in side_by_side {
        let (h, permits) = (h.clone(), permits.clone());
        running.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("the semaphore");
            run_case(h, call, kind, count).await
        });
    }
    while let Some(result) = running.join_next().await {
        results.push(result.expect("a case panicked"));
    }
    for (call, kind, count) in one_at_a_time {
        results.push(run_case(h.clone(), call, kind, count).await);
    }
    h.clear_faults().await;

    print_matrix(&results);
    let failed = results.iter().filter(|(_, _, o)| !o.passed()).count();
    assert_eq!(failed, 0, "{failed} of {} cells end untrue or leave orphans (see the matrix above)", results.len());
}
