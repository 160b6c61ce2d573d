//! The one error type of the domain. Adapters translate AWS errors into it exactly once; the API maps it
//! to HTTP status + problem+json (`api::problem`), the workflow to stable Step Functions error names
//! (`workflow::StepFailure`). Failures that are not the caller's keep their cause (`#[source]`), so a
//! log line shows the whole chain.

use std::fmt;

use thiserror::Error;

/// The underlying failure of an `Upstream`, `Retryable`, `Internal` or `Config` error.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in Portcullis, by whose fault it is and what the caller can do about it.
#[derive(Debug, Error)]
pub enum Error {
    /// The request is malformed or breaks a rule; the detail says which. The caller's fault.
    #[error("{0}")]
    Invalid(String),
    /// The request is well formed, but what it asks for cannot be done as asked (a time already past).
    #[error("{0}")]
    Unprocessable(String),
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
    /// A passing failure upstream (throttling, a 5xx, a network fault): the same call may succeed later.
    #[error("{message}")]
    Retryable {
        message: String,
        #[source]
        source: Option<Cause>,
    },
    /// A service Portcullis depends on failed in a way retrying will not fix.
    #[error("{message}")]
    Upstream {
        message: String,
        #[source]
        source: Option<Cause>,
    },
    /// A broken invariant: a bug in Portcullis (a step run out of order, an unreadable record).
    #[error("{message}")]
    Internal {
        message: String,
        #[source]
        source: Option<Cause>,
    },
    /// The deployment is wrong (a missing or malformed setting); fixed by whoever runs Portcullis.
    #[error("{message}")]
    Config {
        message: String,
        #[source]
        source: Option<Cause>,
    },
}

/// What kind of error it is, without its payload: for matching and for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Invalid,
    Unprocessable,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    QuotaExceeded,
    PriorityInUse,
    Retryable,
    Upstream,
    Internal,
    Config,
}

impl Error {
    /// A passing failure with no underlying error to keep.
    pub fn retryable(message: impl Into<String>) -> Self {
        Error::Retryable { message: message.into(), source: None }
    }

    /// An upstream failure with no underlying error to keep.
    pub fn upstream(message: impl Into<String>) -> Self {
        Error::Upstream { message: message.into(), source: None }
    }

    /// A broken invariant.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal { message: message.into(), source: None }
    }

    /// A broken invariant caused by `source` (say, a stored item that no longer deserializes).
    pub fn internal_from(message: impl Into<String>, source: impl Into<Cause>) -> Self {
        Error::Internal { message: message.into(), source: Some(source.into()) }
    }

    /// A deployment fault.
    pub fn config(message: impl Into<String>) -> Self {
        Error::Config { message: message.into(), source: None }
    }

    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) => ErrorKind::Invalid,
            Error::Unprocessable(_) => ErrorKind::Unprocessable,
            Error::Unauthenticated(_) => ErrorKind::Unauthenticated,
            Error::Forbidden(_) => ErrorKind::Forbidden,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::QuotaExceeded(_) => ErrorKind::QuotaExceeded,
            Error::PriorityInUse(_) => ErrorKind::PriorityInUse,
            Error::Retryable { .. } => ErrorKind::Retryable,
            Error::Upstream { .. } => ErrorKind::Upstream,
            Error::Internal { .. } => ErrorKind::Internal,
            Error::Config { .. } => ErrorKind::Config,
        }
    }

    /// True for failures that are Portcullis's or its dependencies', not the caller's.
    pub fn is_server_side(&self) -> bool {
        matches!(self.kind(), ErrorKind::Retryable | ErrorKind::Upstream | ErrorKind::Internal | ErrorKind::Config)
    }
}

/// Displays an error followed by each of its causes: `outer: cause: root cause`. For log lines.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Error)]
    #[error("connection reset")]
    struct Reset;

    #[test]
    fn the_chain_shows_every_cause() {
        let err = Error::Upstream { message: "ELB CreateRule failed".into(), source: Some(Box::new(Reset)) };
        assert_eq!(Chain(&err).to_string(), "ELB CreateRule failed: connection reset");
        assert_eq!(err.to_string(), "ELB CreateRule failed", "the message alone stays short");
        assert_eq!(err.kind(), ErrorKind::Upstream);
    }

    #[test]
    fn only_failures_behind_the_api_are_server_side() {
        assert!(Error::internal("x").is_server_side());
        assert!(Error::config("x").is_server_side());
        assert!(Error::retryable("x").is_server_side());
        assert!(!Error::Invalid("x".into()).is_server_side());
        assert!(!Error::Conflict("x".into()).is_server_side());
    }
}
