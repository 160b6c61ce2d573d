//! The tenant registry end to end: platform operators register, read, list and delete tenants through
//! the real tenants-api; grants are exclusive; every change is in the tenant's history; no other role
//! reaches it.

use portcullis_e2e::{Harness, short_id};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn operators_run_the_registry_with_a_history() {
    let h = Harness::new().await;
    let platform = h.platform().await;
    let id = format!("t-{}", short_id());
    let path = format!("/tenants/{id}");
    let group = h.target_group("grant", false).await;
    let target = json!({"id": "web", "type": "alb", "listenerArn": h.stack.listener_arn, "targetGroupArn": group});
    let body =
        json!({"displayName": "Acme", "allowedDomains": ["*.acme.test"], "targets": [target], "quotas": {"apps": 5}});

    let registered = h.call(Method::PUT, &path, Some(&platform), Some(&body)).await;
    assert_eq!(registered.status, 200, "{}", registered.text);
    assert_eq!(registered.body["id"], id.as_str());
    assert_eq!(registered.body["targets"][0]["targetGroupArn"], group.as_str());
    assert_eq!(registered.body["quotas"]["apps"], 5);
    let read = h.call(Method::GET, &path, Some(&platform), None).await;
    assert_eq!(read.body, registered.body);
    // Every earlier test file registered tenants too: the new one may be on any page.
    let listed = h.all_pages("/tenants", &platform).await;
    assert!(listed.iter().any(|t| t["id"] == id.as_str()), "{id} not among {} tenants", listed.len());

    // The tenant's own callers read it at /tenant; another tenant's target group cannot be granted.
    let admin = h.operator(Some(&id), Some("admin")).await;
    let own = h.call(Method::GET, "/tenant", Some(&admin), None).await;
    assert_eq!(own.body["allowedDomains"], json!(["*.acme.test"]), "{}", own.text);
    let other = format!("/tenants/t-{}", short_id());
    let grabbed = json!({"allowedDomains": [], "targets": [target]});
    assert!(h.call(Method::PUT, &other, Some(&platform), Some(&grabbed)).await.assert_problem(409).contains("web"));

    // Bad registrations are 400 and say why.
    let bad = json!({"allowedDomains": ["*"], "targets": []});
    assert!(
        h.call(Method::PUT, &path, Some(&platform), Some(&bad)).await.assert_problem(400).contains("allowedDomains")
    );
    h.call(Method::PUT, "/tenants/Not_An_Id", Some(&platform), Some(&body)).await.assert_problem(400);

    // Delete frees the grant: another tenant may now have the target group.
    assert_eq!(h.call(Method::DELETE, &path, Some(&platform), None).await.status, 204);
    h.call(Method::GET, &path, Some(&platform), None).await.assert_problem(404);
    assert_eq!(h.call(Method::PUT, &other, Some(&platform), Some(&grabbed)).await.status, 200);

    let events = h.call(Method::GET, &format!("{path}/events"), Some(&platform), None).await;
    let actions: Vec<&str> =
        events.body["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["tenant.deleted", "tenant.registered"], "{}", events.text);
    assert!(events.body["items"][0]["actor"].as_str().unwrap().contains("@tests.test"), "{}", events.text);
}

#[tokio::test]
async fn only_platform_operators_reach_the_registry() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let viewer = h.operator(Some(&tenant.id), Some("viewer")).await;
    let path = format!("/tenants/{}", tenant.id);
    let body = json!({"allowedDomains": ["*.demo.test"], "targets": []});
    for token in [Some(tenant.admin.as_str()), Some(viewer.as_str()), None] {
        for (method, route) in [
            (Method::PUT, path.clone()),
            (Method::GET, path.clone()),
            (Method::GET, "/tenants".to_string()),
            (Method::DELETE, path.clone()),
            (Method::GET, format!("{path}/events")),
        ] {
            let reply = h.call(method.clone(), &route, token, Some(&body)).await;
            reply.assert_problem(if token.is_some() { 403 } else { 401 });
        }
    }
    // A platform operator has no tenant of their own, so no apps.
    let platform = h.platform().await;
    h.call(Method::GET, "/tenant", Some(&platform), None).await.assert_problem(403);
    h.call(Method::GET, "/apps", Some(&platform), None).await.assert_problem(403);
    // The tenant still exists and is unchanged.
    let read = h.call(Method::GET, &path, Some(&platform), None).await;
    assert_eq!(read.status, 200, "{}", read.text);
}

#[tokio::test]
async fn a_tenant_with_live_apps_cannot_be_deleted() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let target =
        h.grant(&tenant, json!({"type": "elasticbeanstalk", "environmentName": format!("none-{}", short_id())})).await;
    let app = json!({"name": "Live", "domain": portcullis_e2e::fresh_domain("live"), "target": target});
    let created = h.call(Method::POST, "/apps", Some(&tenant.admin), Some(&app)).await;
    assert_eq!(created.status, 202, "{}", created.text);
    let path = format!("/tenants/{}", tenant.id);
    let detail = h.call(Method::DELETE, &path, Some(&h.platform().await), None).await.assert_problem(409);
    assert!(detail.contains("not DELETED"), "{detail}");
}
