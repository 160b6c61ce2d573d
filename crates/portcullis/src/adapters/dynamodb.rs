//! The store ports (`AppRepository`, `History`, `PriorityReservations`, `InvitationRecords`,
//! `TenantRegistry`, `RecordClaims`, `IdempotencyStore`) on one DynamoDB table (`pk`/`sk` strings). Item kinds:
//! - `TENANT#t / APP#id`: an app (its fields, plus `version` for optimistic concurrency)
//! - `DOMAIN#fqdn / DOMAIN`: the domain guard, written in the same transaction as the app
//! - `APP#id / EVENT#<unix nanos>#<uuid>`: history, sortable by time
//! - `LISTENER#arn / PRIORITY#nnnnn`: a listener rule priority reserved by an app
//! - `TENANTS / TENANT#t`: a tenant's registration (its grants, quotas, SES identity, hosted zone)
//! - `GRANT#targetgroup#arn` or `GRANT#environment#name / GRANT`: the tenant a target is granted to,
//!   written in the same transaction as the registration
//! - `TENANT#t / EVENT#…`: the registration's history
//! - `TENANT#t / META`: the SES identity written by hand before the registry (read, never written)
//! - `APP#id / USER#username`: an invitation (who invited whom, when)
//! - `DNSRECORD#zone#name / APP#id`: an app relying on a DNS record Portcullis wrote in a hosted zone
//! - `SERVICETOKEN#clientId / SERVICETOKEN` and `TENANT#t / SERVICETOKEN#clientId`: a service token (the
//!   first for the token verifier's lookup by client id, the second for the tenant's listing), written
//!   and deleted together in one transaction
//! - `IDEMPOTENCY#<tenant>#<key> / KEY`: a POST's idempotency key, its request's fingerprint and answer
//! - `WARM-UP / WARM-UP`: never written; read during a cold start to open the connection (`warm_up`)

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, KeysAndAttributes, Put, TransactWriteItem};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;

use time::OffsetDateTime;

use super::{AwsFailure, all_pages, aws_failure, build_error, done_if};
use crate::domain::{
    App, AppEvent, AppStatus, ClaimOutcome, Invitation, KeyClaim, KeyRecord, KeyState, Resend, ServiceToken, SesConfig,
    StoredAnswer, Tenant, domain_taken,
};
use crate::error::{Error, Result};
use crate::ports::{
    AppRepository, History, IdempotencyStore, InvitationRecords, Page, PriorityReservations, RecordClaim, RecordClaims,
    ServiceTokenRecords, Subject, TenantRegistry,
};

type Item = HashMap<String, AttributeValue>;

/// The DynamoDB-backed store.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// Builds the client from the function's AWS configuration (once per cold start).
    pub fn from_config(config: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(Client::new(config), table)
    }

    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore { client, table: table.into() }
    }

    /// Opens the connection to DynamoDB (TCP and TLS) and resolves the credentials before the first
    /// request needs them, by reading a key no item has. Run during a cold start's init.
    pub async fn warm_up(&self) -> Result<()> {
        self.client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(WARM_UP_KEY))
            .key("sk", s(WARM_UP_KEY))
            .projection_expression("pk")
            .send()
            .await
            .map_err(|e| aws_failure("DynamoDB GetItem (warm-up)", e).into_error())?;
        Ok(())
    }
}

/// The key of the item `warm_up` reads: nothing is ever written there.
const WARM_UP_KEY: &str = "WARM-UP";

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn tenant_pk(tenant_id: &str) -> String {
    format!("TENANT#{tenant_id}")
}

fn app_sk(app_id: &str) -> String {
    format!("APP#{app_id}")
}

fn domain_pk(domain: &str) -> String {
    format!("DOMAIN#{domain}")
}

fn listener_pk(listener_arn: &str) -> String {
    format!("LISTENER#{listener_arn}")
}

fn priority_sk(priority: u32) -> String {
    format!("PRIORITY#{priority:05}")
}

fn record_claims_pk(zone_id: &str, name: &str) -> String {
    format!("DNSRECORD#{zone_id}#{}", name.to_ascii_lowercase())
}

fn app_item(app: &App) -> Result<Item> {
    let mut item: Item = serde_dynamo::to_item(app).map_err(|e| Error::internal_from("cannot write an app item", e))?;
    item.insert("pk".into(), s(tenant_pk(&app.tenant_id)));
    item.insert("sk".into(), s(app_sk(&app.id)));
    Ok(item)
}

/// The partition holding a subject's history.
fn history_pk(subject: Subject<'_>) -> String {
    match subject {
        Subject::App(app_id) => format!("APP#{app_id}"),
        Subject::Tenant(tenant_id) => tenant_pk(tenant_id),
    }
}

