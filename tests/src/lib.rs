//! Harness for the black-box tests: the running local stack (from `PORTCULLIS_STACK_FILE`, written by
//! `make test` / `make dev`), AWS SDK clients pointed at its emulator, operator tokens, the API over
//! HTTP, and polling with deadlines.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_cognitoidentityprovider::types::{AttributeType, AuthFlowType};
use aws_sdk_elasticloadbalancingv2::types as elbv2;
use serde::Deserialize;
use serde_json::Value;

/// What `.local/stack.json` says about the running stack.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stack {
    pub api_url: String,
    pub aws_endpoint: String,
    pub listener_arn: String,
    pub target_group_arn: String,
    pub user_pool_id: String,
    pub user_pool_client_id: String,
}

/// The password the tests give the operators they create (local emulator only).
pub const TEST_PASSWORD: &str = "Test-password-1!";

impl Stack {
    /// Reads the stack file; fails with a hint when no stack runs.
    pub fn load() -> Stack {
        let path = std::env::var("PORTCULLIS_STACK_FILE")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../.local/stack.json").to_string());
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("no local stack ({path}: {e}); run the tests with `make test`"));
        serde_json::from_str(&text).expect("stack.json has the expected keys")
    }

    /// AWS configuration that talks to the stack's emulator.
    pub async fn aws(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.aws_endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sfn::config::Credentials::new("local", "local", None, None, "tests"))
            .load()
            .await
    }
}

/// The SDK clients the tests assert AWS state with.
pub struct Aws {
    pub acm: aws_sdk_acm::Client,
    pub cognito: aws_sdk_cognitoidentityprovider::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub eb: aws_sdk_elasticbeanstalk::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub route53: aws_sdk_route53::Client,
    pub sfn: aws_sdk_sfn::Client,
}

/// The stack, its AWS clients and an HTTP client for the API.
pub struct Harness {
    pub stack: Stack,
    pub aws: Aws,
    pub http: reqwest::Client,
}

