//! DNS automation end to end: a tenant whose registration names a hosted zone (made in the emulator's
//! Route 53 by the test, as a platform operator would make it) gets its apps' certificate validation
//! records, and on request their alias records, written there by the provisioning and removed on delete,
//! asserted in the zone itself.

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_route53::types::{ResourceRecordSet, RrType};
use portcullis_e2e::{Harness, TABLE_NAME, TestTenant, forward, rule_for_host, short_id};
use reqwest::Method;
use serde_json::{Value, json};

/// A fresh zone under demo.test (every test tenant may use `*.demo.test`) and its name.
async fn zone(h: &Harness) -> (String, String) {
    let name = format!("z-{}.demo.test", short_id());
    (h.hosted_zone(&name).await, name)
}

async fn create(h: &Harness, tenant: &TestTenant, body: &Value) -> String {
    let reply = h.call(Method::POST, "/apps", Some(&tenant.admin), Some(body)).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    reply.body["id"].as_str().unwrap().to_string()
}

async fn settled(h: &Harness, tenant: &TestTenant, id: &str) -> Value {
    h.app_until(&tenant.admin, id, "the end of provisioning", |app| app["status"] != "PROVISIONING").await
}

async fn delete(h: &Harness, tenant: &TestTenant, id: &str) -> Value {
    let reply = h.call(Method::DELETE, &format!("/apps/{id}"), Some(&tenant.admin), None).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let gone =
        h.app_until(&tenant.admin, id, "DELETED", |app| app["status"] == "DELETED" || app["status"] == "FAILED").await;
    assert_eq!(gone["status"], "DELETED", "{gone}");
    gone
}

/// The app's history, oldest first: (action, detail).
async fn events(h: &Harness, tenant: &TestTenant, id: &str) -> Vec<(String, String)> {
    let reply = h.call(Method::GET, &format!("/apps/{id}/events"), Some(&tenant.admin), None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let mut items: Vec<(String, String)> = reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap().to_string(), e["detail"].as_str().unwrap().to_string()))
        .collect();
    items.reverse();
    items
}

/// The one CNAME at the record's name, as the zone has it: (value, TTL).
async fn cname(h: &Harness, zone_id: &str, name: &str) -> Option<(String, i64)> {
    let sets = h.records_at(zone_id, name).await;
    assert!(sets.len() <= 1, "{sets:?}");
    sets.first().map(|set: &ResourceRecordSet| {
        assert_eq!(set.r#type(), &RrType::Cname, "{set:?}");
        (set.resource_records()[0].value().to_string(), set.ttl().unwrap_or_default())
    })
}

/// Someone other than Portcullis writes a record (TTL 60) at `name` in the zone.
async fn their_record(h: &Harness, zone_id: &str, name: &str, kind: RrType, value: &str) {
    use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord};
    let theirs = ResourceRecordSet::builder()
        .name(name)
        .r#type(kind)
        .ttl(60)
        .resource_records(ResourceRecord::builder().value(value).build().unwrap())
        .build()
        .unwrap();
    let change = Change::builder().action(ChangeAction::Upsert).resource_record_set(theirs).build().unwrap();
    let batch = ChangeBatch::builder().changes(change).build().unwrap();
    let sent = h.aws.route53.change_resource_record_sets().hosted_zone_id(zone_id).change_batch(batch).send().await;
    sent.expect("someone writes a record");
}

#[tokio::test]
async fn with_a_hosted_zone_the_validation_record_is_written_exactly_as_acm_gave_it_and_removed_on_delete() {
    let h = Harness::new().await;
    let (zone_id, zone_name) = zone(&h).await;
    let tenant = h.tenant_in_zone(&zone_id).await;
    let target = h.alb_target(&tenant).await;
    let domain = format!("grafana.{zone_name}");
    let id = create(&h, &tenant, &json!({"name": "Grafana", "domain": domain, "target": target})).await;

    let app = settled(&h, &tenant, &id).await;
    assert_eq!(app["status"], "ACTIVE", "{app}");
    let record = &app["certificate"]["validationRecord"];
    assert_eq!(record["published"], true, "{app}");
    assert_eq!(app["dnsAlias"], false);
    assert!(app.get("dnsRecord").is_none(), "{app}");

    // Exactly the record ACM gives for the certificate, in the tenant's zone.
    let arn = app["certificate"]["arn"].as_str().unwrap();
    let described = h.aws.acm.describe_certificate().certificate_arn(arn).send().await.unwrap();
    let options = described.certificate().unwrap().domain_validation_options();
    let acm = options[0].resource_record().unwrap();
    assert_eq!((record["name"].as_str().unwrap(), record["value"].as_str().unwrap()), (acm.name(), acm.value()));
    let (value, ttl) = cname(&h, &zone_id, acm.name()).await.expect("the validation record is in the zone");
    assert_eq!((value.as_str(), ttl), (acm.value(), 300));
    assert!(h.records_at(&zone_id, &domain).await.is_empty(), "no alias was asked for");
    let history = events(&h, &tenant, &id).await;
    let published = history.iter().find(|(action, _)| action == "dns.validation-published").expect("an event");
    assert!(published.1.contains(acm.name()) && published.1.contains(&zone_id), "{published:?}");

    delete(&h, &tenant, &id).await;
    assert_eq!(cname(&h, &zone_id, acm.name()).await, None, "the record is removed");
    let history = events(&h, &tenant, &id).await;
    let removed = history.iter().find(|(action, _)| action == "dns.records-removed").expect("an event");
    assert!(removed.1.ends_with("removed"), "{removed:?}");
}

