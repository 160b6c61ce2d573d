//! The state machines' task steps. Sequencing, waiting, retry and catch live in `statemachine/*.asl.json`;
//! each step here does one thing, records what it made as soon as it exists, and is safe to run again.

mod steps;
#[cfg(test)]
mod steps_tests;

use serde::Deserialize;

pub use steps::Provisioner;

use crate::domain::Poll;
use crate::error::Error;

/// Which task a state machine state runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StepName {
    RequestCertificate,
    CheckCertificate,
    CheckEnvironment,
    CreateAuth,
    WireListener,
    Activate,
    Teardown,
    MarkFailed,
    MarkDeleted,
}

/// What Step Functions put in `$.error` when a Catch fired.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CaughtError {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: Option<String>,
}

impl CaughtError {
    /// The human message: a Lambda error's `errorMessage` when the cause is one, else the cause itself.
    pub fn message(&self) -> String {
        let cause = self.cause.as_deref().unwrap_or_default();
        serde_json::from_str::<serde_json::Value>(cause)
            .ok()
            .and_then(|v| v.get("errorMessage").and_then(|m| m.as_str()).map(str::to_string))
            .unwrap_or_else(|| cause.to_string())
    }
}

/// A task's input, as the state's `Parameters` build it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRequest {
    pub step: StepName,
    pub tenant_id: String,
    pub app_id: String,
    /// The wait loop's state, for the check steps.
    #[serde(default)]
    pub poll: Option<Poll>,
    /// What failed, for `markFailed`.
    #[serde(default)]
    pub error: Option<CaughtError>,
    /// How compensation ended, for `markFailed`: the teardown's output, or what it failed with.
    #[serde(default)]
    pub teardown: Option<serde_json::Value>,
}

impl StepRequest {
    /// The compensation's failure, if it failed (its success output is not a caught error).
    pub fn teardown_error(&self) -> Option<CaughtError> {
        self.teardown.clone().and_then(|t| serde_json::from_value(t).ok())
    }
}

/// A step's failure, with the stable name ASL `Retry`/`Catch` match on (`errorType` of the Lambda error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {message}")]
pub struct StepError {
    pub name: &'static str,
    pub message: String,
}

/// The stable error names.
pub mod error_names {
    /// A passing failure: throttling, a 5xx, a concurrent write. ASL retries with backoff.
    pub const RETRYABLE: &str = "Retryable";
    /// The certificate failed validation or was not issued before the deadline.
    pub const CERTIFICATE_NOT_ISSUED: &str = "CertificateNotIssued";
    /// The environment was not healthy before the deadline.
    pub const ENVIRONMENT_NOT_READY: &str = "EnvironmentNotReady";
    /// Another rule took the priority; ASL retries and the step picks another.
    pub const PRIORITY_IN_USE: &str = "PriorityInUse";
    /// An ALB quota (rules or certificates per load balancer) is full.
    pub const QUOTA_EXCEEDED: &str = "QuotaExceeded";
    /// The target does not exist or is not usable (no HTTPS listener, unknown target group, …).
    pub const INVALID_TARGET: &str = "InvalidTarget";
    /// The app record is gone.
    pub const APP_NOT_FOUND: &str = "AppNotFound";
    /// An AWS call failed in a way retrying will not fix.
    pub const AWS_ERROR: &str = "AwsError";
}

impl StepError {
    pub fn new(name: &'static str, message: impl Into<String>) -> Self {
        StepError { name, message: message.into() }
    }
}

impl From<Error> for StepError {
    fn from(err: Error) -> Self {
        use error_names::*;
        let name = match &err {
            Error::Retryable(_) | Error::Conflict(_) => RETRYABLE,
            Error::PriorityInUse(_) => PRIORITY_IN_USE,
            Error::QuotaExceeded(_) => QUOTA_EXCEEDED,
            Error::Invalid(_) => INVALID_TARGET,
            Error::NotFound(_) => APP_NOT_FOUND,
            Error::Unauthenticated(_) | Error::Forbidden(_) | Error::Upstream(_) => AWS_ERROR,
        };
        StepError { name, message: err.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_catch_result() {
        let request: StepRequest = serde_json::from_value(serde_json::json!({
            "step": "markFailed", "tenantId": "t", "appId": "a",
            "error": {"Error": "EnvironmentNotReady", "Cause": "{\"errorType\":\"EnvironmentNotReady\",\"errorMessage\":\"no healthy target\"}"}
        }))
        .unwrap();
        assert_eq!(request.step, StepName::MarkFailed);
        let error = request.error.unwrap();
        assert_eq!(error.error, "EnvironmentNotReady");
        assert_eq!(error.message(), "no healthy target");
        let request: StepRequest = serde_json::from_value(serde_json::json!({
            "step": "markFailed", "tenantId": "t", "appId": "a", "teardown": {}
        }))
        .unwrap();
        assert_eq!(request.teardown_error(), None);
        let plain = CaughtError { error: "States.Timeout".into(), cause: Some("timed out".into()) };
        assert_eq!(plain.message(), "timed out");
    }

    #[test]
    fn domain_errors_get_stable_names() {
        assert_eq!(StepError::from(Error::Conflict("x".into())).name, "Retryable");
        assert_eq!(StepError::from(Error::PriorityInUse("x".into())).name, "PriorityInUse");
        assert_eq!(StepError::from(Error::QuotaExceeded("x".into())).name, "QuotaExceeded");
        assert_eq!(StepError::from(Error::Invalid("x".into())).name, "InvalidTarget");
    }
}
