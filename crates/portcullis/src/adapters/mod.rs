//! Adapters: the ports implemented on aws-sdk-rust. SDK types and SDK errors stop here: each adapter
//! translates them into domain types and `crate::Error` exactly once.

mod acm;
mod cognito;
mod cognito_users;
mod dynamodb;
mod elasticbeanstalk;
mod elbv2;
mod jwks;
mod stepfunctions;

pub use acm::AcmCertificates;
pub use cognito::CognitoUserPools;
pub use cognito_users::CognitoAppUsers;
pub use dynamodb::DynamoStore;
pub use elasticbeanstalk::BeanstalkEnvironments;
pub use elbv2::ElbLoadBalancer;
pub use jwks::JwksTokenVerifier;
pub use stepfunctions::StepFunctionsWorkflow;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::error::Error;

/// Loads the AWS configuration (region, credentials, endpoint overrides such as `AWS_ENDPOINT_URL`).
/// Call once per cold start and build every client from it.
pub async fn load_aws_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// An AWS call's failure, reduced to what adapters decide on.
#[derive(Debug)]
pub(crate) struct AwsFailure {
    /// The service's error code (`ConditionalCheckFailedException`, `PriorityInUse`, …), if any.
    pub code: Option<String>,
    pub message: String,
    pub retryable: bool,
}

impl AwsFailure {
    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// The default translation when the adapter has no more specific one.
    pub fn into_error(self) -> Error {
        if self.retryable { Error::Retryable(self.message) } else { Error::Upstream(self.message) }
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
    R: std::fmt::Debug,
{
    match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().map(str::to_string);
            let retryable = code.as_deref().is_some_and(|c| RETRYABLE_CODES.contains(&c));
            let message = format!(
                "{operation} failed: {}: {}",
                code.as_deref().unwrap_or("error"),
                e.message().unwrap_or("no message")
            );
            AwsFailure { code, message, retryable }
        }
        // Timeouts, connection faults and unparseable responses are worth another try.
        other => AwsFailure {
            code: None,
            message: format!("{operation} failed: {}", aws_smithy_types::error::display::DisplayErrorContext(&other)),
            retryable: true,
        },
    }
}