/// Every registration lives in one partition: operators list them, and there are few.
const REGISTRY_PK: &str = "TENANTS";

fn registry_key(tenant_id: &str) -> Item {
    HashMap::from([("pk".to_string(), s(REGISTRY_PK)), ("sk".to_string(), s(format!("TENANT#{tenant_id}")))])
}

fn grant_key(exclusive_key: &str) -> Item {
    HashMap::from([("pk".to_string(), s(format!("GRANT#{exclusive_key}"))), ("sk".to_string(), s("GRANT"))])
}

fn event_item(subject: Subject<'_>, event: &AppEvent) -> Result<Item> {
    let mut item: Item =
        serde_dynamo::to_item(event).map_err(|e| Error::internal_from("cannot write an event item", e))?;
    let nanos = event.at.unix_timestamp_nanos();
    let unique = uuid::Uuid::new_v4().simple().to_string();
    item.insert("pk".into(), s(history_pk(subject)));
    item.insert("sk".into(), s(format!("EVENT#{nanos:020}#{}", &unique[..8])));
    Ok(item)
}

fn invitation_key(app_id: &str, username: &str) -> Item {
    HashMap::from([("pk".to_string(), s(format!("APP#{app_id}"))), ("sk".to_string(), s(format!("USER#{username}")))])
}

fn from_item<T: DeserializeOwned>(item: Item) -> Result<T> {
    serde_dynamo::from_item(item).map_err(|e| Error::internal_from("a stored item no longer reads", e))
}

/// Page tokens are the query's LastEvaluatedKey (all string keys), base64url-encoded JSON.
fn encode_token(key: Option<&Item>) -> Option<String> {
    let key = key?;
    let plain: HashMap<&str, &str> =
        key.iter().filter_map(|(k, v)| v.as_s().ok().map(|v| (k.as_str(), v.as_str()))).collect();
    Some(URL_SAFE_NO_PAD.encode(serde_json::to_vec(&plain).ok()?))
}

/// Decodes a page token, refusing any that points outside the partition being listed.
fn decode_token(token: Option<&str>, pk: &str) -> Result<Option<Item>> {
    let Some(token) = token else { return Ok(None) };
    let invalid = || Error::Invalid("nextToken is not a token this listing returned".into());
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let plain: HashMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if plain.get("pk").map(String::as_str) != Some(pk) || !plain.contains_key("sk") || plain.len() != 2 {
        return Err(invalid());
    }
    Ok(Some(plain.into_iter().map(|(k, v)| (k, s(v))).collect()))
}

impl DynamoStore {
    /// One page of items in partition `pk` whose sort key starts with `prefix`.
    async fn query_page(
        &self,
        pk: &str,
        prefix: &str,
        limit: u32,
        next_token: Option<&str>,
        newest_first: bool,
    ) -> Result<(Vec<Item>, Option<String>)> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":prefix", s(prefix))
            .limit(i32::try_from(limit).unwrap_or(100))
            .scan_index_forward(!newest_first)
            .set_exclusive_start_key(decode_token(next_token, pk)?)
            .send()
            .await
            .map_err(|e| aws_failure("DynamoDB Query", e).into_error())?;
        let next = encode_token(out.last_evaluated_key());
        Ok((out.items.unwrap_or_default(), next))
    }

    /// Deletes an item if `appId` matches; a missing item or another holder is a no-op.
    async fn delete_if_held(&self, pk: String, sk: String, app_id: &str, what: &str) -> Result<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .condition_expression("appId = :app")
            .expression_attribute_values(":app", s(app_id))
            .send()
            .await
            .map_err(|e| aws_failure(what, e));
        done_if(result, &["ConditionalCheckFailedException"]).map_err(AwsFailure::into_error)?;
        Ok(())
    }
}

#[async_trait]
impl AppRepository for DynamoStore {
    async fn create(&self, app: &App, event: &AppEvent) -> Result<()> {
        let put = |item: Item| -> Result<TransactWriteItem> {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(|e| build_error("a DynamoDB transaction item", e))?;
            Ok(TransactWriteItem::builder().put(put).build())
        };
        let guard: Item = HashMap::from([
            ("pk".to_string(), s(domain_pk(&app.domain))),
            ("sk".to_string(), s("DOMAIN")),
            ("appId".to_string(), s(&app.id)),
            ("tenantId".to_string(), s(&app.tenant_id)),
        ]);
        let result = self
            .client
            .transact_write_items()
            .transact_items(put(app_item(app)?)?)
            .transact_items(put(guard)?)
            .transact_items(put(event_item(Subject::App(&app.id), event)?)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => {
                // The guard is the second item: its condition failing means the domain is taken.
                if cancelled_at(&err) == Some(1) {
                    return Err(Error::Conflict(domain_taken(&app.domain)));
                }
                Err(aws_failure("DynamoDB TransactWriteItems", err).into_error())
            }
        }
    }

