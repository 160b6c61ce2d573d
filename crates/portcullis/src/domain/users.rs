//! An app's users: who was invited, by whom, and where their sign-up stands.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::validate::{plain_text, validate_host};
use crate::error::{Error, Result};

/// A user of an app's pool, as Cognito reports it plus Portcullis's invitation record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppUser {
    /// Cognito's user name (the user's `sub`: pools sign in by email).
    pub username: String,
    pub email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// FORCE_CHANGE_PASSWORD until the first sign-in, then CONFIRMED, …
    pub status: UserStatus,
    pub enabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub invited_at: OffsetDateTime,
    /// Who invited the user; absent for users added outside Portcullis.
    pub invited_by: Option<String>,
}

/// Where a user's account stands. The names are shown in the API (`status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserStatus {
    /// Invited; has not signed in and chosen a password yet.
    ForceChangePassword,
    Confirmed,
    Unconfirmed,
    ResetRequired,
    Archived,
    Compromised,
    ExternalProvider,
    /// A status this version of Portcullis does not know yet.
    #[serde(other)]
    Unknown,
}

/// What became of one entry of a batch invitation. The names are part of the API contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchOutcome {
    Invited,
    /// The address is already a user of the app (or listed earlier in the same batch).
    Exists,
    /// The entry does not validate.
    Invalid,
    /// Not taken now (upstream trouble, or the batch ran out of time): the entry may be sent again.
    Failed,
}

/// What Portcullis records of an invitation (Cognito holds the rest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    pub username: String,
    pub email: String,
    pub invited_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub invited_at: OffsetDateTime,
    /// When the invitation was last sent (the first time, or a resend): its 7-day expiry runs from here.
    #[serde(with = "time::serde::rfc3339")]
    pub last_sent_at: OffsetDateTime,
}

/// A validated invitee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitee {
    /// Lower-cased.
    pub email: String,
    pub name: Option<String>,
}

/// One entry of an invitation request, as received.
#[derive(Debug, Clone, Deserialize)]
pub struct InviteeBody {
    pub email: Option<serde_json::Value>,
    pub name: Option<serde_json::Value>,
}

impl InviteeBody {
    /// The email as sent, for reporting a batch entry that does not validate.
    pub fn raw_email(&self) -> String {
        match &self.email {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        }
    }

    /// Validates the entry.
    pub fn validate(&self) -> Result<Invitee> {
        let email = match &self.email {
            Some(serde_json::Value::String(s)) => validate_email(s)?,
            None | Some(serde_json::Value::Null) => return Err(Error::Invalid("'email' is required".into())),
            Some(_) => return Err(Error::Invalid("'email' must be a string".into())),
        };
        let name = match &self.name {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(plain_text(s, "name", 128)?),
            Some(_) => return Err(Error::Invalid("'name' must be a string".into())),
        };
        Ok(Invitee { email, name })
    }
}

/// Most a batch may hold: large enough for a team, small enough for one API Gateway request.
pub const MAX_BATCH: usize = 100;

/// An address Cognito will accept and a mail server can route: `local@host.name`.
pub fn validate_email(email: &str) -> Result<String> {
    let email = email.trim().to_ascii_lowercase();
    let invalid = |why: &str| Error::Invalid(format!("email '{email}' is not a valid address: {why}"));
    let (local, host) = email.rsplit_once('@').ok_or_else(|| invalid("it has no '@'"))?;
    if email.len() > 254 {
        return Err(invalid("longer than 254 characters"));
    }
    if local.is_empty() || local.len() > 64 {
        return Err(invalid("the part before '@' must be 1 to 64 characters"));
    }
    // What Cognito takes as an email user name: letters, digits and '._%+-', starting with a letter,
    // digit or '_'; dots only between other characters.
    let local_ok = local.chars().all(|c| c.is_ascii_alphanumeric() || "._%+-".contains(c))
        && local.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && !local.ends_with('.')
        && !local.contains("..");
    if !local_ok {
        return Err(invalid(
            "the part before '@' takes letters, digits and '._%+-', starting with a letter, digit or '_'",
        ));
    }
    validate_host(host).map_err(|_| invalid("the part after '@' is not a host name"))?;
    let top_level = host.rsplit('.').next().unwrap_or_default();
    if top_level.len() < 2 || !top_level.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(invalid("the host name must end in a top-level domain of two or more letters"));
    }
    Ok(email)
}

/// How an app's pool sends its invitations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EmailSending {
    /// Cognito's own sender: about 50 emails a day per account, from a fixed address.
    CognitoDefault,
    /// The tenant's SES identity.
    Ses,
}

/// An SES identity for invitation emails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SesIdentity {
    pub source_arn: String,
    pub from: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(validate_email(" Alice@Example.COM ").unwrap(), "alice@example.com");
        assert_eq!(validate_email("a.b+tag@sub.example.org").unwrap(), "a.b+tag@sub.example.org");
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "alice@localhost",
            "a..b@example.com",
            "a b@example.com",
            "alice@exa_mple.com",
            "o'brien@example.com",
            "-alice@example.com",
            "alice.@example.com",
            "alice@example.c",
            "alice@example.c0m",
            "0@0.a",
        ] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn invitee_bodies_say_what_is_wrong() {
        let body: InviteeBody = serde_json::from_str(r#"{"email": 5}"#).unwrap();
        assert_eq!(body.validate().unwrap_err().to_string(), "'email' must be a string");
        assert_eq!(body.raw_email(), "5");
        let body: InviteeBody = serde_json::from_str(r#"{"email": "x@example.com", "name": " Xavier "}"#).unwrap();
        assert_eq!(body.validate().unwrap().name.as_deref(), Some("Xavier"));
        let body: InviteeBody = serde_json::from_str(r#"{"name": "n"}"#).unwrap();
        assert!(body.validate().is_err());
    }

    #[test]
    fn statuses_and_outcomes_keep_their_contract_names() {
        assert_eq!(serde_json::to_value(UserStatus::ForceChangePassword).unwrap(), "FORCE_CHANGE_PASSWORD");
        assert_eq!(serde_json::from_str::<UserStatus>("\"SOMETHING_NEW\"").unwrap(), UserStatus::Unknown);
        let outcomes = [
            (BatchOutcome::Invited, "invited"),
            (BatchOutcome::Exists, "exists"),
            (BatchOutcome::Invalid, "invalid"),
            (BatchOutcome::Failed, "failed"),
        ];
        for (outcome, name) in outcomes {
            assert_eq!(serde_json::to_value(outcome).unwrap(), name);
        }
    }
}
