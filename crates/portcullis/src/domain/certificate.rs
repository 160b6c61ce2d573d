//! A certificate's status and what it means for provisioning.

use serde::{Deserialize, Serialize};

/// The certificate authority's status of a certificate. The names are shown in the API
/// (`certificate.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CertificateStatus {
    PendingValidation,
    Issued,
    Inactive,
    Expired,
    ValidationTimedOut,
    Revoked,
    Failed,
    /// A status this version of Portcullis does not know yet.
    #[serde(other)]
    Unknown,
}

/// Where a certificate stands, as far as the wait loop is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateProgress {
    /// Issued: the listener can use it.
    Issued,
    /// Still waiting for its DNS validation record.
    Pending,
    /// It will never be issued (validation failed or timed out, revoked, …): fail the app.
    DeadEnd,
}

impl CertificateStatus {
    /// What the status means for the wait loop.
    pub fn progress(self) -> CertificateProgress {
        match self {
            CertificateStatus::Issued => CertificateProgress::Issued,
            CertificateStatus::Failed
            | CertificateStatus::ValidationTimedOut
            | CertificateStatus::Revoked
            | CertificateStatus::Inactive
            | CertificateStatus::Expired => CertificateProgress::DeadEnd,
            // Pending, and anything added later: keep waiting until the deadline.
            CertificateStatus::PendingValidation | CertificateStatus::Unknown => CertificateProgress::Pending,
        }
    }

    /// The contract name, as the API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateStatus::PendingValidation => "PENDING_VALIDATION",
            CertificateStatus::Issued => "ISSUED",
            CertificateStatus::Inactive => "INACTIVE",
            CertificateStatus::Expired => "EXPIRED",
            CertificateStatus::ValidationTimedOut => "VALIDATION_TIMED_OUT",
            CertificateStatus::Revoked => "REVOKED",
            CertificateStatus::Failed => "FAILED",
            CertificateStatus::Unknown => "UNKNOWN",
        }
    }
}

impl std::fmt::Display for CertificateStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [CertificateStatus; 8] = [
        CertificateStatus::PendingValidation,
        CertificateStatus::Issued,
        CertificateStatus::Inactive,
        CertificateStatus::Expired,
        CertificateStatus::ValidationTimedOut,
        CertificateStatus::Revoked,
        CertificateStatus::Failed,
        CertificateStatus::Unknown,
    ];

    #[test]
    fn failed_and_timed_out_certificates_are_dead_ends() {
        use CertificateStatus::*;
        assert_eq!(Issued.progress(), CertificateProgress::Issued);
        assert_eq!(PendingValidation.progress(), CertificateProgress::Pending);
        for dead in [Failed, ValidationTimedOut, Revoked, Inactive, Expired] {
            assert_eq!(dead.progress(), CertificateProgress::DeadEnd, "{dead}");
        }
        assert_eq!(Unknown.progress(), CertificateProgress::Pending);
    }

    #[test]
    fn names_match_their_json_and_unknown_ones_are_read() {
        for status in ALL {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
        let later: CertificateStatus = serde_json::from_str("\"SOMETHING_NEW\"").unwrap();
        assert_eq!(later, CertificateStatus::Unknown);
    }
}
