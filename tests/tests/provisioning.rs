//! Provisioning end to end: API → Step Functions (the real ASL, run by the emulator) → the provisioner
//! Lambda (under cargo lambda) → ACM, Cognito, ELBv2 and DynamoDB, asserted on the AWS side.

use portcullis_e2e::{Harness, TEST_PASSWORD, WaitingApp, forward, fresh_domain, rule_for_host, short_id};
use reqwest::Method;
use serde_json::{Value, json};

async fn create_app(h: &Harness, token: &str, body: &Value) -> Value {
    let reply = h.call(Method::POST, "/apps", Some(token), Some(body)).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let id = reply.body["id"].as_str().expect("an id").to_string();
    assert_eq!(reply.headers["location"], format!("/apps/{id}").as_str());
    assert_eq!(reply.body["status"], "PROVISIONING");
    reply.body
}

/// `POST /apps/preflight` of `body`: 200, and the checks by name.
async fn preflight(
    h: &Harness,
    token: &str,
    body: &Value,
) -> (bool, std::collections::HashMap<String, (String, String)>) {
    let reply = h.call(Method::POST, "/apps/preflight", Some(token), Some(body)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let checks = reply.body["checks"].as_array().unwrap().iter().map(|c| {
        let field = |name: &str| c[name].as_str().unwrap().to_string();
        (field("check"), (field("status"), field("detail")))
    });
    (reply.body["ok"].as_bool().unwrap(), checks.collect())
}

#[tokio::test]
async fn an_app_is_protected_end_to_end_and_delete_removes_every_piece() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let token = tenant.admin.clone();
    let domain = fresh_domain("grafana");
    let target = h.alb_target(&tenant).await;
    let created = create_app(
        &h,
        &token,
        &json!({"name": "Grafana", "domain": domain, "target": target, "sessionTimeoutSeconds": 3600}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();

    // While waiting for DNS validation, the record a human must add is shown.
    let waiting = h
        .app_until(&token, &id, "the validation record while PROVISIONING", |app| {
            app["status"] == "PROVISIONING"
                && app["step"] == "DNS_VALIDATION"
                && app["certificate"]["validationRecord"].is_object()
        })
        .await;
    let record = &waiting["certificate"]["validationRecord"];
    assert_eq!(record["type"], "CNAME");
    assert!(record["name"].as_str().unwrap().contains(&domain), "{record}");
    assert!(!record["value"].as_str().unwrap().is_empty());

    let app = h.app_until(&token, &id, "ACTIVE", |app| app["status"] != "PROVISIONING").await;
    assert_eq!(app["status"], "ACTIVE", "{app}");
    assert!(app.get("step").is_none(), "no step once ACTIVE: {app}");
    assert_eq!(app["url"], format!("https://{domain}/"));
    let certificate_arn = app["certificate"]["arn"].as_str().unwrap().to_string();
    let pool_id = app["auth"]["userPoolId"].as_str().unwrap().to_string();
    let client_id = app["auth"]["clientId"].as_str().unwrap().to_string();
    let pool_host = app["auth"]["domain"].as_str().unwrap().to_string();
    let rule_arn = app["listenerRuleArn"].as_str().unwrap().to_string();
    let logout = app["auth"]["logoutUrl"].as_str().unwrap();
    assert!(logout.starts_with(&format!("https://{pool_host}/logout?client_id={client_id}&logout_uri=")), "{logout}");

    // ACM: an issued certificate for the domain, attached to the listener.
    let cert = h.aws.acm.describe_certificate().certificate_arn(&certificate_arn).send().await.unwrap();
    let cert = cert.certificate().unwrap();
    assert_eq!(cert.domain_name(), Some(domain.as_str()));
    assert_eq!(cert.status().unwrap().as_str(), "ISSUED");
    assert_eq!(app["certificate"]["status"], "ISSUED");
    assert!(h.listener_certificates(&h.stack.listener_arn).await.contains(&certificate_arn));

    // Cognito: an admin-only pool inviting to the app, a code-flow client with a secret, a domain.
    let pool = h.aws.cognito.describe_user_pool().user_pool_id(&pool_id).send().await.unwrap();
    let pool = pool.user_pool().unwrap();
    let admin_config = pool.admin_create_user_config().unwrap();
    assert!(admin_config.allow_admin_create_user_only());
    let invite = admin_config.invite_message_template().unwrap().email_message().unwrap();
    assert!(invite.contains("Grafana") && invite.contains(&format!("https://{domain}/")), "{invite}");
    assert!(invite.contains("{username}") && invite.contains("{####}"), "{invite}");
    let client = h.aws.cognito.describe_user_pool_client().user_pool_id(&pool_id).client_id(&client_id).send().await;
    let client = client.unwrap();
    let client = client.user_pool_client().unwrap();
    let flows: Vec<&str> = client.allowed_o_auth_flows().iter().map(|f| f.as_str()).collect();
    assert_eq!(flows, vec!["code"]);
    let mut scopes = client.allowed_o_auth_scopes().to_vec();
    scopes.sort();
    assert_eq!(scopes, vec!["email", "openid"]);
    assert_eq!(client.callback_urls(), [format!("https://{domain}/oauth2/idpresponse")]);
    assert_eq!(client.logout_urls(), [format!("https://{domain}/")]);
    assert_eq!(client.allowed_o_auth_flows_user_pool_client(), Some(true));
    let secret = client.client_secret().expect("the ALB needs a client secret");
    let prefix = pool_host.split('.').next().unwrap();
    let described = h.aws.cognito.describe_user_pool_domain().domain(prefix).send().await.unwrap();
    assert_eq!(described.domain_description().unwrap().user_pool_id(), Some(pool_id.as_str()));

    // Every resource Portcullis made carries its app id, set when it was created (the IAM scoping
    // in infra/template.yaml depends on it).
    let tag = "portcullis:app-id";
    let rule_tags = h.aws.elb.describe_tags().resource_arns(&rule_arn).send().await.unwrap();
    let rule_tags = rule_tags.tag_descriptions().first().map(|d| d.tags()).unwrap_or_default();
    assert!(rule_tags.iter().any(|t| t.key() == Some(tag) && t.value() == Some(id.as_str())), "{rule_tags:?}");
    let cert_tags = h.aws.acm.list_tags_for_certificate().certificate_arn(&certificate_arn).send().await.unwrap();
    assert!(cert_tags.tags().iter().any(|t| t.key() == tag && t.value() == Some(id.as_str())), "{cert_tags:?}");
    assert_eq!(pool.user_pool_tags().and_then(|tags| tags.get(tag)), Some(&id), "{:?}", pool.user_pool_tags());

    // The API never shows the client secret.
    for path in [format!("/apps/{id}"), "/apps".to_string()] {
        let reply = h.call(Method::GET, &path, Some(&token), None).await;
        assert!(!reply.text.contains(secret), "{path} leaks the client secret");
        assert!(!reply.text.to_lowercase().contains("secret"), "{path}: {}", reply.text);
    }

    // ELBv2: exactly one rule for the host: host-header condition, authenticate-cognito then forward.
    let rules = h.listener_rules(&h.stack.listener_arn).await;
    let ours = rule_for_host(&rules, &domain);
    assert_eq!(ours.len(), 1, "one rule for {domain}");
    let rule = ours[0];
    assert_eq!(rule.rule_arn(), Some(rule_arn.as_str()));
    assert_eq!(rule.conditions().len(), 1);
    assert_eq!(rule.conditions()[0].field(), Some("host-header"));
    let actions = rule.actions();
    assert_eq!(actions.len(), 2, "{actions:?}");
    let auth = actions.iter().find(|a| a.r#type().map(|t| t.as_str()) == Some("authenticate-cognito")).unwrap();
    let forward = actions.iter().find(|a| a.r#type().map(|t| t.as_str()) == Some("forward")).unwrap();
    assert!(auth.order().unwrap() < forward.order().unwrap(), "authenticate before forwarding");
    let config = auth.authenticate_cognito_config().unwrap();
    assert_eq!(config.user_pool_arn(), pool.arn());
    assert_eq!(config.user_pool_client_id(), Some(client_id.as_str()));
    assert_eq!(config.user_pool_domain(), Some(prefix));
    assert_eq!(config.session_timeout(), Some(3600));
    assert_eq!(config.scope(), Some("openid email"));
    let forwarded_to = forward
        .target_group_arn()
        .map(str::to_string)
        .or_else(|| {
            forward
                .forward_config()
                .and_then(|f| f.target_groups().first())
                .and_then(|t| t.target_group_arn().map(str::to_string))
        })
        .unwrap();
    assert_eq!(forwarded_to, target["targetGroupArn"].as_str().unwrap());

    // Delete: DELETING → DELETED, and every piece gone.
    let reply = h.call(Method::DELETE, &format!("/apps/{id}"), Some(&token), None).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    assert!(matches!(reply.body["status"].as_str(), Some("DELETING" | "DELETED")), "{}", reply.text);
    let gone = h.app_until(&token, &id, "DELETED", |app| app["status"] == "DELETED" || app["status"] == "FAILED").await;
    assert_eq!(gone["status"], "DELETED", "{gone}");
    assert!(rule_for_host(&h.listener_rules(&h.stack.listener_arn).await, &domain).is_empty(), "rule removed");
    assert!(!h.listener_certificates(&h.stack.listener_arn).await.contains(&certificate_arn), "certificate detached");
    assert!(
        h.aws.acm.describe_certificate().certificate_arn(&certificate_arn).send().await.is_err(),
        "certificate deleted"
    );
    assert!(h.aws.cognito.describe_user_pool().user_pool_id(&pool_id).send().await.is_err(), "pool deleted");
    let domain_left = h.aws.cognito.describe_user_pool_domain().domain(prefix).send().await.unwrap();
    assert!(
        domain_left.domain_description().and_then(|d| d.user_pool_id()).is_none_or(str::is_empty),
        "pool domain deleted"
    );

    // The domain is free again.
    let again = h
        .call(Method::POST, "/apps", Some(&token), Some(&json!({"name": "Again", "domain": domain, "target": target})))
        .await;
    assert_eq!(again.status, 202, "{}", again.text);
}

#[tokio::test]
async fn a_target_group_that_never_becomes_healthy_fails_the_app_and_leaves_nothing() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let token = tenant.admin.clone();
    // A target group with no targets never has a healthy one.
    let empty_arn = h.target_group("empty", false).await;
    let domain = fresh_domain("never");
    let target = json!({"type": "alb", "listenerArn": h.stack.listener_arn, "targetGroupArn": empty_arn});
    let target = h.grant(&tenant, target).await;
    let id = create_app(&h, &token, &json!({"name": "Never healthy", "domain": domain, "target": target})).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Seen while waiting for the environment: the certificate that compensation must remove.
    let waiting = h
        .app_until(&token, &id, "the ENVIRONMENT step", |app| {
            app["step"] == "ENVIRONMENT" || app["status"] != "PROVISIONING"
        })
        .await;
    let certificate_arn = waiting["certificate"]["arn"].as_str().expect("a certificate while waiting").to_string();

    let failed = h.app_until(&token, &id, "FAILED", |app| app["status"] != "PROVISIONING").await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert_eq!(failed["error"]["step"], "ENVIRONMENT", "{failed}");
    assert_eq!(failed["error"]["code"], "EnvironmentNotReady", "{failed}");
    assert!(failed["error"]["message"].as_str().unwrap().contains("no healthy target"), "{failed}");
    assert!(failed["certificate"]["arn"].is_null() && failed["auth"]["userPoolId"].is_null(), "{failed}");

    // Nothing left behind: no certificate, rule, listener certificate or pool for this app.
    assert!(
        h.aws.acm.describe_certificate().certificate_arn(&certificate_arn).send().await.is_err(),
        "certificate deleted"
    );
    assert!(rule_for_host(&h.listener_rules(&h.stack.listener_arn).await, &domain).is_empty());
    assert!(!h.listener_certificates(&h.stack.listener_arn).await.contains(&certificate_arn));
    let pools = h.aws.cognito.list_user_pools().max_results(60).send().await.unwrap();
    assert!(pools.user_pools().iter().all(|p| !p.name().unwrap_or_default().contains(&id)), "no pool for the app");

    // A failed app can be deleted, which frees its domain.
    let reply = h.call(Method::DELETE, &format!("/apps/{id}"), Some(&token), None).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    h.app_until(&token, &id, "DELETED", |app| app["status"] == "DELETED").await;
}

#[tokio::test]
async fn an_elastic_beanstalk_environment_is_wired_with_its_routes_around_the_login_closed_and_restored_on_delete() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let token = tenant.admin.clone();
    let env_name = format!("env-{}", short_id());

    // An EB environment's ALB as EB makes it (tagged with the environment): HTTP :80 and HTTPS :443, both
    // forwarding every request to the environment's target group, which has a healthy target.
    h.aws.eb.create_application().application_name(&env_name).send().await.unwrap();
    h.aws.eb.create_environment().application_name(&env_name).environment_name(&env_name).send().await.unwrap();
    let lb_arn = h.load_balancer("awseb", &[("elasticbeanstalk:environment-name", &env_name)]).await;
    let group_arn = h.target_group("eb", true).await;
    let http_listener = h.http_listener(&lb_arn, forward(&group_arn)).await;
    let listener_arn = h.https_listener(&lb_arn, forward(&group_arn)).await;

    let domain = fresh_domain("beanstalk");
    let target = h.grant(&tenant, json!({"type": "elasticbeanstalk", "environmentName": env_name})).await;
    let body = json!({"name": "Beanstalk app", "domain": domain, "target": target});
    let viewer = h.token_for(&h.operator_email(Some(&tenant.id), Some("viewer")).await, TEST_PASSWORD).await;
    let (ok, checks) = preflight(&h, &viewer, &body).await;
    assert!(ok, "{checks:?}");
    let (status, detail) = &checks["exposure"];
    assert_eq!(status, "pass");
    assert!(
        detail.contains("will close") && detail.contains(&http_listener) && detail.contains(&listener_arn),
        "{detail}"
    );
    assert_eq!(h.default_actions(&http_listener).await[0].target_group_arn(), Some(group_arn.as_str()), "not yet");

    let id = create_app(&h, &token, &body).await["id"].as_str().unwrap().to_string();
    let app = h.app_until(&token, &id, "ACTIVE", |app| app["status"] != "PROVISIONING").await;
    assert_eq!(app["status"], "ACTIVE", "{app}");
    assert_eq!(app["target"], target);

    // The rule sits on the environment's own HTTPS listener and forwards to its target group.
    let rules = h.listener_rules(&listener_arn).await;
    let ours = rule_for_host(&rules, &domain);
    assert_eq!(ours.len(), 1, "{rules:?}");
    assert_eq!(ours[0].rule_arn(), app["listenerRuleArn"].as_str());
    let to_group = ours[0].actions().iter().find(|a| a.r#type().map(|t| t.as_str()) == Some("forward")).unwrap();
    assert_eq!(to_group.target_group_arn(), Some(group_arn.as_str()));
    assert!(
        h.listener_certificates(&listener_arn).await.contains(&app["certificate"]["arn"].as_str().unwrap().to_string())
    );

    // No way around the login: HTTP redirects to HTTPS, any other host on HTTPS gets a fixed 404.
    let http_default = h.default_actions(&http_listener).await;
    assert_eq!(http_default.len(), 1, "{http_default:?}");
    let redirect = http_default[0].redirect_config().expect("HTTP redirects");
    assert_eq!((redirect.protocol(), redirect.port()), (Some("HTTPS"), Some("443")));
    let https_default = h.default_actions(&listener_arn).await;
    assert_eq!(https_default.len(), 1, "{https_default:?}");
    assert_eq!(https_default[0].fixed_response_config().and_then(|f| f.status_code()), Some("404"));
    let events = h.call(Method::GET, &format!("/apps/{id}/events"), Some(&token), None).await;
    let actions: Vec<&str> =
        events.body["items"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    for expected in ["listener.routes-closed", "app.protection-verified"] {
        assert!(actions.contains(&expected), "{expected} in {actions:?}");
    }
    let closed = events.body["items"].as_array().unwrap().iter().find(|e| e["action"] == "listener.routes-closed");
    let closed = closed.unwrap()["detail"].as_str().unwrap();
    assert!(closed.contains(&http_listener) && closed.contains(&listener_arn), "{closed}");

    // Delete puts back exactly what was there.
    let reply = h.call(Method::DELETE, &format!("/apps/{id}"), Some(&token), None).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let gone = h.app_until(&token, &id, "DELETED", |app| app["status"] == "DELETED" || app["status"] == "FAILED").await;
    assert_eq!(gone["status"], "DELETED", "{gone}");
    for listener in [&http_listener, &listener_arn] {
        let default = h.default_actions(listener).await;
        assert_eq!(default.len(), 1, "{default:?}");
        assert_eq!(default[0].target_group_arn(), Some(group_arn.as_str()), "{listener} forwards again");
    }
    assert!(rule_for_host(&h.listener_rules(&listener_arn).await, &domain).is_empty());
    let events = h.call(Method::GET, &format!("/apps/{id}/events"), Some(&token), None).await;
    assert!(events.text.contains("listener.routes-restored"), "{}", events.text);
}

/// A shared ALB (not the demo one, so no other test's app is affected) with an HTTPS listener whose
/// default is `default`, and a fresh healthy target group, granted to the tenant as a target.
async fn shared_alb(
    h: &Harness,
    tenant: &portcullis_e2e::TestTenant,
    default: Option<&str>,
) -> (String, String, Value) {
    let lb_arn = h.load_balancer("shared", &[]).await;
    let group_arn = h.target_group("app", true).await;
    let not_found = aws_sdk_elasticloadbalancingv2::types::Action::builder()
        .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::FixedResponse)
        .fixed_response_config(
            aws_sdk_elasticloadbalancingv2::types::FixedResponseActionConfig::builder().status_code("404").build(),
        )
        .build();
    let default = match default {
        Some("app") => forward(&group_arn),
        _ => not_found,
    };
    let listener_arn = h.https_listener(&lb_arn, default).await;
    let target =
        h.grant(tenant, json!({"type": "alb", "listenerArn": listener_arn, "targetGroupArn": group_arn})).await;
    (listener_arn, group_arn, target)
}

/// Creates the app, waits for FAILED at LISTENER with TargetExposed, and checks nothing it made is left.
async fn fails_exposed(h: &Harness, token: &str, listener_arn: &str, target: &Value) -> String {
    let domain = fresh_domain("exposed");
    let body = json!({"name": "Exposed", "domain": domain, "target": target});
    let (ok, checks) = preflight(h, token, &body).await;
    assert!(!ok, "{checks:?}");
    let (status, foreseen) = checks["exposure"].clone();
    assert_eq!(status, "fail", "{checks:?}");
    assert!(checks.iter().filter(|(name, _)| *name != "exposure").all(|(_, (s, _))| s != "fail"), "{checks:?}");
    assert!(rule_for_host(&h.listener_rules(listener_arn).await, &domain).is_empty(), "a preflight creates nothing");
    let listed = h.call(Method::GET, "/apps", Some(token), None).await;
    assert!(!listed.text.contains(&domain), "a preflight records no app");

    let id = create_app(h, token, &body).await["id"].as_str().unwrap().to_string();
    let failed = h.app_until(token, &id, "FAILED", |app| app["status"] != "PROVISIONING").await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert_eq!(failed["error"]["step"], "LISTENER", "{failed}");
    assert_eq!(failed["error"]["code"], "TargetExposed", "{failed}");
    let recorded = [&failed["listenerRuleArn"], &failed["auth"]["userPoolId"], &failed["certificate"]["arn"]];
    assert!(recorded.iter().all(|v| v.is_null()), "nothing left recorded: {failed}");
    assert!(rule_for_host(&h.listener_rules(listener_arn).await, &domain).is_empty(), "the app's rule is removed");
    let certificates = h.listener_certificates(listener_arn).await;
    assert_eq!(certificates.len(), 1, "only the listener's own certificate: {certificates:?}");
    let pools = h.aws.cognito.list_user_pools().max_results(60).send().await.unwrap();
    assert!(!pools.user_pools().iter().any(|p| p.name().is_some_and(|n| n.contains(&id))), "the app's pool is deleted");
    let message = failed["error"]["message"].as_str().unwrap().to_string();
    assert_eq!(message, foreseen, "the preflight foresaw the failure in its words");
    message
}

#[tokio::test]
async fn a_shared_alb_whose_default_forwards_to_the_app_fails_target_exposed_and_is_not_changed() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let (listener_arn, group_arn, target) = shared_alb(&h, &tenant, Some("app")).await;
    let message = fails_exposed(&h, &tenant.admin, &listener_arn, &target).await;
    assert!(message.contains(&listener_arn) && message.contains("(HTTPS:443) default action"), "{message}");
    assert!(message.contains("make it answer a fixed response"), "{message}");
    let default = h.default_actions(&listener_arn).await;
    assert_eq!(default[0].target_group_arn(), Some(group_arn.as_str()), "a shared ALB is left as it was");
}

#[tokio::test]
async fn a_wildcard_rule_ahead_of_the_apps_rule_fails_target_exposed_and_is_left_alone() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let (listener_arn, _, target) = shared_alb(&h, &tenant, None).await;
    let elsewhere = h.target_group("other", true).await;
    let wildcard = h
        .aws
        .elb
        .create_rule()
        .listener_arn(&listener_arn)
        .priority(1)
        .conditions(
            aws_sdk_elasticloadbalancingv2::types::RuleCondition::builder()
                .field("host-header")
                .host_header_config(
                    aws_sdk_elasticloadbalancingv2::types::HostHeaderConditionConfig::builder()
                        .values("*.DEMO.test")
                        .build(),
                )
                .build(),
        )
        .actions(forward(&elsewhere))
        .send()
        .await
        .unwrap();
    let wildcard_arn = wildcard.rules()[0].rule_arn().unwrap().to_string();
    let message = fails_exposed(&h, &tenant.admin, &listener_arn, &target).await;
    assert!(message.contains(&format!("rule {wildcard_arn} (priority 1)")), "{message}");
    assert!(message.contains("before the app's rule"), "{message}");
    let rules = h.listener_rules(&listener_arn).await;
    assert!(rules.iter().any(|r| r.rule_arn() == Some(wildcard_arn.as_str())), "the tenant's rule is left alone");
}

/// A run that ends where no Catch sees it (here stopped by hand; on AWS also a timeout of the whole
/// run or its history limit) is reported by the platform, and the app does not stay PROVISIONING: what
/// the run made is removed and the app is FAILED, saying how the run ended.
#[tokio::test]
async fn a_provisioning_run_stopped_behind_portculliss_back_fails_the_app_and_leaves_nothing() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let token = tenant.admin.clone();
    let WaitingApp { id, certificate_arn, .. } = h.app_waiting_for_its_target(&tenant, "stopped").await;

    h.stop_execution("provision", &id).await;

    let failed = h.app_until(&token, &id, "FAILED", |app| app["status"] != "PROVISIONING").await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert_eq!(failed["error"]["code"], "WorkflowAborted", "{failed}");
    assert_eq!(failed["error"]["step"], "ENVIRONMENT", "{failed}");
    let message = failed["error"]["message"].as_str().unwrap();
    assert!(message.contains("ended ABORTED outside its error handling"), "{message}");
    let described = h.aws.acm.describe_certificate().certificate_arn(&certificate_arn).send().await;
    let not_found = described.expect_err("the certificate is deleted").into_service_error();
    assert!(not_found.is_resource_not_found_exception(), "{not_found:?}");

    // The app can be deleted as any FAILED app.
    let reply = h.call(Method::DELETE, &format!("/apps/{id}"), Some(&token), None).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let gone = h.app_until(&token, &id, "DELETED", |app| app["status"] == "DELETED").await;
    assert_eq!(gone["status"], "DELETED");
}

