//! `Idempotency-Key` end to end: a POST sent again with its key is answered as the first time and does
//! the work once (one app, one user in the app's pool); the key with another request is 422; keys are
//! per tenant; two requests racing with one key do the work once.

use portcullis_e2e::{Harness, Reply, fresh_domain, short_id};
use reqwest::Method;
use serde_json::{Value, json};

/// `POST path` with `Idempotency-Key: key`.
async fn post_with_key(h: &Harness, path: &str, token: &str, key: &str, body: &Value) -> Reply {
    let response = h
        .http
        .post(format!("{}{path}", h.stack.api_url))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("the API answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply { status, headers, text, body }
}

fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply.headers.get(name).and_then(|v| v.to_str().ok())
}

async fn app_ids(h: &Harness, token: &str) -> Vec<String> {
    let listed = h.call(Method::GET, "/apps?limit=100", Some(token), None).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    listed.body["items"].as_array().unwrap().iter().map(|app| app["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn a_create_sent_twice_with_its_key_makes_one_app_and_gets_the_same_answer() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let target = h.alb_target(&tenant).await;
    let body = json!({"name": "Grafana", "domain": fresh_domain("idem"), "target": target});
    let key = format!("create-{}", short_id());

    // A refusal about who asks is not kept: the viewer's 403 leaves the key to the admin's request.
    let viewer = h.operator(Some(&tenant.id), Some("viewer")).await;
    post_with_key(&h, "/apps", &viewer, &key, &body).await.assert_problem(403);

    let first = post_with_key(&h, "/apps", &tenant.admin, &key, &body).await;
    assert_eq!(first.status, 202, "{}", first.text);
    assert_eq!(header(&first, "idempotency-replayed"), None);
    let again = post_with_key(&h, "/apps", &tenant.admin, &key, &body).await;
    assert_eq!(again.status, 202, "{}", again.text);
    let id = first.body["id"].as_str().unwrap();
    assert_eq!(again.body["id"], id);
    assert_eq!(again.text, first.text);
    assert_eq!(header(&again, "location"), Some(format!("/apps/{id}").as_str()));
    assert_eq!(header(&again, "location"), header(&first, "location"));
    assert_eq!(again.content_type(), "application/json");
    assert_eq!(header(&again, "idempotency-replayed"), Some("true"));
    assert_eq!(app_ids(&h, &tenant.admin).await, vec![id.to_string()]);

    // The key with another request is refused and names the key; nothing is created.
    let other = json!({"name": "Other", "domain": fresh_domain("idem"), "target": target});
    let refused = post_with_key(&h, "/apps", &tenant.admin, &key, &other).await;
    assert!(refused.assert_problem(422).contains(&key), "{}", refused.text);
    assert_eq!(app_ids(&h, &tenant.admin).await.len(), 1);

    // A malformed key is 400.
    let long = "k".repeat(256);
    post_with_key(&h, "/apps", &tenant.admin, &long, &other).await.assert_problem(400);

    // Another tenant's key of the same name is its own.
    let neighbour = h.tenant().await;
    let its_target = h.alb_target(&neighbour).await;
    let its_body = json!({"name": "Wiki", "domain": fresh_domain("idem"), "target": its_target});
    let its_own = post_with_key(&h, "/apps", &neighbour.admin, &key, &its_body).await;
    assert_eq!(its_own.status, 202, "{}", its_own.text);
    assert_ne!(its_own.body["id"], id);
    assert_eq!(header(&its_own, "idempotency-replayed"), None);
    assert_eq!(app_ids(&h, &neighbour.admin).await, vec![its_own.body["id"].as_str().unwrap().to_string()]);
}

#[tokio::test]
async fn an_invitation_sent_twice_with_its_key_makes_one_user() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let app = h.active_app(&tenant, "Wiki").await;
    let (id, pool) = (app["id"].as_str().unwrap(), app["auth"]["userPoolId"].as_str().unwrap());
    let users = format!("/apps/{id}/users");
    let email = format!("idem-{}@example.com", short_id());
    let body = json!({"email": email, "name": "Idem"});
    let key = format!("invite-{}", short_id());

    let first = post_with_key(&h, &users, &tenant.admin, &key, &body).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let again = post_with_key(&h, &users, &tenant.admin, &key, &body).await;
    assert_eq!((again.status, again.text.as_str()), (201, first.text.as_str()));
    assert_eq!(header(&again, "idempotency-replayed"), Some("true"));
    assert_eq!(h.users_with_email(pool, &email).await.len(), 1);

    // Without the key the same invitation runs again, and meets the user: 409.
    h.call(Method::POST, &users, Some(&tenant.admin), Some(&body)).await.assert_problem(409);
}

#[tokio::test]
async fn two_requests_racing_with_one_key_do_the_work_once() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let target = h.alb_target(&tenant).await;
    let body = json!({"name": "Race", "domain": fresh_domain("idem"), "target": target});
    let key = format!("race-{}", short_id());

    let (a, b) = tokio::join!(
        post_with_key(&h, "/apps", &tenant.admin, &key, &body),
        post_with_key(&h, "/apps", &tenant.admin, &key, &body),
    );
    let created: Vec<&Reply> = [&a, &b].into_iter().filter(|r| r.status == 202).collect();
    assert!(!created.is_empty(), "one of them creates the app: {} / {}", a.text, b.text);
    for reply in [&a, &b] {
        if reply.status != 202 {
            assert!(reply.assert_problem(409).contains("in progress"), "{}", reply.text);
        }
    }
    let ids: Vec<&Value> = created.iter().map(|r| &r.body["id"]).collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "the same app: {ids:?}");
    assert_eq!(app_ids(&h, &tenant.admin).await.len(), 1);
}
