//! The tenant registry: what each tenant may use, as platform operators registered it. Deny by
//! default: a tenant creates apps only for the domains and on the targets it was granted, and a target
//! is granted to one tenant only.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::validate::{is_account, is_partition, is_region, parse_target, plain_text, validate_host};
use super::{SesIdentity, Target};
use crate::error::{Error, Result};

/// Live apps a tenant may have when its registration says nothing else.
pub const DEFAULT_APP_QUOTA: u32 = 25;
/// Targets one tenant may be granted (each grant is guarded in the registration's transaction).
pub const MAX_TARGETS: usize = 40;
/// Domain rules one tenant may have.
pub const MAX_ALLOWED_DOMAINS: usize = 100;

/// A domain a tenant may protect: one host name, or every host name under a suffix (`*.example.com`:
/// `a.example.com`, `a.b.example.com`, but not `example.com` itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DomainRule {
    Exact(String),
    Suffix(String),
}

impl DomainRule {
    /// Parses `host.example.com` or `*.example.com`.
    pub fn parse(rule: &str) -> Result<Self> {
        let invalid = |why: String| {
            Error::Invalid(format!("allowedDomains entry '{rule}' must be a host name or *.suffix: {why}"))
        };
        if rule.chars().any(char::is_whitespace) {
            return Err(invalid("white space is not allowed".into()));
        }
        if rule.len() > 253 {
            return Err(invalid("longer than 253 characters".into()));
        }
        match rule.strip_prefix("*.") {
            Some(suffix) => Ok(DomainRule::Suffix(validate_host(suffix).map_err(|e| invalid(e.to_string()))?)),
            None => Ok(DomainRule::Exact(validate_host(rule).map_err(|e| invalid(e.to_string()))?)),
        }
    }

    /// True if the rule allows `host` (a validated, lower-case host name).
    pub fn allows(&self, host: &str) -> bool {
        match self {
            DomainRule::Exact(exact) => exact == host,
            DomainRule::Suffix(suffix) => host.strip_suffix(suffix.as_str()).is_some_and(|head| head.ends_with('.')),
        }
    }
}

impl TryFrom<String> for DomainRule {
    type Error = Error;
    fn try_from(rule: String) -> Result<Self> {
        DomainRule::parse(&rule)
    }
}

impl From<DomainRule> for String {
    fn from(rule: DomainRule) -> String {
        rule.to_string()
    }
}

impl std::fmt::Display for DomainRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DomainRule::Exact(host) => f.write_str(host),
            DomainRule::Suffix(suffix) => write!(f, "*.{suffix}"),
        }
    }
}

/// A target granted to a tenant, under an id the operator chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantedTarget {
    pub id: String,
    pub target: Target,
}

impl GrantedTarget {
    /// What makes the grant exclusive: the target group, or the Beanstalk environment.
    pub fn exclusive_key(&self) -> String {
        match &self.target {
            Target::Alb { target_group_arn, .. } => format!("targetgroup#{target_group_arn}"),
            Target::ElasticBeanstalk { environment_name } => format!("environment#{environment_name}"),
        }
    }
}

impl Serialize for GrantedTarget {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut value = serde_json::to_value(&self.target).map_err(serde::ser::Error::custom)?;
        if let Some(object) = value.as_object_mut() {
            object.insert("id".into(), self.id.clone().into());
        }
        value.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for GrantedTarget {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        parse_granted_target(value).map_err(serde::de::Error::custom)
    }
}

fn parse_granted_target(mut value: serde_json::Value) -> Result<GrantedTarget> {
    let shape = "each of targets must be {\"id\":…,\"type\":\"alb\",\"listenerArn\":…,\"targetGroupArn\":…} or \
                 {\"id\":…,\"type\":\"elasticbeanstalk\",\"environmentName\":…}";
    let object = value.as_object_mut().ok_or_else(|| Error::Invalid(shape.into()))?;
    let id = match object.remove("id") {
        Some(serde_json::Value::String(id)) => id,
        _ => return Err(Error::Invalid(format!("{shape}: 'id' is required"))),
    };
    let id_ok = (1..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !id_ok {
        return Err(Error::Invalid(format!("target id '{id}' must be 1 to 64 letters, digits, '.', '_' or '-'")));
    }
    Ok(GrantedTarget { id, target: parse_target(value, "targets[]")? })
}

/// How much a tenant may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantQuotas {
    /// Apps that are not DELETED.
    pub apps: u32,
}

