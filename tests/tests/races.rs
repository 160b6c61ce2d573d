//! Many callers at once, against the local stack: one domain claimed by many creates, many apps wired on
//! one listener at the same moment, and a deletion racing invitations. Each test asserts what a caller and
//! AWS end up with (statuses, the table, the emulator), never how long it took.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::join_all;
use portcullis_e2e::{Harness, Reply, fresh_domain, rule_for_host, short_id};
use reqwest::Method;
use serde_json::{Value, json};

/// The statuses of `replies`, counted.
fn tally(replies: &[Reply]) -> BTreeMap<u16, usize> {
    let mut counts = BTreeMap::new();
    for reply in replies {
        *counts.entry(reply.status).or_insert(0) += 1;
    }
    counts
}

/// No reply is a 5xx; names the first one that is.
#[track_caller]
fn assert_no_server_errors(what: &str, replies: &[Reply]) {
    if let Some(failed) = replies.iter().find(|r| r.status >= 500) {
        panic!("{what}: {:?}; a 5xx: {} {}", tally(replies), failed.status, failed.text);
    }
}

#[tokio::test]
async fn fifty_creates_of_one_domain_make_one_app_and_forty_nine_conflicts() {
    const CREATES: usize = 50;
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let target = h.alb_target(&tenant).await;
    let domain = fresh_domain("contested");
    let body = json!({"name": "Contested", "domain": domain, "target": target});

    // Half carry an Idempotency-Key of their own, half none: neither may get past the domain guard twice.
    let replies = join_all((0..CREATES).map(|i| {
        let key = (i % 2 == 0).then(|| format!("race-{}", short_id()));
        h.call_with_key(Method::POST, "/apps", &tenant.admin, &body, key)
    }))
    .await;
    assert_no_server_errors("creates of one domain", &replies);
    println!("{CREATES} concurrent POST /apps of {domain}: {:?}", tally(&replies));
    let accepted: Vec<&Reply> = replies.iter().filter(|r| r.status == 202).collect();
    assert_eq!(accepted.len(), 1, "exactly one create wins: {:?}", tally(&replies));
    for refused in replies.iter().filter(|r| r.status != 202) {
        let detail = refused.assert_problem(409);
        assert!(detail.contains(&domain), "the 409 names the domain: {detail}");
    }

    // One record, one certificate: the losers left nothing behind.
    let id = accepted[0].body["id"].as_str().expect("an id").to_string();
    assert_eq!(h.app_records_for_domain(&domain).await, vec![id.clone()]);
    h.app_until(&tenant.admin, &id, "the certificate", |app| app["certificate"]["arn"].is_string()).await;
    assert_eq!(h.certificates_for_domain(&domain).await.len(), 1, "one certificate requested for {domain}");
}

#[tokio::test]
async fn apps_provisioned_at_once_on_one_listener_get_distinct_priorities() {
    // As many as the listener holds certificates for: an ALB takes 25, and each app attaches its own
    // beside the listener's default one (Portcullis refuses the 26th with QuotaExceeded).
    const APPS: usize = 24;
    let h = &Harness::new().await;
    let tenant = h.tenant().await;
    let listener = h.listener_of_its_own().await;
    let targets = h.alb_targets_on(&tenant, &listener, APPS).await;
    let token = tenant.admin.as_str();

    let domains: Vec<String> = (0..APPS).map(|_| fresh_domain("wired")).collect();
    let created = join_all(domains.iter().zip(&targets).map(|(domain, target)| {
        let body = json!({"name": "Wired", "domain": domain, "target": target});
        async move { h.call(Method::POST, "/apps", Some(token), Some(&body)).await }
    }))
    .await;
    assert_no_server_errors("creates on one listener", &created);
    assert!(created.iter().all(|r| r.status == 202), "{:?}", tally(&created));
    let ids: Vec<String> = created.iter().map(|r| r.body["id"].as_str().unwrap().to_string()).collect();

    let apps = join_all(ids.iter().map(|id| h.app_until(token, id, "the app to settle", settled))).await;
    let failed: Vec<&Value> = apps.iter().filter(|app| app["status"] != "ACTIVE").collect();
    assert!(failed.is_empty(), "every app ACTIVE; not: {failed:?}");

    // At the load balancer: one rule per host, each at its own priority.
    let rules = h.listener_rules(&listener).await;
    let mut priorities = BTreeSet::new();
    for domain in &domains {
        let ours = rule_for_host(&rules, domain);
        assert_eq!(ours.len(), 1, "one rule for {domain}");
        priorities.insert(ours[0].priority().unwrap().to_string());
    }
    assert_eq!(priorities.len(), APPS, "distinct priorities: {priorities:?}");

    // No app's history records a lost priority race it could not absorb.
    for id in &ids {
        let events = h.call(Method::GET, &format!("/apps/{id}/events?limit=100"), Some(token), None).await;
        assert_eq!(events.status, 200, "{}", events.text);
        assert!(!events.text.contains("PriorityInUse"), "{id}: {}", events.text);
    }
    println!("{APPS} apps wired at once on one listener: priorities {priorities:?}");
}

