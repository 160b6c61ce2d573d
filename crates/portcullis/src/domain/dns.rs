//! DNS automation: the records Portcullis places in a tenant's hosted zone (the certificate's
//! validation record, and, when the app asks for it, the app's host name aliased to its load balancer),
//! and the pure rules for placing and removing them. The zone comes only from the tenant registry;
//! Portcullis writes only names under the app's domain, never replaces a record it did not make, and
//! removes only what it recorded, with the value it recorded.

use serde::{Deserialize, Serialize};

use super::ValidationRecord;

/// How long resolvers may cache the validation record.
pub const VALIDATION_RECORD_TTL: u32 = 300;

/// A hosted zone, as the DNS service describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedZone {
    pub id: String,
    /// The zone's apex, e.g. `example.com.`.
    pub name: String,
    /// Answered only inside the networks it is attached to: the certificate authority cannot see it.
    pub private: bool,
}

/// Where an alias record points: a load balancer's DNS name and the hosted zone that serves that name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AliasTarget {
    pub dns_name: String,
    pub zone_id: String,
}

/// What a record says, for the two kinds Portcullis writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum RecordValue {
    /// A canonical name: the certificate's validation record.
    #[serde(rename = "CNAME")]
    Cname { value: String, ttl: u32 },
    /// An address record aliased to a load balancer: the app's own host name.
    #[serde(rename = "A")]
    Alias { target: AliasTarget },
}

impl RecordValue {
    /// The record type, as DNS names it.
    pub fn record_type(&self) -> &'static str {
        match self {
            RecordValue::Cname { .. } => "CNAME",
            RecordValue::Alias { .. } => "A",
        }
    }

    /// The name the record leads to.
    pub fn points_at(&self) -> &str {
        match self {
            RecordValue::Cname { value, .. } => value,
            RecordValue::Alias { target } => &target.dns_name,
        }
    }

    /// True if both lead to the same place (names compared as DNS does; TTLs do not matter).
    fn same_as(&self, other: &RecordValue) -> bool {
        match (self, other) {
            (RecordValue::Cname { value: a, .. }, RecordValue::Cname { value: b, .. }) => same_name(a, b),
            (RecordValue::Alias { target: a }, RecordValue::Alias { target: b }) => {
                // `dualstack.` in front of a load balancer's name reaches the same load balancer.
                let plain = |name: &str| normalize(name).trim_start_matches("dualstack.").to_string();
                plain(&a.dns_name) == plain(&b.dns_name) && a.zone_id.eq_ignore_ascii_case(&b.zone_id)
            }
            _ => false,
        }
    }
}

/// A record: its fully qualified name (lower case, with the final dot) and what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRecord {
    pub name: String,
    pub value: RecordValue,
}

impl DnsRecord {
    /// The certificate's validation record as it goes into a zone; `None` unless it is a CNAME (DNS
    /// validation always gives one).
    pub fn validation(record: &ValidationRecord) -> Option<DnsRecord> {
        (record.record_type.eq_ignore_ascii_case("CNAME") && !record.name.is_empty() && !record.value.is_empty()).then(
            || DnsRecord {
                name: fqdn(&record.name),
                value: RecordValue::Cname { value: fqdn(&record.value), ttl: VALIDATION_RECORD_TTL },
            },
        )
    }

    /// The app's host name aliased to its load balancer.
    pub fn alias(domain: &str, target: AliasTarget) -> DnsRecord {
        DnsRecord { name: fqdn(domain), value: RecordValue::Alias { target } }
    }
}

impl std::fmt::Display for DnsRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.value.record_type(), self.name, self.value.points_at())
    }
}

/// A record found at a name where Portcullis wants to write one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FoundRecord {
    /// One of the kinds Portcullis writes.
    Known(RecordValue),
    /// Any other, by its type (an A record with addresses, a TXT record, …).
    Other(String),
}

/// How far a record Portcullis placed in a zone has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecordState {
    /// Recorded before the write, which may or may not have landed: teardown removes it all the same.
    Writing,
    /// Written by Portcullis: teardown removes it, unless another live app relies on it.
    Published,
    /// The same record was in the zone already, made by someone else (say, for another certificate of
    /// the same name): in use, and never removed by Portcullis.
    Found,
}

impl RecordState {
    /// The record is in the zone.
    pub fn in_zone(self) -> bool {
        self != RecordState::Writing
    }

    /// Portcullis wrote it (or may have), so teardown removes it.
    pub fn owned(self) -> bool {
        self != RecordState::Found
    }
}

/// A record placed in a tenant's hosted zone for an app, as recorded with the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneRecord {
    pub zone_id: String,
    pub record: DnsRecord,
    pub state: RecordState,
}

impl std::fmt::Display for ZoneRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in hosted zone {}", self.record, self.zone_id)
    }
}

