//! `DnsZone` on Route 53.

use async_trait::async_trait;
use aws_sdk_route53::Client;
use aws_sdk_route53::operation::change_resource_record_sets::ChangeResourceRecordSetsError;
use aws_sdk_route53::types::{
    AliasTarget as Route53Alias, Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use aws_smithy_runtime_api::client::result::SdkError;

use super::{AwsFailure, aws_failure, build_error, done_if};
use crate::domain::{AliasTarget, DnsRecord, FoundRecord, HostedZone, RecordValue};
use crate::error::{Error, Result};
use crate::ports::{DnsZone, Removal};

/// The Route 53-backed hosted zone port.
#[derive(Debug, Clone)]
pub struct Route53Zone {
    client: Client,
}

impl Route53Zone {
    /// Builds the client from the function's AWS configuration (once per cold start).
    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        Self::new(Client::new(config))
    }

    pub fn new(client: Client) -> Self {
        Route53Zone { client }
    }
}

/// Route 53 answers `PriorRequestNotComplete` while an earlier change to the zone is being applied.
fn route53_error(failure: AwsFailure) -> Error {
    if failure.is("PriorRequestNotComplete") {
        return Error::Retryable { message: failure.message, source: Some(failure.source) };
    }
    failure.into_error()
}

#[async_trait]
impl DnsZone for Route53Zone {
    async fn zone(&self, zone_id: &str) -> Result<Option<HostedZone>> {
        let result = self.client.get_hosted_zone().id(zone_id).send().await;
        let found = done_if(result.map_err(|e| aws_failure("Route 53 GetHostedZone", e)), &["NoSuchHostedZone"])
            .map_err(route53_error)?;
        Ok(found.and_then(|out| {
            out.hosted_zone().map(|zone| HostedZone {
                id: zone_id.to_string(),
                name: zone.name().to_string(),
                private: zone.config().is_some_and(|c| c.private_zone()),
            })
        }))
    }

    async fn records_at(&self, zone_id: &str, name: &str) -> Result<Vec<FoundRecord>> {
        let mut found = Vec::new();
        let mut start: Option<(String, RrType)> = None;
        // The listing runs in DNS order from the name on; only the records at the name itself matter.
        loop {
            let out = self
                .client
                .list_resource_record_sets()
                .hosted_zone_id(zone_id)
                .start_record_name(start.as_ref().map_or(name, |(n, _)| n.as_str()))
                .set_start_record_type(start.as_ref().map(|(_, t)| t.clone()))
                .max_items(20)
                .send()
                .await
                .map_err(|e| route53_error(aws_failure("Route 53 ListResourceRecordSets", e)))?;
            let at_name: Vec<&ResourceRecordSet> =
                out.resource_record_sets().iter().filter(|set| same_name(set.name(), name)).collect();
            found.extend(at_name.into_iter().map(found_record));
            match (out.is_truncated(), out.next_record_name(), out.next_record_type()) {
                (true, Some(next), Some(kind)) if same_name(next, name) => {
                    start = Some((next.to_string(), kind.clone()));
                }
                _ => return Ok(found),
            }
        }
    }

    async fn upsert(&self, zone_id: &str, record: &DnsRecord, app_id: &str) -> Result<()> {
        let batch = change_batch(ChangeAction::Upsert, record, app_id)?;
        self.send(zone_id, batch)
            .await
            .map_err(|e| route53_error(aws_failure("Route 53 ChangeResourceRecordSets (UPSERT)", e)))
    }

    async fn delete(&self, zone_id: &str, record: &DnsRecord, app_id: &str) -> Result<Removal> {
        let batch = change_batch(ChangeAction::Delete, record, app_id)?;
        match self.send(zone_id, batch).await {
            Ok(()) => Ok(Removal::Deleted),
            Err(e) => match refused_change(&e).as_deref().and_then(removal_refused) {
                Some(removal) => Ok(removal),
                None => Err(route53_error(aws_failure("Route 53 ChangeResourceRecordSets (DELETE)", e))),
            },
        }
    }
}

type ChangeFailure = SdkError<ChangeResourceRecordSetsError, aws_smithy_runtime_api::http::Response>;

impl Route53Zone {
    async fn send(&self, zone_id: &str, batch: ChangeBatch) -> std::result::Result<(), ChangeFailure> {
        self.client.change_resource_record_sets().hosted_zone_id(zone_id).change_batch(batch).send().await?;
        Ok(())
    }
}