#[tokio::test]
async fn without_a_hosted_zone_nothing_is_written_and_an_alias_record_is_refused() {
    let h = Harness::new().await;
    // A zone for the domain exists, but no operator gave it to the tenant: Portcullis never writes there.
    let (zone_id, zone_name) = zone(&h).await;
    let tenant = h.tenant().await;
    let target = h.alb_target(&tenant).await;
    let domain = format!("plain.{zone_name}");
    let with_alias = json!({"name": "Plain", "domain": domain, "target": target, "dnsAlias": true});
    let refused = h.call(Method::POST, "/apps", Some(&tenant.admin), Some(&with_alias)).await;
    let detail = refused.assert_problem(403);
    assert!(detail.contains("no hosted zone") && detail.contains("hostedZoneId"), "{detail}");

    let id = create(&h, &tenant, &json!({"name": "Plain", "domain": domain, "target": target})).await;
    let app = settled(&h, &tenant, &id).await;
    assert_eq!(app["status"], "ACTIVE", "{app}");
    assert_eq!(app["certificate"]["validationRecord"]["published"], false, "{app}");
    let name = app["certificate"]["validationRecord"]["name"].as_str().unwrap();
    assert!(h.records_at(&zone_id, name).await.is_empty() && h.records_at(&zone_id, &domain).await.is_empty());
    assert!(!events(&h, &tenant, &id).await.iter().any(|(action, _)| action.starts_with("dns.")));
    delete(&h, &tenant, &id).await;
}