/// What to do about a record Portcullis wants in a zone, given what is at its name now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Write it: nothing is in the way, or the same record is there because another app of Portcullis
    /// wrote it (both then rely on it).
    Write,
    /// Leave it as it is: the same record is there, made by someone else.
    AlreadyThere,
    /// Refuse: another record holds the name. The message says which, and what to do.
    Conflict(String),
}

/// Decides how to place `wanted` in `zone`, given the records `found` at its name and whether another
/// live app of Portcullis relies on the same record. A CNAME can share its name with no other record; an
/// alias A record only with types other than A and CNAME. Nothing that differs is ever replaced.
pub fn placement(
    wanted: &DnsRecord,
    zone: &HostedZone,
    found: &[FoundRecord],
    written_by_another_app: bool,
) -> Placement {
    let same = |f: &FoundRecord| matches!(f, FoundRecord::Known(value) if value.same_as(&wanted.value));
    let in_the_way = |f: &FoundRecord| match (&wanted.value, f) {
        (_, f) if same(f) => false,
        (RecordValue::Cname { .. }, _) => true,
        (RecordValue::Alias { .. }, FoundRecord::Known(_)) => true,
        (RecordValue::Alias { .. }, FoundRecord::Other(kind)) => kind.eq_ignore_ascii_case("A"),
    };
    if let Some(other) = found.iter().find(|f| in_the_way(f)) {
        let what = match other {
            FoundRecord::Known(value) => {
                format!("{} at {} pointing at {}", value.record_type(), wanted.name, value.points_at())
            }
            FoundRecord::Other(kind) => format!("{kind} at {}", wanted.name),
        };
        return Placement::Conflict(format!(
            "hosted zone {} ({}) already has a record of type {what}, which Portcullis did not make and does not \
             replace; remove it to let Portcullis write {wanted}{}",
            zone.id,
            zone.name,
            match wanted.value {
                RecordValue::Alias { .. } => ", or create the app without dnsAlias",
                RecordValue::Cname { .. } => "",
            }
        ));
    }
    match found.iter().any(same) && !written_by_another_app {
        true => Placement::AlreadyThere,
        false => Placement::Write,
    }
}

/// Why the tenant's zone cannot take the app's records, or `None` when it can: it exists, is public (the
/// certificate authority must see the validation record), and its name covers the app's domain.
pub fn zone_problem(tenant_id: &str, zone_id: &str, zone: Option<&HostedZone>, domain: &str) -> Option<String> {
    let fix = format!("a platform operator can correct hostedZoneId with PUT /tenants/{tenant_id}");
    match zone {
        None => Some(format!("hosted zone {zone_id} of tenant {tenant_id} does not exist; {fix}")),
        Some(zone) if zone.private => Some(format!(
            "hosted zone {zone_id} ({}) of tenant {tenant_id} is private, so the certificate authority cannot \
             see the validation record; {fix}",
            zone.name
        )),
        Some(zone) if !zone_covers(&zone.name, domain) => {
            Some(format!("hosted zone {zone_id} ({}) of tenant {tenant_id} does not cover {domain}; {fix}", zone.name))
        }
        Some(_) => None,
    }
}

/// True if `domain` is the zone's apex or a name under it.
pub fn zone_covers(zone_name: &str, domain: &str) -> bool {
    let (zone, domain) = (normalize(zone_name), normalize(domain));
    !zone.is_empty() && (domain == zone || domain.strip_suffix(&zone).is_some_and(|head| head.ends_with('.')))
}

/// A name as DNS compares it: lower case, without the final dot.
fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn same_name(a: &str, b: &str) -> bool {
    normalize(a) == normalize(b)
}

