//! The one error type of the domain. Adapters translate AWS errors into it exactly once; the API maps it
//! to HTTP status + problem+json (`api::problem`), the workflow to stable Step Functions error names
//! (`workflow::StepError`).

use thiserror::Error;

/// Everything that can go wrong in Portcullis, by what the caller can do about it.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// The request is malformed or breaks a rule; the detail says which.
    #[error("{0}")]
    Invalid(String),
    /// No credentials, or credentials that do not verify.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller is known but may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// No such resource for this tenant (other tenants' resources are reported the same way).
    #[error("{0}")]
    NotFound(String),
    /// The resource exists, or is in a state that does not allow this.
    #[error("{0}")]
    Conflict(String),
    /// A quota (ours or an AWS one) would be exceeded.
    #[error("{0}")]
    QuotaExceeded(String),
    /// A listener rule priority was taken between choosing and using it.
    #[error("{0}")]
    PriorityInUse(String),
    /// A passing failure (throttling, a 5xx, a network fault): the same call may succeed later.
    #[error("{0}")]
    Retryable(String),
    /// An AWS call failed in a way retrying will not fix.
    #[error("{0}")]
    Upstream(String),
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
