//! What an ACM certificate status means for provisioning.

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

impl CertificateProgress {
    /// Classifies an ACM status name.
    pub fn of(status: &str) -> Self {
        match status {
            "ISSUED" => CertificateProgress::Issued,
            "FAILED" | "VALIDATION_TIMED_OUT" | "REVOKED" | "INACTIVE" | "EXPIRED" => CertificateProgress::DeadEnd,
            // PENDING_VALIDATION, and anything ACM adds later: keep waiting until the deadline.
            _ => CertificateProgress::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_and_timed_out_certificates_are_dead_ends() {
        assert_eq!(CertificateProgress::of("ISSUED"), CertificateProgress::Issued);
        assert_eq!(CertificateProgress::of("PENDING_VALIDATION"), CertificateProgress::Pending);
        for dead in ["FAILED", "VALIDATION_TIMED_OUT", "REVOKED", "INACTIVE", "EXPIRED"] {
            assert_eq!(CertificateProgress::of(dead), CertificateProgress::DeadEnd, "{dead}");
        }
        assert_eq!(CertificateProgress::of("SOMETHING_NEW"), CertificateProgress::Pending);
    }
}
