//! Invitations end to end: users-api → Cognito (the app's own pool), with the audit trail, asserted on
//! the API and on Cognito's state.

use aws_sdk_cognitoidentityprovider::types::UserType;
use portcullis_e2e::{Harness, fresh_domain, short_id, urlencode};
use reqwest::Method;
use serde_json::{Value, json};

fn attribute<'a>(user: &'a UserType, name: &str) -> Option<&'a str> {
    user.attributes().iter().find(|a| a.name() == name).and_then(|a| a.value())
}

#[tokio::test]
async fn admins_invite_resend_list_and_revoke_with_an_audit_trail() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let admin = tenant.admin.clone();
    let actor = h.actor(&tenant.admin_email).await;
    let viewer = h.operator(Some(&tenant.id), Some("viewer")).await;
    let app = h.active_app(&tenant, "Wiki").await;
    let id = app["id"].as_str().unwrap();
    let pool = app["auth"]["userPoolId"].as_str().unwrap();
    assert_eq!(app["auth"]["emailSending"], "COGNITO_DEFAULT");
    let users = format!("/apps/{id}/users");
    let mut answers: Vec<String> = vec![];

    // Viewers may not invite.
    let alice = format!("alice-{}@example.com", short_id());
    h.call(Method::POST, &users, Some(&viewer), Some(&json!({"email": alice}))).await.assert_problem(403);

    // Invite: 201, and Cognito has the user, email verified, waiting for the first sign-in.
    let invited = h.call(Method::POST, &users, Some(&admin), Some(&json!({"email": alice, "name": "Alice"}))).await;
    assert_eq!(invited.status, 201, "{}", invited.text);
    answers.push(invited.text.clone());
    let username = invited.body["username"].as_str().unwrap().to_string();
    assert_eq!(invited.body["email"], alice);
    assert_eq!(invited.body["status"], "FORCE_CHANGE_PASSWORD");
    assert_eq!(invited.body["invitedBy"], actor);
    assert!(invited.body["invitedAt"].is_string());
    let user = h.aws.cognito.admin_get_user().user_pool_id(pool).username(&username).send().await.unwrap();
    assert_eq!(user.user_status().unwrap().as_str(), "FORCE_CHANGE_PASSWORD");
    let found = h.users_with_email(pool, &alice).await;
    assert_eq!(found.len(), 1);
    assert_eq!(attribute(&found[0], "email_verified"), Some("true"));
    assert_eq!(attribute(&found[0], "name"), Some("Alice"));
    let sub = attribute(&found[0], "sub").unwrap().to_string();
    let first_password = h.emulator_password(pool, &username).await.expect("the emulator knows the temporary password");

    // The same address again (any case) is 409; a bad one 400.
    let again = h.call(Method::POST, &users, Some(&admin), Some(&json!({"email": alice.to_uppercase()}))).await;
    again.assert_problem(409);
    for bad in [json!({"email": "not-an-email"}), json!({"name": "No email"}), json!({"email": "a@b"})] {
        let reply = h.call(Method::POST, &users, Some(&admin), Some(&bad)).await;
        assert!(reply.assert_problem(400).contains("email"), "{}", reply.text);
    }

    // Resend: 202, still one user with the same sub and attributes, a new temporary password.
    let resent = h.call(Method::POST, &format!("{users}/{username}/resend"), Some(&admin), None).await;
    assert_eq!(resent.status, 202, "{}", resent.text);
    answers.push(resent.text.clone());
    let after = h.users_with_email(pool, &alice).await;
    assert_eq!(after.len(), 1, "resend keeps one user");
    assert_eq!(after[0].username(), Some(username.as_str()));
    assert_eq!(attribute(&after[0], "sub"), Some(sub.as_str()));
    let mut before_attrs: Vec<_> =
        found[0].attributes().iter().map(|a| (a.name().to_string(), a.value().map(str::to_string))).collect();
    let mut after_attrs: Vec<_> =
        after[0].attributes().iter().map(|a| (a.name().to_string(), a.value().map(str::to_string))).collect();
    before_attrs.sort();
    after_attrs.sort();
    assert_eq!(before_attrs, after_attrs);
    assert_eq!(after[0].user_status().unwrap().as_str(), "FORCE_CHANGE_PASSWORD");
    let second_password = h.emulator_password(pool, &username).await.unwrap();
    assert_ne!(first_password, second_password, "a resend issues a new temporary password");
    h.call(Method::POST, &format!("{users}/{}/resend", uuid_like()), Some(&admin), None).await.assert_problem(404);

    // A user who has signed in has nothing to resend.
    let bob = format!("bob-{}@example.com", short_id());
    let bob_reply = h.call(Method::POST, &users, Some(&admin), Some(&json!({"email": bob}))).await;
    assert_eq!(bob_reply.status, 201, "{}", bob_reply.text);
    answers.push(bob_reply.text.clone());
    let bob_name = bob_reply.body["username"].as_str().unwrap().to_string();
    h.aws
        .cognito
        .admin_set_user_password()
        .user_pool_id(pool)
        .username(&bob_name)
        .password("Bob-chose-1!")
        .permanent(true)
        .send()
        .await
        .unwrap();
    let reply = h.call(Method::POST, &format!("{users}/{bob_name}/resend"), Some(&admin), None).await;
    assert!(reply.assert_problem(409).contains("signed in"));

    // List: both users with their invitation records; pages of one.
    let listed = h.call(Method::GET, &users, Some(&viewer), None).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    answers.push(listed.text.clone());
    let items = listed.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", listed.text);
    let alice_item = items.iter().find(|u| u["username"] == username.as_str()).unwrap();
    assert_eq!(alice_item["email"], alice);
    assert_eq!(alice_item["name"], "Alice");
    assert_eq!(alice_item["status"], "FORCE_CHANGE_PASSWORD");
    assert_eq!(alice_item["enabled"], true);
    assert_eq!(alice_item["invitedBy"], actor);
    assert_eq!(alice_item["invitedAt"], invited.body["invitedAt"]);
    let bob_item = items.iter().find(|u| u["username"] == bob_name.as_str()).unwrap();
    assert_eq!(bob_item["status"], "CONFIRMED");
    let page1 = h.call(Method::GET, &format!("{users}?limit=1"), Some(&admin), None).await;
    let next = page1.body["nextToken"].as_str().expect("a second page").to_string();
    let page2 =
        h.call(Method::GET, &format!("{users}?limit=1&nextToken={}", urlencode(&next)), Some(&admin), None).await;
    assert_eq!(page2.status, 200, "{}", page2.text);
    assert_ne!(page1.body["items"][0]["username"], page2.body["items"][0]["username"]);
    // Page tokens are sealed by Portcullis: a forged, altered or another listing's token is the caller's
    // 400, never Cognito's error (a 5xx) nor another page.
    let altered = format!("{}{}", &next[..next.len() - 2], if next.ends_with("AA") { "AB" } else { "AA" });
    for (listing, token) in [(&users, "garbage".to_string()), (&users, altered), (&format!("/apps/{id}/events"), next)]
    {
        let reply = h
            .call(Method::GET, &format!("{listing}?limit=1&nextToken={}", urlencode(&token)), Some(&admin), None)
            .await;
        assert!(reply.assert_problem(400).contains("nextToken"), "{listing} {token}");
    }

    // Revoke: 204, gone from Cognito, gone from the list; a second revoke is 404.
    h.call(Method::DELETE, &format!("{users}/{username}"), Some(&viewer), None).await.assert_problem(403);
    let revoked = h.call(Method::DELETE, &format!("{users}/{username}"), Some(&admin), None).await;
    assert_eq!(revoked.status, 204, "{}", revoked.text);
    let gone = h.aws.cognito.admin_get_user().user_pool_id(pool).username(&username).send().await;
    assert!(gone.is_err(), "the user no longer exists in the app's pool");
    assert!(h.users_with_email(pool, &alice).await.is_empty());
    let listed = h.call(Method::GET, &users, Some(&admin), None).await;
    assert!(!listed.text.contains(&username));
    h.call(Method::DELETE, &format!("{users}/{username}"), Some(&admin), None).await.assert_problem(404);

    // The audit trail: newest first, the caller as actor for what callers did, portcullis for the workflow.
    let events = h.call(Method::GET, &format!("/apps/{id}/events?limit=100"), Some(&viewer), None).await;
    assert_eq!(events.status, 200, "{}", events.text);
    answers.push(events.text.clone());
    let items = events.body["items"].as_array().unwrap();
    let times: Vec<&str> = items.iter().map(|e| e["at"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");
    let actions: Vec<(&str, &str)> =
        items.iter().map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap())).collect();
    assert_eq!(actions[0], ("user.revoked", actor.as_str()));
    // A revocation says how long a session the load balancer already holds may last.
    let revoked = items[0]["detail"].as_str().unwrap();
    assert!(revoked.contains(&format!("session timeout ({} s)", app["sessionTimeoutSeconds"])), "{revoked}");
    // Where an event about `subject` (a user name or email; "" for any) stands in the trail.
    let position = |action: &str, subject: &str| {
        items
            .iter()
            .position(|e| e["action"] == action && e["detail"].as_str().unwrap().contains(subject))
            .unwrap_or_else(|| panic!("{action} about '{subject}' in {actions:?}"))
    };
    let alice_story = [
        ("user.revoked", username.as_str()),
        ("user.invitation-resent", username.as_str()),
        ("user.invited", alice.as_str()),
        ("app.active", ""),
        ("listener.wired", ""),
        ("auth.created", ""),
        ("environment.ready", ""),
        ("certificate.issued", ""),
        ("certificate.requested", ""),
        ("app.created", ""),
    ];
    for pair in alice_story.windows(2) {
        assert!(position(pair[0].0, pair[0].1) < position(pair[1].0, pair[1].1), "{:?} before {:?}", pair[0], pair[1]);
    }
    assert_eq!(actions.last().unwrap(), &("app.created", actor.as_str()));
    let actor_name = actor.clone();
    for (action, actor) in &actions {
        let by_caller = action.starts_with("user.") || *action == "app.created";
        assert_eq!(*actor, if by_caller { actor_name.as_str() } else { "portcullis" }, "{action}");
    }
    let page = h.call(Method::GET, &format!("/apps/{id}/events?limit=2"), Some(&admin), None).await;
    assert_eq!(page.body["items"].as_array().unwrap().len(), 2);
    let next = page.body["nextToken"].as_str().unwrap();
    let rest = h.call(Method::GET, &format!("/apps/{id}/events?limit=2&nextToken={next}"), Some(&admin), None).await;
    assert_eq!(rest.body["items"][0]["action"], items[2]["action"]);

    // No temporary password or client secret in any answer or in the functions' logs.
    let client = h
        .aws
        .cognito
        .describe_user_pool_client()
        .user_pool_id(pool)
        .client_id(app["auth"]["clientId"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let secret = client.user_pool_client().unwrap().client_secret().unwrap().to_string();
    let log = h.captured_log().expect("make test captures the stack's log");
    assert!(log.contains("user.") || log.contains(id), "the captured log is the stack's log");
    for needle in [&first_password, &second_password, &secret] {
        for answer in &answers {
            assert!(!answer.contains(needle.as_str()), "an answer leaks a secret: {answer}");
        }
        assert!(!log.contains(needle.as_str()), "the log leaks a secret");
    }
}

fn uuid_like() -> String {
    format!("{}-0000-4000-8000-000000000000", short_id())
}

#[tokio::test]
async fn a_batch_invites_each_address_on_its_own() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let admin = tenant.admin.clone();
    let app = h.active_app(&tenant, "Batch").await;
    let id = app["id"].as_str().unwrap();
    let pool = app["auth"]["userPoolId"].as_str().unwrap();
    let batch = format!("/apps/{id}/users/batch");
    let existing = format!("dup-{}@example.com", short_id());
    let first =
        h.call(Method::POST, &format!("/apps/{id}/users"), Some(&admin), Some(&json!({"email": existing}))).await;
    assert_eq!(first.status, 201, "{}", first.text);

    let (one, two) = (format!("one-{}@example.com", short_id()), format!("two-{}@example.com", short_id()));
    let body = json!({"users": [
        {"email": one, "name": "One"},
        {"email": existing},
        {"email": "not an address"},
        {"email": two},
        {"email": one.to_uppercase()},
        {"name": "Nobody"},
    ]});
    let reply = h.call(Method::POST, &batch, Some(&admin), Some(&body)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let outcomes: Vec<(&str, &str)> = reply.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["email"].as_str().unwrap(), r["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (one.as_str(), "invited"),
            (existing.as_str(), "exists"),
            ("not an address", "invalid"),
            (two.as_str(), "invited"),
            (one.as_str(), "exists"),
            ("", "invalid"),
        ]
    );
    assert!(reply.body["results"][2]["detail"].as_str().unwrap().contains("not a valid address"));
    for email in [&one, &two, &existing] {
        assert_eq!(h.users_with_email(pool, email).await.len(), 1, "{email}");
    }
    assert!(h.users_with_email(pool, "not an address").await.is_empty());

    for bad in [json!({"users": []}), json!({"users": vec![json!({"email": "x@example.com"}); 101]}), json!([1])] {
        h.call(Method::POST, &batch, Some(&admin), Some(&bad)).await.assert_problem(400);
    }
}

