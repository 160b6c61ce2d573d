//! The `/apps` contract: bad input, conflicts, authentication, roles, tenancy, paging and deleting, through
//! the local API gateway and the real functions.

use aws_sdk_cognitoidentityprovider::types::{AttributeType, ExplicitAuthFlowsType};
use std::time::Duration;

use portcullis_e2e::{Harness, TestTenant, WaitingApp, eventually, fresh_domain, rule_for_host, short_id};
use reqwest::Method;
use serde_json::{Value, json};

/// A registered tenant granted a target whose provisioning fails fast (no such environment), for tests
/// that only need apps to exist; returns the tenant and that target.
async fn tenant_with_doomed_target(h: &Harness) -> (TestTenant, Value) {
    let tenant = h.tenant().await;
    let target = json!({"type": "elasticbeanstalk", "environmentName": format!("none-{}", short_id())});
    let target = h.grant(&tenant, target).await;
    (tenant, target)
}

fn app_body(domain: &str, target: &Value) -> Value {
    json!({"name": "Tool", "domain": domain, "target": target})
}

/// API Gateway's own answer for a route the API does not have, worded by the contract's gateway
/// responses: a 404 problem, with or without a token.
#[tokio::test]
async fn a_route_the_api_does_not_have_is_a_404_problem() {
    let h = Harness::new().await;
    let admin = h.tenant().await.admin;
    for token in [None, Some(admin.as_str())] {
        let detail = h.call(Method::GET, "/no-such-route", token, None).await.assert_problem(404);
        assert_eq!(detail, "No operation at GET /no-such-route.");
    }
}

#[tokio::test]
async fn invalid_requests_get_400_problems_naming_the_field() {
    let h = Harness::new().await;
    let (tenant, target) = tenant_with_doomed_target(&h).await;
    let token = tenant.admin.clone();
    let too_long = format!("{}.demo.test", "a".repeat(60));
    let cases = [
        (json!({"name": "", "domain": fresh_domain("ok"), "target": target}), "name"),
        (json!({"name": "<b>x</b>", "domain": fresh_domain("ok"), "target": target}), "name"),
        (json!({"name": "ok", "domain": "*.example.com", "target": target}), "domain"),
        (json!({"name": "ok", "domain": "localhost", "target": target}), "domain"),
        (json!({"name": "ok", "domain": too_long, "target": target}), "at most 64"),
        (json!({"name": "ok", "domain": fresh_domain("ok"), "target": {"type": "nlb"}}), "target"),
        (
            json!({"name": "ok", "domain": fresh_domain("ok"), "target": {"type": "alb", "listenerArn": "x", "targetGroupArn": "y"}}),
            "target.listenerArn",
        ),
        (json!({"name": "ok", "domain": fresh_domain("ok")}), "target"),
        (
            json!({"name": "ok", "domain": fresh_domain("ok"), "target": target, "sessionTimeoutSeconds": -5}),
            "sessionTimeoutSeconds",
        ),
    ];
    for (body, field) in cases {
        let reply = h.call(Method::POST, "/apps", Some(&token), Some(&body)).await;
        let detail = reply.assert_problem(400);
        assert!(detail.contains(field), "detail for {body} should name {field}: {detail}");
    }
    let reply = h.call(Method::POST, "/apps", Some(&token), Some(&Value::String("not an object".into()))).await;
    reply.assert_problem(400);
    let reply = h.call(Method::GET, "/apps?limit=0", Some(&token), None).await;
    assert!(reply.assert_problem(400).contains("limit"));
    let reply = h.call(Method::GET, "/apps?nextToken=forged", Some(&token), None).await;
    assert!(reply.assert_problem(400).contains("nextToken"));
}

#[tokio::test]
async fn a_taken_domain_is_409_also_when_two_requests_race() {
    let h = Harness::new().await;
    let (tenant, target) = tenant_with_doomed_target(&h).await;
    let token = tenant.admin.clone();
    let domain = fresh_domain("taken");
    let first = h.call(Method::POST, "/apps", Some(&token), Some(&app_body(&domain, &target))).await;
    assert_eq!(first.status, 202, "{}", first.text);
    let second = h.call(Method::POST, "/apps", Some(&token), Some(&app_body(&domain, &target))).await;
    assert!(second.assert_problem(409).contains(&domain));

    // Another tenant cannot take it either.
    let (other, other_target) = tenant_with_doomed_target(&h).await;
    let third = h.call(Method::POST, "/apps", Some(&other.admin), Some(&app_body(&domain, &other_target))).await;
    third.assert_problem(409);

    // Two at once for a fresh domain: exactly one wins.
    let raced = fresh_domain("race");
    let (body_a, body_b) = (app_body(&raced, &target), app_body(&raced, &target));
    let (a, b) = tokio::join!(
        h.call(Method::POST, "/apps", Some(&token), Some(&body_a)),
        h.call(Method::POST, "/apps", Some(&token), Some(&body_b)),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [202, 409], "{} / {}", a.text, b.text);
}

