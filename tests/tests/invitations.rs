//! Invitation state end to end: each user's invitation (PENDING, ACCEPTED, EXPIRED, with when it was
//! sent and when it expires), the `?invitation=` filter, `POST /apps/{id}/users/resend-expired`, and the
//! scheduled reminder of apps with `autoResend` (the provisioner, invoked as its schedule does), asserted
//! on the API, on the app's history and on Cognito's temporary passwords.
//!
//! The emulator never expires a temporary password and a test cannot wait a week: an invitation is made
//! old by moving its recorded sending back (`Harness::backdate_invitation`).

use portcullis_e2e::{Harness, short_id};
use reqwest::Method;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

fn at(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(value.as_str().unwrap_or_else(|| panic!("a time, not {value}")), &Rfc3339).unwrap()
}

/// Invites `label-…@example.com` and returns (username, email).
async fn invite(h: &Harness, admin: &str, app_id: &str, label: &str) -> (String, String) {
    let email = format!("{label}-{}@example.com", short_id());
    let reply =
        h.call(Method::POST, &format!("/apps/{app_id}/users"), Some(admin), Some(&json!({"email": email}))).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    (reply.body["username"].as_str().unwrap().to_string(), email)
}

/// The app's users by username, as `GET /apps/{id}/users[?invitation=…]` lists them (every page).
async fn listed(h: &Harness, token: &str, app_id: &str, filter: Option<&str>) -> Vec<Value> {
    let path = match filter {
        Some(state) => format!("/apps/{app_id}/users?invitation={state}"),
        None => format!("/apps/{app_id}/users"),
    };
    h.all_pages(&path, token).await
}

async fn user(h: &Harness, token: &str, app_id: &str, username: &str) -> Value {
    let users = listed(h, token, app_id, None).await;
    users.into_iter().find(|u| u["username"] == username).unwrap_or_else(|| panic!("{username} is listed"))
}

fn usernames(users: &[Value]) -> Vec<&str> {
    let mut names: Vec<&str> = users.iter().filter_map(|u| u["username"].as_str()).collect();
    names.sort();
    names
}

async fn events(h: &Harness, token: &str, app_id: &str) -> Vec<Value> {
    h.all_pages(&format!("/apps/{app_id}/events"), token).await
}

#[tokio::test]
async fn each_user_shows_where_their_invitation_stands_and_expired_ones_are_sent_again() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let admin = tenant.admin.clone();
    let viewer = h.operator(Some(&tenant.id), Some("viewer")).await;
    let app = h.active_app_with(&tenant, "Invitations", json!({})).await;
    let id = app["id"].as_str().unwrap();
    let pool = app["auth"]["userPoolId"].as_str().unwrap();
    assert_eq!(app["autoResend"], false, "off unless asked for");

    // A new invitation is PENDING for the pool's 7 days.
    let (alice, alice_email) = invite(&h, &admin, id, "alice").await;
    let (bob, _) = invite(&h, &admin, id, "bob").await;
    let (carol, _) = invite(&h, &admin, id, "carol").await;
    let shown = user(&h, &viewer, id, &alice).await;
    let invitation = &shown["invitation"];
    assert_eq!(invitation["status"], "PENDING", "{shown}");
    assert_eq!(at(&invitation["expiresAt"]) - at(&invitation["sentAt"]), Duration::days(7), "{shown}");
    assert_eq!(invitation["sentAt"], shown["invitedAt"], "{shown}");
    assert_eq!(invitation["autoResends"], 0);

    // Carol signs in and chooses a password: ACCEPTED, nothing left to expire.
    h.aws
        .cognito
        .admin_set_user_password()
        .user_pool_id(pool)
        .username(&carol)
        .password("Carol-chose-1!")
        .permanent(true)
        .send()
        .await
        .unwrap();
    let accepted = user(&h, &viewer, id, &carol).await;
    assert_eq!(accepted["invitation"]["status"], "ACCEPTED", "{accepted}");
    assert!(accepted["invitation"].get("expiresAt").is_none(), "{accepted}");

    // Alice's invitation was sent 8 days ago: EXPIRED, and each filter lists its own.
    h.backdate_invitation(id, &alice, Duration::days(8)).await;
    let expired = listed(&h, &viewer, id, Some("EXPIRED")).await;
    assert_eq!(usernames(&expired), [alice.as_str()], "{expired:?}");
    assert_eq!(expired[0]["invitation"]["status"], "EXPIRED");
    assert!(at(&expired[0]["invitation"]["expiresAt"]) < OffsetDateTime::now_utc());
    assert_eq!(usernames(&listed(&h, &viewer, id, Some("PENDING")).await), [bob.as_str()]);
    assert_eq!(usernames(&listed(&h, &viewer, id, Some("ACCEPTED")).await), [carol.as_str()]);
    let reply = h.call(Method::GET, &format!("/apps/{id}/users?invitation=expired"), Some(&viewer), None).await;
    assert!(reply.assert_problem(400).contains("PENDING, ACCEPTED or EXPIRED"), "{}", reply.text);

    // A filtered listing pages: one user per page, every pending and expired one once.
    let mut seen = vec![];
    let mut next: Option<String> = None;
    loop {
        let path = match &next {
            None => format!("/apps/{id}/users?invitation=PENDING&limit=1"),
            Some(t) => {
                format!("/apps/{id}/users?invitation=PENDING&limit=1&nextToken={}", portcullis_e2e::urlencode(t))
            }
        };
        let page = h.call(Method::GET, &path, Some(&viewer), None).await;
        assert_eq!(page.status, 200, "{}", page.text);
        seen.extend(page.body["items"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap().to_string()));
        match page.body["nextToken"].as_str() {
            Some(t) => next = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, std::slice::from_ref(&bob), "only bob is pending, over however many pages");
    // A token of one listing is no good for another.
    let first = h.call(Method::GET, &format!("/apps/{id}/users?limit=1"), Some(&viewer), None).await;
    let token = first.body["nextToken"].as_str().expect("three users, pages of one");
    let path = format!("/apps/{id}/users?invitation=EXPIRED&nextToken={}", portcullis_e2e::urlencode(token));
    h.call(Method::GET, &path, Some(&viewer), None).await.assert_problem(400);

    // Only the app's admins resend, and only their own tenant's.
    let resend_expired = format!("/apps/{id}/users/resend-expired");
    h.call(Method::POST, &resend_expired, Some(&viewer), None).await.assert_problem(403);
    let stranger = h.tenant().await;
    h.call(Method::POST, &resend_expired, Some(&stranger.admin), None).await.assert_problem(404);
    h.call(Method::POST, &resend_expired, None, None).await.assert_problem(401);

    // Resend the expired: Alice alone, with a new temporary password and a fresh 7 days.
    let old_password = h.emulator_password(pool, &alice).await.unwrap();
    let bob_password = h.emulator_password(pool, &bob).await.unwrap();
    let reply = h.call(Method::POST, &resend_expired, Some(&admin), None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["results"], json!([{"username": alice, "email": alice_email, "outcome": "resent"}]));
    assert_ne!(h.emulator_password(pool, &alice).await.unwrap(), old_password, "a new temporary password");
    assert_eq!(h.emulator_password(pool, &bob).await.unwrap(), bob_password, "pending ones are left alone");
    let resent = user(&h, &viewer, id, &alice).await;
    assert_eq!(resent["invitation"]["status"], "PENDING", "{resent}");
    assert!(OffsetDateTime::now_utc() - at(&resent["invitation"]["sentAt"]) < Duration::minutes(5), "{resent}");
    let history = events(&h, &viewer, id).await;
    let noted = history.iter().find(|e| e["action"] == "user.invitation-resent").expect("the resend is in the history");
    assert!(noted["detail"].as_str().unwrap().contains(&alice_email), "{noted}");
    assert!(noted["detail"].as_str().unwrap().contains("expired"), "{noted}");

    // Nothing expired now: nothing to send.
    let reply = h.call(Method::POST, &resend_expired, Some(&admin), None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["results"], json!([]));
}