impl Default for TenantQuotas {
    fn default() -> Self {
        TenantQuotas { apps: DEFAULT_APP_QUOTA }
    }
}

/// The tenant's SES identity for invitation emails, as registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SesConfig {
    pub source_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

impl SesConfig {
    pub fn identity(&self) -> SesIdentity {
        SesIdentity { source_arn: self.source_arn.clone(), from: self.from.clone() }
    }
}

/// What an operator sets with `PUT /tenants/{tenantId}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub allowed_domains: Vec<DomainRule>,
    pub targets: Vec<GrantedTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosted_zone_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ses: Option<SesConfig>,
    #[serde(default)]
    pub quotas: TenantQuotas,
    /// The `allowedEmailDomains` a new app gets when it names none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default_allowed_email_domains: Vec<String>,
}

/// A registered tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub id: String,
    #[serde(flatten)]
    pub registration: Registration,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Optimistic-concurrency version; 0 for a registration not stored yet.
    #[serde(default)]
    pub version: u64,
}

/// A tenant id: what the operators' pool puts in `custom:tenant`.
pub fn validate_tenant_id(id: &str) -> Result<&str> {
    let ok = (1..=63).contains(&id.len())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !id.starts_with('-');
    if ok {
        Ok(id)
    } else {
        Err(Error::NotFound(format!(
            "no tenant '{id}': tenant ids are 1 to 63 lower-case letters, digits or '-', not starting with '-'"
        )))
    }
}

/// Parses and validates the body of `PUT /tenants/{tenantId}`.
pub fn validate_registration(body: &str) -> Result<Registration> {
    let shape = "the body must be {\"allowedDomains\": […], \"targets\": […], \"displayName\"?, \"hostedZoneId\"?, \
                 \"ses\"?: {\"sourceArn\", \"from\"?}, \"quotas\"?: {\"apps\"}}";
    let value: serde_json::Value = serde_json::from_str(body).map_err(|e| Error::Invalid(format!("{shape}: {e}")))?;
    let object = value.as_object().ok_or_else(|| Error::Invalid(shape.into()))?;
    const FIELDS: [&str; 7] =
        ["displayName", "allowedDomains", "targets", "hostedZoneId", "ses", "quotas", "defaultAllowedEmailDomains"];
    if let Some(unknown) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(Error::Invalid(format!("unknown field '{unknown}'; {shape}")));
    }
    let list = |field: &str| match object.get(field) {
        Some(serde_json::Value::Array(items)) => Ok(items.clone()),
        _ => Err(Error::Invalid(format!("'{field}' is required and must be a list; {shape}"))),
    };
    let domains = list("allowedDomains")?;
    if domains.len() > MAX_ALLOWED_DOMAINS {
        return Err(Error::Invalid(format!("allowedDomains holds at most {MAX_ALLOWED_DOMAINS} entries")));
    }
    let allowed_domains = domains
        .iter()
        .map(|d| d.as_str().ok_or_else(|| Error::Invalid("allowedDomains entries must be strings".into())))
        .map(|d| d.and_then(DomainRule::parse))
        .collect::<Result<Vec<_>>>()?;
    let targets = list("targets")?;
    if targets.len() > MAX_TARGETS {
        return Err(Error::Invalid(format!("targets holds at most {MAX_TARGETS} entries")));
    }
    let targets = targets.into_iter().map(parse_granted_target).collect::<Result<Vec<_>>>()?;
    let mut seen = std::collections::HashSet::new();
    for granted in &targets {
        if !seen.insert(granted.id.as_str()) {
            return Err(Error::Invalid(format!("target id '{}' is listed twice", granted.id)));
        }
    }
    let mut keys = std::collections::HashSet::new();
    if let Some(twice) = targets.iter().find(|t| !keys.insert(t.exclusive_key())) {
        return Err(Error::Invalid(format!(
            "target '{}' grants a target group or environment listed before",
            twice.id
        )));
    }
    Ok(Registration {
        display_name: optional_text(object.get("displayName"), "displayName", 128)?,
        allowed_domains,
        targets,
        hosted_zone_id: hosted_zone(object.get("hostedZoneId"))?,
        ses: ses(object.get("ses"))?,
        quotas: quotas(object.get("quotas"))?,
        default_allowed_email_domains: super::parse_email_domains(
            object.get("defaultAllowedEmailDomains"),
            "defaultAllowedEmailDomains",
        )?
        .unwrap_or_default(),
    })
}