#[tokio::test]
async fn missing_or_bad_tokens_are_401() {
    let h = Harness::new().await;
    let reply = h.call(Method::GET, "/apps", None, None).await;
    reply.assert_problem(401);
    assert_eq!(reply.headers["www-authenticate"], "Bearer");
    h.call(Method::GET, "/apps", Some("not-a-jwt"), None).await.assert_problem(401);

    // A token whose signature does not match its content.
    let token = h.tenant().await.admin;
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    parts[2] = parts[2].chars().rev().collect();
    h.call(Method::GET, "/apps", Some(&parts.join(".")), None).await.assert_problem(401);

    // A well-signed token from another issuer (another user pool).
    let cognito = &h.aws.cognito;
    let pool = cognito.create_user_pool().pool_name(format!("elsewhere-{}", short_id())).send().await.unwrap();
    let pool_id = pool.user_pool().unwrap().id().unwrap().to_string();
    let client = cognito
        .create_user_pool_client()
        .user_pool_id(&pool_id)
        .client_name("elsewhere")
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowAdminUserPasswordAuth)
        .send()
        .await
        .unwrap();
    let client_id = client.user_pool_client().unwrap().client_id().unwrap().to_string();
    cognito
        .admin_create_user()
        .user_pool_id(&pool_id)
        .username("intruder@else.test")
        .user_attributes(AttributeType::builder().name("custom:tenant").value("demo").build().unwrap())
        .send()
        .await
        .unwrap();
    cognito
        .admin_set_user_password()
        .user_pool_id(&pool_id)
        .username("intruder@else.test")
        .password("Intruder-password-1!")
        .permanent(true)
        .send()
        .await
        .unwrap();
    let auth = cognito
        .admin_initiate_auth()
        .user_pool_id(&pool_id)
        .client_id(&client_id)
        .auth_flow(aws_sdk_cognitoidentityprovider::types::AuthFlowType::AdminUserPasswordAuth)
        .auth_parameters("USERNAME", "intruder@else.test")
        .auth_parameters("PASSWORD", "Intruder-password-1!")
        .send()
        .await
        .unwrap();
    let result = auth.authentication_result().unwrap();
    let foreign = result.id_token().unwrap();
    assert!(h.call(Method::GET, "/apps", Some(foreign), None).await.assert_problem(401).contains("not valid"));

    // An access token of the right pool is not an ID token.
    let email = h.operator_email(Some("demo"), Some("admin")).await;
    let access = h.login(&email, portcullis_e2e::TEST_PASSWORD).await.access_token().unwrap().to_string();
    h.call(Method::GET, "/apps", Some(&access), None).await.assert_problem(401);
}

#[tokio::test]
async fn viewers_read_but_cannot_write_and_tokens_need_tenant_and_group() {
    let h = Harness::new().await;
    let (tenant, target) = tenant_with_doomed_target(&h).await;
    let admin = tenant.admin.clone();
    let viewer = h.operator(Some(&tenant.id), Some("viewer")).await;
    let created = h.call(Method::POST, "/apps", Some(&admin), Some(&app_body(&fresh_domain("v"), &target))).await;
    assert_eq!(created.status, 202, "{}", created.text);
    let id = created.body["id"].as_str().unwrap();

    assert_eq!(h.call(Method::GET, "/apps", Some(&viewer), None).await.status, 200);
    assert_eq!(h.call(Method::GET, &format!("/apps/{id}"), Some(&viewer), None).await.status, 200);
    let post = h.call(Method::POST, "/apps", Some(&viewer), Some(&app_body(&fresh_domain("v"), &target))).await;
    assert!(post.assert_problem(403).contains("admin"));
    h.call(Method::DELETE, &format!("/apps/{id}"), Some(&viewer), None).await.assert_problem(403);

    let no_group = h.operator(Some("demo"), None).await;
    h.call(Method::GET, "/apps", Some(&no_group), None).await.assert_problem(403);
    let no_tenant = h.operator(None, Some("admin")).await;
    assert!(h.call(Method::GET, "/apps", Some(&no_tenant), None).await.assert_problem(403).contains("tenant"));
}

