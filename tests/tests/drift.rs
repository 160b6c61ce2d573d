//! Drift: after ACTIVE, the scheduled check looks again. A rule deleted by hand, a certificate detached, a
//! pool deleted: `GET /apps/{id}` shows DRIFTED with the finding and its history the change; `POST
//! /apps/{id}/repair` puts back what Portcullis owns (asserted at the emulator) and refuses what it does not.

use aws_sdk_elasticloadbalancingv2::types as elbv2;
use portcullis_e2e::{Harness, TEST_PASSWORD, rule_for_host};
use reqwest::Method;
use serde_json::{Value, json};

/// Runs the drift check as the template's schedule does: EventBridge invokes the provisioner with
/// `{"checkDrift": …}` (the limit covers every app the suite made on this stack).
async fn check_drift(h: &Harness) -> Value {
    let body = h.run_scheduled_job(json!({"checkDrift": {"limit": 1000}})).await;
    // Other tests' apps may change under a run (then counted in `failed`); this test's apps do not.
    assert!(body["checked"].as_u64().unwrap_or_default() > 0, "{body}");
    body
}

async fn get_app(h: &Harness, token: &str, id: &str) -> Value {
    let reply = h.call(Method::GET, &format!("/apps/{id}"), Some(token), None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body
}

async fn events(h: &Harness, token: &str, id: &str) -> Vec<Value> {
    let reply = h.call(Method::GET, &format!("/apps/{id}/events"), Some(token), None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body["items"].as_array().cloned().unwrap_or_default()
}

fn codes(app: &Value) -> Vec<&str> {
    app["health"]["findings"].as_array().into_iter().flatten().filter_map(|f| f["code"].as_str()).collect()
}

async fn repair(h: &Harness, token: &str, id: &str) -> portcullis_e2e::Reply {
    h.call(Method::POST, &format!("/apps/{id}/repair"), Some(token), None).await
}

/// The app's rule on the listener, exactly as Portcullis makes it.
fn assert_rule_exactly(rule: &elbv2::Rule, app: &Value) {
    let conditions = rule.conditions();
    assert_eq!(conditions.len(), 1, "{rule:?}");
    assert_eq!(conditions[0].field(), Some("host-header"));
    let hosts = conditions[0].host_header_config().map(|c| c.values().to_vec()).unwrap_or_default();
    assert_eq!(hosts, [app["domain"].as_str().unwrap()]);
    let actions = rule.actions();
    assert_eq!(actions.len(), 2, "{rule:?}");
    let login = actions.iter().find_map(|a| a.authenticate_cognito_config()).expect("a Cognito login");
    assert_eq!(login.user_pool_client_id(), app["auth"]["clientId"].as_str());
    assert!(login.user_pool_arn().unwrap_or_default().ends_with(app["auth"]["userPoolId"].as_str().unwrap()));
    let prefix = app["auth"]["domain"].as_str().unwrap().split('.').next().unwrap();
    assert_eq!(login.user_pool_domain(), Some(prefix));
    assert_eq!(login.session_timeout(), app["sessionTimeoutSeconds"].as_i64());
    assert_eq!(login.scope(), Some("openid email"));
    let forward = actions.iter().find(|a| a.r#type() == Some(&elbv2::ActionTypeEnum::Forward)).expect("a forward");
    assert_eq!(forward.target_group_arn(), app["target"]["targetGroupArn"].as_str());
}

#[tokio::test]
async fn a_rule_deleted_by_hand_is_found_and_put_back_exactly() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let app = h.active_app(&tenant, "Drift rule").await;
    let id = app["id"].as_str().unwrap();
    let token = tenant.admin.as_str();
    assert!(app.get("health").is_none(), "no health until the first check: {app}");

    check_drift(&h).await;
    let checked = get_app(&h, token, id).await;
    assert_eq!(checked["health"]["status"], "OK", "{checked}");
    assert_eq!(checked["health"]["findings"], json!([]));
    assert!(checked["health"]["checkedAt"].is_string());

    let rule_arn = app["listenerRuleArn"].as_str().unwrap();
    let rules = h.listener_rules(&h.stack.listener_arn).await;
    let priority = rule_for_host(&rules, app["domain"].as_str().unwrap())[0].priority().map(str::to_string);
    h.aws.elb.delete_rule().rule_arn(rule_arn).send().await.expect("delete the rule by hand");
    check_drift(&h).await;
    let drifted = get_app(&h, token, id).await;
    assert_eq!(drifted["status"], "ACTIVE");
    assert_eq!(drifted["health"]["status"], "DRIFTED", "{drifted}");
    assert_eq!(codes(&drifted), ["RULE_MISSING"]);
    let finding = &drifted["health"]["findings"][0];
    assert_eq!(finding["repairable"], true);
    assert!(finding["detail"].as_str().unwrap().contains(rule_arn), "{finding}");
    let history = events(&h, token, id).await;
    assert_eq!(history[0]["action"], "app.health-changed", "{history:?}");
    assert!(history[0]["detail"].as_str().unwrap().starts_with("DRIFTED"), "{history:?}");
    // Looking again without a change adds no event.
    check_drift(&h).await;
    assert_eq!(events(&h, token, id).await.len(), history.len());

    let repaired = repair(&h, token, id).await;
    assert_eq!(repaired.status, 200, "{}", repaired.text);
    assert_eq!(repaired.body["health"]["status"], "OK", "{}", repaired.text);
    let rules = h.listener_rules(&h.stack.listener_arn).await;
    let ours = rule_for_host(&rules, app["domain"].as_str().unwrap());
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!(ours[0].rule_arn(), repaired.body["listenerRuleArn"].as_str());
    assert_ne!(ours[0].rule_arn(), Some(rule_arn), "a new rule");
    assert_eq!(ours[0].priority().map(str::to_string), priority, "the priority the app still holds");
    assert_rule_exactly(ours[0], &repaired.body);
    let history = events(&h, token, id).await;
    let actor = h.actor(&tenant.admin_email).await;
    let repair_event = history.iter().find(|e| e["action"] == "app.repaired").expect("a repair event");
    assert_eq!(repair_event["actor"], actor.as_str());
    assert_eq!(history[0]["action"], "app.health-changed", "{history:?}");
    assert!(history[0]["detail"].as_str().unwrap().starts_with("OK"));

    check_drift(&h).await;
    assert_eq!(get_app(&h, token, id).await["health"]["status"], "OK");
}

#[tokio::test]
async fn a_detached_certificate_is_attached_again() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let app = h.active_app(&tenant, "Drift cert").await;
    let id = app["id"].as_str().unwrap();
    let certificate = app["certificate"]["arn"].as_str().unwrap();
    let listener = h.stack.listener_arn.clone();
    h.aws
        .elb
        .remove_listener_certificates()
        .listener_arn(&listener)
        .certificates(elbv2::Certificate::builder().certificate_arn(certificate).build())
        .send()
        .await
        .expect("detach by hand");
    check_drift(&h).await;
    let drifted = get_app(&h, &tenant.admin, id).await;
    assert_eq!(codes(&drifted), ["CERTIFICATE_DETACHED"], "{drifted}");

    let repaired = repair(&h, &tenant.admin, id).await;
    assert_eq!(repaired.status, 200, "{}", repaired.text);
    assert_eq!(repaired.body["health"]["status"], "OK", "{}", repaired.text);
    assert!(h.listener_certificates(&listener).await.iter().any(|c| c == certificate));
}

#[tokio::test]
async fn a_deleted_pool_is_drift_that_repair_refuses_with_what_to_do() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let app = h.active_app(&tenant, "Drift pool").await;
    let id = app["id"].as_str().unwrap();
    let pool = app["auth"]["userPoolId"].as_str().unwrap();
    let domain_prefix = app["auth"]["domain"].as_str().unwrap().split('.').next().unwrap();
    h.aws.cognito.delete_user_pool_domain().user_pool_id(pool).domain(domain_prefix).send().await.unwrap();
    h.aws.cognito.delete_user_pool().user_pool_id(pool).send().await.expect("delete the pool by hand");
    check_drift(&h).await;
    let drifted = get_app(&h, &tenant.admin, id).await;
    assert!(codes(&drifted).contains(&"POOL_MISSING"), "{drifted}");

    let refused = repair(&h, &tenant.admin, id).await;
    let detail = refused.assert_problem(409);
    assert!(detail.contains(pool) && detail.contains("users") && detail.contains("delete the app"), "{detail}");
    assert!(detail.contains("nothing was changed"), "{detail}");
    let rules = h.listener_rules(&h.stack.listener_arn).await;
    let for_host: Vec<_> =
        rule_for_host(&rules, app["domain"].as_str().unwrap()).iter().map(|r| r.rule_arn()).collect();
    assert_eq!(for_host, [app["listenerRuleArn"].as_str()], "the rule is left as it was");
}

