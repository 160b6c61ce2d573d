//! `CertificateAuthority` on ACM.

use async_trait::async_trait;
use aws_sdk_acm::Client;
use aws_sdk_acm::types::{CertificateStatus as AcmStatus, Tag, ValidationMethod};

use super::{APP_ID_TAG, all_pages, aws_failure, build_error, done_if};
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
            .map_err(|e| aws_failure("ACM DescribeCertificate", e))
            .map_err(|failure| match failure.is("ResourceNotFoundException") {
                true => Error::NotFound(format!("certificate {certificate_arn} does not exist")),
                false => failure.into_error(),
            })?;
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

    async fn find(&self, domain: &str, app_id: &str) -> Result<Vec<String>> {
        // ACM filters by status and key, not by tag: list the domain's certificates, then read their tags.
        // The listing's default key filter (RSA 2048) is the key RequestCertificate gives ours.
        let for_domain = all_pages(|token| async move {
            let out = self
                .client
                .list_certificates()
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| aws_failure("ACM ListCertificates", e).into_error())?;
            let arns = out
                .certificate_summary_list()
                .iter()
                .filter(|c| c.domain_name().is_some_and(|d| d.eq_ignore_ascii_case(domain)))
                .filter_map(|c| c.certificate_arn().map(str::to_string))
                .collect();
            Ok((arns, out.next_token))
        })
        .await?;
        let mut tagged = Vec::new();
        for arn in for_domain {
            let result = self.client.list_tags_for_certificate().certificate_arn(&arn).send().await;
            // Deleted since the listing: not there to find.
            let Some(out) = done_if(
                result.map_err(|e| aws_failure("ACM ListTagsForCertificate", e)),
                &["ResourceNotFoundException"],
            )
            .map_err(|f| f.into_error())?
            else {
                continue;
            };
            if out.tags().iter().any(|t| t.key() == APP_ID_TAG && t.value() == Some(app_id)) {
                tagged.push(arn);
            }
        }
        Ok(tagged)
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
