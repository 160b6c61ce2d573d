//! Who may do what, over every route: a platform operator, a tenant's admin and viewer, another
//! tenant's admin, a caller with no token, tenant A's read-only service token and another tenant's
//! service token with every scope, each against tenant A's app, users, registration and service tokens.
//! Every refusal is problem+json, and after every refused call tenant A's resources are as they were:
//! no cross-tenant read or write.

use portcullis_e2e::{Harness, Reply, TEST_PASSWORD, short_id};
use reqwest::Method;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Platform,
    Admin,
    Viewer,
    OtherAdmin,
    Nobody,
    /// Tenant A's service token with `apps:read` only.
    Reader,
    /// Another tenant's service token with every scope.
    OtherService,
}

const EVERYONE: [Who; 7] =
    [Who::Platform, Who::Admin, Who::Viewer, Who::OtherAdmin, Who::Nobody, Who::Reader, Who::OtherService];

/// One route: how to call it and what each caller gets.
struct Row {
    method: Method,
    path: String,
    body: Option<Value>,
    /// Status by caller, in `EVERYONE`'s order.
    expect: [u16; 7],
}

fn row(method: Method, path: impl Into<String>, body: Option<Value>, expect: [u16; 7]) -> Row {
    Row { method, path: path.into(), body, expect }
}

#[tokio::test]
async fn every_route_answers_each_role_as_the_design_says_with_no_cross_tenant_read_or_write() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let other = h.tenant().await;
    let app = h.active_app(&tenant, "Matrix").await;
    let id = app["id"].as_str().unwrap().to_string();
    let target = app["target"].clone();
    let platform = h.platform().await;
    let viewer = h.token_for(&h.operator_email(Some(&tenant.id), Some("viewer")).await, TEST_PASSWORD).await;
    let (_, reader) = h.service_token(&tenant.admin, &["apps:read"]).await;
    let (_, other_service) = h.service_token(&other.admin, &["apps:read", "apps:write", "users:write"]).await;
    let (spare_token, _) = h.service_token(&tenant.admin, &["apps:read"]).await;
    let token = |who: Who| match who {
        Who::Platform => Some(platform.clone()),
        Who::Admin => Some(tenant.admin.clone()),
        Who::Viewer => Some(viewer.clone()),
        Who::OtherAdmin => Some(other.admin.clone()),
        Who::Nobody => None,
        Who::Reader => Some(reader.clone()),
        Who::OtherService => Some(other_service.clone()),
    };

    // A user of A's app, to be resent and revoked; a spare tenant for the registry's delete.
    let invited =
        h.call(Method::POST, &format!("/apps/{id}/users"), Some(&tenant.admin), Some(&json!({"email": email()}))).await;
    assert_eq!(invited.status, 201, "{}", invited.text);
    let username = invited.body["username"].as_str().unwrap().to_string();
    let spare = format!("t-{}", short_id());
    h.register(&spare, &[]).await;
    let registration = h.call(Method::GET, &format!("/tenants/{}", tenant.id), Some(&platform), None).await.body;
    let reregister = json!({"allowedDomains": registration["allowedDomains"], "targets": registration["targets"]});

    let new_app = json!({"name": "Another", "domain": portcullis_e2e::fresh_domain("matrix"), "target": target});
    let app_path = format!("/apps/{id}");
    let users = format!("/apps/{id}/users");
    let user = format!("/apps/{id}/users/{username}");
    let tenant_path = format!("/tenants/{}", tenant.id);
    let service_tokens = "/tenant/service-tokens";
    let spare_client_id = spare_token["clientId"].as_str().unwrap().to_string();
    let spare_token_path = format!("{service_tokens}/{spare_client_id}");
    let new_token = json!({"name": "matrix", "scopes": ["apps:read"]});
    // Columns: platform, admin, viewer, another tenant's admin, no token, A's read-only service token,
    // another tenant's service token. Writes that succeed for the admin come last, in an order that keeps
    // the next one meaningful.
    let rows = vec![
        row(Method::GET, "/apps", None, [403, 200, 200, 200, 401, 200, 200]),
        row(Method::POST, "/apps/preflight", Some(new_app.clone()), [403, 200, 200, 200, 401, 200, 200]),
        row(Method::GET, app_path.clone(), None, [403, 200, 200, 404, 401, 200, 404]),
        row(Method::GET, format!("{app_path}/events"), None, [403, 200, 200, 404, 401, 200, 404]),
        row(Method::GET, users.clone(), None, [403, 200, 200, 404, 401, 200, 404]),
        row(Method::GET, format!("{users}?invitation=EXPIRED"), None, [403, 200, 200, 404, 401, 200, 404]),
        row(Method::GET, format!("{app_path}/roles"), None, [403, 200, 200, 404, 401, 200, 404]),
        row(Method::GET, format!("{user}/roles"), None, [403, 200, 200, 404, 401, 200, 404]),
        row(Method::GET, "/tenant", None, [403, 200, 200, 200, 401, 403, 403]),
        row(Method::GET, "/tenants", None, [200, 403, 403, 403, 401, 403, 403]),
        row(Method::GET, tenant_path.clone(), None, [200, 403, 403, 403, 401, 403, 403]),
        row(Method::GET, format!("{tenant_path}/events"), None, [200, 403, 403, 403, 401, 403, 403]),
        row(Method::PUT, tenant_path.clone(), Some(reregister), [200, 403, 403, 403, 401, 403, 403]),
        row(Method::DELETE, format!("/tenants/{spare}"), None, [204, 403, 403, 403, 401, 403, 403]),
        row(Method::GET, service_tokens, None, [403, 200, 403, 200, 401, 403, 403]),
        row(Method::POST, service_tokens, Some(new_token), [403, 201, 403, 201, 401, 403, 403]),
        row(Method::DELETE, spare_token_path, None, [403, 204, 403, 404, 401, 403, 403]),
        row(Method::POST, format!("{app_path}/repair"), None, [403, 200, 403, 404, 401, 403, 404]),
        row(Method::PATCH, app_path.clone(), Some(json!({"autoResend": true})), [403, 200, 403, 404, 401, 403, 404]),
        row(Method::POST, "/apps", Some(new_app), [403, 202, 403, 403, 401, 403, 403]),
        row(Method::POST, format!("{user}/resend"), None, [403, 202, 403, 404, 401, 403, 404]),
        row(Method::POST, format!("{users}/resend-expired"), None, [403, 200, 403, 404, 401, 403, 404]),
        row(Method::POST, users.clone(), Some(json!({"email": email()})), [403, 201, 403, 404, 401, 403, 404]),
        row(
            Method::POST,
            format!("{users}/batch"),
            Some(json!({"users": [{"email": email()}]})),
            [403, 200, 403, 404, 401, 403, 404],
        ),
        row(
            Method::POST,
            format!("{app_path}/roles"),
            Some(json!({"name": "editor"})),
            [403, 201, 403, 404, 401, 403, 404],
        ),
        row(
            Method::PUT,
            format!("{user}/roles"),
            Some(json!({"roles": ["editor"]})),
            [403, 200, 403, 404, 401, 403, 404],
        ),
        row(Method::DELETE, format!("{app_path}/roles/editor"), None, [403, 204, 403, 404, 401, 403, 404]),
        row(Method::DELETE, user.clone(), None, [403, 204, 403, 404, 401, 403, 404]),
        row(Method::DELETE, app_path.clone(), None, [403, 202, 403, 404, 401, 403, 404]),
    ];

    let mut table = String::new();
    let mut wrong = Vec::new();
    for route in &rows {
        let before = state_of(&h, &tenant.admin, &id, &username).await;
        table.push_str(&format!(
            "{:<7} {:<58}",
            route.method.as_str(),
            route.path.replace(&id, "{id}").replace(&username, "{username}")
        ));
        // The admin goes last, so every refused caller meets the state before the admin's write.
        for (who, expected) in [3usize, 6, 5, 0, 2, 4, 1].map(|i| (EVERYONE[i], route.expect[i])) {
            let reply = h.call(route.method.clone(), &route.path, token(who).as_deref(), route.body.as_ref()).await;
            table.push_str(&format!(" {who:?}={}", reply.status));
            if reply.status != expected {
                wrong.push(format!(
                    "{} {} as {who:?}: {} (expected {expected}): {}",
                    route.method, route.path, reply.status, reply.text
                ));
            }
            if reply.status >= 400 {
                assert_eq!(
                    reply.content_type(),
                    "application/problem+json",
                    "{} {} as {who:?}",
                    route.method,
                    route.path
                );
            }
            // A refusal may echo the path the caller sent; an answer must not hold A's app or users.
            if matches!(who, Who::OtherAdmin | Who::OtherService) && reply.status < 400 {
                assert_no_leak(&reply, &[&id, &username, &spare_client_id]);
            }
            if who != Who::Admin {
                let after = state_of(&h, &tenant.admin, &id, &username).await;
                assert_eq!(after, before, "{} {} as {who:?} changed tenant A's app", route.method, route.path);
            }
        }
        table.push('\n');
    }
    println!("{table}");
    assert!(wrong.is_empty(), "{}\n{table}", wrong.join("\n"));
}