#[tokio::test]
async fn only_the_tenants_admins_repair() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let other = h.tenant().await;
    let app = h.active_app(&tenant, "Drift access").await;
    let id = app["id"].as_str().unwrap();
    let viewer = h.token_for(&h.operator_email(Some(&tenant.id), Some("viewer")).await, TEST_PASSWORD).await;
    repair(&h, &viewer, id).await.assert_problem(403);
    repair(&h, &other.admin, id).await.assert_problem(404);
    let ok = repair(&h, &tenant.admin, id).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.body["health"]["status"], "OK");
}

#[tokio::test]
async fn a_client_and_domain_deleted_by_hand_are_made_again_and_the_rule_follows() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let app = h.active_app(&tenant, "Drift login").await;
    let id = app["id"].as_str().unwrap();
    let pool = app["auth"]["userPoolId"].as_str().unwrap();
    let client = app["auth"]["clientId"].as_str().unwrap();
    let domain_prefix = app["auth"]["domain"].as_str().unwrap().split('.').next().unwrap();
    let cognito = &h.aws.cognito;
    cognito.delete_user_pool_domain().user_pool_id(pool).domain(domain_prefix).send().await.expect("delete domain");
    cognito.delete_user_pool_client().user_pool_id(pool).client_id(client).send().await.expect("delete client");
    check_drift(&h).await;
    let drifted = get_app(&h, &tenant.admin, id).await;
    let found = codes(&drifted);
    assert!(found.contains(&"CLIENT_MISSING") && found.contains(&"DOMAIN_MISSING"), "{drifted}");

    let repaired = repair(&h, &tenant.admin, id).await;
    assert_eq!(repaired.status, 200, "{}", repaired.text);
    assert_eq!(repaired.body["health"]["status"], "OK", "{}", repaired.text);
    let new_client = repaired.body["auth"]["clientId"].as_str().unwrap();
    assert_ne!(new_client, client, "a new client");
    let described = cognito.describe_user_pool_client().user_pool_id(pool).client_id(new_client).send().await;
    let made = described.expect("the new client exists").user_pool_client.unwrap();
    assert_eq!(made.callback_urls(), [format!("https://{}/oauth2/idpresponse", app["domain"].as_str().unwrap())]);
    let domain = cognito.describe_user_pool_domain().domain(domain_prefix).send().await.unwrap();
    assert_eq!(domain.domain_description.and_then(|d| d.user_pool_id), Some(pool.to_string()), "the domain is back");
    let rules = h.listener_rules(&h.stack.listener_arn).await;
    let ours = rule_for_host(&rules, app["domain"].as_str().unwrap());
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_rule_exactly(ours[0], &repaired.body);
}