#[tokio::test]
async fn user_operations_are_scoped_to_the_callers_active_apps() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let admin = tenant.admin.clone();
    let stranger = h.tenant().await.admin;
    let app = h.active_app(&tenant, "Scoped").await;
    let id = app["id"].as_str().unwrap();
    let body = json!({"email": format!("x-{}@example.com", short_id())});

    // Another tenant's app, or no app at all: 404 for every operation.
    for (method, path) in [
        (Method::POST, format!("/apps/{id}/users")),
        (Method::GET, format!("/apps/{id}/users")),
        (Method::POST, format!("/apps/{id}/users/batch")),
        (Method::POST, format!("/apps/{id}/users/someone/resend")),
        (Method::DELETE, format!("/apps/{id}/users/someone")),
        (Method::GET, format!("/apps/{id}/events")),
        (Method::POST, format!("/apps/{}/users", uuid_like())),
    ] {
        let reply = h.call(method.clone(), &path, Some(&stranger), Some(&json!({"users": [body]}))).await;
        reply.assert_problem(404);
    }
    h.call(Method::GET, &format!("/apps/{id}/users"), None, None).await.assert_problem(401);

    // An app that is not ACTIVE takes no invitations.
    let failed_target = json!({"type": "elasticbeanstalk", "environmentName": format!("none-{}", short_id())});
    let failed_target = h.grant(&tenant, failed_target).await;
    let doomed = h
        .call(
            Method::POST,
            "/apps",
            Some(&admin),
            Some(&json!({"name": "Doomed", "domain": fresh_domain("d"), "target": failed_target})),
        )
        .await;
    let doomed_id = doomed.body["id"].as_str().unwrap();
    let reply = h.call(Method::POST, &format!("/apps/{doomed_id}/users"), Some(&admin), Some(&body)).await;
    assert!(reply.assert_problem(409).contains("ACTIVE"));
    h.app_until(&admin, doomed_id, "FAILED", |a| a["status"] == "FAILED").await;
    let reply = h.call(Method::POST, &format!("/apps/{doomed_id}/users"), Some(&admin), Some(&body)).await;
    assert!(reply.assert_problem(409).contains("FAILED"));
    let listed = h.call(Method::GET, &format!("/apps/{doomed_id}/users"), Some(&admin), None).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["items"], json!([]));
}