fn email() -> String {
    format!("matrix-{}@example.com", short_id())
}

/// Another tenant's caller learns nothing of A's: not its app's id, its users, nor its service tokens.
fn assert_no_leak(reply: &Reply, owned_by_a: &[&str]) {
    assert!(!owned_by_a.iter().any(|s| reply.text.contains(s)), "{}", reply.text);
}

/// What a write to A's app would change: its status and a setting, the usernames of its pool, its roles and the roles
/// of the user the matrix works on.
async fn state_of(h: &Harness, admin: &str, app_id: &str, username: &str) -> (Value, Vec<String>, Value, Value) {
    let app = h.call(Method::GET, &format!("/apps/{app_id}"), Some(admin), None).await;
    let users = h.call(Method::GET, &format!("/apps/{app_id}/users"), Some(admin), None).await;
    let mut names: Vec<String> = users.body["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|u| u["username"].as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    names.sort();
    let roles = h.call(Method::GET, &format!("/apps/{app_id}/roles"), Some(admin), None).await;
    let held = h.call(Method::GET, &format!("/apps/{app_id}/users/{username}/roles"), Some(admin), None).await;
    let app_state = json!([app.body["status"], app.body["autoResend"]]);
    (app_state, names, roles.body["items"].clone(), held.body["roles"].clone())
}
