//! `CertificateAuthority` on ACM.

use async_trait::async_trait;
use aws_sdk_acm::Client;
use aws_sdk_acm::types::{Tag, ValidationMethod};

use super::aws_failure;
use crate::domain::ValidationRecord;
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
        let tag = Tag::builder()
            .key("portcullis:app-id")
            .value(app_id)
            .build()
            .map_err(|e| Error::Upstream(e.to_string()))?;
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
        out.certificate_arn.ok_or_else(|| Error::Upstream("ACM RequestCertificate returned no certificate ARN".into()))
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
            out.certificate.ok_or_else(|| Error::Upstream("ACM DescribeCertificate returned no certificate".into()))?;
        let status = detail.status().map(|s| s.as_str().to_string()).unwrap_or_else(|| "UNKNOWN".into());
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
        match self.client.delete_certificate().certificate_arn(certificate_arn).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let failure = aws_failure("ACM DeleteCertificate", e);
                if failure.is("ResourceNotFoundException") {
                    Ok(())
                } else if failure.is("ResourceInUseException") {
                    // ELB releases a detached certificate after a short while.
                    Err(Error::Retryable(failure.message))
                } else {
                    Err(failure.into_error())
                }
            }
        }
    }
}