#[tokio::test]
async fn another_tenants_app_is_404_and_listings_are_per_tenant() {
    let h = Harness::new().await;
    let (tenant, target) = tenant_with_doomed_target(&h).await;
    let mine = tenant.admin.clone();
    let theirs = h.tenant().await.admin;
    let mut ids = vec![];
    for _ in 0..3 {
        let reply = h.call(Method::POST, "/apps", Some(&mine), Some(&app_body(&fresh_domain("p"), &target))).await;
        assert_eq!(reply.status, 202, "{}", reply.text);
        ids.push(reply.body["id"].as_str().unwrap().to_string());
    }
    for path in [format!("/apps/{}", ids[0]), "/apps/not-an-id".to_string()] {
        h.call(Method::GET, &path, Some(&theirs), None).await.assert_problem(404);
    }
    h.call(Method::DELETE, &format!("/apps/{}", ids[0]), Some(&theirs), None).await.assert_problem(404);
    let listed = h.call(Method::GET, "/apps?limit=100", Some(&theirs), None).await;
    assert!(ids.iter().all(|id| !listed.text.contains(id.as_str())));

    // Paging: two pages of 2 and 1, in creation order, with no repeats.
    let first = h.call(Method::GET, "/apps?limit=2", Some(&mine), None).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let token = first.body["nextToken"].as_str().expect("a next page").to_string();
    let second = h.call(Method::GET, &format!("/apps?limit=2&nextToken={token}"), Some(&mine), None).await;
    let page_ids = |reply: &portcullis_e2e::Reply| -> Vec<String> {
        reply.body["items"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_string()).collect()
    };
    let mut all = page_ids(&first);
    all.extend(page_ids(&second));
    assert_eq!(all, ids);
    assert!(second.body.get("nextToken").is_none() || page_ids(&second).len() == 1);

    // Another tenant cannot use my page token to read my partition.
    h.call(Method::GET, &format!("/apps?nextToken={token}"), Some(&theirs), None).await.assert_problem(400);
}

#[tokio::test]
async fn deleting_while_provisioning_ends_deleted_with_nothing_left() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let token = tenant.admin.clone();
    let WaitingApp { id, domain, certificate_arn } = h.app_waiting_for_its_target(&tenant, "cancel").await;

    let reply = h.call(Method::DELETE, &format!("/apps/{id}"), Some(&token), None).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    assert_eq!(reply.body["status"], "DELETING", "{}", reply.text);
    let gone = h.app_until(&token, &id, "DELETED", |app| app["status"] == "DELETED" || app["status"] == "FAILED").await;
    assert_eq!(gone["status"], "DELETED", "{gone}");

    // Provisioning was cancelled, not left to run into its deadline.
    let provisioning = eventually("the provisioning execution to end", Duration::from_secs(30), || async {
        h.execution_status("provision", &id).await.filter(|status| status != "RUNNING")
    })
    .await;
    assert_eq!(provisioning, "ABORTED");

    // Nothing it made is left.
    let described = h.aws.acm.describe_certificate().certificate_arn(&certificate_arn).send().await;
    let not_found = described.expect_err("the certificate is deleted").into_service_error();
    assert!(not_found.is_resource_not_found_exception(), "{not_found:?}");
    assert!(rule_for_host(&h.listener_rules(&h.stack.listener_arn).await, &domain).is_empty(), "no rule");
    assert!(!h.listener_certificates(&h.stack.listener_arn).await.contains(&certificate_arn));
    assert!(h.user_pools_of(&id).await.is_empty(), "no pool for the app");

    // Deleting it again changes nothing.
    let again = h.call(Method::DELETE, &format!("/apps/{id}"), Some(&token), None).await;
    assert_eq!((again.status, again.body["status"].as_str()), (202, Some("DELETED")), "{}", again.text);
}

#[tokio::test]
async fn a_deleting_app_whose_deprovisioning_never_started_is_deleted_by_deleting_again() {
    let h = Harness::new().await;
    let (tenant, target) = tenant_with_doomed_target(&h).await;
    let token = tenant.admin.clone();
    let domain = fresh_domain("stuck");
    let created = h.call(Method::POST, "/apps", Some(&token), Some(&app_body(&domain, &target))).await;
    assert_eq!(created.status, 202, "{}", created.text);
    let id = created.body["id"].as_str().unwrap().to_string();
    h.app_until(&token, &id, "FAILED", |app| app["status"] == "FAILED").await;
    // As if StartExecution had failed right after DELETING was written.
    h.force_status(&tenant.id, &id, "DELETING").await;

    let reply = h.call(Method::DELETE, &format!("/apps/{id}"), Some(&token), None).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let gone = h.app_until(&token, &id, "DELETED", |app| app["status"] != "DELETING").await;
    assert_eq!(gone["status"], "DELETED", "{gone}");
    let again = h.call(Method::POST, "/apps", Some(&token), Some(&app_body(&domain, &target))).await;
    assert_eq!(again.status, 202, "the domain is free again: {}", again.text);
}