    async fn get(&self, tenant_id: &str, app_id: &str) -> Result<Option<App>> {
        let key = HashMap::from([("pk".to_string(), s(tenant_pk(tenant_id))), ("sk".to_string(), s(app_sk(app_id)))]);
        self.get_item(key, "DynamoDB GetItem (app)").await?.map(from_item).transpose()
    }

    async fn list(&self, tenant_id: &str, limit: u32, next_token: Option<&str>) -> Result<Page<App>> {
        let (items, next_token) = self.query_page(&tenant_pk(tenant_id), "APP#", limit, next_token, false).await?;
        let items = items.into_iter().map(from_item).collect::<Result<_>>()?;
        Ok(Page { items, next_token })
    }

    async fn update(&self, app: &mut App) -> Result<()> {
        let expected = app.version;
        let mut next = app.clone();
        next.version = expected + 1;
        next.updated_at = time::OffsetDateTime::now_utc();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(app_item(&next)?))
            .condition_expression("version = :expected")
            .expression_attribute_values(":expected", AttributeValue::N(expected.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => {
                *app = next;
                Ok(())
            }
            Err(e) => {
                let failure = aws_failure("DynamoDB PutItem", e);
                if failure.is("ConditionalCheckFailedException") {
                    Err(Error::Conflict(format!("app {} was changed by someone else; try again", app.id)))
                } else {
                    Err(failure.into_error())
                }
            }
        }
    }

    async fn release_domain(&self, domain: &str, app_id: &str) -> Result<()> {
        self.delete_if_held(domain_pk(domain), "DOMAIN".into(), app_id, "DynamoDB DeleteItem (domain)").await
    }

    async fn domain_claimed(&self, domain: &str) -> Result<bool> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(domain_pk(domain)))
            .key("sk", s("DOMAIN"))
            .projection_expression("pk")
            .send()
            .await
            .map_err(|e| aws_failure("DynamoDB GetItem (domain)", e).into_error())?;
        Ok(out.item.is_some())
    }

    async fn count_live(&self, tenant_id: &str) -> Result<u32> {
        let pk = tenant_pk(tenant_id);
        let counts = all_pages(|token| {
            let pk = &pk;
            async move {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .filter_expression("#status <> :deleted")
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":pk", s(pk))
                    .expression_attribute_values(":prefix", s("APP#"))
                    .expression_attribute_values(":deleted", s(AppStatus::Deleted.as_str()))
                    .select(aws_sdk_dynamodb::types::Select::Count)
                    .set_exclusive_start_key(decode_token(token.as_deref(), pk)?)
                    .send()
                    .await
                    .map_err(|e| aws_failure("DynamoDB Query (live apps)", e).into_error())?;
                Ok((vec![out.count.max(0) as u32], encode_token(out.last_evaluated_key())))
            }
        })
        .await?;
        Ok(counts.iter().sum())
    }
}

#[async_trait]
impl History for DynamoStore {
    async fn append(&self, subject: Subject<'_>, event: &AppEvent) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(event_item(subject, event)?))
            .send()
            .await
            .map_err(|e| aws_failure("DynamoDB PutItem (event)", e).into_error())?;
        Ok(())
    }

    async fn list(&self, subject: Subject<'_>, limit: u32, next_token: Option<&str>) -> Result<Page<AppEvent>> {
        let (items, next_token) = self.query_page(&history_pk(subject), "EVENT#", limit, next_token, true).await?;
        let items = items.into_iter().map(from_item).collect::<Result<_>>()?;
        Ok(Page { items, next_token })
    }
}

#[async_trait]
impl PriorityReservations for DynamoStore {
    async fn reserved(&self, listener_arn: &str) -> Result<BTreeMap<u32, String>> {
        let pk = listener_pk(listener_arn);
        let items = all_pages(|token| {
            let pk = &pk;
            async move { self.query_page(pk, "PRIORITY#", 100, token.as_deref(), false).await }
        })
        .await?;
        Ok(items
            .iter()
            .filter_map(|item| {
                let priority = item.get("sk")?.as_s().ok()?.strip_prefix("PRIORITY#")?.parse::<u32>().ok()?;
                Some((priority, item.get("appId")?.as_s().ok()?.clone()))
            })
            .collect())
    }