fn optional_text(value: Option<&serde_json::Value>, field: &str, max: usize) -> Result<Option<String>> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => plain_text(s, field, max).map(Some),
        Some(_) => Err(Error::Invalid(format!("'{field}' must be a string or null"))),
    }
}

fn hosted_zone(value: Option<&serde_json::Value>) -> Result<Option<String>> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(zone))
            if (1..=32).contains(&zone.len()) && zone.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) =>
        {
            Ok(Some(zone.clone()))
        }
        Some(other) => Err(Error::Invalid(format!(
            "hostedZoneId {other} is not a Route 53 hosted zone id (1 to 32 upper-case letters and digits, \
             e.g. Z0123456789ABC)"
        ))),
    }
}

fn ses(value: Option<&serde_json::Value>) -> Result<Option<SesConfig>> {
    let shape = "ses must be {\"sourceArn\": \"arn:aws:ses:REGION:ACCOUNT:identity/…\", \"from\"?: \"Name <address>\"}";
    let Some(value) = value.filter(|v| !v.is_null()) else { return Ok(None) };
    let object = value.as_object().ok_or_else(|| Error::Invalid(shape.into()))?;
    if object.keys().any(|k| k != "sourceArn" && k != "from") {
        return Err(Error::Invalid(shape.into()));
    }
    let source_arn = object.get("sourceArn").and_then(serde_json::Value::as_str).unwrap_or_default();
    let parts: Vec<&str> = source_arn.splitn(6, ':').collect();
    let arn_ok = parts.len() == 6
        && parts[0] == "arn"
        && is_partition(parts[1])
        && parts[2] == "ses"
        && is_region(parts[3])
        && is_account(parts[4])
        && parts[5].strip_prefix("identity/").is_some_and(|identity| {
            !identity.is_empty() && identity.chars().all(|c| c.is_ascii_alphanumeric() || "._%+@-".contains(c))
        });
    if !arn_ok {
        return Err(Error::Invalid(shape.into()));
    }
    let from = optional_text(object.get("from"), "ses.from", 256)?;
    Ok(Some(SesConfig { source_arn: source_arn.to_string(), from }))
}

fn quotas(value: Option<&serde_json::Value>) -> Result<TenantQuotas> {
    let Some(value) = value.filter(|v| !v.is_null()) else { return Ok(TenantQuotas::default()) };
    let apps = value.get("apps").and_then(serde_json::Value::as_u64).filter(|a| (1..=1000).contains(a));
    match (value.as_object().map(|o| o.len()), apps) {
        (Some(1), Some(apps)) => Ok(TenantQuotas { apps: apps as u32 }),
        _ => Err(Error::Invalid("quotas must be {\"apps\": a whole number from 1 to 1000}".into())),
    }
}

/// A check of a request against the tenant's grants. The detail says which rule refused and what the
/// platform operator can change; `POST /apps` and the preflight use the same words.
impl Tenant {
    /// The domain matches one of the tenant's allowed domains.
    pub fn check_domain(&self, domain: &str) -> std::result::Result<(), String> {
        let rules = &self.registration.allowed_domains;
        if rules.iter().any(|rule| rule.allows(domain)) {
            return Ok(());
        }
        let allowed = rules.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        Err(format!(
            "domain '{domain}' matches none of tenant {}'s allowed domains ({}); a platform operator can add it \
             to allowedDomains with PUT /tenants/{}",
            self.id,
            if allowed.is_empty() { "none" } else { &allowed },
            self.id
        ))
    }

    /// The target is one granted to the tenant, matched exactly.
    pub fn check_target(&self, target: &Target) -> std::result::Result<&GrantedTarget, String> {
        self.registration.targets.iter().find(|granted| &granted.target == target).ok_or_else(|| {
            let granted = self.registration.targets.iter().map(|t| t.id.as_str()).collect::<Vec<_>>().join(", ");
            format!(
                "the target is not one granted to tenant {} (granted: {}); a platform operator grants targets with \
                 PUT /tenants/{}",
                self.id,
                if granted.is_empty() { "none" } else { &granted },
                self.id
            )
        })
    }

