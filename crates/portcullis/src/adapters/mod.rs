//! Adapters: the ports implemented on aws-sdk-rust. SDK types and SDK errors stop here: each adapter
//! translates them into domain types and `crate::Error` exactly once.

mod acm;
mod cognito;
mod cognito_roles;
mod cognito_service_credentials;
mod cognito_users;
mod dynamodb;
mod elasticbeanstalk;
mod elbv2;
mod jwks;
mod route53;
mod stepfunctions;

pub use acm::AcmCertificates;
pub use cognito::CognitoUserPools;
pub use cognito_service_credentials::CognitoServiceCredentials;
pub use cognito_users::CognitoAppUsers;
pub use dynamodb::DynamoStore;
pub use elasticbeanstalk::BeanstalkEnvironments;
pub use elbv2::ElbLoadBalancer;
pub use jwks::JwksTokenVerifier;
pub use route53::Route53Zone;
pub use stepfunctions::{StateMachineArns, StepFunctionsWorkflow};

use std::future::Future;

use aws_smithy_http_client::Builder;
use aws_smithy_http_client::tls::Provider;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::error::{Cause, Error, Result};

/// The tag every resource Portcullis creates carries, set in the create call itself: its value is the
/// app id. The IAM policies in infra/template.yaml scope the functions' rights to resources with this tag.
pub(crate) const APP_ID_TAG: &str = "portcullis:app-id";

/// Loads the AWS configuration (region, credentials, endpoint overrides such as `AWS_ENDPOINT_URL`).
/// Call once per cold start and build every client from it.
///
/// `app_name` names the function in every request's user agent (`app/portcullis-apps-api`): CloudTrail
/// shows it as the caller's user agent, and the local stack tells the functions' calls apart by it to
/// check each against the function's role (local/portcullis_local/iam_audit.py).
pub async fn load_aws_config(app_name: &'static str) -> Result<aws_config::SdkConfig> {
    let app_name = aws_config::AppName::new(app_name)
        .map_err(|e| Error::internal_from(format!("invalid SDK app name {app_name:?}"), e))?;
    // rustls on ring, the crypto reqwest uses too: one crypto library in the binary, not aws-lc as well.
    let https = Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    Ok(aws_config::defaults(aws_config::BehaviorVersion::latest()).app_name(app_name).http_client(https).load().await)
}

/// An AWS call's failure, reduced to what adapters decide on, with the SDK error kept as the cause.
#[derive(Debug)]
pub(crate) struct AwsFailure {
    /// The service's error code (`ConditionalCheckFailedException`, `PriorityInUse`, …), if any.
    pub code: Option<String>,
    pub message: String,
    pub retryable: bool,
    pub source: Cause,
}

impl AwsFailure {
    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// The default translation when the adapter has no more specific one.
    pub fn into_error(self) -> Error {
        let AwsFailure { message, retryable, source, .. } = self;
        if retryable {
            Error::Retryable { message, source: Some(source) }
        } else {
            Error::Upstream { message, source: Some(source) }
        }
    }
}

/// Error codes AWS services use for throttling and passing faults.
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
    "InternalFailure",
    "InternalServerError",
    "InternalErrorException",
    "ServiceUnavailable",
    "TransactionInProgressException",
];

/// Reduces any SDK error to an `AwsFailure`; `operation` names the call for the message.
pub(crate) fn aws_failure<E, R>(operation: &str, err: SdkError<E, R>) -> AwsFailure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().map(str::to_string);
            let retryable = code.as_deref().is_some_and(|c| RETRYABLE_CODES.contains(&c));
            let message = format!(
                "{operation} failed: {}: {}",
                code.as_deref().unwrap_or("error"),
                e.message().unwrap_or("no message")
            );
            AwsFailure { code, message, retryable, source: Box::new(err) }
        }
        // Timeouts, connection faults and unparseable responses are worth another try.
        _ => AwsFailure { code: None, message: format!("{operation} failed"), retryable: true, source: Box::new(err) },
    }
}

/// The answer of a call where some error codes mean the work is already done ("already gone" for a
/// delete, "already started" for a start): `Ok(None)` for those, the call's output otherwise.
pub(crate) fn done_if<T>(
    result: std::result::Result<T, AwsFailure>,
    done_codes: &[&str],
) -> std::result::Result<Option<T>, AwsFailure> {
    match result {
        Ok(out) => Ok(Some(out)),
        Err(failure) if done_codes.iter().any(|code| failure.is(code)) => Ok(None),
        Err(failure) => Err(failure),
    }
}

/// Every item of a marker-paginated listing: `page` fetches the page after a marker (`None` for the
/// first) and returns its items and the next marker, absent or empty on the last page.
pub(crate) async fn all_pages<T, F, Fut>(mut page: F) -> Result<Vec<T>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>)>>,
{
    let mut all = Vec::new();
    let mut marker = None;
    loop {
        let (items, next) = page(marker).await?;
        all.extend(items);
        match next.filter(|m| !m.is_empty()) {
            Some(next) => marker = Some(next),
            None => return Ok(all),
        }
    }
}

/// An SDK request that could not be built: the adapter passed something the SDK refuses (a bug).
pub(crate) fn build_error(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::internal_from(format!("cannot build {what}"), e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: &str) -> AwsFailure {
        AwsFailure { code: Some(code.into()), message: code.into(), retryable: false, source: "x".into() }
    }

    #[test]
    fn only_the_named_codes_mean_done() {
        assert_eq!(done_if(Ok::<_, AwsFailure>(5), &["RuleNotFound"]).unwrap(), Some(5));
        assert_eq!(done_if::<u8>(Err(failure("RuleNotFound")), &["RuleNotFound"]).unwrap(), None);
        assert!(done_if::<u8>(Err(failure("AccessDenied")), &["RuleNotFound"]).is_err());
    }

    #[tokio::test]
    async fn pages_are_followed_to_the_last() {
        let pages = all_pages(|marker| async move {
            Ok(match marker.as_deref() {
                None => (vec![1, 2], Some("a".to_string())),
                Some("a") => (vec![3], Some(String::new())),
                Some(other) => panic!("unexpected marker {other}"),
            })
        })
        .await
        .unwrap();
        assert_eq!(pages, vec![1, 2, 3]);
    }

    #[tokio::test]
    async fn an_invalid_app_name_is_refused_before_loading() {
        let err = load_aws_config("not an app name").await.unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::Internal);
    }

    #[test]
    fn failures_keep_their_cause_and_retryability() {
        let mut throttled = failure("ThrottlingException");
        throttled.retryable = true;
        let err = throttled.into_error();
        assert_eq!(err.kind(), crate::error::ErrorKind::Retryable);
        assert!(std::error::Error::source(&err).is_some());
        assert_eq!(failure("AccessDenied").into_error().kind(), crate::error::ErrorKind::Upstream);
    }
}