#[tokio::test]
async fn apps_with_auto_resend_send_an_invitation_again_the_day_before_it_expires_at_most_three_times() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let admin = tenant.admin.clone();
    let reminded = h.active_app_with(&tenant, "Reminded", json!({"autoResend": true})).await;
    let plain = h.active_app_with(&tenant, "Plain", json!({})).await;
    let (id, plain_id) = (reminded["id"].as_str().unwrap(), plain["id"].as_str().unwrap());
    assert_eq!(reminded["autoResend"], true);
    let pool = reminded["auth"]["userPoolId"].as_str().unwrap();

    let (dave, dave_email) = invite(&h, &admin, id, "dave").await;
    let (erin, _) = invite(&h, &admin, id, "erin").await;
    let (frank, _) = invite(&h, &admin, plain_id, "frank").await;

    // Dave's and Frank's invitations expire in 12 hours; Erin's was just sent.
    let almost_a_week = Duration::days(7) - Duration::hours(12);
    for round in 1..=3 {
        h.backdate_invitation(id, &dave, almost_a_week).await;
        h.backdate_invitation(plain_id, &frank, almost_a_week).await;
        let password = h.emulator_password(pool, &dave).await.unwrap();
        let run = h.run_scheduled_job(json!({"resendInvitations": {}})).await;
        assert!(run["resent"].as_u64().unwrap() >= 1, "round {round}: {run}");

        let shown = user(&h, &admin, id, &dave).await;
        assert_eq!(shown["invitation"]["autoResends"], round, "round {round}: {shown}");
        assert_eq!(shown["invitation"]["status"], "PENDING");
        assert!(at(&shown["invitation"]["expiresAt"]) - OffsetDateTime::now_utc() > Duration::days(6), "{shown}");
        assert_ne!(h.emulator_password(pool, &dave).await.unwrap(), password, "round {round}: sent again");
        let history = events(&h, &admin, id).await;
        let noted = history.iter().find(|e| e["action"] == "user.invitation-resent").expect("in the history");
        assert_eq!(noted["actor"], "portcullis", "{noted}");
        let detail = noted["detail"].as_str().unwrap();
        assert!(detail.contains(&dave_email) && detail.contains(&format!("{round} of 3")), "{noted}");
    }
    let erin_shown = user(&h, &admin, id, &erin).await;
    assert_eq!(erin_shown["invitation"]["autoResends"], 0, "not due: {erin_shown}");
    let frank_shown = user(&h, &admin, plain_id, &frank).await;
    assert_eq!(frank_shown["invitation"]["autoResends"], 0, "the app did not ask for it: {frank_shown}");
    assert!(
        !events(&h, &admin, plain_id).await.iter().any(|e| e["action"] == "user.invitation-resent"),
        "nothing resent on the plain app"
    );

    // After three automatic resends, an admin decides: the fourth day-before passes without one.
    h.backdate_invitation(id, &dave, almost_a_week).await;
    let password = h.emulator_password(pool, &dave).await.unwrap();
    h.run_scheduled_job(json!({"resendInvitations": {}})).await;
    let shown = user(&h, &admin, id, &dave).await;
    assert_eq!(shown["invitation"]["autoResends"], 3, "{shown}");
    assert!(at(&shown["invitation"]["expiresAt"]) - OffsetDateTime::now_utc() < Duration::days(1), "{shown}");
    assert_eq!(h.emulator_password(pool, &dave).await.unwrap(), password, "not sent a fourth time");
}
