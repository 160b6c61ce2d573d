//! The `portcullis` CLI against the local stack, as a script runs it: arguments and environment in,
//! stdout, stderr and the exit code out.

use std::path::PathBuf;
use std::process::{Command, Output};

use portcullis_e2e::{Harness, TestTenant, fresh_domain};
use serde_json::Value;

/// The CLI binary `cargo build --workspace` made next to this test's own directory.
fn binary() -> PathBuf {
    let test = std::env::current_exe().expect("the test's path");
    let debug = test.parent().and_then(|deps| deps.parent()).expect("target/debug");
    let cli = debug.join("portcullis");
    assert!(cli.exists(), "{} is missing: build the workspace first (make test does)", cli.display());
    cli
}

fn run(h: &Harness, token: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(binary());
    command.args(args).env_clear().env("PORTCULLIS_API_URL", &h.stack.api_url);
    if let Some(token) = token {
        command.env("PORTCULLIS_TOKEN", token);
    }
    command.output().expect("the CLI runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
fn json_of(output: &Output) -> Value {
    assert_eq!(output.status.code(), Some(0), "stdout: {}\nstderr: {}", stdout(output), stderr(output));
    serde_json::from_str(&stdout(output)).unwrap_or_else(|e| panic!("{e}: {}", stdout(output)))
}

async fn active_app(h: &Harness, tenant: &TestTenant) -> String {
    // On a listener of its own: the demo listener's 25 certificates are shared by the whole suite.
    let listener = h.listener_of_its_own().await;
    let target = h.alb_targets_on(tenant, &listener, 1).await.remove(0);
    let domain = fresh_domain("cli");
    let (listener, group) = (target["listenerArn"].as_str().unwrap(), target["targetGroupArn"].as_str().unwrap());
    let args = ["apps", "create", "--name", "Tool", "--domain", &domain, "--listener-arn", listener];
    let policy =
        ["--allowed-email-domain", "example.com", "--default-access-days", "30", "--auto-resend", "--mfa", "optional"];
    let args = [&args[..], &policy, &["--target-group-arn", group, "--wait", "--output", "json"]].concat();
    let created = run(h, Some(&tenant.admin), &args);
    let app = json_of(&created);
    assert_eq!((app["status"].as_str(), app["domain"].as_str()), (Some("ACTIVE"), Some(domain.as_str())), "{app}");
    assert_eq!(
        app["accessPolicy"],
        serde_json::json!({"allowedEmailDomains": ["example.com"], "defaultAccessDays": 30})
    );
    assert_eq!(app["autoResend"], true, "{app}");
    assert_eq!(app["mfa"], "OPTIONAL", "{app}");
    // Without a terminal, --wait writes one line per change of status or step.
    let progress = stderr(&created);
    assert!(progress.lines().any(|l| l.starts_with("PROVISIONING")), "{progress}");
    assert!(progress.lines().last().is_some_and(|l| l == "ACTIVE"), "{progress}");
    app["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_script_protects_an_app_invites_imports_and_deletes_it() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let token = Some(tenant.admin.as_str());
    let id = active_app(&h, &tenant).await;

    let listed = json_of(&run(&h, token, &["apps", "list", "-o", "json"]));
    assert!(listed.as_array().unwrap().iter().any(|a| a["id"] == id.as_str()), "{listed}");
    let shown = run(&h, token, &["apps", "get", &id]);
    assert!(stdout(&shown).contains("status: ACTIVE"), "{}", stdout(&shown));

    let invite = ["users", "invite", &id, "--email", "ann@example.com", "--name", "Ann"];
    let invited =
        json_of(&run(&h, token, &[&invite[..], &["--expires-at", "2030-01-31T18:00:00Z", "-o", "json"]].concat()));
    assert_eq!(invited["email"], "ann@example.com");
    assert_eq!(invited["accessExpiresAt"], "2030-01-31T18:00:00Z", "{invited}");
    let outside = run(&h, token, &["users", "invite", &id, "--email", "eve@example.org"]);
    assert_eq!(outside.status.code(), Some(3), "refused: {}", stderr(&outside));
    assert!(stderr(&outside).contains("allowedEmailDomains"), "{}", stderr(&outside));
    let username = invited["username"].as_str().unwrap().to_string();
    json_of(&run(&h, token, &["users", "resend", &id, &username, "-o", "json"]));

    // An import: a header, two new people, Ann again (exists) and a bad address (fails the import).
    let csv =
        tempfile_with("email,name\nbob@example.com,Bob\ncid@example.com,\nann@example.com,Ann\nnot-an-address,X\n");
    let imported = run(&h, token, &["users", "import", &id, csv.to_str().unwrap()]);
    assert_eq!(imported.status.code(), Some(6), "{}{}", stdout(&imported), stderr(&imported));
    let lines: Vec<String> = stdout(&imported).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 4, "one line per row: {lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("bob@example.com invited")), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("ann@example.com exists")), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("not-an-address invalid")), "{lines:?}");

    let users = json_of(&run(&h, token, &["users", "list", &id, "-o", "json"]));
    assert_eq!(users.as_array().unwrap().len(), 3, "{users}");
    assert!(users.as_array().unwrap().iter().all(|u| u["invitation"]["status"] == "PENDING"), "{users}");

    // Bob's invitation ran out: the table shows it, --expired lists him alone, resend-expired sends it.
    let bob = users.as_array().unwrap().iter().find(|u| u["email"] == "bob@example.com").unwrap();
    let bob = bob["username"].as_str().unwrap().to_string();
    h.backdate_invitation(&id, &bob, time::Duration::days(8)).await;
    let table = stdout(&run(&h, token, &["users", "list", &id]));
    assert!(table.lines().next().is_some_and(|h| h.contains("INVITATION") && h.contains("EXPIRES")), "{table}");
    assert!(table.lines().any(|l| l.contains("bob@example.com") && l.contains("EXPIRED")), "{table}");
    let expired = json_of(&run(&h, token, &["users", "list", &id, "--expired", "-o", "json"]));
    let emails: Vec<&str> = expired.as_array().unwrap().iter().filter_map(|u| u["email"].as_str()).collect();
    assert_eq!(emails, ["bob@example.com"], "{expired}");
    let pending = json_of(&run(&h, token, &["users", "list", &id, "--invitation", "pending", "-o", "json"]));
    assert_eq!(pending.as_array().unwrap().len(), 2, "{pending}");
    let resent = run(&h, token, &["users", "resend-expired", &id]);
    assert_eq!(resent.status.code(), Some(0), "{}{}", stdout(&resent), stderr(&resent));
    assert_eq!(stdout(&resent).trim(), "bob@example.com resent");
    let expired = json_of(&run(&h, token, &["users", "list", &id, "--expired", "-o", "json"]));
    assert_eq!(expired, serde_json::json!([]), "sent again, so pending");

    json_of(&run(&h, token, &["users", "revoke", &id, &username, "-o", "json"]));
    let users = json_of(&run(&h, token, &["users", "list", &id, "-o", "json"]));
    assert_eq!(users.as_array().unwrap().len(), 2, "{users}");

    // Roles: made, given at invite and later, taken away, and an unknown one refused.
    for role in ["editor", "viewer"] {
        json_of(&run(&h, token, &["roles", "create", &id, role, "--description", "Can do things", "-o", "json"]));
    }
    let table = stdout(&run(&h, token, &["roles", "list", &id]));
    assert!(table.lines().next().is_some_and(|h| h.starts_with("ROLE")), "{table}");
    assert!(table.lines().any(|l| l.starts_with("editor") && l.contains("Can do things")), "{table}");
    let invite = ["users", "invite", &id, "--email", "rae@example.com", "--role", "editor", "-o", "json"];
    let rae = json_of(&run(&h, token, &invite))["username"].as_str().unwrap().to_string();
    let held = stdout(&run(&h, token, &["users", "roles", &id, &rae]));
    assert_eq!(held.trim(), format!("{rae}: editor"));
    let set = json_of(&run(&h, token, &["users", "set-roles", &id, &rae, "--role", "viewer", "-o", "json"]));
    assert_eq!(set["roles"], serde_json::json!(["viewer"]), "{set}");
    let unknown = run(&h, token, &["users", "set-roles", &id, &rae, "--role", "owner"]);
    assert_eq!(unknown.status.code(), Some(3), "refused: {}", stderr(&unknown));
    assert!(stderr(&unknown).contains("owner"), "names the unknown role: {}", stderr(&unknown));
    let none = json_of(&run(&h, token, &["users", "set-roles", &id, &rae, "--none", "-o", "json"]));
    assert_eq!(none["roles"], serde_json::json!([]), "{none}");
    json_of(&run(&h, token, &["roles", "delete", &id, "viewer", "-o", "json"]));
    let roles = json_of(&run(&h, token, &["roles", "list", &id, "-o", "json"]));
    let names: Vec<&str> = roles.as_array().unwrap().iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["editor"], "{roles}");

    // A new name and session timeout, applied by the workflow: --wait returns once they are.
    let args = ["apps", "update", &id, "--name", "Renamed", "--session-timeout-seconds", "900", "--wait", "-o", "json"];
    let updated = json_of(&run(&h, token, &args));
    assert_eq!(
        (&updated["name"], &updated["sessionTimeoutSeconds"]),
        (&serde_json::json!("Renamed"), &serde_json::json!(900))
    );
    assert!(updated.get("settingsChange").is_none(), "{updated}");
    let updated = json_of(&run(&h, token, &["apps", "update", &id, "--auto-resend", "true", "-o", "json"]));
    assert_eq!(updated["autoResend"], true, "{updated}");

    let events = json_of(&run(&h, token, &["apps", "events", &id, "-o", "json"]));
    assert!(events.as_array().unwrap().iter().any(|e| e["action"] == "app.active"), "{events}");

    let deleted = json_of(&run(&h, token, &["apps", "delete", &id, "--wait", "-o", "json"]));
    assert_eq!(deleted["status"], "DELETED", "{deleted}");
}

#[tokio::test]
async fn a_script_repairs_an_app_whose_rule_was_deleted_and_sees_its_health() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let token = Some(tenant.admin.as_str());
    let id = active_app(&h, &tenant).await;
    let app = json_of(&run(&h, token, &["apps", "get", &id, "-o", "json"]));
    let rule = app["listenerRuleArn"].as_str().unwrap();
    h.aws.elb.delete_rule().rule_arn(rule).send().await.expect("delete the rule by hand");

    let repaired = json_of(&run(&h, token, &["apps", "repair", &id, "-o", "json"]));
    assert_eq!(repaired["health"]["status"], "OK", "{repaired}");
    let rules = h.listener_rules(app["target"]["listenerArn"].as_str().unwrap()).await;
    assert_eq!(portcullis_e2e::rule_for_host(&rules, app["domain"].as_str().unwrap()).len(), 1);
    let shown = stdout(&run(&h, token, &["apps", "get", &id]));
    assert!(shown.lines().any(|l| l.starts_with("health: OK (checked ")), "{shown}");
    let events = json_of(&run(&h, token, &["apps", "events", &id, "-o", "json"]));
    assert!(events.as_array().unwrap().iter().any(|e| e["action"] == "app.repaired"), "{events}");
}

#[tokio::test]
async fn exit_codes_tell_a_script_what_happened() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let token = Some(tenant.admin.as_str());

    let no_token = run(&h, None, &["apps", "list"]);
    assert_eq!(no_token.status.code(), Some(1), "{}", stderr(&no_token));
    assert!(stderr(&no_token).contains("PORTCULLIS_TOKEN"), "{}", stderr(&no_token));

    let bad_token = run(&h, Some("not-a-token"), &["apps", "list"]);
    assert_eq!(bad_token.status.code(), Some(3), "{}", stderr(&bad_token));
    assert!(stderr(&bad_token).contains("401"), "{}", stderr(&bad_token));

    let missing = run(&h, token, &["apps", "get", "0190a0a0-0000-7000-8000-000000000000"]);
    assert_eq!(missing.status.code(), Some(3), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("404"), "{}", stderr(&missing));

    let usage = run(&h, token, &["apps", "create", "--name", "x"]);
    assert_eq!(usage.status.code(), Some(2), "{}", stderr(&usage));

    // A domain outside the tenant's grant: the preflight prints its checks and exits 3.
    let args = ["apps", "preflight", "--name", "X", "--domain", "x.elsewhere.test", "--environment-name", "none"];
    let preflight = run(&h, token, &args);
    assert_eq!(preflight.status.code(), Some(3), "{}{}", stdout(&preflight), stderr(&preflight));
    assert!(stdout(&preflight).contains("domain.allowed"), "{}", stdout(&preflight));

    let unreachable = Command::new(binary())
        .args(["apps", "list"])
        .env_clear()
        .env("PORTCULLIS_API_URL", "http://127.0.0.1:9")
        .env("PORTCULLIS_TOKEN", "t")
        .output()
        .unwrap();
    assert_eq!(unreachable.status.code(), Some(4), "{}", stderr(&unreachable));

    let completions = run(&h, None, &["completions", "bash"]);
    assert_eq!(completions.status.code(), Some(0));
    assert!(stdout(&completions).contains("portcullis"), "a bash completion script");
}