    /// Another live app fits in the tenant's quota.
    pub fn check_quota(&self, live_apps: u32) -> std::result::Result<(), String> {
        let quota = self.registration.quotas.apps;
        if live_apps < quota {
            return Ok(());
        }
        Err(format!(
            "tenant {} has {live_apps} apps that are not DELETED, its quota (quotas.apps = {quota}); delete one, or \
             ask a platform operator to raise quotas.apps with PUT /tenants/{}",
            self.id, self.id
        ))
    }

    /// The hosted zone a platform operator gave the tenant, if any: the only zone Portcullis writes the
    /// tenant's records in.
    pub fn hosted_zone(&self) -> Option<&str> {
        self.registration.hosted_zone_id.as_deref().filter(|zone| !zone.is_empty())
    }

    /// The tenant has a hosted zone for an app's alias record (`dnsAlias`); answers the zone.
    pub fn check_dns_alias(&self) -> std::result::Result<&str, String> {
        self.hosted_zone().ok_or_else(|| {
            format!(
                "tenant {} has no hosted zone for the app's alias record (dnsAlias); a platform operator can set \
                 hostedZoneId with PUT /tenants/{}, or create the app without dnsAlias and point its domain at the \
                 load balancer by hand",
                self.id, self.id
            )
        })
    }

    /// The SES identity invitations are sent through, if the tenant has one.
    pub fn ses(&self) -> Option<SesIdentity> {
        self.registration.ses.as_ref().map(SesConfig::identity)
    }
}

