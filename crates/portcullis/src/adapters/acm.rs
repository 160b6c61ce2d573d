//! `CertificateAuthority` on ACM.

use async_trait::async_trait;
use aws_sdk_acm::Client;
use aws_sdk_acm::types::{CertificateStatus as AcmStatus, Tag, ValidationMethod};

use super::{APP_ID_TAG, aws_failure, build_error, done_if};
use crate::domain::{CertificateStatus, ValidationRecord};
use crate::error::{Error, Result};
use crate::ports::{CertificateAuthority, CertificateState};

/// The ACM-backed certificate authority.
#[derive(Debug, Clone)]
pub struct AcmCertificates {
    client: Client,
}

impl AcmCertificates {
    /// Builds the client from the function's AWS configuration (once per cold start).
    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        Self::new(Client::new(config))
    }

    pub fn new(client: Client) -> Self {
        AcmCertificates { client }
    }
}

#[async_trait]
impl CertificateAuthority for AcmCertificates {
    async fn request(&self, domain: &str, idempotency_token: &str, app_id: &str) -> Result<String> {
        let tag = Tag::builder().key(APP_ID_TAG).value(app_id).build().map_err(|e| build_error("an ACM tag", e))?;
        let out = self
            .client
            .request_certificate()
            .domain_name(domain)
            .validation_method(ValidationMethod::Dns)
            .idempotency_token(idempotency_token)
            .tags(tag)
            .send()
            .await
            .map_err(|e| aws_failure("ACM RequestCertificate", e).into_error())?;
        out.certificate_arn.ok_or_else(|| Error::upstream("ACM RequestCertificate returned no certificate ARN"))
    }

    async fn describe(&self, certificate_arn: &str) -> Result<CertificateState> {
        let out = self
            .client
            .describe_certificate()
            .certificate_arn(certificate_arn)
            .send()
            .await
            .map_err(|e| aws_failure("ACM DescribeCertificate", e).into_error())?;
        let detail =
            out.certificate.ok_or_else(|| Error::upstream("ACM DescribeCertificate returned no certificate"))?;
        let status = detail.status().map(certificate_status).unwrap_or(CertificateStatus::Unknown);
        // ACM fills the record in a few seconds after the request; until then there is none to show.
        let validation_record =
            detail.domain_validation_options().iter().find_map(|option| option.resource_record()).map(|r| {
                ValidationRecord {
                    name: r.name().to_string(),
                    record_type: r.r#type().as_str().to_string(),
                    value: r.value().to_string(),
                }
            });
        Ok(CertificateState { status, validation_record })
    }

    async fn delete(&self, certificate_arn: &str) -> Result<()> {
        let result = self.client.delete_certificate().certificate_arn(certificate_arn).send().await;
        match done_if(result.map_err(|e| aws_failure("ACM DeleteCertificate", e)), &["ResourceNotFoundException"]) {
            Ok(_) => Ok(()),
            // ELB releases a detached certificate after a short while.
            Err(in_use) if in_use.is("ResourceInUseException") => {
                Err(Error::Retryable { message: in_use.message, source: Some(in_use.source) })
            }
            Err(failure) => Err(failure.into_error()),
        }
    }
}

/// ACM's status in the domain's words.
fn certificate_status(status: &AcmStatus) -> CertificateStatus {
    match status {
        AcmStatus::PendingValidation => CertificateStatus::PendingValidation,
        AcmStatus::Issued => CertificateStatus::Issued,
        AcmStatus::Inactive => CertificateStatus::Inactive,
        AcmStatus::Expired => CertificateStatus::Expired,
        AcmStatus::ValidationTimedOut => CertificateStatus::ValidationTimedOut,
        AcmStatus::Revoked => CertificateStatus::Revoked,
        AcmStatus::Failed => CertificateStatus::Failed,
        _ => CertificateStatus::Unknown,
    }
}