#[tokio::test]
async fn a_deletion_racing_invitations_leaves_no_user_behind() {
    const WRITES: usize = 30;
    let h = &Harness::new().await;
    let tenant = h.tenant().await;
    let token = tenant.admin.as_str();
    let app = h.active_app(&tenant, "Raced").await;
    let id = app["id"].as_str().unwrap().to_string();
    let pool = app["auth"]["userPoolId"].as_str().unwrap().to_string();
    let users = format!("/apps/{id}/users");
    let mut invited = Vec::new();
    for _ in 0..3 {
        let email = format!("early-{}@example.com", short_id());
        let reply = h.call(Method::POST, &users, Some(token), Some(&json!({"email": email}))).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        invited.push(reply.body["username"].as_str().unwrap().to_string());
    }
    assert_eq!(h.invitation_records(&id).await.len(), 3);

    // The deletion, in the middle of invites, resends and revokes of the same app: sent once the first
    // of them has been answered, so that the rest are still under way.
    let first_answered = tokio::sync::Notify::new();
    let writes = (0..WRITES).map(|i| {
        let (users, known, first_answered) = (users.clone(), invited[i % invited.len()].clone(), &first_answered);
        async move {
            let reply = match i % 3 {
                0 => {
                    let body = json!({"email": format!("late-{}@example.com", short_id())});
                    h.call(Method::POST, &users, Some(token), Some(&body)).await
                }
                1 => h.call(Method::POST, &format!("{users}/{known}/resend"), Some(token), None).await,
                _ => h.call(Method::DELETE, &format!("{users}/{known}"), Some(token), None).await,
            };
            first_answered.notify_one();
            reply
        }
    });
    let app_path = format!("/apps/{id}");
    let delete = async {
        first_answered.notified().await;
        h.call(Method::DELETE, &app_path, Some(token), None).await
    };
    let (deleted, replies) = tokio::join!(delete, join_all(writes));
    assert_eq!(deleted.status, 202, "{}", deleted.text);
    assert_no_server_errors("user writes racing the deletion", &replies);
    println!("{WRITES} user writes racing DELETE /apps/{id}: {:?}", tally(&replies));
    for refused in replies.iter().filter(|r| r.status == 409) {
        refused.assert_problem(409);
    }

    // The app ends DELETED, its pool is gone, and no invitation outlives it.
    let gone = h.app_until(token, &id, "DELETED", |app| app["status"] == "DELETED" || app["status"] == "FAILED").await;
    assert_eq!(gone["status"], "DELETED", "{gone}");
    let described = h.aws.cognito.describe_user_pool().user_pool_id(&pool).send().await;
    assert!(described.is_err(), "the pool {pool} is gone");
    assert_eq!(h.invitation_records(&id).await, Vec::<String>::new(), "no invitation left for the deleted app");

    // Once DELETED, writes are refused with a problem, not a 5xx.
    let after = h.call(Method::POST, &users, Some(token), Some(&json!({"email": "after@example.com"}))).await;
    after.assert_problem(409);
}

/// Done provisioning, one way or the other.
fn settled(app: &Value) -> bool {
    app["status"] != "PROVISIONING"
}