/// A fully qualified name: lower case, with the final dot.
fn fqdn(name: &str) -> String {
    format!("{}.", normalize(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> HostedZone {
        HostedZone { id: "Z1".into(), name: "example.com.".into(), private: false }
    }

    fn acm() -> ValidationRecord {
        ValidationRecord {
            name: "_d930.Grafana.Example.com.".into(),
            record_type: "CNAME".into(),
            value: "_c9ed.acm-validations.aws.".into(),
        }
    }

    fn lb(name: &str) -> AliasTarget {
        AliasTarget { dns_name: name.into(), zone_id: "ZLB".into() }
    }

    #[test]
    fn the_validation_record_is_written_exactly_as_given_in_dns_form() {
        let record = DnsRecord::validation(&acm()).unwrap();
        assert_eq!(record.name, "_d930.grafana.example.com.");
        assert_eq!(record.value, RecordValue::Cname { value: "_c9ed.acm-validations.aws.".into(), ttl: 300 });
        assert_eq!(record.to_string(), "CNAME _d930.grafana.example.com. _c9ed.acm-validations.aws.");
        let other = ValidationRecord { record_type: "TXT".into(), ..acm() };
        assert_eq!(DnsRecord::validation(&other), None);
        let alias = DnsRecord::alias("grafana.example.com", lb("my-alb-1.elb.example"));
        assert_eq!(alias.name, "grafana.example.com.");
        assert_eq!(alias.value.record_type(), "A");
    }

    #[test]
    fn a_zone_covers_its_apex_and_the_names_under_it_only() {
        assert!(zone_covers("example.com.", "example.com"));
        assert!(zone_covers("Example.COM.", "a.b.example.com"));
        assert!(!zone_covers("example.com.", "badexample.com"));
        assert!(!zone_covers("a.example.com.", "example.com"));
        assert!(!zone_covers(".", "example.com"));
    }

    #[test]
    fn a_zone_that_is_missing_private_or_elsewhere_is_refused_with_what_to_fix() {
        let domain = "grafana.example.com";
        assert_eq!(zone_problem("t", "Z1", Some(&zone()), domain), None);
        let missing = zone_problem("t", "Z1", None, domain).unwrap();
        assert!(missing.contains("does not exist") && missing.contains("PUT /tenants/t"), "{missing}");
        let private = HostedZone { private: true, ..zone() };
        assert!(zone_problem("t", "Z1", Some(&private), domain).unwrap().contains("private"));
        let elsewhere = HostedZone { name: "other.org.".into(), ..zone() };
        let refused = zone_problem("t", "Z1", Some(&elsewhere), domain).unwrap();
        assert!(refused.contains("does not cover grafana.example.com") && refused.contains("other.org."), "{refused}");
    }

    #[test]
    fn an_empty_name_is_written_and_the_same_record_made_by_someone_else_is_left_alone() {
        let wanted = DnsRecord::validation(&acm()).unwrap();
        assert_eq!(placement(&wanted, &zone(), &[], false), Placement::Write);
        let same = FoundRecord::Known(RecordValue::Cname { value: "_C9ED.acm-validations.aws".into(), ttl: 60 });
        assert_eq!(placement(&wanted, &zone(), std::slice::from_ref(&same), false), Placement::AlreadyThere);
        // Another app of Portcullis wrote it: this one relies on it too.
        assert_eq!(placement(&wanted, &zone(), &[same], true), Placement::Write);
    }

    #[test]
    fn a_different_record_at_the_name_is_never_replaced() {
        let wanted = DnsRecord::validation(&acm()).unwrap();
        let elsewhere = FoundRecord::Known(RecordValue::Cname { value: "someone.else.".into(), ttl: 300 });
        let Placement::Conflict(why) = placement(&wanted, &zone(), &[elsewhere], true) else { panic!("conflict") };
        assert!(
            why.contains("a record of type CNAME at _d930.grafana.example.com. pointing at someone.else."),
            "{why}"
        );
        // Nothing can share a name with a CNAME.
        let txt = FoundRecord::Other("TXT".into());
        assert!(matches!(placement(&wanted, &zone(), std::slice::from_ref(&txt), false), Placement::Conflict(_)));

        let alias = DnsRecord::alias("grafana.example.com", lb("my-alb-1.elb.example"));
        assert_eq!(placement(&alias, &zone(), &[txt], false), Placement::Write, "an A record may share with a TXT");
        for in_the_way in [
            FoundRecord::Other("A".into()),
            FoundRecord::Known(RecordValue::Alias { target: lb("another-alb.elb.example") }),
            FoundRecord::Known(RecordValue::Cname { value: "old.host.".into(), ttl: 60 }),
        ] {
            let Placement::Conflict(why) = placement(&alias, &zone(), &[in_the_way], false) else { panic!() };
            assert!(why.contains("without dnsAlias"), "{why}");
        }
        let dualstack = FoundRecord::Known(RecordValue::Alias { target: lb("DualStack.my-alb-1.elb.example.") });
        assert_eq!(placement(&alias, &zone(), &[dualstack], false), Placement::AlreadyThere);
    }

    #[test]
    fn states_say_what_is_in_the_zone_and_what_teardown_removes() {
        assert!(!RecordState::Writing.in_zone() && RecordState::Writing.owned());
        assert!(RecordState::Published.in_zone() && RecordState::Published.owned());
        assert!(RecordState::Found.in_zone() && !RecordState::Found.owned());
        let recorded = ZoneRecord {
            zone_id: "Z1".into(),
            record: DnsRecord::validation(&acm()).unwrap(),
            state: RecordState::Published,
        };
        let json = serde_json::to_value(&recorded).unwrap();
        assert_eq!(json["record"]["value"]["type"], "CNAME");
        assert_eq!(json["state"], "PUBLISHED");
        assert_eq!(serde_json::from_value::<ZoneRecord>(json).unwrap(), recorded);
    }
}
