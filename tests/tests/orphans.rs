//! What a step that died after AWS made something, and before Portcullis recorded it, leaves behind: the
//! retried step adopts it (one of each, not two), and a teardown finds it by the app id and removes it.
//! The leftovers are made at the emulator with the real SDK, tagged and named as Portcullis does.

use portcullis_e2e::{Harness, fresh_domain};
use reqwest::Method;
use serde_json::{Value, json};

/// Creates an app on a target group with no healthy target: it waits at ENVIRONMENT, having requested its
/// certificate. Returns the app's id, domain and target group.
async fn app_at_environment(h: &Harness, token: &str, tenant: &portcullis_e2e::TestTenant) -> (String, String, String) {
    let group = h.target_group("orphan", false).await;
    let target =
        h.grant(tenant, json!({"type": "alb", "listenerArn": h.stack.listener_arn, "targetGroupArn": group})).await;
    let domain = fresh_domain("orphan");
    let body = json!({"name": "Tool", "domain": domain, "target": target});
    let created = h.call(Method::POST, "/apps", Some(token), Some(&body)).await;
    assert_eq!(created.status, 202, "{}", created.text);
    let id = created.body["id"].as_str().unwrap().to_string();
    let waiting: Value = h
        .app_until(token, &id, "the ENVIRONMENT step", |app| {
            app["step"] == "ENVIRONMENT" || app["status"] != "PROVISIONING"
        })
        .await;
    assert_eq!(waiting["status"], "PROVISIONING", "{waiting}");
    (id, domain, group)
}

/// Deletes the app; once it is DELETED, nothing carrying its id is left at the emulator.
async fn delete_leaving_nothing(h: &Harness, token: &str, id: &str, domain: &str) {
    let reply = h.call(Method::DELETE, &format!("/apps/{id}"), Some(token), None).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    h.app_until(token, id, "DELETED", |app| app["status"] == "DELETED").await;
    assert_eq!(h.carrying_app_id(id, domain).await, Vec::<String>::new(), "nothing carrying the app id is left");
}

#[tokio::test]
async fn a_pool_made_before_a_crash_is_adopted_not_made_twice_and_delete_removes_it() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let token = tenant.admin.clone();
    let (id, domain, group) = app_at_environment(&h, &token, &tenant).await;
    let lost = h.orphan_pool("Tool", &id).await;

    h.make_healthy(&group).await;
    let app = h.app_until(&token, &id, "ACTIVE", |app| app["status"] != "PROVISIONING").await;
    assert_eq!(app["status"], "ACTIVE", "{app}");
    assert_eq!(app["auth"]["userPoolId"], lost.as_str(), "the pool the lost answer left is the app's");
    assert_eq!(h.user_pools_of(&id).await, vec![lost.clone()], "one pool, not two");

    delete_leaving_nothing(&h, &token, &id, &domain).await;
}

#[tokio::test]
async fn what_crashed_steps_left_unrecorded_is_removed_when_the_app_is_deleted() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let token = tenant.admin.clone();
    let (id, domain, _) = app_at_environment(&h, &token, &tenant).await;
    let left =
        [h.orphan_rule(&domain, &id).await, h.orphan_certificate(&domain, &id).await, h.orphan_pool("Tool", &id).await];
    let carrying = h.carrying_app_id(&id, &domain).await;
    for resource in &left {
        assert!(carrying.contains(resource), "{resource} carries the app id: {carrying:?}");
    }
    // Another app's tagged rule on the same listener is never touched.
    let other_domain = fresh_domain("other");
    let others = h.orphan_rule(&other_domain, "another-app").await;

    delete_leaving_nothing(&h, &token, &id, &domain).await;
    let rules = h.listener_rules(&h.stack.listener_arn).await;
    assert!(rules.iter().any(|r| r.rule_arn() == Some(others.as_str())), "another app's rule stays");

    h.aws.elb.delete_rule().rule_arn(&others).send().await.expect("delete_rule");

    // The host is free: a new app for it is not refused over a rule "Portcullis did not make".
    let target = h.alb_target(&tenant).await;
    let body = json!({"name": "Tool", "domain": domain, "target": target});
    let created = h.call(Method::POST, "/apps", Some(&token), Some(&body)).await;
    assert_eq!(created.status, 202, "{}", created.text);
    let again = created.body["id"].as_str().unwrap().to_string();
    let app = h.app_until(&token, &again, "ACTIVE", |app| app["status"] != "PROVISIONING").await;
    assert_eq!(app["status"], "ACTIVE", "{app}");
}