impl Harness {
    pub async fn new() -> Harness {
        let stack = Stack::load();
        let config = stack.aws().await;
        let aws = Aws {
            acm: aws_sdk_acm::Client::new(&config),
            cognito: aws_sdk_cognitoidentityprovider::Client::new(&config),
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            eb: aws_sdk_elasticbeanstalk::Client::new(&config),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&config),
            route53: aws_sdk_route53::Client::new(&config),
            sfn: aws_sdk_sfn::Client::new(&config),
        };
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("http client");
        Harness { stack, aws, http }
    }

    /// An ID token for a user of the operators' pool.
    pub async fn token_for(&self, email: &str, password: &str) -> String {
        self.login(email, password).await.id_token().expect("an ID token").to_string()
    }

    /// Signs a user of the operators' pool in (ADMIN_USER_PASSWORD_AUTH).
    pub async fn login(
        &self,
        email: &str,
        password: &str,
    ) -> aws_sdk_cognitoidentityprovider::types::AuthenticationResultType {
        self.sign_in(&self.stack.user_pool_id, &self.stack.user_pool_client_id, email, password).await
    }

    /// Signs a user in to `pool` through its app client `client` (user name and password, as an admin).
    pub async fn sign_in(
        &self,
        pool: &str,
        client: &str,
        email: &str,
        password: &str,
    ) -> aws_sdk_cognitoidentityprovider::types::AuthenticationResultType {
        let out = self
            .aws
            .cognito
            .admin_initiate_auth()
            .user_pool_id(pool)
            .client_id(client)
            .auth_flow(AuthFlowType::AdminUserPasswordAuth)
            .auth_parameters("USERNAME", email)
            .auth_parameters("PASSWORD", password)
            .send()
            .await
            .expect("admin_initiate_auth");
        out.authentication_result.expect("an authentication result")
    }

    /// Creates an operator (optional tenant and group) and returns an ID token for them.
    pub async fn operator(&self, tenant: Option<&str>, group: Option<&str>) -> String {
        let email = self.operator_email(tenant, group).await;
        self.token_for(&email, TEST_PASSWORD).await
    }

    /// Creates an operator (optional tenant and group) with a fresh email and `TEST_PASSWORD`.
    pub async fn operator_email(&self, tenant: Option<&str>, group: Option<&str>) -> String {
        let email = format!("op-{}@tests.test", short_id());
        let cognito = &self.aws.cognito;
        let mut create = cognito
            .admin_create_user()
            .user_pool_id(&self.stack.user_pool_id)
            .username(&email)
            .message_action(aws_sdk_cognitoidentityprovider::types::MessageActionType::Suppress)
            .user_attributes(AttributeType::builder().name("email").value(&email).build().unwrap())
            .user_attributes(AttributeType::builder().name("email_verified").value("true").build().unwrap());
        if let Some(tenant) = tenant {
            create =
                create.user_attributes(AttributeType::builder().name("custom:tenant").value(tenant).build().unwrap());
        }
        create.send().await.expect("admin_create_user");
        cognito
            .admin_set_user_password()
            .user_pool_id(&self.stack.user_pool_id)
            .username(&email)
            .password(TEST_PASSWORD)
            .permanent(true)
            .send()
            .await
            .expect("admin_set_user_password");
        if let Some(group) = group {
            cognito
                .admin_add_user_to_group()
                .user_pool_id(&self.stack.user_pool_id)
                .username(&email)
                .group_name(group)
                .send()
                .await
                .expect("admin_add_user_to_group");
        }
        email
    }

    /// Trades a service token's client id and secret (`created`, the answer of `POST
    /// /tenant/service-tokens`) at its token URL, as a script would: the status and the JSON answer.
    pub async fn exchange(&self, created: &Value) -> (u16, Value) {
        let answer = self
            .http
            .post(created["tokenUrl"].as_str().expect("a tokenUrl"))
            .basic_auth(created["clientId"].as_str().unwrap(), created["clientSecret"].as_str())
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("the token endpoint answers");
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or(Value::Null))
    }

    /// A service token's access token, from the credentials `created`.
    pub async fn access_token(&self, created: &Value) -> String {
        let (status, body) = self.exchange(created).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().expect("an access_token").to_string()
    }

    /// A new service token of the admin's tenant with `scopes`: its credentials, and an access token.
    pub async fn service_token(&self, admin: &str, scopes: &[&str]) -> (Value, String) {
        let body = serde_json::json!({"name": format!("token-{}", short_id()), "scopes": scopes});
        let created = self.call(reqwest::Method::POST, "/tenant/service-tokens", Some(admin), Some(&body)).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let token = self.access_token(&created.body).await;
        (created.body, token)
    }

    /// Calls the API; returns the status, the content type and the body (JSON, or Null when empty).
    pub async fn call(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: Option<&Value>) -> Reply {
        let mut request = self.http.request(method, format!("{}{}", self.stack.api_url, path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("the API answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text.clone()))
        };
        Reply { status, headers, text, body }
    }
}

/// A tenant registered for one test: allowed every host under demo.test, granted the targets the test
/// asked for, perhaps with a hosted zone, with an admin's token.
pub struct TestTenant {
    pub id: String,
    pub admin: String,
    pub admin_email: String,
    /// The hosted zone its registration names, if any.
    pub hosted_zone: Option<String>,
    targets: tokio::sync::Mutex<Vec<Value>>,
}

impl Harness {
    /// Every item of a paged listing (`items`, `nextToken`), page after page.
    pub async fn all_pages(&self, path: &str, token: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut next: Option<String> = None;
        let separator = if path.contains('?') { '&' } else { '?' };
        loop {
            let page = match &next {
                Some(t) => format!("{path}{separator}limit=100&nextToken={}", urlencode(t)),
                None => format!("{path}{separator}limit=100"),
            };
            let reply = self.call(reqwest::Method::GET, &page, Some(token), None).await;
            assert_eq!(reply.status, 200, "{page}: {}", reply.text);
            items.extend(reply.body["items"].as_array().cloned().unwrap_or_default());
            match reply.body["nextToken"].as_str() {
                Some(t) => next = Some(t.to_string()),
                None => return items,
            }
        }
    }

    /// A platform operator's token.
    pub async fn platform(&self) -> String {
        self.operator(None, Some("platform")).await
    }

    /// Registers a fresh tenant (allowed `*.demo.test`, no targets yet) and signs in an admin of it.
    pub async fn tenant(&self) -> TestTenant {
        self.tenant_with_id(&format!("t-{}", short_id())).await
    }

    /// Registers the tenant `id` (allowed `*.demo.test`, no targets yet) and signs in an admin of it.
    pub async fn tenant_with_id(&self, id: &str) -> TestTenant {
        self.registered_tenant(id, None).await
    }

    /// Registers a fresh tenant (allowed `*.demo.test`, no targets yet) whose registration names the hosted
    /// zone `zone_id`, as a platform operator sets it, and signs in an admin of it.
    pub async fn tenant_in_zone(&self, zone_id: &str) -> TestTenant {
        self.registered_tenant(&format!("t-{}", short_id()), Some(zone_id)).await
    }

    async fn registered_tenant(&self, id: &str, hosted_zone: Option<&str>) -> TestTenant {
        self.register_in_zone(id, &[], hosted_zone).await;
        let admin_email = self.operator_email(Some(id), Some("admin")).await;
        let admin = self.token_for(&admin_email, TEST_PASSWORD).await;
        let targets = tokio::sync::Mutex::new(Vec::new());
        TestTenant { id: id.to_string(), admin, admin_email, hosted_zone: hosted_zone.map(str::to_string), targets }
    }

    /// How the audit trail names an operator: their `sub`, and their (verified) email.
    pub async fn actor(&self, email: &str) -> String {
        let user =
            self.aws.cognito.admin_get_user().user_pool_id(&self.stack.user_pool_id).username(email).send().await;
        let user = user.expect("admin_get_user");
        let sub = user.user_attributes().iter().find(|a| a.name() == "sub").and_then(|a| a.value()).expect("a sub");
        format!("{sub} ({email})")
    }

    /// Registers (or re-registers) a tenant with these grants, as a platform operator.
    pub async fn register(&self, tenant_id: &str, targets: &[Value]) -> Value {
        self.register_in_zone(tenant_id, targets, None).await
    }

    /// Registers (or re-registers) a tenant with these grants and hosted zone, as a platform operator.
    pub async fn register_in_zone(&self, tenant_id: &str, targets: &[Value], hosted_zone: Option<&str>) -> Value {
        let mut body = serde_json::json!({"allowedDomains": ["*.demo.test"], "targets": targets});
        if let Some(zone) = hosted_zone {
            body["hostedZoneId"] = zone.into();
        }
        let path = format!("/tenants/{tenant_id}");
        let reply = self.call(reqwest::Method::PUT, &path, Some(&self.platform().await), Some(&body)).await;
        assert_eq!(reply.status, 200, "registering {tenant_id}: {}", reply.text);
        reply.body
    }

    /// Grants the tenant one more target (its id is made up) and returns it as `POST /apps` takes it.
    pub async fn grant(&self, tenant: &TestTenant, target: Value) -> Value {
        let mut targets = tenant.targets.lock().await;
        let mut granted = target.clone();
        granted["id"] = Value::String(format!("target-{}", short_id()));
        targets.push(granted);
        self.register_in_zone(&tenant.id, &targets, tenant.hosted_zone.as_deref()).await;
        target
    }

    /// A fresh target group with a healthy target on the demo listener, granted to the tenant: an app of
    /// its own (every app needs a target group no other route reaches).
    pub async fn alb_target(&self, tenant: &TestTenant) -> Value {
        let group = self.target_group("app", true).await;
        let target =
            serde_json::json!({"type": "alb", "listenerArn": self.stack.listener_arn, "targetGroupArn": group});
        self.grant(tenant, target).await
    }

    /// Creates an app on a target of its own and waits until it is ACTIVE; returns its body.
    pub async fn active_app(&self, tenant: &TestTenant, name: &str) -> Value {
        let target = self.alb_target(tenant).await;
        self.active_app_on(tenant, name, target, serde_json::json!({})).await
    }

    /// As `active_app`, with these fields added to the create request, on a listener of its own: the
    /// demo listener's 25 certificates are shared by the whole suite.
    pub async fn active_app_with(&self, tenant: &TestTenant, name: &str, fields: Value) -> Value {
        let listener = self.listener_of_its_own().await;
        let target = self.alb_targets_on(tenant, &listener, 1).await.remove(0);
        self.active_app_on(tenant, name, target, fields).await
    }

    /// Creates an app on `target` with these fields added, and waits until it is ACTIVE.
    async fn active_app_on(&self, tenant: &TestTenant, name: &str, target: Value, fields: Value) -> Value {
        let mut body = serde_json::json!({"name": name, "domain": fresh_domain("app"), "target": target});
        body.as_object_mut().unwrap().extend(fields.as_object().cloned().unwrap_or_default());
        let token = tenant.admin.as_str();
        let created = self.call(reqwest::Method::POST, "/apps", Some(token), Some(&body)).await;
        assert_eq!(created.status, 202, "{}", created.text);
        let id = created.body["id"].as_str().expect("an id").to_string();
        let app = self.app_until(token, &id, "ACTIVE", |app| app["status"] != "PROVISIONING").await;
        assert_eq!(app["status"], "ACTIVE", "{app}");
        app
    }

    /// Polls `GET /apps/{id}` until `done` holds.
    pub async fn app_until(&self, token: &str, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        eventually(what, PROVISIONING_DEADLINE, || async {
            let reply = self.call(reqwest::Method::GET, &format!("/apps/{id}"), Some(token), None).await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            done(&reply.body).then_some(reply.body)
        })
        .await
    }

    /// The users of an app pool with this email.
    pub async fn users_with_email(
        &self,
        pool: &str,
        email: &str,
    ) -> Vec<aws_sdk_cognitoidentityprovider::types::UserType> {
        let found =
            self.aws.cognito.list_users().user_pool_id(pool).filter(format!("email = \"{email}\"")).send().await;
        found.expect("list_users").users.unwrap_or_default()
    }

    /// An app of `tenant` that waits at ENVIRONMENT with its certificate made: its target group has no
    /// targets, so it never becomes healthy.
    pub async fn app_waiting_for_its_target(&self, tenant: &TestTenant, label: &str) -> WaitingApp {
        let token = tenant.admin.as_str();
        let target = serde_json::json!({"type": "alb", "listenerArn": self.stack.listener_arn,
            "targetGroupArn": self.target_group("empty", false).await});
        let target = self.grant(tenant, target).await;
        let domain = fresh_domain(label);
        let body = serde_json::json!({"name": "Tool", "domain": domain, "target": target});
        let created = self.call(reqwest::Method::POST, "/apps", Some(token), Some(&body)).await;
        assert_eq!(created.status, 202, "{}", created.text);
        let id = created.body["id"].as_str().unwrap().to_string();
        let waiting = self
            .app_until(token, &id, "the ENVIRONMENT step", |app| {
                app["step"] == "ENVIRONMENT" || app["status"] != "PROVISIONING"
            })
            .await;
        assert_eq!(waiting["status"], "PROVISIONING", "{waiting}");
        let certificate_arn = waiting["certificate"]["arn"].as_str().expect("a certificate").to_string();
        WaitingApp { id, domain, certificate_arn }
    }

    /// The status Step Functions describes for the execution `name` of `portcullis-<machine>`
    /// (`provision`, `deprovision`): `RUNNING`, `ABORTED`, …; `None` if there is no such execution.
    pub async fn execution_status(&self, machine: &str, name: &str) -> Option<String> {
        let arn = self.execution_arn(machine, name).await?;
        let described = self.aws.sfn.describe_execution().execution_arn(arn).send().await;
        Some(described.expect("describe_execution").status().as_str().to_string())
    }

    /// Stops the execution `name` of `portcullis-<machine>` behind Portcullis's back, as someone in the
    /// console would: the run ends ABORTED, and no Catch of it runs.
    pub async fn stop_execution(&self, machine: &str, name: &str) {
        let arn = self.execution_arn(machine, name).await.expect("the execution to stop");
        self.aws
            .sfn
            .stop_execution()
            .execution_arn(arn)
            .cause("stopped by a test")
            .send()
            .await
            .expect("stop_execution");
    }

    async fn execution_arn(&self, machine: &str, name: &str) -> Option<String> {
        let sfn = &self.aws.sfn;
        let machines = sfn.list_state_machines().send().await.expect("list_state_machines");
        let machine_name = format!("portcullis-{machine}");
        let machine = machines.state_machines().iter().find(|m| m.name() == machine_name).expect("the machine");
        let mut executions =
            sfn.list_executions().state_machine_arn(machine.state_machine_arn()).into_paginator().items().send();
        while let Some(execution) = executions.next().await {
            let execution = execution.expect("list_executions");
            if execution.name() == name {
                return Some(execution.execution_arn().to_string());
            }
        }
        None
    }

    /// Sets an app's status straight in the table, behind the API's back: for states a test cannot
    /// reach through the API, such as a deletion whose workflow never started.
    pub async fn force_status(&self, tenant_id: &str, app_id: &str, status: &str) {
        use aws_sdk_dynamodb::types::AttributeValue;
        self.aws
            .dynamodb
            .update_item()
            .table_name(TABLE_NAME)
            .key("pk", AttributeValue::S(format!("TENANT#{tenant_id}")))
            .key("sk", AttributeValue::S(format!("APP#{app_id}")))
            .update_expression("SET #status = :status")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", AttributeValue::S(status.to_string()))
            .send()
            .await
            .expect("update_item");
    }

    /// A Cognito user's current password, from the local emulator's test-only inspection route
    /// (local/portcullis_local/inspection.py), so tests can prove a temporary password never shows up
    /// where it must not.
    pub async fn emulator_password(&self, user_pool_id: &str, username: &str) -> Option<String> {
        let url = format!("{}/_portcullis/cognito/password", self.stack.aws_endpoint);
        let answer = self.http.get(url).query(&[("userPoolId", user_pool_id), ("username", username)]).send().await;
        let body: Value = answer.ok()?.error_for_status().ok()?.json().await.ok()?;
        body["password"].as_str().map(str::to_string)
    }

    /// What the stack's functions have logged so far (the `stack.log` beside the stack file), if captured.
    pub fn captured_log(&self) -> Option<String> {
        let stack_file = std::env::var("PORTCULLIS_STACK_FILE").ok()?;
        std::fs::read_to_string(std::path::Path::new(&stack_file).with_file_name("stack.log")).ok()
    }
}

/// Load balancer scaffolding beside the demo ALB, for tests that need a listener or target group of
/// their own.
impl Harness {
    /// A new ALB in the demo ALB's subnets, with optional tags; returns its ARN.
    pub async fn load_balancer(&self, name_prefix: &str, tags: &[(&str, &str)]) -> String {
        let elb = &self.aws.elb;
        let demo = self.demo_listener().await;
        let demo_lb =
            elb.describe_load_balancers().load_balancer_arns(demo.load_balancer_arn().unwrap()).send().await.unwrap();
        let subnets: Vec<String> = demo_lb.load_balancers()[0]
            .availability_zones()
            .iter()
            .filter_map(|z| z.subnet_id().map(str::to_string))
            .collect();
        let tags = tags.iter().map(|(k, v)| elbv2::Tag::builder().key(*k).value(*v).build()).collect();
        let lb = elb
            .create_load_balancer()
            .name(format!("{name_prefix}-{}", short_id()))
            .set_subnets(Some(subnets))
            .set_tags(Some(tags))
            .send()
            .await
            .unwrap();
        lb.load_balancers()[0].load_balancer_arn().unwrap().to_string()
    }

    /// An HTTPS:443 listener on `load_balancer_arn` with the demo listener's certificate; returns its ARN.
    pub async fn https_listener(&self, load_balancer_arn: &str, default_action: elbv2::Action) -> String {
        let certificate = self.demo_listener().await.certificates()[0].clone();
        self.listener(load_balancer_arn, elbv2::ProtocolEnum::Https, 443, Some(certificate), default_action).await
    }

    /// A plain HTTP:80 listener on `load_balancer_arn`; returns its ARN.
    pub async fn http_listener(&self, load_balancer_arn: &str, default_action: elbv2::Action) -> String {
        self.listener(load_balancer_arn, elbv2::ProtocolEnum::Http, 80, None, default_action).await
    }

    async fn listener(
        &self,
        load_balancer_arn: &str,
        protocol: elbv2::ProtocolEnum,
        port: i32,
        certificate: Option<elbv2::Certificate>,
        default_action: elbv2::Action,
    ) -> String {
        let listener = self
            .aws
            .elb
            .create_listener()
            .load_balancer_arn(load_balancer_arn)
            .protocol(protocol)
            .port(port)
            .set_certificates(certificate.map(|c| vec![c]))
            .default_actions(default_action)
            .send()
            .await
            .unwrap();
        listener.listeners()[0].listener_arn().unwrap().to_string()
    }

    /// The listener's default actions, as the load balancer has them now.
    pub async fn default_actions(&self, listener_arn: &str) -> Vec<elbv2::Action> {
        let out = self.aws.elb.describe_listeners().listener_arns(listener_arn).send().await.unwrap();
        out.listeners()[0].default_actions().to_vec()
    }

    /// A target group in the demo VPC; `healthy` registers the demo app's (healthy) instance in it.
    pub async fn target_group(&self, name_prefix: &str, healthy: bool) -> String {
        let elb = &self.aws.elb;
        let demo = elb.describe_target_groups().target_group_arns(&self.stack.target_group_arn).send().await.unwrap();
        let group = elb
            .create_target_group()
            .name(format!("{name_prefix}-{}", short_id()))
            .protocol(elbv2::ProtocolEnum::Http)
            .port(80)
            .vpc_id(demo.target_groups()[0].vpc_id().unwrap())
            .send()
            .await
            .unwrap();
        let group_arn = group.target_groups()[0].target_group_arn().unwrap().to_string();
        if healthy {
            self.make_healthy(&group_arn).await;
        }
        group_arn
    }

    /// Every rule on the listener, all pages.
    pub async fn listener_rules(&self, listener: &str) -> Vec<elbv2::Rule> {
        let mut rules = Vec::new();
        let mut marker = None;
        loop {
            let page = self.aws.elb.describe_rules().listener_arn(listener).set_marker(marker).send().await.unwrap();
            rules.extend(page.rules().iter().cloned());
            match page.next_marker() {
                Some(next) if !next.is_empty() => marker = Some(next.to_string()),
                _ => return rules,
            }
        }
    }

    /// The ARNs of the certificates attached to the listener.
    pub async fn listener_certificates(&self, listener: &str) -> Vec<String> {
        let out = self.aws.elb.describe_listener_certificates().listener_arn(listener).send().await;
        let out = out.expect("certificates");
        out.certificates().iter().filter_map(|c| c.certificate_arn().map(str::to_string)).collect()
    }

    /// The ids of the user pools whose name carries the app id (Portcullis names an app's pool so).
    pub async fn user_pools_of(&self, app_id: &str) -> Vec<String> {
        let mut pools = self.aws.cognito.list_user_pools().max_results(60).into_paginator().items().send();
        let mut ids = Vec::new();
        while let Some(pool) = pools.next().await {
            let pool = pool.expect("list_user_pools");
            if pool.name().is_some_and(|name| name.contains(app_id)) {
                ids.extend(pool.id().map(str::to_string));
            }
        }
        ids
    }

    async fn demo_listener(&self) -> elbv2::Listener {
        let out = self.aws.elb.describe_listeners().listener_arns(&self.stack.listener_arn).send().await.unwrap();
        out.listeners()[0].clone()
    }
}

/// Route 53 scaffolding: hosted zones the tests make in the emulator, as a platform operator would have
/// them before naming one in a tenant's registration.
impl Harness {
    /// A new public hosted zone named `name`; returns its id (`Z…`, as a registration names it).
    pub async fn hosted_zone(&self, name: &str) -> String {
        let out = self
            .aws
            .route53
            .create_hosted_zone()
            .name(name)
            .caller_reference(uuid::Uuid::new_v4().to_string())
            .send()
            .await
            .expect("create_hosted_zone");
        let id = out.hosted_zone().expect("a hosted zone").id();
        id.trim_start_matches("/hostedzone/").to_string()
    }

    /// The records of the zone at exactly `name` (any type).
    pub async fn records_at(&self, zone_id: &str, name: &str) -> Vec<aws_sdk_route53::types::ResourceRecordSet> {
        let out = self.aws.route53.list_resource_record_sets().hosted_zone_id(zone_id).send().await;
        let out = out.expect("list_resource_record_sets");
        let wanted = name.trim_end_matches('.');
        out.resource_record_sets()
            .iter()
            .filter(|set| set.name().trim_end_matches('.').eq_ignore_ascii_case(wanted))
            .cloned()
            .collect()
    }
}

/// The local stack's table (`TABLE_NAME` in local/portcullis_local/constants.py).
pub const TABLE_NAME: &str = "portcullis";

/// How long provisioning may take locally before a test gives up.
pub const PROVISIONING_DEADLINE: Duration = Duration::from_secs(120);

/// An API answer.
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Reply {
    pub fn content_type(&self) -> &str {
        self.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// Asserts a problem+json answer with this status and returns its detail.
    #[track_caller]
    pub fn assert_problem(&self, status: u16) -> String {
        assert_eq!(self.status, status, "expected {status}, got {}: {}", self.status, self.text);
        assert_eq!(self.content_type(), "application/problem+json", "{}", self.text);
        assert_eq!(self.body["status"], status);
        assert!(self.body["title"].is_string() && self.body["type"].is_string(), "{}", self.text);
        let detail = self.body["detail"].as_str().unwrap_or_default().to_string();
        assert!(!detail.is_empty(), "a problem needs a useful detail: {}", self.text);
        detail
    }
}

/// An app provisioning, waiting for its target: what it made so far.
pub struct WaitingApp {
    pub id: String,
    pub domain: String,
    pub certificate_arn: String,
}

/// The rules among `rules` that match `host`.
pub fn rule_for_host<'a>(rules: &'a [elbv2::Rule], host: &str) -> Vec<&'a elbv2::Rule> {
    rules
        .iter()
        .filter(|r| {
            r.conditions().iter().any(|c| {
                c.host_header_config().is_some_and(|h| h.values().iter().any(|v| v == host))
                    || c.values().iter().any(|v| v == host)
            })
        })
        .collect()
}

