//! Settings read from the environment once per cold start.

use crate::domain::PollPolicy;
use crate::error::{Error, Result};

/// A required environment variable; a missing one is a deployment fault, reported by name.
pub fn required(name: &str) -> Result<String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::config(format!("environment variable {name} is not set")))
}

fn seconds(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(v) => v.parse().map_err(|e| Error::Config {
            message: format!("environment variable {name}='{v}' is not a number of seconds"),
            source: Some(Box::new(e)),
        }),
    }
}

/// The DynamoDB table holding all tenant state.
pub fn table_name() -> Result<String> {
    required("PORTCULLIS_TABLE_NAME")
}

/// How the caller's tokens are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenConfig {
    /// Where the issuer's signing keys are published.
    pub jwks_url: String,
    /// The exact `iss` claim expected.
    pub issuer: String,
    /// The `aud` (app client ids) accepted in ID tokens; never empty.
    pub audiences: Vec<String>,
}

impl TokenConfig {
    /// Refuses to start without an audience: an empty list would accept ID tokens of any client of the
    /// issuer's pool.
    pub fn from_env() -> Result<Self> {
        let audiences = audiences(&std::env::var("PORTCULLIS_TOKEN_AUDIENCE").unwrap_or_default());
        if audiences.is_empty() {
            return Err(Error::config(
                "PORTCULLIS_TOKEN_AUDIENCE names no app client; set it to the operators' pool client id(s), \
                 comma-separated",
            ));
        }
        Ok(TokenConfig {
            jwks_url: required("PORTCULLIS_JWKS_URL")?,
            issuer: required("PORTCULLIS_TOKEN_ISSUER")?,
            audiences,
        })
    }
}

/// Comma-separated: the portal, scripts and CI may each sign in through their own client.
fn audiences(list: &str) -> Vec<String> {
    list.split(',').map(str::trim).filter(|a| !a.is_empty()).map(str::to_string).collect()
}

/// How long the workflow's wait loops poll. Passed in each execution's input, so the state machine
/// needs no redeploy to tune them (and local runs take seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkflowTiming {
    pub certificate: PollPolicy,
    pub environment: PollPolicy,
}

impl WorkflowTiming {
    /// Defaults suit AWS: DNS validation can take many minutes, an environment a few.
    pub fn from_env() -> Result<Self> {
        Ok(WorkflowTiming {
            certificate: PollPolicy {
                poll_seconds: seconds("PORTCULLIS_CERT_POLL_SECONDS", 15)?,
                deadline_seconds: seconds("PORTCULLIS_CERT_DEADLINE_SECONDS", 72 * 3600)?,
                max_wait_seconds: seconds("PORTCULLIS_CERT_MAX_WAIT_SECONDS", 300)?,
            },
            environment: PollPolicy {
                poll_seconds: seconds("PORTCULLIS_ENV_POLL_SECONDS", 10)?,
                deadline_seconds: seconds("PORTCULLIS_ENV_DEADLINE_SECONDS", 3600)?,
                max_wait_seconds: seconds("PORTCULLIS_ENV_MAX_WAIT_SECONDS", 60)?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn a_missing_or_malformed_setting_is_a_deployment_fault() {
        let err = required("PORTCULLIS_TEST_NEVER_SET").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("PORTCULLIS_TEST_NEVER_SET"));
        // SAFETY: the variable is private to this test; no other test reads or writes it.
        unsafe { std::env::set_var("PORTCULLIS_TEST_SECONDS", "soon") };
        assert_eq!(seconds("PORTCULLIS_TEST_SECONDS", 1).unwrap_err().kind(), ErrorKind::Config);
    }

    #[test]
    fn audiences_are_a_trimmed_list_and_blanks_name_none() {
        assert_eq!(audiences(" portal, ci ,,"), vec!["portal".to_string(), "ci".to_string()]);
        assert!(audiences(" , ").is_empty());
    }
}
