//! The app as the API shows it (the contract's field names). Never holds a client secret: Portcullis
//! does not keep one.

use serde::Serialize;

use crate::domain::{App, AppError, AppStatus, CertificateStatus, EmailSending, Target, ValidationRecord};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateView<'a> {
    pub arn: Option<&'a str>,
    pub status: Option<CertificateStatus>,
    pub validation_record: Option<&'a ValidationRecord>,
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
                validation_record: r.validation_record.as_ref(),
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
            created_at: app.created_at,
            updated_at: app.updated_at,
        }
    }
}
