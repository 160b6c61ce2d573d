//! The app as the API shows it (the contract's field names). Never holds a client secret: Portcullis
//! does not keep one.

use serde::Serialize;

use crate::domain::{
    AccessPolicy, App, AppError, AppStatus, CertificateStatus, EmailSending, Health, Mfa, SettingsChange, Target,
    ValidationRecord, ZoneRecord,
};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateView<'a> {
    pub arn: Option<&'a str>,
    pub status: Option<CertificateStatus>,
    pub validation_record: Option<ValidationRecordView<'a>>,
}

/// The record that proves control of the domain, and whether it is in the tenant's hosted zone (else a
/// human adds it).
#[derive(Debug, Serialize)]
pub struct ValidationRecordView<'a> {
    #[serde(flatten)]
    pub record: &'a ValidationRecord,
    pub published: bool,
}

/// The app's own record in the tenant's hosted zone: its host name aliased to the load balancer.
#[derive(Debug, Serialize)]
pub struct DnsRecordView<'a> {
    pub name: &'a str,
    #[serde(rename = "type")]
    pub record_type: &'static str,
    pub value: &'a str,
    pub published: bool,
}

impl<'a> From<&'a ZoneRecord> for DnsRecordView<'a> {
    fn from(placed: &'a ZoneRecord) -> Self {
        DnsRecordView {
            name: &placed.record.name,
            record_type: placed.record.value.record_type(),
            value: placed.record.value.points_at(),
            published: placed.state.in_zone(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthView<'a> {
    pub user_pool_id: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub domain: Option<&'a str>,
    pub logout_url: Option<String>,
    pub email_sending: Option<&'a EmailSending>,
}

/// `GET /apps/{id}`'s body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppView<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub domain: &'a str,
    pub status: AppStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<&'static str>,
    pub url: String,
    pub target: &'a Target,
    pub certificate: CertificateView<'a>,
    pub auth: AuthView<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listener_rule_arn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a AppError>,
    pub session_timeout_seconds: u32,
    pub dns_alias: bool,
    pub auto_resend: bool,
    pub access_policy: &'a AccessPolicy,
    pub mfa: Mfa,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_record: Option<DnsRecordView<'a>>,
    /// The last drift check; absent until the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<&'a Health>,
    /// A change of settings being applied (`PATCH /apps/{id}`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings_change: Option<&'a SettingsChange>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: time::OffsetDateTime,
}

impl<'a> From<&'a App> for AppView<'a> {
    fn from(app: &'a App) -> Self {
        let r = &app.resources;
        AppView {
            id: &app.id,
            name: &app.name,
            domain: &app.domain,
            status: app.status,
            // `step` says where provisioning is; it means nothing once it has ended.
            step: app.step.filter(|_| app.status == AppStatus::Provisioning).map(|s| s.as_str()),
            url: app.url(),
            target: &app.target,
            certificate: CertificateView {
                arn: r.certificate_arn.as_deref(),
                status: r.certificate_status,
                validation_record: r.validation_record.as_ref().map(|record| ValidationRecordView {
                    record,
                    published: r.validation_dns.as_ref().is_some_and(|placed| placed.state.in_zone()),
                }),
            },
            auth: AuthView {
                user_pool_id: r.user_pool_id.as_deref(),
                client_id: r.client_id.as_deref(),
                domain: r.pool_domain_host.as_deref(),
                logout_url: app.logout_url(),
                email_sending: r.email_sending.as_ref(),
            },
            listener_rule_arn: r.listener_rule_arn.as_deref(),
            error: app.error.as_ref(),
            session_timeout_seconds: app.session_timeout_seconds,
            dns_alias: app.dns_alias,
            auto_resend: app.auto_resend,
            access_policy: &app.access_policy,
            mfa: app.mfa,
            dns_record: r.alias_dns.as_ref().map(DnsRecordView::from),
            health: app.health.as_ref(),
            settings_change: app.settings_change.as_ref(),
            created_at: app.created_at,
            updated_at: app.updated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AliasTarget, DnsRecord, RecordState};

    fn shown(app: &App) -> serde_json::Value {
        serde_json::to_value(AppView::from(app)).unwrap()
    }

    #[test]
    fn the_validation_record_says_whether_it_is_in_the_tenants_zone() {
        let mut app = crate::fakes::app("a1", AppStatus::Provisioning);
        let record = ValidationRecord {
            name: "_x.grafana.example.com.".into(),
            record_type: "CNAME".into(),
            value: "_y.acm-validations.aws.".into(),
        };
        app.resources.validation_record = Some(record.clone());
        let view = shown(&app);
        assert_eq!(
            view["certificate"]["validationRecord"],
            serde_json::json!({"name": "_x.grafana.example.com.", "type": "CNAME",
                               "value": "_y.acm-validations.aws.", "published": false})
        );
        assert_eq!(view["dnsAlias"], false);
        assert!(view.get("dnsRecord").is_none());

        let placed =
            |state| ZoneRecord { zone_id: "Z1".into(), record: DnsRecord::validation(&record).unwrap(), state };
        app.resources.validation_dns = Some(placed(RecordState::Writing));
        assert_eq!(shown(&app)["certificate"]["validationRecord"]["published"], false, "not confirmed yet");
        for state in [RecordState::Published, RecordState::Found] {
            app.resources.validation_dns = Some(placed(state));
            assert_eq!(shown(&app)["certificate"]["validationRecord"]["published"], true);
        }
    }

    #[test]
    fn the_alias_record_is_shown_once_recorded() {
        let mut app = crate::fakes::app("a1", AppStatus::Active);
        app.dns_alias = true;
        let target = AliasTarget { dns_name: "my-alb-1.elb.example.".into(), zone_id: "ZLB".into() };
        app.resources.alias_dns = Some(ZoneRecord {
            zone_id: "Z1".into(),
            record: DnsRecord::alias(&app.domain, target),
            state: RecordState::Published,
        });
        assert_eq!(
            shown(&app)["dnsRecord"],
            serde_json::json!({"name": "grafana.example.com.", "type": "A", "value": "my-alb-1.elb.example.",
                               "published": true})
        );
        assert_eq!(shown(&app)["dnsAlias"], true);
    }
}