    async fn reserve(&self, listener_arn: &str, priority: u32, app_id: &str) -> Result<()> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(listener_pk(listener_arn)))
            .item("sk", s(priority_sk(priority)))
            .item("appId", s(app_id))
            // A retry by the same app keeps its own reservation.
            .condition_expression("attribute_not_exists(pk) OR appId = :app")
            .expression_attribute_values(":app", s(app_id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                let failure = aws_failure("DynamoDB PutItem (priority)", e);
                if failure.is("ConditionalCheckFailedException") {
                    Err(Error::PriorityInUse(format!("priority {priority} was reserved by another app")))
                } else {
                    Err(failure.into_error())
                }
            }
        }
    }

    async fn release(&self, listener_arn: &str, priority: u32, app_id: &str) -> Result<()> {
        self.delete_if_held(listener_pk(listener_arn), priority_sk(priority), app_id, "DynamoDB DeleteItem (priority)")
            .await
    }
}

#[async_trait]
impl RecordClaims for DynamoStore {
    async fn claim(&self, zone_id: &str, name: &str, claim: &RecordClaim) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(record_claims_pk(zone_id, name)))
            .item("sk", s(app_sk(&claim.app_id)))
            .item("appId", s(&claim.app_id))
            .item("tenantId", s(&claim.tenant_id))
            .send()
            .await
            .map_err(|e| aws_failure("DynamoDB PutItem (record claim)", e).into_error())?;
        Ok(())
    }

    async fn release(&self, zone_id: &str, name: &str, app_id: &str) -> Result<()> {
        let (pk, sk) = (record_claims_pk(zone_id, name), app_sk(app_id));
        self.delete_if_held(pk, sk, app_id, "DynamoDB DeleteItem (record claim)").await
    }

    async fn claims(&self, zone_id: &str, name: &str) -> Result<Vec<RecordClaim>> {
        let pk = record_claims_pk(zone_id, name);
        let items = all_pages(|token| {
            let pk = &pk;
            async move { self.query_page(pk, "APP#", 100, token.as_deref(), false).await }
        })
        .await?;
        Ok(items
            .iter()
            .filter_map(|item| {
                let text = |key: &str| item.get(key)?.as_s().ok().cloned();
                Some(RecordClaim { tenant_id: text("tenantId")?, app_id: text("appId")? })
            })
            .collect())
    }
}

/// The SES identity operators wrote by hand before the registry existed.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct LegacySettings {
    ses_source_arn: Option<String>,
    ses_from: Option<String>,
}

#[async_trait]
impl TenantRegistry for DynamoStore {
    async fn get(&self, tenant_id: &str) -> Result<Option<Tenant>> {
        self.get_item(registry_key(tenant_id), "DynamoDB GetItem (tenant)").await?.map(from_item).transpose()
    }

    async fn list(&self, limit: u32, next_token: Option<&str>) -> Result<Page<Tenant>> {
        let (items, next_token) = self.query_page(REGISTRY_PK, "TENANT#", limit, next_token, false).await?;
        Ok(Page { items: items.into_iter().map(from_item).collect::<Result<_>>()?, next_token })
    }

