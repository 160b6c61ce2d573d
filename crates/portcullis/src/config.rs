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

/// How tenants-api makes service tokens: clients of the operators' pool, and the URL that trades their
/// credentials for access tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTokenConfig {
    pub operators_pool_id: String,
    /// None when unset: creating a service token then fails as a deployment fault.
    pub token_url: Option<String>,
}

impl ServiceTokenConfig {
    pub fn from_env() -> Result<Self> {
        Ok(ServiceTokenConfig {
            operators_pool_id: required("PORTCULLIS_OPERATORS_POOL_ID")?,
            token_url: std::env::var("PORTCULLIS_SERVICE_TOKEN_URL").ok().filter(|u| !u.trim().is_empty()),
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

/// A workflow run holds at most this many history events; the next one ends the run on the spot, with
/// no Catch and so no cleanup: the certificate stays and the app stays PROVISIONING.
pub const WORKFLOW_HISTORY_LIMIT: u64 = 25_000;
/// Events one turn of a wait loop writes: the check task (entered, scheduled, started, succeeded,
/// exited), the choice and the wait (entered, exited). A contract test counts them in the state machine.
pub const EVENTS_PER_CHECK: u64 = 9;
/// Left for the states outside the loops and for retries.
pub const EVENTS_KEPT_FREE: u64 = 5_000;

impl WorkflowTiming {
    /// Defaults suit AWS: DNS validation can take many minutes, an environment a few. A timing whose
    /// loops could outgrow the history limit is refused at start-up, before any run depends on it.
    pub fn from_env() -> Result<Self> {
        WorkflowTiming {
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
        }
        .within_history_limit()
    }

    /// The most history events both wait loops can write, each running to its deadline.
    pub fn loop_events_at_most(&self) -> u64 {
        (self.certificate.checks_at_most() + self.environment.checks_at_most()) * EVENTS_PER_CHECK
    }

    fn within_history_limit(self) -> Result<Self> {
        let events = self.loop_events_at_most();
        if events + EVENTS_KEPT_FREE > WORKFLOW_HISTORY_LIMIT {
            return Err(Error::config(format!(
                "the wait loops could write {events} workflow history events, and with {EVENTS_KEPT_FREE} kept \
                 for the other states that passes the limit of {WORKFLOW_HISTORY_LIMIT}: raise the max waits \
                 (PORTCULLIS_*_MAX_WAIT_SECONDS) or shorten the deadlines"
            )));
        }
        Ok(self)
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

    fn policy(poll_seconds: u64, max_wait_seconds: u64, deadline_seconds: u64) -> PollPolicy {
        PollPolicy { poll_seconds, max_wait_seconds, deadline_seconds }
    }

    #[test]
    fn a_timing_that_could_outgrow_the_workflow_history_is_refused() {
        let defaults = WorkflowTiming { certificate: policy(15, 300, 72 * 3600), environment: policy(10, 60, 3600) };
        assert!(defaults.within_history_limit().is_ok());
        // A 72-hour wait checked every 15 seconds: 17,281 checks.
        let eager = WorkflowTiming { certificate: policy(15, 15, 72 * 3600), ..defaults };
        let err = eager.within_history_limit().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("history"), "{err}");
    }

    /// The bound of a timing parameter of infra/template.yaml.
    fn bound(template: &serde_json::Value, parameter: &str, key: &str) -> u64 {
        let value = &template["Parameters"][parameter][key];
        value
            .as_u64()
            .or_else(|| value.as_str().and_then(|v| v.parse().ok()))
            .unwrap_or_else(|| panic!("infra/template.yaml: {parameter} has no numeric {key}"))
    }

    #[test]
    fn no_timing_the_template_accepts_outgrows_the_workflow_history() {
        let template: serde_json::Value =
            serde_norway::from_str(include_str!("../../../infra/template.yaml")).expect("the template is YAML");
        // The worst corner: the shortest waits, the longest deadlines.
        let worst = |prefix: &str| {
            policy(
                bound(&template, &format!("{prefix}PollSeconds"), "MinValue"),
                bound(&template, &format!("{prefix}MaxWaitSeconds"), "MinValue"),
                bound(&template, &format!("{prefix}DeadlineSeconds"), "MaxValue"),
            )
        };
        let timing = WorkflowTiming { certificate: worst("Certificate"), environment: worst("Environment") };
        assert!(timing.within_history_limit().is_ok(), "{} loop events", timing.loop_events_at_most());
        // A 72-hour certificate wait stays possible: ACM's own limit.
        assert_eq!(timing.certificate.deadline_seconds, 72 * 3600);
    }

    #[test]
    fn audiences_are_a_trimmed_list_and_blanks_name_none() {
        assert_eq!(audiences(" portal, ci ,,"), vec!["portal".to_string(), "ci".to_string()]);
        assert!(audiences(" , ").is_empty());
    }
}
