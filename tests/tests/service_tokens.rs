//! Service tokens for scripts and CI: a tenant's admin creates one, the script trades its client id and
//! secret at the token URL for an access token, and the API takes the tenant from the registry's record
//! of the client and the rights from its scopes. Revoked or expired, it stops working.

use portcullis_e2e::{Harness, Reply, TABLE_NAME, TEST_PASSWORD, fresh_domain};
use reqwest::Method;
use serde_json::{Value, json};

async fn create(h: &Harness, admin: &str, body: Value) -> Value {
    let created = h.call(Method::POST, "/tenant/service-tokens", Some(admin), Some(&body)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    created.body
}

/// An app of the tenant (provisioning; its state does not matter here).
async fn app_of(h: &Harness, tenant: &portcullis_e2e::TestTenant) -> String {
    let target = h.alb_target(tenant).await;
    let body = json!({"name": "Scripted", "domain": fresh_domain("svc"), "target": target});
    let created = h.call(Method::POST, "/apps", Some(&tenant.admin), Some(&body)).await;
    assert_eq!(created.status, 202, "{}", created.text);
    created.body["id"].as_str().unwrap().to_string()
}

fn actions(events: &Reply) -> Vec<String> {
    events.body["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn a_service_token_reads_its_tenants_apps_within_its_scopes_until_it_is_revoked() {
    let h = Harness::new().await;
    let (tenant, other) = (h.tenant().await, h.tenant().await);
    let (ours, theirs) = (app_of(&h, &tenant).await, app_of(&h, &other).await);

    let created =
        create(&h, &tenant.admin, json!({"name": "ci reader", "scopes": ["apps:read"], "expiresInDays": 7})).await;
    let client_id = created["clientId"].as_str().unwrap().to_string();
    let secret = created["clientSecret"].as_str().unwrap().to_string();
    assert_eq!(created["scopes"], json!(["apps:read"]));
    assert!(created["expiresAt"].is_string() && created["expired"] == false, "{created}");
    let token = h.access_token(&created).await;

    // Its tenant's apps, and only those.
    let listed = h.call(Method::GET, "/apps", Some(&token), None).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let ids: Vec<&str> = listed.body["items"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [ours.as_str()]);
    assert_eq!(h.call(Method::GET, &format!("/apps/{ours}"), Some(&token), None).await.status, 200);
    h.call(Method::GET, &format!("/apps/{theirs}"), Some(&token), None).await.assert_problem(404);

    // Outside its scopes: 403 naming the scope it lacks. Never the management of service tokens.
    let new_app = json!({"name": "No", "domain": fresh_domain("svc"), "target": {"type": "alb"}});
    let refused = h.call(Method::POST, "/apps", Some(&token), Some(&new_app)).await;
    assert!(refused.assert_problem(403).contains("apps:write"), "{}", refused.text);
    let refused = h.call(Method::DELETE, &format!("/apps/{ours}/users/someone"), Some(&token), None).await;
    assert!(refused.assert_problem(403).contains("users:write"), "{}", refused.text);
    let more = json!({"name": "more", "scopes": ["apps:read"]});
    h.call(Method::POST, "/tenant/service-tokens", Some(&token), Some(&more)).await.assert_problem(403);
    h.call(Method::GET, "/tenant/service-tokens", Some(&token), None).await.assert_problem(403);

    // The admin lists it without its secret; a viewer may not; another tenant's admin sees nothing of it.
    let listed = h.call(Method::GET, "/tenant/service-tokens", Some(&tenant.admin), None).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body["items"][0]["clientId"], client_id.as_str());
    assert!(!listed.text.contains(&secret) && !listed.text.contains("clientSecret"), "{}", listed.text);
    let viewer = h.token_for(&h.operator_email(Some(&tenant.id), Some("viewer")).await, TEST_PASSWORD).await;
    h.call(Method::GET, "/tenant/service-tokens", Some(&viewer), None).await.assert_problem(403);
    let path = format!("/tenant/service-tokens/{client_id}");
    h.call(Method::DELETE, &path, Some(&viewer), None).await.assert_problem(403);
    let theirs_listed = h.call(Method::GET, "/tenant/service-tokens", Some(&other.admin), None).await;
    assert_eq!(theirs_listed.body["items"], json!([]), "{}", theirs_listed.text);
    h.call(Method::DELETE, &path, Some(&other.admin), None).await.assert_problem(404);
    assert_eq!(h.call(Method::GET, "/apps", Some(&token), None).await.status, 200, "still working");

    // Revoked: the API refuses the token it has, and the token endpoint gives it no more.
    let revoked = h.call(Method::DELETE, &path, Some(&tenant.admin), None).await;
    assert_eq!(revoked.status, 204, "{}", revoked.text);
    h.call(Method::GET, "/apps", Some(&token), None).await.assert_problem(401);
    let (status, answer) = h.exchange(&created).await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_client")), "{answer}");
    h.call(Method::DELETE, &path, Some(&tenant.admin), None).await.assert_problem(404);

    // Audited in the tenant's history; the secret is in no log.
    let events = h.call(Method::GET, &format!("/tenants/{}/events", tenant.id), Some(&h.platform().await), None).await;
    assert_eq!(actions(&events)[..2], ["service-token.revoked", "service-token.created"], "{}", events.text);
    assert_eq!(events.body["items"][1]["actor"], h.actor(&tenant.admin_email).await);
    assert!(!events.text.contains(&secret));
    if let Some(log) = h.captured_log() {
        assert!(!log.contains(&secret), "the stack log holds a service token's secret");
    }
}

#[tokio::test]
async fn a_writing_token_creates_apps_and_invites_as_itself_and_an_expired_one_is_refused() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let created = create(&h, &tenant.admin, json!({"name": "deployer", "scopes": ["apps:write", "users:write"]})).await;
    assert!(created.get("expiresAt").is_none(), "{created}");
    let token = h.access_token(&created).await;
    let client_id = created["clientId"].as_str().unwrap();

    // apps:write without apps:read: it creates, but may not read back.
    let target = h.alb_target(&tenant).await;
    let body = json!({"name": "From CI", "domain": fresh_domain("svc"), "target": target});
    let app = h.call(Method::POST, "/apps", Some(&token), Some(&body)).await;
    assert_eq!(app.status, 202, "{}", app.text);
    let id = app.body["id"].as_str().unwrap();
    h.call(Method::GET, &format!("/apps/{id}"), Some(&token), None).await.assert_problem(403);
    let events = h.call(Method::GET, &format!("/apps/{id}/events"), Some(&tenant.admin), None).await;
    let created_by = events.body["items"].as_array().unwrap().iter().find(|e| e["action"] == "app.created").cloned();
    let actor = created_by.expect("an app.created event")["actor"].as_str().unwrap().to_string();
    assert!(actor.starts_with(&format!("service-token:{client_id}")), "{actor}");

    // Past its expiry (set behind the API's back), the API refuses it though Cognito still issues tokens.
    use aws_sdk_dynamodb::types::AttributeValue;
    h.aws
        .dynamodb
        .update_item()
        .table_name(TABLE_NAME)
        .key("pk", AttributeValue::S(format!("SERVICETOKEN#{client_id}")))
        .key("sk", AttributeValue::S("SERVICETOKEN".into()))
        .update_expression("SET expiresAt = :past")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_values(":past", AttributeValue::S("2020-01-01T00:00:00Z".into()))
        .send()
        .await
        .expect("update_item");
    let fresh = h.access_token(&created).await;
    let detail = h.call(Method::POST, "/apps", Some(&fresh), Some(&body)).await.assert_problem(401);
    assert!(detail.contains("expired"), "{detail}");
}