/// The refusal for a tenant nobody registered.
pub fn not_registered(tenant_id: &str) -> String {
    format!("tenant {tenant_id} is not registered; a platform operator registers it with PUT /tenants/{tenant_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTENER: &str =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/demo/50dc6c495c0c9188/f2f7dc8efc522ab2";
    const GROUP: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/demo/73e2d6bc24d8a067";

    fn registration() -> serde_json::Value {
        serde_json::json!({
            "displayName": "Demo",
            "allowedDomains": ["*.demo.test", "exact.example.com"],
            "targets": [
                {"id": "shared", "type": "alb", "listenerArn": LISTENER, "targetGroupArn": GROUP},
                {"id": "eb", "type": "elasticbeanstalk", "environmentName": "demo-env"}
            ],
            "ses": {"sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/demo.test", "from": "Demo <no-reply@demo.test>"},
            "quotas": {"apps": 3}
        })
    }

    fn tenant() -> Tenant {
        let now = OffsetDateTime::UNIX_EPOCH;
        let registration = validate_registration(&registration().to_string()).unwrap();
        Tenant { id: "demo".into(), registration, created_at: now, updated_at: now, version: 1 }
    }

    #[test]
    fn suffix_rules_allow_hosts_below_not_the_suffix_itself_nor_look_alikes() {
        let rule = DomainRule::parse("*.demo.test").unwrap();
        assert!(rule.allows("a.demo.test"));
        assert!(rule.allows("a.b.demo.test"));
        assert!(!rule.allows("demo.test"));
        assert!(!rule.allows("evildemo.test"));
        let exact = DomainRule::parse("Exact.Example.com").unwrap();
        assert!(exact.allows("exact.example.com") && !exact.allows("a.exact.example.com"));
        assert!(DomainRule::parse("*.*.demo.test").is_err());
        assert!(DomainRule::parse("a*.demo.test").is_err());
    }

    #[test]
    fn a_registration_round_trips_in_its_contract_shape() {
        let tenant = tenant();
        let json = serde_json::to_value(&tenant).unwrap();
        assert_eq!(json["allowedDomains"], serde_json::json!(["*.demo.test", "exact.example.com"]));
        assert_eq!(json["targets"][0]["id"], "shared");
        assert_eq!(json["targets"][0]["targetGroupArn"], GROUP);
        assert_eq!(json["quotas"]["apps"], 3);
        assert_eq!(serde_json::from_value::<Tenant>(json).unwrap(), tenant);
    }

    /// A schema in openapi.yaml's components, by name.
    fn contract_schema(name: &str) -> serde_json::Value {
        let contract: serde_json::Value = serde_norway::from_str(include_str!("../../../../openapi.yaml")).unwrap();
        contract["components"]["schemas"][name].clone()
    }

    /// True if `value` meets a string schema's pattern and maxLength (openapi.yaml's rule).
    fn meets(schema: &serde_json::Value, value: &str) -> bool {
        let pattern = regex_lite::Regex::new(schema["pattern"].as_str().unwrap()).unwrap();
        let fits = schema["maxLength"].as_u64().is_none_or(|max| value.chars().count() as u64 <= max);
        pattern.is_match(value) && fits
    }

    #[test]
    fn the_registration_refuses_exactly_what_openapi_yaml_refuses() {
        let registration_schema = contract_schema("Registration");
        let fields = &registration_schema["properties"];
        let accepted = |field: &str, value: serde_json::Value| {
            let mut body = registration();
            body[field] = value;
            validate_registration(&body.to_string()).is_ok()
        };
        let long_host = format!("{}.{}.{}.{}.example", "a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(53));
        let cases: [(&str, &serde_json::Value, Vec<String>); 4] = [
            (
                "allowedDomains",
                &fields["allowedDomains"]["items"],
                [
                    "a.example.com",
                    "*.example.com",
                    "A.Example.COM.",
                    "x.1-1",
                    "*.*.example.com",
                    "a*.example.com",
                    "example",
                    "1.2.3.4",
                    "-a.example.com",
                    "a-.example.com",
                    " a.example.com",
                    "*. a.example.com",
                    "a..example.com",
                    "*.",
                    "a.example.com..",
                    &long_host,
                    &format!("{long_host}x"),
                ]
                .map(String::from)
                .to_vec(),
            ),
            (
                "displayName",
                &fields["displayName"],
                ["Demo", "Démo ÉQUIPE", "a", "", " ", "x\u{7}", "tab\tinside", &"n".repeat(128), &"n".repeat(129)]
                    .map(String::from)
                    .to_vec(),
            ),
            (
                "hostedZoneId",
                &fields["hostedZoneId"],
                ["Z0123", "z0123", "Z-1", "", &"Z".repeat(33)].map(String::from).to_vec(),
            ),
            (
                "ses.sourceArn",
                &fields["ses"]["properties"]["sourceArn"],
                [
                    "arn:aws:ses:us-east-1:123456789012:identity/demo.test",
                    "arn:aws-us-gov:ses:us-gov-west-1:123456789012:identity/it@demo.test",
                    "arn:aws:ses:us-east-1:123456789012:identity/",
                    "arn:aws:ses:us-east-1:12345678901:identity/demo.test",
                    "arn:aws:ses:US-EAST-1:123456789012:identity/demo.test",
                    "arn:aws:sns:us-east-1:123456789012:identity/demo.test",
                    "arn:aws:ses:us-east-1:123456789012:identity/demo test",
                ]
                .map(String::from)
                .to_vec(),
            ),
        ];
        for (field, schema, samples) in cases {
            for sample in samples {
                let value = serde_json::Value::String(sample.clone());
                let code = match field {
                    "allowedDomains" => accepted(field, serde_json::json!([value])),
                    "ses.sourceArn" => accepted("ses", serde_json::json!({"sourceArn": value})),
                    _ => accepted(field, value),
                };
                assert_eq!(code, meets(schema, &sample), "{field} {sample:?}: the API and openapi.yaml disagree");
            }
        }
        for field in ["displayName", "hostedZoneId", "ses", "quotas"] {
            assert_eq!(fields[field]["nullable"], true, "{field} takes null");
            assert!(accepted(field, serde_json::Value::Null));
        }
        for field in ["ses", "quotas"] {
            assert_eq!(fields[field]["additionalProperties"], false, "{field} has no other keys");
        }
        assert!(!accepted(
            "ses",
            serde_json::json!({"sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/d.test", "x": 1})
        ));
        assert!(!accepted("quotas", serde_json::json!({"apps": 3, "x": 1})));
    }

    #[test]
    fn granted_targets_refuse_exactly_what_openapi_yaml_refuses() {
        let schemas =
            [contract_schema("ListenerArn"), contract_schema("TargetGroupArn"), contract_schema("EnvironmentName")];
        let granted = |target: serde_json::Value| {
            let mut body = registration();
            body["targets"] = serde_json::json!([target]);
            validate_registration(&body.to_string()).is_ok()
        };
        let listeners = [
            LISTENER,
            "arn:aws-cn:elasticloadbalancing:cn-north-1:123456789012:listener/app/a/1/2",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/net/a/1/2",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/a_b/1/2",
            "arn:aws:elasticloadbalancing::123456789012:listener/app/a/1/2",
            "arn:awsx:elasticloadbalancing:us-east-1:123456789012:listener/app/a/1/2",
        ];
        for listener in listeners {
            let target =
                serde_json::json!({"id": "t", "type": "alb", "listenerArn": listener, "targetGroupArn": GROUP});
            assert_eq!(granted(target), meets(&schemas[0], listener), "{listener}");
        }
        for group in [
            GROUP,
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/",
            "arn:aws:elasticloadbalancing:us-east-1:1234:targetgroup/a/1",
        ] {
            let target =
                serde_json::json!({"id": "t", "type": "alb", "listenerArn": LISTENER, "targetGroupArn": group});
            assert_eq!(granted(target), meets(&schemas[1], group), "{group}");
        }
        for name in ["demo-env", "abc", "-abcd", "abcd-", &"e".repeat(40), &"e".repeat(41), "de_mo"] {
            let target = serde_json::json!({"id": "t", "type": "elasticbeanstalk", "environmentName": name});
            assert_eq!(granted(target), meets(&schemas[2], name), "{name}");
        }
        let extra = serde_json::json!({"id": "t", "type": "elasticbeanstalk", "environmentName": "demo-env", "x": 1});
        assert!(!granted(extra), "a target has no other keys");
    }

    #[test]
    fn registrations_say_what_is_wrong() {
        let bad = |patch: serde_json::Value| {
            let mut body = registration();
            for (k, v) in patch.as_object().unwrap() {
                body[k] = v.clone();
            }
            match validate_registration(&body.to_string()) {
                Err(Error::Invalid(detail)) => detail,
                other => panic!("expected Invalid, got {other:?}"),
            }
        };
        assert!(bad(serde_json::json!({"allowedDomains": ["*"]})).contains("allowedDomains"));
        assert!(bad(serde_json::json!({"targets": [{"type": "alb"}]})).contains("'id' is required"));
        let twice = serde_json::json!([
            {"id": "a", "type": "alb", "listenerArn": LISTENER, "targetGroupArn": GROUP},
            {"id": "b", "type": "alb", "listenerArn": LISTENER, "targetGroupArn": GROUP}
        ]);
        assert!(bad(serde_json::json!({"targets": twice})).contains("listed before"));
        assert!(bad(serde_json::json!({"quotas": {"apps": 0}})).contains("quotas"));
        assert!(bad(serde_json::json!({"ses": {"sourceArn": "nope"}})).contains("ses"));
        assert!(bad(serde_json::json!({"hostedZoneId": "z-1"})).contains("hostedZoneId"));
        assert!(bad(serde_json::json!({"tenantId": "other"})).contains("unknown field 'tenantId'"));
        assert!(validate_registration("[]").is_err());
        let minimal = validate_registration(r#"{"allowedDomains": [], "targets": []}"#).unwrap();
        assert_eq!(minimal.quotas.apps, DEFAULT_APP_QUOTA);
    }

    #[test]
    fn checks_refuse_with_what_the_operator_can_change() {
        let tenant = tenant();
        assert!(tenant.check_domain("grafana.demo.test").is_ok());
        let refused = tenant.check_domain("grafana.other.test").unwrap_err();
        assert!(refused.contains("*.demo.test") && refused.contains("PUT /tenants/demo"), "{refused}");
        let granted = Target::Alb { listener_arn: LISTENER.into(), target_group_arn: GROUP.into() };
        assert_eq!(tenant.check_target(&granted).unwrap().id, "shared");
        let other = Target::Alb { listener_arn: LISTENER.into(), target_group_arn: format!("{GROUP}0") };
        assert!(tenant.check_target(&other).unwrap_err().contains("granted: shared, eb"));
        assert!(tenant.check_quota(2).is_ok());
        assert!(tenant.check_quota(3).unwrap_err().contains("quotas.apps = 3"));
        let refused = tenant.check_dns_alias().unwrap_err();
        assert!(refused.contains("no hosted zone") && refused.contains("PUT /tenants/demo"), "{refused}");
        let mut zoned = tenant;
        zoned.registration.hosted_zone_id = Some("Z0123456789ABC".into());
        assert_eq!(zoned.check_dns_alias(), Ok("Z0123456789ABC"));
    }

    #[test]
    fn tenant_ids_are_what_the_operators_pool_can_carry() {
        assert!(validate_tenant_id("demo-2").is_ok());
        for bad in ["", "Demo", "-x", "a/b", &"x".repeat(64)] {
            assert!(validate_tenant_id(bad).is_err(), "{bad}");
        }
    }
}