/// One change of one record, commented with the app it is for.
fn change_batch(action: ChangeAction, record: &DnsRecord, app_id: &str) -> Result<ChangeBatch> {
    let set = ResourceRecordSet::builder().name(&record.name);
    let set = match &record.value {
        RecordValue::Cname { value, ttl } => set.r#type(RrType::Cname).ttl(i64::from(*ttl)).resource_records(
            ResourceRecord::builder().value(value).build().map_err(|e| build_error("a Route 53 record", e))?,
        ),
        RecordValue::Alias { target } => set.r#type(RrType::A).alias_target(
            Route53Alias::builder()
                .dns_name(&target.dns_name)
                .hosted_zone_id(&target.zone_id)
                // Always false: a DELETE must repeat the value exactly as it was written.
                .evaluate_target_health(false)
                .build()
                .map_err(|e| build_error("a Route 53 alias target", e))?,
        ),
    };
    let change = Change::builder()
        .action(action)
        .resource_record_set(set.build().map_err(|e| build_error("a Route 53 record set", e))?)
        .build()
        .map_err(|e| build_error("a Route 53 change", e))?;
    ChangeBatch::builder()
        .comment(format!("Portcullis app {app_id}"))
        .changes(change)
        .build()
        .map_err(|e| build_error("a Route 53 change batch", e))
}

/// The text of an `InvalidChangeBatch` refusal, if that is what the error is.
fn refused_change<R>(err: &SdkError<ChangeResourceRecordSetsError, R>) -> Option<String> {
    match err.as_service_error()? {
        ChangeResourceRecordSetsError::InvalidChangeBatch(refusal) => {
            let mut text = refusal.messages().join("; ");
            text.extend(refusal.message().map(|m| format!("; {m}")));
            Some(text)
        }
        _ => None,
    }
}

/// What a refused DELETE means: Route 53 refuses one for a record that is not there ("… but it was not
/// found") and one whose values differ from the record's ("… the values provided do not match the
/// current values"). Anything else is a real failure.
fn removal_refused(text: &str) -> Option<Removal> {
    let text = text.to_ascii_lowercase();
    if text.contains("but it was not found") {
        Some(Removal::AlreadyGone)
    } else if text.contains("values provided do not match") {
        Some(Removal::Changed)
    } else {
        None
    }
}

fn found_record(set: &ResourceRecordSet) -> FoundRecord {
    match (set.r#type(), set.alias_target(), set.resource_records().first()) {
        (RrType::Cname, None, Some(record)) => FoundRecord::Known(RecordValue::Cname {
            value: record.value().to_string(),
            ttl: set.ttl().and_then(|t| u32::try_from(t).ok()).unwrap_or_default(),
        }),
        (RrType::A, Some(alias), _) => FoundRecord::Known(RecordValue::Alias {
            target: AliasTarget { dns_name: alias.dns_name().to_string(), zone_id: alias.hosted_zone_id().to_string() },
        }),
        (other, _, _) => FoundRecord::Other(other.as_str().to_string()),
    }
}

/// Route 53 names end with a dot; `*` and other specials come back escaped (`\052`), which never
/// matches the plain host names Portcullis asks about.
fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.').eq_ignore_ascii_case(b.trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_delete_of_a_missing_or_changed_record_says_which() {
        let gone =
            "[Tried to delete resource record set [name='_x.app.example.com.', type='CNAME'] but it was not found]";
        assert_eq!(removal_refused(gone), Some(Removal::AlreadyGone));
        let changed = "[Tried to delete resource record set [name='app.example.com.', type='A'] but the values \
                       provided do not match the current values]";
        assert_eq!(removal_refused(changed), Some(Removal::Changed));
        assert_eq!(removal_refused("RRSet with DNS name x. is not permitted in zone y."), None);
    }

    #[test]
    fn records_are_written_with_the_exact_values_a_delete_repeats() {
        let alias = DnsRecord::alias(
            "app.example.com",
            AliasTarget { dns_name: "my-alb-1.us-east-1.elb.amazonaws.com".into(), zone_id: "Z35SXDOTRQ7X7K".into() },
        );
        let batch = change_batch(ChangeAction::Delete, &alias, "a1").unwrap();
        assert_eq!(batch.comment(), Some("Portcullis app a1"));
        let set = batch.changes()[0].resource_record_set().unwrap();
        assert_eq!((set.name(), set.r#type()), ("app.example.com.", &RrType::A));
        let target = set.alias_target().unwrap();
        assert_eq!(target.hosted_zone_id(), "Z35SXDOTRQ7X7K");
        assert!(!target.evaluate_target_health());
        assert_eq!(found_record(set), FoundRecord::Known(alias.value.clone()));

        let cname = DnsRecord {
            name: "_x.app.example.com.".into(),
            value: RecordValue::Cname { value: "_y.acm-validations.aws.".into(), ttl: 300 },
        };
        let batch = change_batch(ChangeAction::Upsert, &cname, "a1").unwrap();
        let set = batch.changes()[0].resource_record_set().unwrap();
        assert_eq!(found_record(set), FoundRecord::Known(cname.value.clone()));
        assert!(same_name("_X.App.example.com", "_x.app.example.com."));
    }
}