    async fn put(&self, tenant: &mut Tenant, previous: Option<&Tenant>) -> Result<()> {
        let mut next = tenant.clone();
        next.version = tenant.version + 1;
        let mut item: Item =
            serde_dynamo::to_item(&next).map_err(|e| Error::internal_from("cannot write a tenant item", e))?;
        item.extend(registry_key(&tenant.id));
        let mut registration = Put::builder().table_name(&self.table).set_item(Some(item));
        registration = if tenant.version == 0 {
            registration.condition_expression("attribute_not_exists(pk)")
        } else {
            registration
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", AttributeValue::N(tenant.version.to_string()))
        };
        let mut writes = vec![
            TransactWriteItem::builder()
                .put(registration.build().map_err(|e| build_error("a tenant registration", e))?)
                .build(),
        ];
        let targets = &tenant.registration.targets;
        for granted in targets {
            let mut guard = grant_key(&granted.exclusive_key());
            guard.insert("tenantId".into(), s(&tenant.id));
            guard.insert("targetId".into(), s(&granted.id));
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(guard))
                .condition_expression("attribute_not_exists(pk) OR tenantId = :tenant")
                .expression_attribute_values(":tenant", s(&tenant.id))
                .build()
                .map_err(|e| build_error("a grant guard", e))?;
            writes.push(TransactWriteItem::builder().put(put).build());
        }
        let kept: std::collections::HashSet<String> = targets.iter().map(|t| t.exclusive_key()).collect();
        let released =
            previous.into_iter().flat_map(|p| &p.registration.targets).filter(|t| !kept.contains(&t.exclusive_key()));
        for granted in released {
            writes.push(self.release_grant(&granted.exclusive_key(), &tenant.id)?);
        }
        match self.client.transact_write_items().set_transact_items(Some(writes)).send().await {
            Ok(_) => {
                *tenant = next;
                Ok(())
            }
            Err(err) => {
                let failed = cancelled_at(&err);
                if failed == Some(0) {
                    return Err(Error::Conflict(format!(
                        "tenant {} was registered or changed by someone else meanwhile; read it and try again",
                        tenant.id
                    )));
                }
                if let Some(granted) = failed.and_then(|i| targets.get(i - 1)) {
                    return Err(Error::Conflict(format!(
                        "target '{}' is granted to another tenant; a target group or environment is granted to one \
                         tenant only",
                        granted.id
                    )));
                }
                Err(aws_failure("DynamoDB TransactWriteItems (tenant)", err).into_error())
            }
        }
    }

    async fn delete(&self, tenant: &Tenant) -> Result<()> {
        let registration = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.table)
            .set_key(Some(registry_key(&tenant.id)))
            .condition_expression("version = :expected")
            .expression_attribute_values(":expected", AttributeValue::N(tenant.version.to_string()))
            .build()
            .map_err(|e| build_error("a tenant deletion", e))?;
        let mut writes = vec![TransactWriteItem::builder().delete(registration).build()];
        for granted in &tenant.registration.targets {
            writes.push(self.release_grant(&granted.exclusive_key(), &tenant.id)?);
        }
        match self.client.transact_write_items().set_transact_items(Some(writes)).send().await {
            Ok(_) => Ok(()),
            Err(err) if cancelled_at(&err) == Some(0) => Err(Error::Conflict(format!(
                "tenant {} was changed by someone else meanwhile; read it and try again",
                tenant.id
            ))),
            Err(err) => Err(aws_failure("DynamoDB TransactWriteItems (tenant)", err).into_error()),
        }
    }

    async fn legacy_ses(&self, tenant_id: &str) -> Result<Option<SesConfig>> {
        let key = HashMap::from([("pk".to_string(), s(tenant_pk(tenant_id))), ("sk".to_string(), s("META"))]);
        let legacy: LegacySettings = self
            .get_item(key, "DynamoDB GetItem (tenant settings)")
            .await?
            .map(from_item)
            .transpose()?
            .unwrap_or_default();
        Ok(legacy
            .ses_source_arn
            .filter(|a| !a.is_empty())
            .map(|source_arn| SesConfig { source_arn, from: legacy.ses_from.filter(|f| !f.is_empty()) }))
    }
}

impl DynamoStore {
    /// Frees a grant guard if this tenant holds it (a missing one is fine).
    fn release_grant(&self, exclusive_key: &str, tenant_id: &str) -> Result<TransactWriteItem> {
        let delete = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.table)
            .set_key(Some(grant_key(exclusive_key)))
            .condition_expression("attribute_not_exists(pk) OR tenantId = :tenant")
            .expression_attribute_values(":tenant", s(tenant_id))
            .build()
            .map_err(|e| build_error("a grant release", e))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }
}

/// The index of the first write whose condition failed in a cancelled transaction.
fn cancelled_at<R>(
    err: &aws_smithy_runtime_api::client::result::SdkError<TransactWriteItemsError, R>,
) -> Option<usize> {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancel)) => {
            cancel.cancellation_reasons().iter().position(|r| r.code() == Some("ConditionalCheckFailed"))
        }
        _ => None,
    }
}

/// A time as the table keeps it.
fn rfc3339(at: OffsetDateTime) -> Result<AttributeValue> {
    let text = at
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| Error::internal_from("cannot write a time", e))?;
    Ok(s(text))
}

impl DynamoStore {
    /// Updates an invitation record; none recorded (a user added outside Portcullis, or revoked
    /// meanwhile) is left so.
    async fn update_invitation<const N: usize>(
        &self,
        app_id: &str,
        username: &str,
        update: &str,
        values: [(&str, AttributeValue); N],
    ) -> Result<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(invitation_key(app_id, username)))
            .update_expression(update)
            .condition_expression("attribute_exists(pk)")
            .set_expression_attribute_values(Some(values.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
            .send()
            .await
            .map_err(|e| aws_failure("DynamoDB UpdateItem (invitation)", e));
        done_if(result, &["ConditionalCheckFailedException"]).map_err(AwsFailure::into_error)?;
        Ok(())
    }
}