#[tokio::test]
async fn the_local_bootstrap_made_the_demo_operators() {
    let h = Harness::new().await;
    for (email, group) in [("admin@demo.test", "admin"), ("viewer@demo.test", "viewer")] {
        let user =
            h.aws.cognito.admin_get_user().user_pool_id(&h.stack.user_pool_id).username(email).send().await.unwrap();
        let tenant = user.user_attributes().iter().find(|a| a.name() == "custom:tenant").and_then(|a| a.value());
        assert_eq!(tenant, Some("demo"), "{email}");
        let groups = h
            .aws
            .cognito
            .admin_list_groups_for_user()
            .user_pool_id(&h.stack.user_pool_id)
            .username(email)
            .send()
            .await
            .unwrap();
        let names: Vec<&str> = groups.groups().iter().filter_map(|g| g.group_name()).collect();
        assert_eq!(names, vec![group], "{email}");
    }
    // The demo tenant is registered, with the demo ALB's target, so the README walkthrough works.
    let platform = h.token_for("platform@demo.test", "Portcullis-local-1!").await;
    let demo = h.call(Method::GET, "/tenants/demo", Some(&platform), None).await;
    assert_eq!(demo.status, 200, "{}", demo.text);
    assert_eq!(demo.body["allowedDomains"], json!(["*.demo.test"]));
    assert_eq!(demo.body["targets"][0]["targetGroupArn"], h.stack.target_group_arn.as_str());
}

#[tokio::test]
async fn apps_stay_inside_the_tenants_grants() {
    let h = Harness::new().await;
    let unregistered = h.operator(Some(&format!("t-{}", short_id())), Some("admin")).await;
    let demo_target =
        json!({"type": "alb", "listenerArn": h.stack.listener_arn, "targetGroupArn": h.stack.target_group_arn});
    let reply =
        h.call(Method::POST, "/apps", Some(&unregistered), Some(&app_body(&fresh_domain("u"), &demo_target))).await;
    assert!(reply.assert_problem(403).contains("not registered"), "{}", reply.text);

    let (tenant, target) = tenant_with_doomed_target(&h).await;
    let outside = app_body(&format!("x-{}.elsewhere.test", short_id()), &target);
    let detail = h.call(Method::POST, "/apps", Some(&tenant.admin), Some(&outside)).await.assert_problem(403);
    assert!(detail.contains("*.demo.test") && detail.contains(&format!("PUT /tenants/{}", tenant.id)), "{detail}");

    // The demo target group is granted to tenant demo: nobody else may put a login in front of it.
    let detail = h
        .call(Method::POST, "/apps", Some(&tenant.admin), Some(&app_body(&fresh_domain("g"), &demo_target)))
        .await
        .assert_problem(403);
    assert!(detail.contains("not one granted"), "{detail}");
    let stolen = json!({"allowedDomains": ["*.demo.test"], "targets": [
        {"id": "mine-now", "type": "alb", "listenerArn": h.stack.listener_arn, "targetGroupArn": h.stack.target_group_arn}]});
    let path = format!("/tenants/{}", tenant.id);
    let reply = h.call(Method::PUT, &path, Some(&h.platform().await), Some(&stolen)).await;
    assert!(reply.assert_problem(409).contains("another tenant"), "{}", reply.text);

    // A quota of one: the second live app is refused, a FAILED one still counts.
    let quota = json!({"allowedDomains": ["*.demo.test"], "targets": [
        {"id": "doomed", "type": target["type"], "environmentName": target["environmentName"]}], "quotas": {"apps": 1}});
    let reply = h.call(Method::PUT, &path, Some(&h.platform().await), Some(&quota)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let first = h.call(Method::POST, "/apps", Some(&tenant.admin), Some(&app_body(&fresh_domain("q"), &target))).await;
    assert_eq!(first.status, 202, "{}", first.text);
    let id = first.body["id"].as_str().unwrap();
    h.app_until(&tenant.admin, id, "FAILED", |app| app["status"] == "FAILED").await;
    let second = h.call(Method::POST, "/apps", Some(&tenant.admin), Some(&app_body(&fresh_domain("q"), &target))).await;
    assert!(second.assert_problem(422).contains("quotas.apps = 1"), "{}", second.text);
}

#[tokio::test]
async fn an_undeclared_method_is_405_and_an_undeclared_path_404_both_problems() {
    let h = Harness::new().await;
    for method in ["TRACE", "DELETE", "PUT", "PATCH", "PROPFIND"] {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let reply = h.call(method.clone(), "/apps", None, None).await;
        reply.assert_problem(405);
        assert_eq!(reply.headers["allow"], "GET, OPTIONS, POST", "{method}");
    }
    h.call(Method::GET, "/nowhere", None, None).await.assert_problem(404);
    h.call(Method::from_bytes(b"TRACE").unwrap(), "/apps/x/nowhere", None, None).await.assert_problem(404);
}
