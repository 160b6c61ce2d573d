//! An app's roles end to end: made, listed and deleted through the API as groups of the app's pool,
//! given at invite (alone and in a batch) and later, and read back as an app reads them: from the
//! `cognito:groups` claim of the user's access token (the token the load balancer forwards as
//! `x-amzn-oidc-accesstoken`), checked against the pool's keys, issuer, client and token use.

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use portcullis_e2e::{Harness, TEST_PASSWORD, short_id};
use reqwest::Method;
use serde_json::{Value, json};

/// Signs the app user in through the app's own client and returns the claims of their access token,
/// verified as docs/apps.md tells an app to: the pool's key, its issuer, the app's client, an access token.
async fn access_claims(h: &Harness, app: &Value, email: &str) -> Value {
    let (pool, client) = (app["auth"]["userPoolId"].as_str().unwrap(), app["auth"]["clientId"].as_str().unwrap());
    let cognito = &h.aws.cognito;
    cognito
        .admin_set_user_password()
        .user_pool_id(pool)
        .username(email)
        .password(TEST_PASSWORD)
        .permanent(true)
        .send()
        .await
        .expect("admin_set_user_password");
    let signed_in = h.sign_in(pool, client, email, TEST_PASSWORD).await;
    let token = signed_in.access_token.expect("an access token");

    let jwks_url = format!("{}/{pool}/.well-known/jwks.json", h.stack.aws_endpoint);
    let keys: JwkSet = reqwest::get(jwks_url).await.unwrap().json().await.unwrap();
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid.expect("a key id");
    let key = DecodingKey::from_jwk(keys.find(&kid).expect("the pool's key")).unwrap();
    let region = pool.split('_').next().unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[format!("https://cognito-idp.{region}.amazonaws.com/{pool}")]);
    validation.validate_aud = false; // access tokens carry client_id, not aud
    let claims = jsonwebtoken::decode::<Value>(&token, &key, &validation).expect("a valid access token").claims;
    assert_eq!(claims["client_id"], client, "{claims}");
    assert_eq!(claims["token_use"], "access", "{claims}");
    claims
}

fn groups(claims: &Value) -> Vec<&str> {
    let mut groups: Vec<&str> = match claims.get("cognito:groups") {
        Some(list) => list.as_array().unwrap().iter().map(|g| g.as_str().unwrap()).collect(),
        None => vec![],
    };
    groups.sort();
    groups
}

async fn pool_groups(h: &Harness, pool: &str) -> Vec<String> {
    let listed = h.aws.cognito.list_groups().user_pool_id(pool).send().await.expect("list_groups");
    let mut names: Vec<String> = listed.groups().iter().filter_map(|g| g.group_name().map(str::to_string)).collect();
    names.sort();
    names
}