#[async_trait]
impl InvitationRecords for DynamoStore {
    async fn put(&self, app: &App, invitation: &Invitation) -> Result<()> {
        let mut item: Item = serde_dynamo::to_item(invitation)
            .map_err(|e| Error::internal_from("cannot write an invitation item", e))?;
        item.extend(invitation_key(&app.id, &invitation.username));
        // In one transaction with a check that the app is still ACTIVE: a deletion sets DELETING before its
        // teardown forgets the invitations, so a record written here is always one that teardown sees.
        let still_active = ConditionCheck::builder()
            .table_name(&self.table)
            .key("pk", s(tenant_pk(&app.tenant_id)))
            .key("sk", s(app_sk(&app.id)))
            .condition_expression("#status = :active")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":active", s(AppStatus::Active.as_str()))
            .build()
            .map_err(|e| build_error("an app status check", e))?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .map_err(|e| build_error("an invitation write", e))?;
        let writes = vec![
            TransactWriteItem::builder().condition_check(still_active).build(),
            TransactWriteItem::builder().put(put).build(),
        ];
        match self.client.transact_write_items().set_transact_items(Some(writes)).send().await {
            Ok(_) => Ok(()),
            Err(err) if cancelled_at(&err) == Some(0) => Err(Error::Conflict(format!(
                "app {} is no longer ACTIVE (it is being deleted); its users cannot be changed",
                app.id
            ))),
            Err(err) => Err(aws_failure("DynamoDB TransactWriteItems (invitation)", err).into_error()),
        }
    }

    async fn get_many(&self, app_id: &str, usernames: &[String]) -> Result<HashMap<String, Invitation>> {
        let mut found = HashMap::new();
        // BatchGetItem takes 100 keys; a page of users is at most 60.
        for chunk in usernames.chunks(100) {
            let mut keys = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.iter().map(|u| invitation_key(app_id, u)).collect()))
                    .build()
                    .map_err(|e| build_error("a DynamoDB batch read", e))?,
            );
            // Under load some keys come back unprocessed: ask again for those, backing off.
            for attempt in 0..6u32 {
                let Some(request) = keys.take() else { break };
                if attempt > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
                }
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| aws_failure("DynamoDB BatchGetItem (invitations)", e).into_error())?;
                for item in out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default() {
                    let invitation: Invitation = from_item(item)?;
                    found.insert(invitation.username.clone(), invitation);
                }
                keys = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table));
            }
            if keys.is_some() {
                return Err(Error::retryable("DynamoDB left invitation reads unprocessed; try again"));
            }
        }
        Ok(found)
    }

    async fn mark_sent(&self, app_id: &str, username: &str, at: OffsetDateTime, by: Resend) -> Result<()> {
        let automatic = AttributeValue::N(u32::from(by == Resend::Automatic).to_string());
        let values = [(":at", rfc3339(at)?), (":automatic", automatic)];
        self.update_invitation(app_id, username, "SET lastSentAt = :at ADD autoResends :automatic", values).await
    }

    async fn list(&self, app_id: &str) -> Result<Vec<Invitation>> {
        let pk = format!("APP#{app_id}");
        let mut invitations = Vec::new();
        let mut next_token = None;
        loop {
            let (items, next) = self.query_page(&pk, "USER#", 100, next_token.as_deref(), false).await?;
            for item in items {
                invitations.push(from_item(item)?);
            }
            next_token = next;
            if next_token.is_none() {
                return Ok(invitations);
            }
        }
    }

    async fn mark_access_ended(&self, app_id: &str, username: &str, at: OffsetDateTime) -> Result<()> {
        self.update_invitation(app_id, username, "SET accessEndedAt = :at", [(":at", rfc3339(at)?)]).await
    }

    async fn delete(&self, app_id: &str, username: &str) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(invitation_key(app_id, username)))
            .send()
            .await
            .map_err(|e| aws_failure("DynamoDB DeleteItem (invitation)", e).into_error())?;
        Ok(())
    }

    async fn forget_all(&self, app_id: &str) -> Result<()> {
        let pk = format!("APP#{app_id}");
        // Each page's items are deleted before the next is read, so the query starts afresh every time.
        loop {
            let (items, _) = self.query_page(&pk, "USER#", 100, None, false).await?;
            if items.is_empty() {
                return Ok(());
            }
            for sk in items.into_iter().filter_map(|mut item| item.remove("sk")) {
                let key = HashMap::from([("pk".to_string(), s(&pk)), ("sk".to_string(), sk)]);
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key))
                    .send()
                    .await
                    .map_err(|e| aws_failure("DynamoDB DeleteItem (invitation)", e).into_error())?;
            }
        }
    }
}