/// A file in the system's temporary directory with `content`.
fn tempfile_with(content: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("portcullis-cli-{}.csv", portcullis_e2e::short_id()));
    std::fs::write(&path, content).unwrap();
    path
}

/// A CI job with a service token: the CLI trades the client credentials itself and acts within the
/// token's scopes.
#[tokio::test]
async fn a_ci_job_uses_service_token_credentials() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let body = serde_json::json!({"name": "ci", "scopes": ["apps:read"]});
    let created = h.call(reqwest::Method::POST, "/tenant/service-tokens", Some(&tenant.admin), Some(&body)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let credentials = &created.body;
    let with_client = |args: &[&str]| {
        Command::new(binary())
            .args(args)
            .env_clear()
            .env("PORTCULLIS_API_URL", &h.stack.api_url)
            .env("PORTCULLIS_CLIENT_ID", credentials["clientId"].as_str().unwrap())
            .env("PORTCULLIS_CLIENT_SECRET", credentials["clientSecret"].as_str().unwrap())
            .env("PORTCULLIS_TOKEN_URL", credentials["tokenUrl"].as_str().unwrap())
            .output()
            .expect("the CLI runs")
    };
    let listed = json_of(&with_client(&["apps", "list", "-o", "json"]));
    assert_eq!(listed, serde_json::json!([]), "the tenant has no apps yet");

    // A write outside the token's scopes: refused, naming the scope.
    let args = ["apps", "create", "--name", "X", "--domain", "x.demo.test", "--environment-name", "none"];
    let refused = with_client(&args);
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("apps:write"), "{}", stderr(&refused));

    let mut wrong = Command::new(binary());
    wrong.args(["apps", "list"]).env_clear().env("PORTCULLIS_API_URL", &h.stack.api_url);
    wrong.env("PORTCULLIS_CLIENT_ID", credentials["clientId"].as_str().unwrap());
    wrong.env("PORTCULLIS_CLIENT_SECRET", "not-the-secret");
    wrong.env("PORTCULLIS_TOKEN_URL", credentials["tokenUrl"].as_str().unwrap());
    let wrong = wrong.output().unwrap();
    assert_eq!(wrong.status.code(), Some(3), "{}", stderr(&wrong));
    assert!(stderr(&wrong).contains("refused the client credentials"), "{}", stderr(&wrong));
}
