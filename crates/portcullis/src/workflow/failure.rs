//! A step's failure, named for Step Functions: the name is the Lambda error's `errorType`, which the
//! ASL `Retry`/`Catch` match, and `error.code` of a FAILED app.

use crate::error::{Error, ErrorKind};

/// The stable names of step failures. Renaming one breaks the state machines and the API's
/// `error.code`: add, never rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureName {
    /// A passing failure: throttling, a 5xx, a concurrent write. ASL retries with backoff.
    Retryable,
    /// The certificate failed validation or was not issued before the deadline.
    CertificateNotIssued,
    /// The environment was not healthy before the deadline.
    EnvironmentNotReady,
    /// Another rule took the priority; ASL retries and the step picks another.
    PriorityInUse,
    /// An ALB quota (rules or certificates per load balancer) is full.
    QuotaExceeded,
    /// The target the caller named does not exist or cannot be used (no HTTPS listener, a rule for the
    /// host that Portcullis did not make, …).
    InvalidTarget,
    /// The tenant's grant no longer covers the app's target (withdrawn while the app was waiting).
    TargetNotGranted,
    /// The app's target group can be reached without the app's login, by routes Portcullis may not close.
    TargetExposed,
    /// The certificate authority has not given the validation record yet (it takes a few seconds after
    /// the request); ASL retries.
    ValidationRecordPending,
    /// The tenant's hosted zone cannot take the app's records: it does not exist, is private, or does not
    /// cover the app's domain; or the tenant no longer has one for the alias record it asked for.
    HostedZoneMismatch,
    /// A record Portcullis did not make holds a name it would write in the hosted zone; it is never replaced.
    DnsRecordConflict,
    /// The app was deleted while it was being provisioned: provisioning stops and makes nothing more.
    Cancelled,
    /// The app record is gone.
    AppNotFound,
    /// An AWS call failed in a way retrying will not fix.
    AwsError,
    /// A bug in Portcullis: a step ran out of order, a record no longer reads.
    Internal,
    /// The deployment is wrong (a missing setting).
    Misconfigured,
    /// The task input is not a step request: the state machine and the function disagree.
    InvalidStepRequest,
}

impl FailureName {
    /// Every name, for checking the state machines against.
    pub const ALL: [FailureName; 17] = [
        FailureName::Retryable,
        FailureName::CertificateNotIssued,
        FailureName::EnvironmentNotReady,
        FailureName::PriorityInUse,
        FailureName::QuotaExceeded,
        FailureName::InvalidTarget,
        FailureName::TargetNotGranted,
        FailureName::TargetExposed,
        FailureName::ValidationRecordPending,
        FailureName::HostedZoneMismatch,
        FailureName::DnsRecordConflict,
        FailureName::Cancelled,
        FailureName::AppNotFound,
        FailureName::AwsError,
        FailureName::Internal,
        FailureName::Misconfigured,
        FailureName::InvalidStepRequest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureName::Retryable => "Retryable",
            FailureName::CertificateNotIssued => "CertificateNotIssued",
            FailureName::EnvironmentNotReady => "EnvironmentNotReady",
            FailureName::PriorityInUse => "PriorityInUse",
            FailureName::QuotaExceeded => "QuotaExceeded",
            FailureName::InvalidTarget => "InvalidTarget",
            FailureName::TargetNotGranted => "TargetNotGranted",
            FailureName::TargetExposed => "TargetExposed",
            FailureName::ValidationRecordPending => "ValidationRecordPending",
            FailureName::HostedZoneMismatch => "HostedZoneMismatch",
            FailureName::DnsRecordConflict => "DnsRecordConflict",
            FailureName::Cancelled => "Cancelled",
            FailureName::AppNotFound => "AppNotFound",
            FailureName::AwsError => "AwsError",
            FailureName::Internal => "Internal",
            FailureName::Misconfigured => "Misconfigured",
            FailureName::InvalidStepRequest => "InvalidStepRequest",
        }
    }
}

impl std::fmt::Display for FailureName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A step's failure: its stable name, the message a FAILED app shows, and the error behind it.
#[derive(Debug)]
pub struct StepFailure {
    pub name: FailureName,
    pub message: String,
    pub cause: Option<Error>,
}

impl StepFailure {
    /// A failure the step itself decided on.
    pub fn new(name: FailureName, message: impl Into<String>) -> Self {
        StepFailure { name, message: message.into(), cause: None }
    }
}

impl std::fmt::Display for StepFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.message)
    }
}

impl std::error::Error for StepFailure {
    /// The message already is the cause's; the chain goes on with what caused the cause.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_ref().and_then(|e| std::error::Error::source(e))
    }
}

impl From<Error> for StepFailure {
    fn from(err: Error) -> Self {
        let name = match err.kind() {
            // A concurrent write: the retried step reads the app again.
            ErrorKind::Retryable | ErrorKind::Conflict => FailureName::Retryable,
            ErrorKind::PriorityInUse => FailureName::PriorityInUse,
            ErrorKind::QuotaExceeded => FailureName::QuotaExceeded,
            // Adapters answer `Invalid` only for what the caller named: the listener, the target group.
            ErrorKind::Invalid => FailureName::InvalidTarget,
            ErrorKind::Upstream => FailureName::AwsError,
            ErrorKind::Config => FailureName::Misconfigured,
            // The API's own kinds have no business in a step: a bug if they reach here.
            ErrorKind::Internal
            | ErrorKind::Unauthenticated
            | ErrorKind::Forbidden
            | ErrorKind::NotFound
            | ErrorKind::Unprocessable => FailureName::Internal,
        };
        StepFailure { name, message: err.to_string(), cause: Some(err) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_errors_get_stable_names() {
        let name = |err: Error| StepFailure::from(err).name;
        assert_eq!(name(Error::Conflict("x".into())), FailureName::Retryable);
        assert_eq!(name(Error::retryable("x")), FailureName::Retryable);
        assert_eq!(name(Error::PriorityInUse("x".into())), FailureName::PriorityInUse);
        assert_eq!(name(Error::QuotaExceeded("x".into())), FailureName::QuotaExceeded);
        assert_eq!(name(Error::Invalid("x".into())), FailureName::InvalidTarget);
        assert_eq!(name(Error::upstream("x")), FailureName::AwsError);
        assert_eq!(name(Error::config("x")), FailureName::Misconfigured);
        // Nothing internal is reported as the caller's target.
        assert_eq!(name(Error::internal("x")), FailureName::Internal);
        assert_eq!(name(Error::NotFound("x".into())), FailureName::Internal);
    }

    #[test]
    fn the_message_is_the_errors_and_the_chain_does_not_repeat_it() {
        #[derive(Debug, thiserror::Error)]
        #[error("connection reset")]
        struct Reset;
        let failure =
            StepFailure::from(Error::Upstream { message: "ACM failed".into(), source: Some(Box::new(Reset)) });
        assert_eq!(failure.message, "ACM failed");
        assert_eq!(crate::error::Chain(&failure).to_string(), "AwsError: ACM failed: connection reset");
    }

    #[test]
    fn names_are_distinct() {
        let names: std::collections::HashSet<_> = FailureName::ALL.iter().map(|n| n.as_str()).collect();
        assert_eq!(names.len(), FailureName::ALL.len());
    }
}