/// The two keys of a service token: by client id, and in its tenant's partition.
fn service_token_keys(token: &ServiceToken) -> [Item; 2] {
    [
        HashMap::from([
            ("pk".to_string(), s(format!("SERVICETOKEN#{}", token.client_id))),
            ("sk".to_string(), s("SERVICETOKEN")),
        ]),
        HashMap::from([
            ("pk".to_string(), s(tenant_pk(&token.tenant_id))),
            ("sk".to_string(), s(format!("SERVICETOKEN#{}", token.client_id))),
        ]),
    ]
}

#[async_trait]
impl ServiceTokenRecords for DynamoStore {
    async fn put(&self, token: &ServiceToken) -> Result<()> {
        let record: Item =
            serde_dynamo::to_item(token).map_err(|e| Error::internal_from("cannot write a service token item", e))?;
        let mut writes = Vec::new();
        for key in service_token_keys(token) {
            let mut item = record.clone();
            item.extend(key);
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(|e| build_error("a service token", e))?;
            writes.push(TransactWriteItem::builder().put(put).build());
        }
        match self.client.transact_write_items().set_transact_items(Some(writes)).send().await {
            Ok(_) => Ok(()),
            Err(err) if cancelled_at(&err).is_some() => {
                Err(Error::Conflict(format!("service token {} is already recorded", token.client_id)))
            }
            Err(err) => Err(aws_failure("DynamoDB TransactWriteItems (service token)", err).into_error()),
        }
    }

    async fn by_client(&self, client_id: &str) -> Result<Option<ServiceToken>> {
        let key = HashMap::from([
            ("pk".to_string(), s(format!("SERVICETOKEN#{client_id}"))),
            ("sk".to_string(), s("SERVICETOKEN")),
        ]);
        self.get_item(key, "DynamoDB GetItem (service token)").await?.map(from_item).transpose()
    }

    async fn list(&self, tenant_id: &str) -> Result<Vec<ServiceToken>> {
        let pk = tenant_pk(tenant_id);
        let items = all_pages(|token| {
            let pk = &pk;
            async move { self.query_page(pk, "SERVICETOKEN#", 100, token.as_deref(), false).await }
        })
        .await?;
        items.into_iter().map(from_item).collect()
    }

    async fn delete(&self, token: &ServiceToken) -> Result<()> {
        let mut writes = Vec::new();
        for key in service_token_keys(token) {
            let delete = aws_sdk_dynamodb::types::Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key))
                .build()
                .map_err(|e| build_error("a service token deletion", e))?;
            writes.push(TransactWriteItem::builder().delete(delete).build());
        }
        self.client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await
            .map_err(|e| aws_failure("DynamoDB TransactWriteItems (service token)", e).into_error())?;
        Ok(())
    }
}

impl DynamoStore {
    async fn get_item(&self, key: Item, what: &str) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| aws_failure(what, e).into_error())?;
        Ok(out.item)
    }
}

/// `IDEMPOTENCY#<scope>#<key> / KEY`: a request's claim on its idempotency key, then the answer it got.
/// `expiresAt` is the table's time-to-live attribute; its deletion is lazy, so claims treat an expired
/// item as absent.
fn idempotency_key(claim: &KeyClaim) -> Item {
    let pk = format!("IDEMPOTENCY#{}#{}", claim.scope.label(), claim.key.as_str());
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s("KEY"))])
}

const KEY_IN_PROGRESS: &str = "IN_PROGRESS";
const KEY_ANSWERED: &str = "ANSWERED";

fn epoch_seconds(at: OffsetDateTime) -> AttributeValue {
    AttributeValue::N(at.unix_timestamp().to_string())
}

fn key_item(claim: &KeyClaim, answer: Option<&StoredAnswer>) -> Result<Item> {
    let mut item = idempotency_key(claim);
    item.insert("fingerprint".into(), s(&claim.fingerprint));
    item.insert("holder".into(), s(&claim.holder));
    item.insert("expiresAt".into(), epoch_seconds(claim.expires_at));
    item.insert("leaseUntil".into(), epoch_seconds(claim.lease_until));
    item.insert("state".into(), s(if answer.is_some() { KEY_ANSWERED } else { KEY_IN_PROGRESS }));
    if let Some(answer) = answer {
        let json = serde_json::to_string(answer).map_err(|e| Error::internal_from("cannot write an answer", e))?;
        item.insert("answer".into(), s(json));
    }
    Ok(item)
}

