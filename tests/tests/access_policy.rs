//! An app's access policy end to end: who may be invited (`allowedEmailDomains`, the tenant's default),
//! for how long (`defaultAccessDays`, an invitation's `expiresAt`), and the hourly end of access (the
//! provisioner, invoked as its schedule does), asserted on the API, the app's history and Cognito.
//!
//! A test cannot wait for an end of access: it moves the recorded end into the past
//! (`Harness::set_access_end`), as the API itself refuses one.

use portcullis_e2e::{Harness, fresh_domain, short_id};
use reqwest::Method;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

fn at(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(value.as_str().unwrap_or_else(|| panic!("a time, not {value}")), &Rfc3339).unwrap()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

async fn listed_user(h: &Harness, token: &str, app_id: &str, username: &str) -> Value {
    let users = h.all_pages(&format!("/apps/{app_id}/users"), token).await;
    users.into_iter().find(|u| u["username"] == username).unwrap_or_else(|| panic!("{username} is listed"))
}

#[tokio::test]
async fn only_addresses_the_policy_allows_are_invited_and_the_tenant_default_applies_to_new_apps() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let admin = tenant.admin.clone();
    let policy = json!({"allowedEmailDomains": ["Example.com"], "defaultAccessDays": 30, "mfa": "REQUIRED"});
    let app = h.active_app_with(&tenant, "Policy", policy).await;
    let id = app["id"].as_str().unwrap();
    let pool = app["auth"]["userPoolId"].as_str().unwrap();
    assert_eq!(app["accessPolicy"], json!({"allowedEmailDomains": ["example.com"], "defaultAccessDays": 30}));

    // MFA REQUIRED: the pool asks every user for a TOTP code.
    assert_eq!(app["mfa"], "REQUIRED");
    let mfa = h.aws.cognito.get_user_pool_mfa_config().user_pool_id(pool).send().await.unwrap();
    assert_eq!(mfa.mfa_configuration().map(|m| m.as_str()), Some("ON"));
    assert_eq!(mfa.software_token_mfa_configuration().map(|t| t.enabled()), Some(true));
    let users = format!("/apps/{id}/users");

    // At the domain or below it: invited, with access for the app's 30 days.
    let ann = format!("ann-{}@eng.example.com", short_id());
    let reply = h.call(Method::POST, &users, Some(&admin), Some(&json!({"email": ann}))).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let lasts = at(&reply.body["accessExpiresAt"]) - at(&reply.body["invitedAt"]);
    assert_eq!(lasts, Duration::days(30), "{}", reply.text);

    // Elsewhere: 403 naming the rule, and Cognito never hears of it.
    let bob = format!("bob-{}@example.org", short_id());
    let reply = h.call(Method::POST, &users, Some(&admin), Some(&json!({"email": bob}))).await;
    assert!(reply.assert_problem(403).contains("allowedEmailDomains: example.com"), "{}", reply.text);
    assert!(h.users_with_email(pool, &bob).await.is_empty(), "no user made");
    let cid = format!("cid-{}@example.com", short_id());
    let batch = json!({"users": [{"email": bob}, {"email": cid}]});
    let reply = h.call(Method::POST, &format!("{users}/batch"), Some(&admin), Some(&batch)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["results"][0]["outcome"], "invalid", "{}", reply.text);
    assert!(reply.body["results"][0]["detail"].as_str().unwrap().contains("allowedEmailDomains"), "{}", reply.text);
    assert_eq!(reply.body["results"][1]["outcome"], "invited", "{}", reply.text);
    assert!(h.users_with_email(pool, &bob).await.is_empty(), "no user made from the batch either");

    // A bad policy is 400.
    for (field, bad) in [("allowedEmailDomains", json!("example.com")), ("defaultAccessDays", json!(0))] {
        let mut body = json!({"name": "Bad", "domain": fresh_domain("bad"), "target": app["target"]});
        body[field] = bad;
        let reply = h.call(Method::POST, "/apps", Some(&admin), Some(&body)).await;
        assert!(reply.assert_problem(400).contains(field), "{}", reply.text);
    }

    // The tenant's default: a new app that names no domains gets it.
    let listener = h.listener_of_its_own().await;
    let target = h.alb_targets_on(&tenant, &listener, 1).await.remove(0);
    let platform = h.platform().await;
    let path = format!("/tenants/{}", tenant.id);
    let registration = h.call(Method::GET, &path, Some(&platform), None).await.body;
    let mut update = json!({"allowedDomains": registration["allowedDomains"], "targets": registration["targets"]});
    update["defaultAllowedEmailDomains"] = json!(["corp.test"]);
    let reply = h.call(Method::PUT, &path, Some(&platform), Some(&update)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = json!({"name": "Defaulted", "domain": fresh_domain("app"), "target": target});
    let created = h.call(Method::POST, "/apps", Some(&admin), Some(&body)).await;
    assert_eq!(created.status, 202, "{}", created.text);
    assert_eq!(created.body["accessPolicy"], json!({"allowedEmailDomains": ["corp.test"]}), "{}", created.text);
    let defaulted = created.body["id"].as_str().unwrap();
    let reply = h.call(Method::DELETE, &format!("/apps/{defaulted}"), Some(&admin), None).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
}

#[tokio::test]
async fn access_that_reaches_its_end_is_ended_within_the_hour_disabled_signed_out_and_recorded() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let admin = tenant.admin.clone();
    let app = h.active_app_with(&tenant, "Contractors", json!({})).await;
    let id = app["id"].as_str().unwrap();
    let pool = app["auth"]["userPoolId"].as_str().unwrap();
    assert_eq!(app["mfa"], "OFF", "no second factor unless asked for");
    let mfa = h.aws.cognito.get_user_pool_mfa_config().user_pool_id(pool).send().await.unwrap();
    assert_eq!(mfa.mfa_configuration().map(|m| m.as_str()), Some("OFF"));
    let users = format!("/apps/{id}/users");

    // An invitation may name the end of access; one in the past is 422, something not a time 400.
    let carol = format!("carol-{}@example.com", short_id());
    let end = OffsetDateTime::now_utc() + Duration::days(14);
    let body = json!({"email": carol, "expiresAt": rfc3339(end)});
    let reply = h.call(Method::POST, &users, Some(&admin), Some(&body)).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let carol_name = reply.body["username"].as_str().unwrap().to_string();
    assert_eq!(at(&reply.body["accessExpiresAt"]).unix_timestamp(), end.unix_timestamp(), "{}", reply.text);
    let past = json!(rfc3339(OffsetDateTime::now_utc() - Duration::hours(1)));
    for (bad, status) in [(past, 422), (json!("tomorrow"), 400)] {
        let body = json!({"email": format!("x-{}@example.com", short_id()), "expiresAt": bad});
        let reply = h.call(Method::POST, &users, Some(&admin), Some(&body)).await;
        assert!(reply.assert_problem(status).contains("expiresAt"), "{}", reply.text);
    }
    let dave = format!("dave-{}@example.com", short_id());
    let reply = h.call(Method::POST, &users, Some(&admin), Some(&json!({"email": dave}))).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert!(reply.body.get("accessExpiresAt").is_none(), "no end unless asked for: {}", reply.text);
    let dave_name = reply.body["username"].as_str().unwrap().to_string();

    // Carol's end has come: the hourly job disables her and signs her out, and says so.
    h.set_access_end(id, &carol_name, OffsetDateTime::now_utc() - Duration::minutes(1)).await;
    let run = h.run_scheduled_job(json!({"endExpiredAccess": {}})).await;
    assert!(run["ended"].as_u64().unwrap() >= 1, "{run}");
    let cognito = |username: String| {
        let cognito = h.aws.cognito.clone();
        let pool = pool.to_string();
        async move { cognito.admin_get_user().user_pool_id(pool).username(username).send().await.unwrap() }
    };
    assert!(!cognito(carol_name.clone()).await.enabled(), "disabled in the pool");
    assert!(cognito(dave_name.clone()).await.enabled(), "the others are left alone");
    let shown = listed_user(&h, &admin, id, &carol_name).await;
    assert_eq!(shown["enabled"], false, "{shown}");
    assert!(shown["accessEndedAt"].is_string(), "{shown}");
    let history = h.all_pages(&format!("/apps/{id}/events"), &admin).await;
    let ended: Vec<&Value> = history.iter().filter(|e| e["action"] == "user.access-ended").collect();
    assert_eq!(ended.len(), 1, "{history:?}");
    assert_eq!(ended[0]["actor"], "portcullis");
    let detail = ended[0]["detail"].as_str().unwrap();
    assert!(detail.contains(&carol) && detail.contains("signed out") && detail.contains("session timeout"), "{detail}");

    // Ended once: the next run leaves her as she is.
    h.run_scheduled_job(json!({"endExpiredAccess": {}})).await;
    let history = h.all_pages(&format!("/apps/{id}/events"), &admin).await;
    assert_eq!(history.iter().filter(|e| e["action"] == "user.access-ended").count(), 1);
}