#[tokio::test]
async fn an_unknown_beanstalk_environment_fails_at_the_environment_step() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let token = tenant.admin.clone();
    let target = json!({"type": "elasticbeanstalk", "environmentName": format!("nope-{}", short_id())});
    let target = h.grant(&tenant, target).await;
    let body = json!({"name": "Ghost", "domain": fresh_domain("ghost"), "target": target});
    let id = create_app(&h, &token, &body).await["id"].as_str().unwrap().to_string();
    let failed = h.app_until(&token, &id, "FAILED", |app| app["status"] != "PROVISIONING").await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert_eq!(failed["error"]["step"], "ENVIRONMENT");
    assert_eq!(failed["error"]["code"], "InvalidTarget");
    assert!(failed["error"]["message"].as_str().unwrap().contains("no Elastic Beanstalk environment"), "{failed}");
}

#[tokio::test]
async fn a_rule_for_the_host_that_portcullis_did_not_make_is_refused_and_left_alone() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let token = tenant.admin.clone();
    let domain = fresh_domain("shadowed");
    let target = h.alb_target(&tenant).await;
    let group_arn = target["targetGroupArn"].as_str().unwrap().to_string();
    let id = create_app(&h, &token, &json!({"name": "Shadowed", "domain": domain, "target": target})).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Someone routes the host straight to the app, without a login, while provisioning runs.
    let priority = 40_000 + (u32::from_str_radix(&short_id()[..4], 16).unwrap() % 9_000) as i32;
    let foreign = h
        .aws
        .elb
        .create_rule()
        .listener_arn(&h.stack.listener_arn)
        .priority(priority)
        .conditions(
            aws_sdk_elasticloadbalancingv2::types::RuleCondition::builder()
                .field("host-header")
                .host_header_config(
                    aws_sdk_elasticloadbalancingv2::types::HostHeaderConditionConfig::builder().values(&domain).build(),
                )
                .build(),
        )
        .actions(
            aws_sdk_elasticloadbalancingv2::types::Action::builder()
                .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
                .target_group_arn(&group_arn)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let foreign_arn = foreign.rules()[0].rule_arn().unwrap().to_string();

    let failed = h.app_until(&token, &id, "FAILED", |app| app["status"] != "PROVISIONING").await;
    assert_eq!(failed["status"], "FAILED", "the app must not be ACTIVE behind a rule without login: {failed}");
    assert_eq!(failed["error"]["step"], "LISTENER", "{failed}");
    assert_eq!(failed["error"]["code"], "InvalidTarget", "{failed}");
    assert!(failed["error"]["message"].as_str().unwrap().contains(&foreign_arn), "{failed}");

    // The foreign rule is untouched and is the only one for the host.
    let rules = h.listener_rules(&h.stack.listener_arn).await;
    let for_host = rule_for_host(&rules, &domain);
    assert_eq!(for_host.len(), 1);
    assert_eq!(for_host[0].rule_arn(), Some(foreign_arn.as_str()));
    h.aws.elb.delete_rule().rule_arn(&foreign_arn).send().await.unwrap();
}