fn key_record(item: &Item) -> Result<KeyRecord> {
    let unreadable = || Error::internal("an idempotency key item no longer reads");
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().ok_or_else(unreadable);
    let time = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
            .and_then(|n| OffsetDateTime::from_unix_timestamp(n).ok())
            .ok_or_else(unreadable)
    };
    let state = match text("state")?.as_str() {
        KEY_IN_PROGRESS => KeyState::InProgress,
        KEY_ANSWERED => KeyState::Answered(
            serde_json::from_str(&text("answer")?)
                .map_err(|e| Error::internal_from("a kept answer no longer reads", e))?,
        ),
        _ => return Err(unreadable()),
    };
    Ok(KeyRecord {
        fingerprint: text("fingerprint")?,
        holder: text("holder")?,
        expires_at: time("expiresAt")?,
        lease_until: time("leaseUntil")?,
        state,
    })
}

#[async_trait]
impl IdempotencyStore for DynamoStore {
    async fn claim(&self, claim: &KeyClaim) -> Result<ClaimOutcome> {
        // A claim that meets an item which is gone or vacant by the time it is read tries again.
        for _ in 0..3 {
            let now = OffsetDateTime::now_utc();
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(key_item(claim, None)?))
                .condition_expression(
                    "attribute_not_exists(pk) OR expiresAt <= :now OR (#state = :inProgress AND leaseUntil <= :now)",
                )
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":now", epoch_seconds(now))
                .expression_attribute_values(":inProgress", s(KEY_IN_PROGRESS))
                .send()
                .await
                .map_err(|e| aws_failure("DynamoDB PutItem (idempotency key)", e));
            if done_if(result, &["ConditionalCheckFailedException"]).map_err(AwsFailure::into_error)?.is_some() {
                return Ok(ClaimOutcome::Claimed);
            }
            let held = self.get_item(idempotency_key(claim), "DynamoDB GetItem (idempotency key)").await?;
            if let Some(record) = held.as_ref().map(key_record).transpose()?
                && !record.is_vacant(OffsetDateTime::now_utc())
            {
                return Ok(ClaimOutcome::Held(record));
            }
        }
        Err(Error::retryable("the idempotency key changed hands while it was claimed"))
    }

    async fn answer(&self, claim: &KeyClaim, answer: &StoredAnswer) -> Result<()> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(key_item(claim, Some(answer))?))
            .condition_expression("holder = :holder")
            .expression_attribute_values(":holder", s(&claim.holder))
            .send()
            .await
            .map_err(|e| aws_failure("DynamoDB PutItem (idempotency answer)", e));
        done_if(result, &["ConditionalCheckFailedException"]).map_err(AwsFailure::into_error)?;
        Ok(())
    }

    async fn release(&self, claim: &KeyClaim) -> Result<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(idempotency_key(claim)))
            .condition_expression("holder = :holder")
            .expression_attribute_values(":holder", s(&claim.holder))
            .send()
            .await
            .map_err(|e| aws_failure("DynamoDB DeleteItem (idempotency key)", e));
        done_if(result, &["ConditionalCheckFailedException"]).map_err(AwsFailure::into_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_items_read_back_as_written() {
        use crate::domain::{IdempotencyKey, KeyScope};
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let claim =
            KeyClaim::new(KeyScope::Tenant("acme".into()), IdempotencyKey::parse(b"k#1").unwrap(), "f".into(), at);
        let item = key_item(&claim, None).unwrap();
        assert_eq!(item["pk"], s("IDEMPOTENCY#acme#k#1"));
        assert_eq!(item["sk"], s("KEY"));
        assert_eq!(item["expiresAt"], AttributeValue::N("1700086400".into()));
        let record = key_record(&item).unwrap();
        assert_eq!((record.state, record.holder.as_str()), (KeyState::InProgress, claim.holder.as_str()));
        assert_eq!((record.expires_at, record.lease_until), (claim.expires_at, claim.lease_until));
        let answer = StoredAnswer {
            status: 202,
            headers: vec![("location".into(), "/apps/1".into())],
            body: "{\"id\":\"1\"}".into(),
        };
        let record = key_record(&key_item(&claim, Some(&answer)).unwrap()).unwrap();
        assert_eq!((record.state, record.fingerprint.as_str()), (KeyState::Answered(answer), "f"));
    }

    #[test]
    fn page_tokens_round_trip_and_stay_in_their_partition() {
        let key: Item = HashMap::from([("pk".into(), s("TENANT#a")), ("sk".into(), s("APP#1"))]);
        let token = encode_token(Some(&key)).unwrap();
        assert_eq!(decode_token(Some(&token), "TENANT#a").unwrap(), Some(key));
        assert!(decode_token(Some(&token), "TENANT#b").is_err());
        assert!(decode_token(Some("not base64!"), "TENANT#a").is_err());
        assert_eq!(decode_token(None, "TENANT#a").unwrap(), None);
    }
}