#[tokio::test]
async fn bad_requests_are_problems_and_a_person_token_still_works_as_before() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    for body in [
        json!({"scopes": ["apps:read"]}),
        json!({"name": "x", "scopes": []}),
        json!({"name": "x", "scopes": ["admin"]}),
        json!({"name": "x", "scopes": ["apps:read"], "expiresInDays": 0}),
        json!({"name": "x", "scopes": ["apps:read"], "tenant": "other"}),
    ] {
        h.call(Method::POST, "/tenant/service-tokens", Some(&tenant.admin), Some(&body)).await.assert_problem(400);
    }
    // An operator without a tenant has no service tokens to manage.
    let platform = h.platform().await;
    h.call(Method::GET, "/tenant/service-tokens", Some(&platform), None).await.assert_problem(403);
    assert_eq!(h.call(Method::GET, "/apps", Some(&tenant.admin), None).await.status, 200);

    // A token must not outlive its tenant: the registry refuses to delete a tenant that holds one.
    let created = create(&h, &tenant.admin, json!({"name": "ci", "scopes": ["apps:read"]})).await;
    let path = format!("/tenants/{}", tenant.id);
    let refused = h.call(Method::DELETE, &path, Some(&platform), None).await.assert_problem(409);
    assert!(refused.contains("service tokens"), "{refused}");
    let revoke = format!("/tenant/service-tokens/{}", created["clientId"].as_str().unwrap());
    assert_eq!(h.call(Method::DELETE, &revoke, Some(&tenant.admin), None).await.status, 204);
    assert_eq!(h.call(Method::DELETE, &path, Some(&platform), None).await.status, 204);
}