/// 8 random hex characters, for unique names.
/// A query value as a URL carries it: page tokens are base64 and may hold '+', '/' and '='.
pub fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// A fresh host name under the demo zone.
pub fn fresh_domain(prefix: &str) -> String {
    format!("{prefix}-{}.demo.test", short_id())
}

/// Polls `check` until it returns `Some`, failing after `deadline` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    let mut interval = Duration::from_millis(100);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(interval).await;
        interval = (interval * 2).min(Duration::from_secs(1));
    }
}

/// A plain forward to one target group, as a listener default or rule action.
pub fn forward(target_group_arn: &str) -> elbv2::Action {
    elbv2::Action::builder().r#type(elbv2::ActionTypeEnum::Forward).target_group_arn(target_group_arn).build()
}

/// What a step that died after AWS made something, before Portcullis recorded it, leaves behind: made
/// here with the real SDK, carrying the app's tag and name as Portcullis gives them, and not recorded.
impl Harness {
    /// Registers the demo app's (healthy) instance in the target group.
    pub async fn make_healthy(&self, target_group_arn: &str) {
        let elb = &self.aws.elb;
        let health = elb.describe_target_health().target_group_arn(&self.stack.target_group_arn).send().await;
        let health = health.unwrap();
        let instance = health.target_health_descriptions()[0].target().unwrap().id().unwrap().to_string();
        elb.register_targets()
            .target_group_arn(target_group_arn)
            .targets(elbv2::TargetDescription::builder().id(instance).build())
            .send()
            .await
            .unwrap();
    }