#[tokio::test]
async fn a_listener_at_the_alb_rule_quota_fails_the_app_with_quota_exceeded() {
    use aws_sdk_elasticloadbalancingv2::types::{
        Action, ActionTypeEnum, FixedResponseActionConfig, PathPatternConditionConfig, RuleCondition,
    };
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let token = tenant.admin.clone();
    let elb = &h.aws.elb;

    // A load balancer of its own whose HTTPS listener already holds 100 rules.
    let lb_arn = h.load_balancer("full", &[]).await;
    let not_found = || {
        Action::builder()
            .r#type(ActionTypeEnum::FixedResponse)
            .fixed_response_config(FixedResponseActionConfig::builder().status_code("404").build())
            .build()
    };
    let listener_arn = h.https_listener(&lb_arn, not_found()).await;
    let certificates_before = h.listener_certificates(&listener_arn).await;
    for priority in 1..=100 {
        elb.create_rule()
            .listener_arn(&listener_arn)
            .priority(priority)
            .conditions(
                RuleCondition::builder()
                    .field("path-pattern")
                    .path_pattern_config(PathPatternConditionConfig::builder().values(format!("/r{priority}")).build())
                    .build(),
            )
            .actions(not_found())
            .send()
            .await
            .unwrap();
    }
    // A healthy target group, so provisioning gets as far as the listener.
    let group_arn = h.target_group("full", true).await;

    let domain = fresh_domain("full");
    let target = json!({"type": "alb", "listenerArn": listener_arn, "targetGroupArn": group_arn});
    let target = h.grant(&tenant, target).await;
    let id = create_app(&h, &token, &json!({"name": "Full", "domain": domain, "target": target})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let failed = h.app_until(&token, &id, "FAILED", |app| app["status"] != "PROVISIONING").await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert_eq!(failed["error"]["step"], "LISTENER", "{failed}");
    assert_eq!(failed["error"]["code"], "QuotaExceeded", "{failed}");
    assert!(failed["error"]["message"].as_str().unwrap().contains("100 rules"), "{failed}");

    // Compensation took the certificate back off the listener and added no rule.
    assert_eq!(h.listener_certificates(&listener_arn).await, certificates_before);
    assert_eq!(h.listener_rules(&listener_arn).await.iter().filter(|r| r.priority() != Some("default")).count(), 100);
}

#[tokio::test]
async fn a_listener_that_does_not_exist_fails_at_the_environment_step() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let token = tenant.admin.clone();
    let missing = h.stack.listener_arn.rsplit_once('/').map(|(head, _)| format!("{head}/0123456789abcdef")).unwrap();
    let group_arn = h.target_group("lost", true).await;
    let target = h.grant(&tenant, json!({"type": "alb", "listenerArn": missing, "targetGroupArn": group_arn})).await;
    let id =
        create_app(&h, &token, &json!({"name": "Lost", "domain": fresh_domain("lost"), "target": target})).await["id"]
            .as_str()
            .unwrap()
            .to_string();
    let failed = h.app_until(&token, &id, "FAILED", |app| app["status"] != "PROVISIONING").await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert_eq!(failed["error"]["step"], "ENVIRONMENT", "{failed}");
    assert_eq!(failed["error"]["code"], "InvalidTarget", "{failed}");
    assert!(failed["error"]["message"].as_str().unwrap().contains("does not exist"), "{failed}");
}