#[tokio::test]
async fn a_tenant_with_an_ses_identity_gets_pools_that_send_through_ses() {
    let h = Harness::new().await;
    let tenant = format!("ses-{}", short_id());
    let source_arn = "arn:aws:ses:us-east-1:123456789012:identity/example.com";
    let item = |pairs: &[(&str, &str)]| -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
        pairs.iter().map(|(k, v)| (k.to_string(), aws_sdk_dynamodb::types::AttributeValue::S(v.to_string()))).collect()
    };
    h.aws
        .dynamodb
        .put_item()
        .table_name("portcullis")
        .set_item(Some(item(&[
            ("pk", &format!("TENANT#{tenant}")),
            ("sk", "META"),
            ("sesSourceArn", source_arn),
            ("sesFrom", "Portcullis <no-reply@example.com>"),
        ])))
        .send()
        .await
        .unwrap();
    // Registering the tenant keeps the hand-written identity working.
    let registered = h.tenant_with_id(&tenant).await;
    let app: Value = h.active_app(&registered, "Mailer").await;
    assert_eq!(app["auth"]["emailSending"], "SES", "{app}");
    let pool = h
        .aws
        .cognito
        .describe_user_pool()
        .user_pool_id(app["auth"]["userPoolId"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let email = pool.user_pool().unwrap().email_configuration().unwrap();
    assert_eq!(email.email_sending_account().unwrap().as_str(), "DEVELOPER");
    assert_eq!(email.source_arn(), Some(source_arn));
    assert_eq!(email.from(), Some("Portcullis <no-reply@example.com>"));
}