    /// A user pool named and tagged for the app, as CreateUserPool leaves it; returns its id.
    pub async fn orphan_pool(&self, app_name: &str, app_id: &str) -> String {
        let name = format!("portcullis-{}-{app_id}", app_name.replace(' ', "-"));
        let out = self.aws.cognito.create_user_pool().pool_name(name).user_pool_tags(APP_ID_TAG, app_id).send().await;
        out.expect("create_user_pool").user_pool().unwrap().id().unwrap().to_string()
    }

    /// A certificate for the domain tagged with the app id, as RequestCertificate leaves it (with another
    /// idempotency token: a request more than an hour ago); returns its ARN.
    pub async fn orphan_certificate(&self, domain: &str, app_id: &str) -> String {
        let tag = aws_sdk_acm::types::Tag::builder().key(APP_ID_TAG).value(app_id).build().unwrap();
        let out = self
            .aws
            .acm
            .request_certificate()
            .domain_name(domain)
            .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
            .tags(tag)
            .send()
            .await;
        out.expect("request_certificate").certificate_arn().unwrap().to_string()
    }

    /// A rule for the host on the demo listener tagged with the app id, as CreateRule leaves it (here
    /// answering 503, so it routes nothing); returns its ARN.
    pub async fn orphan_rule(&self, host: &str, app_id: &str) -> String {
        let taken: Vec<u32> = self
            .listener_rules(&self.stack.listener_arn)
            .await
            .iter()
            .filter_map(|r| r.priority()?.parse().ok())
            .collect();
        let priority = (40_000..50_000).find(|p| !taken.contains(p)).unwrap();
        let answer = elbv2::FixedResponseActionConfig::builder().status_code("503").build();
        let out = self
            .aws
            .elb
            .create_rule()
            .listener_arn(&self.stack.listener_arn)
            .priority(priority as i32)
            .conditions(
                elbv2::RuleCondition::builder()
                    .field("host-header")
                    .host_header_config(elbv2::HostHeaderConditionConfig::builder().values(host).build())
                    .build(),
            )
            .actions(
                elbv2::Action::builder()
                    .r#type(elbv2::ActionTypeEnum::FixedResponse)
                    .fixed_response_config(answer)
                    .build(),
            )
            .tags(elbv2::Tag::builder().key(APP_ID_TAG).value(app_id).build())
            .send()
            .await;
        out.expect("create_rule").rules()[0].rule_arn().unwrap().to_string()
    }