#[tokio::test]
async fn a_certificate_deleted_by_hand_is_drift_that_repair_refuses() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let app = h.active_app(&tenant, "Drift gone cert").await;
    let id = app["id"].as_str().unwrap();
    let certificate = app["certificate"]["arn"].as_str().unwrap();
    let listener = h.stack.listener_arn.clone();
    let detached = elbv2::Certificate::builder().certificate_arn(certificate).build();
    h.aws.elb.remove_listener_certificates().listener_arn(&listener).certificates(detached).send().await.unwrap();
    h.aws.acm.delete_certificate().certificate_arn(certificate).send().await.expect("delete the certificate by hand");
    check_drift(&h).await;
    let drifted = get_app(&h, &tenant.admin, id).await;
    let found = codes(&drifted);
    assert!(found.contains(&"CERTIFICATE_NOT_ISSUED"), "{drifted}");
    let gone = drifted["health"]["findings"].as_array().unwrap().iter().find(|f| f["code"] == "CERTIFICATE_NOT_ISSUED");
    assert_eq!(gone.unwrap()["repairable"], false);

    let detail = repair(&h, &tenant.admin, id).await.assert_problem(409);
    assert!(detail.contains(certificate) && detail.contains("nothing was changed"), "{detail}");
    assert!(!h.listener_certificates(&listener).await.iter().any(|c| c == certificate), "nothing attached");
}