#[tokio::test]
async fn an_elastic_beanstalk_app_gets_an_alias_to_its_environments_load_balancer_removed_on_delete() {
    let h = Harness::new().await;
    let (zone_id, zone_name) = zone(&h).await;
    let tenant = h.tenant_in_zone(&zone_id).await;

    // An environment's ALB as Elastic Beanstalk makes it (see provisioning.rs).
    let env_name = format!("env-{}", short_id());
    h.aws.eb.create_application().application_name(&env_name).send().await.unwrap();
    h.aws.eb.create_environment().application_name(&env_name).environment_name(&env_name).send().await.unwrap();
    let lb_arn = h.load_balancer("awseb", &[("elasticbeanstalk:environment-name", &env_name)]).await;
    let group_arn = h.target_group("eb", true).await;
    h.http_listener(&lb_arn, forward(&group_arn)).await;
    let listener_arn = h.https_listener(&lb_arn, forward(&group_arn)).await;
    let balancer = h.aws.elb.describe_load_balancers().load_balancer_arns(&lb_arn).send().await.unwrap();
    let balancer = balancer.load_balancers()[0].clone();

    let domain = format!("beanstalk.{zone_name}");
    let target = h.grant(&tenant, json!({"type": "elasticbeanstalk", "environmentName": env_name})).await;
    let body = json!({"name": "Beanstalk app", "domain": domain, "target": target, "dnsAlias": true});
    let id = create(&h, &tenant, &body).await;
    let app = settled(&h, &tenant, &id).await;
    assert_eq!(app["status"], "ACTIVE", "{app}");
    assert_eq!(app["dnsAlias"], true);
    assert_eq!(app["certificate"]["validationRecord"]["published"], true, "{app}");
    let lb_dns = balancer.dns_name().unwrap();
    assert_eq!(
        app["dnsRecord"],
        json!({"name": format!("{domain}."), "type": "A", "value": lb_dns, "published": true}),
        "{app}"
    );

    // The alias in the zone: an A record to the environment's own load balancer.
    let sets = h.records_at(&zone_id, &domain).await;
    assert_eq!(sets.len(), 1, "{sets:?}");
    assert_eq!(sets[0].r#type(), &RrType::A);
    let alias = sets[0].alias_target().expect("an alias");
    assert_eq!(alias.dns_name().trim_end_matches('.'), lb_dns.trim_end_matches('.'));
    assert_eq!(Some(alias.hosted_zone_id()), balancer.canonical_hosted_zone_id());
    // It came after the protection was proved.
    let actions: Vec<String> = events(&h, &tenant, &id).await.into_iter().map(|(action, _)| action).collect();
    let at = |name: &str| actions.iter().position(|a| a == name).unwrap_or_else(|| panic!("{name} in {actions:?}"));
    assert!(at("app.protection-verified") < at("dns.alias-published"), "{actions:?}");
    assert!(at("dns.alias-published") < at("app.active"), "{actions:?}");
    assert_eq!(rule_for_host(&h.listener_rules(&listener_arn).await, &domain).len(), 1);

    let validation = app["certificate"]["validationRecord"]["name"].as_str().unwrap().to_string();
    delete(&h, &tenant, &id).await;
    assert!(h.records_at(&zone_id, &domain).await.is_empty(), "the alias is removed");
    assert!(h.records_at(&zone_id, &validation).await.is_empty(), "the validation record is removed");
    let history = events(&h, &tenant, &id).await;
    let removed: Vec<&String> =
        history.iter().filter(|(action, _)| action == "dns.records-removed").map(|(_, detail)| detail).collect();
    assert_eq!(removed.len(), 2, "{history:?}");
    assert!(
        removed[0].starts_with(&format!("A {domain}.")) && removed[0].ends_with("removed"),
        "alias first: {removed:?}"
    );
    assert!(removed[1].contains(&validation) && removed[1].ends_with("removed"), "{removed:?}");
}

/// Records a second live app of the tenant that relies on `app_id`'s validation record, straight in the
/// table. The API cannot make one today: the domain guard keeps one live app per host name, and the
/// validation record is a function of the name. It stands for what the registry check is for: another
/// app whose certificate covers the same name (the same record, from ACM, for every certificate of a
/// name in an account). Returns its id.
async fn second_app_relying_on_the_record(h: &Harness, tenant: &TestTenant, app_id: &str, zone_id: &str) -> String {
    let key = |id: &str| {
        [("pk", format!("TENANT#{}", tenant.id)), ("sk", format!("APP#{id}"))]
            .map(|(k, v)| (k.to_string(), AttributeValue::S(v)))
            .into_iter()
            .collect::<std::collections::HashMap<_, _>>()
    };
    let first = h.aws.dynamodb.get_item().table_name(TABLE_NAME).set_key(Some(key(app_id))).send().await.unwrap();
    let mut item = first.item().expect("the app's item").clone();
    let resources = item["resources"].as_m().unwrap();
    let (shown, validation) = (resources["validationRecord"].clone(), resources["validationDns"].clone());
    let name = validation.as_m().unwrap()["record"].as_m().unwrap()["name"].as_s().unwrap().clone();
    let second = uuid::Uuid::new_v4().to_string();
    item.extend(key(&second));
    item.insert("id".into(), AttributeValue::S(second.clone()));
    item.insert("version".into(), AttributeValue::N("1".into()));
    let resources = [("validationRecord".to_string(), shown), ("validationDns".to_string(), validation)];
    item.insert("resources".into(), AttributeValue::M(resources.into()));
    h.aws.dynamodb.put_item().table_name(TABLE_NAME).set_item(Some(item)).send().await.unwrap();
    let claim = [
        ("pk", format!("DNSRECORD#{zone_id}#{name}")),
        ("sk", format!("APP#{second}")),
        ("appId", second.clone()),
        ("tenantId", tenant.id.clone()),
    ]
    .map(|(k, v)| (k.to_string(), AttributeValue::S(v)));
    h.aws.dynamodb.put_item().table_name(TABLE_NAME).set_item(Some(claim.into_iter().collect())).send().await.unwrap();
    second
}

#[tokio::test]
async fn a_validation_record_another_live_app_relies_on_stays_until_the_last_of_them_is_deleted() {
    let h = Harness::new().await;
    let (zone_id, zone_name) = zone(&h).await;
    let tenant = h.tenant_in_zone(&zone_id).await;
    let target = h.alb_target(&tenant).await;
    let domain = format!("shared.{zone_name}");
    let first = create(&h, &tenant, &json!({"name": "Shared", "domain": domain, "target": target})).await;
    let app = settled(&h, &tenant, &first).await;
    assert_eq!(app["status"], "ACTIVE", "{app}");
    let record = app["certificate"]["validationRecord"].clone();
    let name = record["name"].as_str().unwrap();
    let second = second_app_relying_on_the_record(&h, &tenant, &first, &zone_id).await;
    let shown = h.call(Method::GET, &format!("/apps/{second}"), Some(&tenant.admin), None).await;
    assert_eq!(shown.body["certificate"]["validationRecord"]["published"], true, "{}", shown.text);

    delete(&h, &tenant, &first).await;
    let kept = cname(&h, &zone_id, name).await.expect("kept for the other app");
    assert_eq!(kept.0, record["value"].as_str().unwrap());
    let removed = events(&h, &tenant, &first).await.into_iter().find(|(action, _)| action == "dns.records-removed");
    assert!(removed.expect("an event").1.contains("kept: another app relies on it"));

    delete(&h, &tenant, &second).await;
    assert_eq!(cname(&h, &zone_id, name).await, None, "the last app removes it");
}

#[tokio::test]
async fn a_hosted_zone_that_does_not_cover_the_domain_fails_the_app_before_anything_is_written() {
    let h = Harness::new().await;
    let elsewhere = format!("elsewhere-{}.test", short_id());
    let zone_id = h.hosted_zone(&elsewhere).await;
    let tenant = h.tenant_in_zone(&zone_id).await;
    let target = h.alb_target(&tenant).await;
    let domain = format!("mismatch-{}.demo.test", short_id());
    let id = create(&h, &tenant, &json!({"name": "Mismatch", "domain": domain, "target": target})).await;
    let failed = settled(&h, &tenant, &id).await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert_eq!(failed["error"]["code"], "HostedZoneMismatch", "{failed}");
    assert_eq!(failed["error"]["step"], "DNS_VALIDATION", "{failed}");
    let message = failed["error"]["message"].as_str().unwrap();
    assert!(message.contains(&zone_id) && message.contains(&domain) && message.contains("hostedZoneId"), "{message}");
    assert!(failed["certificate"]["arn"].is_null(), "compensation removed the certificate: {failed}");
    let sets = h.aws.route53.list_resource_record_sets().hosted_zone_id(&zone_id).send().await.unwrap();
    assert!(
        sets.resource_record_sets().iter().all(|s| matches!(s.r#type(), RrType::Ns | RrType::Soa)),
        "nothing written: {sets:?}"
    );
}

#[tokio::test]
async fn a_record_someone_else_made_at_the_apps_name_fails_the_alias_and_is_left_alone() {
    let h = Harness::new().await;
    let (zone_id, zone_name) = zone(&h).await;
    let tenant = h.tenant_in_zone(&zone_id).await;
    let target = h.alb_target(&tenant).await;
    let domain = format!("taken.{zone_name}");
    // The name already answers with an address of somebody's server.
    their_record(&h, &zone_id, &domain, RrType::A, "192.0.2.10").await;

    let body = json!({"name": "Taken", "domain": domain, "target": target, "dnsAlias": true});
    let id = create(&h, &tenant, &body).await;
    let failed = settled(&h, &tenant, &id).await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert_eq!(failed["error"]["code"], "DnsRecordConflict", "{failed}");
    assert_eq!(failed["error"]["step"], "LISTENER", "{failed}");
    let message = failed["error"]["message"].as_str().unwrap();
    assert!(message.contains(&format!("a record of type A at {domain}.")), "{message}");

    // Their record is as it was; what Portcullis made is gone (the validation record and the rule too).
    let sets = h.records_at(&zone_id, &domain).await;
    assert_eq!(sets.len(), 1, "{sets:?}");
    assert_eq!(sets[0].resource_records()[0].value(), "192.0.2.10");
    assert!(sets[0].alias_target().is_none());
    let validation = failed["certificate"]["validationRecord"].clone();
    assert!(validation.is_null(), "compensation forgot the certificate and its record: {failed}");
    let history = events(&h, &tenant, &id).await;
    let published = history.iter().find(|(action, _)| action == "dns.validation-published").expect("published");
    let name = published.1.split_whitespace().nth(1).unwrap().to_string();
    assert!(h.records_at(&zone_id, &name).await.is_empty(), "the validation record {name} is removed");
    assert!(rule_for_host(&h.listener_rules(&h.stack.listener_arn).await, &domain).is_empty());
}

/// A record Portcullis wrote and someone changed afterwards is theirs now: Route 53 refuses a DELETE
/// with the values Portcullis wrote (the local stack's patch does as Route 53), and the app is still
/// deleted, with the changed record left where it is.
#[tokio::test]
async fn a_validation_record_changed_by_someone_else_is_left_alone_on_delete() {
    let h = Harness::new().await;
    let (zone_id, zone_name) = zone(&h).await;
    let tenant = h.tenant_in_zone(&zone_id).await;
    let target = h.alb_target(&tenant).await;
    let id =
        create(&h, &tenant, &json!({"name": "Wiki", "domain": format!("wiki.{zone_name}"), "target": target})).await;
    let app = settled(&h, &tenant, &id).await;
    assert_eq!(app["status"], "ACTIVE", "{app}");
    let name = app["certificate"]["validationRecord"]["name"].as_str().unwrap().to_string();

    their_record(&h, &zone_id, &name, RrType::Cname, "someone.else.test").await;

    delete(&h, &tenant, &id).await;
    assert_eq!(cname(&h, &zone_id, &name).await, Some(("someone.else.test".to_string(), 60)), "left alone");
}