    /// Everything at the emulator that carries the app's id: rules on the demo listener and certificates
    /// for the domain tagged with it, and user pools named for it.
    pub async fn carrying_app_id(&self, app_id: &str, domain: &str) -> Vec<String> {
        let mut found = Vec::new();
        for rule in self.listener_rules(&self.stack.listener_arn).await {
            let arn = rule.rule_arn().unwrap().to_string();
            let tags = self.aws.elb.describe_tags().resource_arns(&arn).send().await.expect("describe_tags");
            let tags = tags.tag_descriptions().iter().flat_map(|d| d.tags().to_vec()).collect::<Vec<_>>();
            if tags.iter().any(|t| t.key() == Some(APP_ID_TAG) && t.value() == Some(app_id)) {
                found.push(arn);
            }
        }
        let certificates = self.aws.acm.list_certificates().send().await.expect("list_certificates");
        for summary in certificates.certificate_summary_list().iter().filter(|c| c.domain_name() == Some(domain)) {
            let arn = summary.certificate_arn().unwrap();
            let tags = self.aws.acm.list_tags_for_certificate().certificate_arn(arn).send().await.expect("tags");
            if tags.tags().iter().any(|t| t.key() == APP_ID_TAG && t.value() == Some(app_id)) {
                found.push(arn.to_string());
            }
        }
        found.extend(self.user_pools_of(app_id).await);
        found
    }
}