#[tokio::test]
async fn roles_are_given_at_invite_and_later_and_reach_the_app_in_the_signed_access_token() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let admin = tenant.admin.clone();
    let app = h.active_app_with(&tenant, "Roles", json!({})).await;
    let (id, pool) = (app["id"].as_str().unwrap(), app["auth"]["userPoolId"].as_str().unwrap());
    let (roles, users) = (format!("/apps/{id}/roles"), format!("/apps/{id}/users"));

    // Roles: made once each, with one spelling, as groups of the app's pool.
    for (name, description) in [("editor", Some("Edits pages")), ("viewer", None)] {
        let mut body = json!({"name": name});
        if let Some(text) = description {
            body["description"] = json!(text);
        }
        let reply = h.call(Method::POST, &roles, Some(&admin), Some(&body)).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        assert_eq!(reply.body["name"], name);
    }
    let again = h.call(Method::POST, &roles, Some(&admin), Some(&json!({"name": "editor"}))).await;
    assert!(again.assert_problem(409).contains("'editor'"), "{}", again.text);
    let capital = h.call(Method::POST, &roles, Some(&admin), Some(&json!({"name": "Editor"}))).await;
    assert!(capital.assert_problem(400).contains("lower-case"), "{}", capital.text);
    let listed = h.all_pages(&roles, &admin).await;
    let names: Vec<&str> = listed.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["editor", "viewer"], "{listed:?}");
    assert_eq!(listed[0]["description"], "Edits pages");
    assert_eq!(pool_groups(&h, pool).await, ["editor", "viewer"]);

    // At invite: the roles are given; a role the app does not have makes nobody.
    let ann = format!("ann-{}@example.com", short_id());
    let reply = h.call(Method::POST, &users, Some(&admin), Some(&json!({"email": ann, "roles": ["editor"]}))).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let username = reply.body["username"].as_str().unwrap().to_string();
    let held = h.call(Method::GET, &format!("{users}/{username}/roles"), Some(&admin), None).await;
    assert_eq!(held.body, json!({"username": username, "roles": ["editor"]}), "{}", held.text);
    let nobody = format!("nobody-{}@example.com", short_id());
    let reply = h.call(Method::POST, &users, Some(&admin), Some(&json!({"email": nobody, "roles": ["owner"]}))).await;
    assert!(reply.assert_problem(422).contains("'owner'"), "{}", reply.text);
    assert!(h.users_with_email(pool, &nobody).await.is_empty(), "no user made");

    // In a batch: an entry naming a role the app lacks is invalid; the others go ahead with theirs.
    let (bea, cal) = (format!("bea-{}@example.com", short_id()), format!("cal-{}@example.com", short_id()));
    let batch = json!({"users": [{"email": bea, "roles": ["viewer"]}, {"email": cal, "roles": ["viewer", "nobody"]}]});
    let reply = h.call(Method::POST, &format!("{users}/batch"), Some(&admin), Some(&batch)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["results"][0]["outcome"], "invited", "{}", reply.text);
    assert_eq!(reply.body["results"][1]["outcome"], "invalid", "{}", reply.text);
    assert!(reply.body["results"][1]["detail"].as_str().unwrap().contains("'nobody'"), "{}", reply.text);
    assert!(h.users_with_email(pool, &cal).await.is_empty(), "no user made for the invalid entry");
    let bea_user = h.users_with_email(pool, &bea).await.remove(0);
    let bea_groups = h.aws.cognito.admin_list_groups_for_user().user_pool_id(pool);
    let bea_groups = bea_groups.username(bea_user.username().unwrap()).send().await.unwrap();
    assert_eq!(bea_groups.groups().iter().filter_map(|g| g.group_name()).collect::<Vec<_>>(), ["viewer"]);

    // The app reads them from the access token the load balancer forwards.
    assert_eq!(groups(&access_claims(&h, &app, &ann).await), ["editor"]);

    // Later: exactly the roles named; an unknown one changes nothing.
    let user_roles = format!("{users}/{username}/roles");
    let reply = h.call(Method::PUT, &user_roles, Some(&admin), Some(&json!({"roles": ["viewer", "owner"]}))).await;
    assert!(reply.assert_problem(422).contains("'owner'"), "{}", reply.text);
    let reply = h.call(Method::PUT, &user_roles, Some(&admin), Some(&json!({"roles": ["viewer"]}))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["roles"], json!(["viewer"]));
    assert_eq!(groups(&access_claims(&h, &app, &ann).await), ["viewer"]);
    let reply = h.call(Method::PUT, &user_roles, Some(&admin), Some(&json!({"roles": "viewer"}))).await;
    reply.assert_problem(400);

    // Deleting a role takes it from everyone who held it.
    let reply = h.call(Method::DELETE, &format!("{roles}/viewer"), Some(&admin), None).await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    assert_eq!(pool_groups(&h, pool).await, ["editor"]);
    let held = h.call(Method::GET, &user_roles, Some(&admin), None).await;
    assert_eq!(held.body["roles"], json!([]), "{}", held.text);
    assert!(groups(&access_claims(&h, &app, &ann).await).is_empty());
    let reply = h.call(Method::DELETE, &format!("{roles}/viewer"), Some(&admin), None).await;
    assert!(reply.assert_problem(404).contains("'viewer'"), "{}", reply.text);

    // Each change is in the app's history.
    let events = h.all_pages(&format!("/apps/{id}/events"), &admin).await;
    let details = |action: &str| -> Vec<String> {
        events.iter().filter(|e| e["action"] == action).map(|e| e["detail"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(details("role.created").len(), 2, "{events:?}");
    assert_eq!(details("role.deleted").len(), 1, "{events:?}");
    assert_eq!(details("user.roles-changed"), [format!("{username}: roles viewer (were editor)")], "{events:?}");
}