/// The tag Portcullis puts on everything it makes; its value is the app id.
pub const APP_ID_TAG: &str = "portcullis:app-id";

/// Race scaffolding (tests/tests/races.rs): many callers at once, and what the table and the emulator
/// hold afterwards.
impl Harness {
    /// `POST`s `body` as `token`, with an `Idempotency-Key` when given.
    pub async fn call_with_key(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: &Value,
        key: Option<String>,
    ) -> Reply {
        let mut request = self.http.request(method, format!("{}{}", self.stack.api_url, path)).bearer_auth(token);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.json(body).send().await.expect("the API answers");
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, headers, text, body }
    }

    /// The ids of the app records in the table for `domain`, whatever their tenant or status.
    pub async fn app_records_for_domain(&self, domain: &str) -> Vec<String> {
        use aws_sdk_dynamodb::types::AttributeValue;
        let mut pages = self
            .aws
            .dynamodb
            .scan()
            .table_name(TABLE_NAME)
            .filter_expression("begins_with(sk, :app) AND #domain = :domain")
            .expression_attribute_names("#domain", "domain")
            .expression_attribute_values(":app", AttributeValue::S("APP#".into()))
            .expression_attribute_values(":domain", AttributeValue::S(domain.into()))
            .into_paginator()
            .items()
            .send();
        let mut ids = Vec::new();
        while let Some(item) = pages.next().await {
            let item = item.expect("scan");
            ids.extend(
                item.get("sk").and_then(|sk| sk.as_s().ok()).map(|sk| sk.trim_start_matches("APP#").to_string()),
            );
        }
        ids
    }

    /// The ARNs of the certificates the emulator holds for `domain`.
    pub async fn certificates_for_domain(&self, domain: &str) -> Vec<String> {
        let mut pages = self.aws.acm.list_certificates().into_paginator().items().send();
        let mut arns = Vec::new();
        while let Some(summary) = pages.next().await {
            let summary = summary.expect("list_certificates");
            if summary.domain_name() == Some(domain) {
                arns.extend(summary.certificate_arn().map(str::to_string));
            }
        }
        arns
    }

    /// Moves an invitation's last sending back in time, as if it had been sent `age` ago: the emulator's
    /// pools never expire a temporary password, and a test cannot wait days.
    pub async fn backdate_invitation(&self, app_id: &str, username: &str, age: time::Duration) {
        self.set_invitation_time(app_id, username, "lastSentAt", time::OffsetDateTime::now_utc() - age).await;
    }

    /// Sets when an invited user's access ends, as if the invitation had named that time (a test cannot
    /// wait for one in the future, and the API takes none in the past).
    pub async fn set_access_end(&self, app_id: &str, username: &str, end: time::OffsetDateTime) {
        self.set_invitation_time(app_id, username, "accessExpiresAt", end).await;
    }

    async fn set_invitation_time(&self, app_id: &str, username: &str, attribute: &str, at: time::OffsetDateTime) {
        use aws_sdk_dynamodb::types::AttributeValue;
        let at = at.format(&time::format_description::well_known::Rfc3339).expect("a time");
        self.aws
            .dynamodb
            .update_item()
            .table_name(TABLE_NAME)
            .key("pk", AttributeValue::S(format!("APP#{app_id}")))
            .key("sk", AttributeValue::S(format!("USER#{username}")))
            .update_expression("SET #at = :at")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#at", attribute)
            .expression_attribute_values(":at", AttributeValue::S(at))
            .send()
            .await
            .expect("the invitation is recorded");
    }

    /// Invokes the provisioner as one of the template's schedules does (`{"checkDrift": …}`,
    /// `{"resendInvitations": {}}`), and returns what the job did.
    pub async fn run_scheduled_job(&self, event: Value) -> Value {
        let url = format!("{}/2015-03-31/functions/provisioner/invocations", self.stack.aws_endpoint);
        let reply = self.http.post(url).json(&event).send().await.expect("invoke");
        let failed = reply.headers().contains_key("x-amz-function-error");
        let body: Value = reply.json().await.expect("the job's answer");
        assert!(!failed, "the scheduled job {event} failed: {body}");
        body
    }

    /// The usernames of the invitation records (`APP#id / USER#…`) the table holds for an app.
    pub async fn invitation_records(&self, app_id: &str) -> Vec<String> {
        use aws_sdk_dynamodb::types::AttributeValue;
        let out = self
            .aws
            .dynamodb
            .query()
            .table_name(TABLE_NAME)
            .key_condition_expression("pk = :pk AND begins_with(sk, :user)")
            .expression_attribute_values(":pk", AttributeValue::S(format!("APP#{app_id}")))
            .expression_attribute_values(":user", AttributeValue::S("USER#".into()))
            .send()
            .await
            .expect("query");
        out.items().iter().filter_map(|i| i.get("sk")?.as_s().ok()?.strip_prefix("USER#").map(str::to_string)).collect()
    }

    /// An HTTPS listener on a load balancer of its own, answering 404 by default: a test's rules are then
    /// all that is on it.
    pub async fn listener_of_its_own(&self) -> String {
        let lb = self.load_balancer("races", &[]).await;
        let not_found = elbv2::Action::builder()
            .r#type(elbv2::ActionTypeEnum::FixedResponse)
            .fixed_response_config(elbv2::FixedResponseActionConfig::builder().status_code("404").build())
            .build();
        self.https_listener(&lb, not_found).await
    }

    /// `count` fresh healthy target groups on `listener`, granted to the tenant in one registration;
    /// returned as `POST /apps` takes them.
    pub async fn alb_targets_on(&self, tenant: &TestTenant, listener: &str, count: usize) -> Vec<Value> {
        let mut wanted = Vec::new();
        for _ in 0..count {
            let group = self.target_group("race", true).await;
            wanted.push(serde_json::json!({"type": "alb", "listenerArn": listener, "targetGroupArn": group}));
        }
        let mut targets = tenant.targets.lock().await;
        for target in &wanted {
            let mut granted = target.clone();
            granted["id"] = Value::String(format!("target-{}", short_id()));
            targets.push(granted);
        }
        self.register_in_zone(&tenant.id, &targets, tenant.hosted_zone.as_deref()).await;
        wanted
    }
}

/// Fault injection in the emulator (local/portcullis_local/faults.py, docs/local-stack.md): the next
/// `count` matching AWS calls fail as `kind` says.
impl Harness {
    /// Arms a fault, e.g. `{"action": "elasticloadbalancing:CreateRule", "kind": "throttle", "count": 3,
    /// "caller": "portcullis-provisioner", "match": "<a string the call carries>"}`; returns it with its id.
    pub async fn arm_fault(&self, fault: &Value) -> Value {
        let answer = self.http.post(self.faults_url()).json(fault).send().await.expect("the faults route");
        let status = answer.status();
        let body: Value = answer.json().await.expect("a JSON answer");
        assert_eq!(status, reqwest::StatusCode::CREATED, "arming {fault}: {body}");
        body
    }

    /// Every armed fault, each with how many times it `fired`.
    pub async fn faults(&self) -> Vec<Value> {
        let answer = self.http.get(self.faults_url()).send().await.expect("the faults route");
        let body: Value = answer.json().await.expect("a JSON answer");
        body["faults"].as_array().cloned().unwrap_or_default()
    }

    /// How many times the fault `id` fired.
    pub async fn fault_fired(&self, id: &str) -> u64 {
        let faults = self.faults().await;
        faults.iter().find(|f| f["id"] == id).and_then(|f| f["fired"].as_u64()).unwrap_or(0)
    }

    /// Disarms every fault.
    pub async fn clear_faults(&self) {
        let answer = self.http.delete(self.faults_url()).send().await.expect("the faults route");
        assert_eq!(answer.status(), reqwest::StatusCode::NO_CONTENT);
    }

    fn faults_url(&self) -> String {
        format!("{}/_portcullis/faults", self.stack.aws_endpoint)
    }
}
