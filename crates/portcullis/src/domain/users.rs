//! An app's users: who was invited, by whom, and where their sign-up stands.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::validate::{plain_text, required_string, validate_host};
use super::{parse_access_end, parse_roles};
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
    /// Whether the invitation was taken up, and until when it can be.
    pub invitation: InvitationState,
    /// When the user's access ends (the invitation's `expiresAt`, or the app's `defaultAccessDays`).
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub access_expires_at: Option<OffsetDateTime>,
    /// When it did end: the user was disabled and signed out.
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub access_ended_at: Option<OffsetDateTime>,
}

impl AppUser {
    /// Takes what Portcullis recorded of the user's invitation (who sent it, when it was last sent)
    /// over what the pool alone can tell.
    pub fn with_record(mut self, record: &Invitation, now: OffsetDateTime) -> AppUser {
        self.invited_at = record.invited_at;
        self.invited_by = Some(record.invited_by.clone());
        self.invitation = InvitationState::of(self.status, record.last_sent_at, now);
        self.invitation.auto_resends = record.auto_resends;
        self.access_expires_at = record.access_expires_at;
        self.access_ended_at = record.access_ended_at;
        self
    }
}

/// How long an invitation's temporary password works: the pool's `TemporaryPasswordValidityDays`, set
/// when Portcullis creates the pool (to Cognito's default).
pub const TEMPORARY_PASSWORD_VALIDITY_DAYS: u8 = 7;

/// When an invitation sent at `sent_at` stops working.
pub fn invitation_expiry(sent_at: OffsetDateTime) -> OffsetDateTime {
    sent_at + Duration::days(TEMPORARY_PASSWORD_VALIDITY_DAYS.into())
}

/// Where an invitation stands. The names are part of the API contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InvitationStatus {
    /// Sent; the temporary password still works.
    Pending,
    /// The user has signed in and chosen a password.
    Accepted,
    /// The temporary password no longer works: the user cannot sign in until the invitation is resent.
    Expired,
}

impl InvitationStatus {
    /// The contract name, as in `?invitation=`.
    pub fn as_str(self) -> &'static str {
        match self {
            InvitationStatus::Pending => "PENDING",
            InvitationStatus::Accepted => "ACCEPTED",
            InvitationStatus::Expired => "EXPIRED",
        }
    }

    /// Reads `?invitation=`: one of the contract names.
    pub fn parse(value: &str) -> Result<InvitationStatus> {
        [InvitationStatus::Pending, InvitationStatus::Accepted, InvitationStatus::Expired]
            .into_iter()
            .find(|status| status.as_str() == value)
            .ok_or_else(|| Error::Invalid("the invitation filter must be PENDING, ACCEPTED or EXPIRED".into()))
    }
}

/// A user's invitation as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvitationState {
    pub status: InvitationStatus,
    /// When the invitation was last sent: the first time or a resend.
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
    /// Until the user accepts: when the temporary password stops working.
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<OffsetDateTime>,
    /// How often the app's reminder has sent it again (`autoResend`).
    pub auto_resends: u32,
}

impl InvitationState {
    /// The state of an invitation last sent at `sent_at` to a user whose account is in `status`.
    pub fn of(status: UserStatus, sent_at: OffsetDateTime, now: OffsetDateTime) -> InvitationState {
        if status != UserStatus::ForceChangePassword {
            return InvitationState { status: InvitationStatus::Accepted, sent_at, expires_at: None, auto_resends: 0 };
        }
        let expires_at = invitation_expiry(sent_at);
        let status = if now < expires_at { InvitationStatus::Pending } else { InvitationStatus::Expired };
        InvitationState { status, sent_at, expires_at: Some(expires_at), auto_resends: 0 }
    }

    /// Whether an app's reminder sends it again now: not accepted, expiring within a day (or already
    /// expired, if runs were missed), and not yet sent automatically [`MAX_AUTO_RESENDS`] times.
    pub fn due_for_automatic_resend(&self, now: OffsetDateTime) -> bool {
        self.auto_resends < MAX_AUTO_RESENDS
            && self.expires_at.is_some_and(|expires_at| expires_at - now <= Duration::days(1))
    }
}

/// Who sent an invitation again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resend {
    /// An admin, one user or every expired one.
    ByAdmin,
    /// The scheduled reminder of an app with `autoResend`.
    Automatic,
}

/// Most automatic resends of one invitation: after that, an admin decides.
pub const MAX_AUTO_RESENDS: u32 = 3;

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
    /// How often the scheduled reminder has sent it again.
    #[serde(default)]
    pub auto_resends: u32,
    /// When the user's access ends; none: until revoked.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub access_expires_at: Option<OffsetDateTime>,
    /// When the access was ended (the user disabled and signed out).
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub access_ended_at: Option<OffsetDateTime>,
}

impl Invitation {
    /// Whether the access it gave has come to its end and is still to be ended.
    pub fn access_due_to_end(&self, now: OffsetDateTime) -> bool {
        self.access_ended_at.is_none() && self.access_expires_at.is_some_and(|end| end <= now)
    }
}

/// A validated invitee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitee {
    /// Lower-cased.
    pub email: String,
    pub name: Option<String>,
    /// The end of access the invitation names, if any.
    pub expires_at: Option<OffsetDateTime>,
    /// The app's roles the user is given.
    pub roles: BTreeSet<String>,
}

/// One entry of an invitation request, as received.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteeBody {
    pub email: Option<serde_json::Value>,
    pub name: Option<serde_json::Value>,
    pub expires_at: Option<serde_json::Value>,
    pub roles: Option<serde_json::Value>,
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
        let email = validate_email(&required_string(self.email.clone(), "email")?)?;
        let name = match &self.name {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(plain_text(s, "name", 128)?),
            Some(_) => return Err(Error::Invalid("'name' must be a string".into())),
        };
        let expires_at = parse_access_end(self.expires_at.as_ref(), OffsetDateTime::now_utc())?;
        let roles = parse_roles(self.roles.as_ref())?;
        Ok(Invitee { email, name, expires_at, roles })
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

    fn at(rfc3339: &str) -> OffsetDateTime {
        OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339).unwrap()
    }

    #[test]
    fn an_invitation_is_pending_for_the_pools_validity_then_expired_until_accepted() {
        let sent = at("2026-11-01T09:00:00Z");
        let pending = InvitationState::of(UserStatus::ForceChangePassword, sent, at("2026-11-08T08:59:59Z"));
        assert_eq!(pending.status, InvitationStatus::Pending);
        assert_eq!(pending.expires_at, Some(at("2026-11-08T09:00:00Z")), "7 days after it was sent");
        let expired = InvitationState::of(UserStatus::ForceChangePassword, sent, at("2026-11-08T09:00:00Z"));
        assert_eq!(expired.status, InvitationStatus::Expired);
        let accepted = InvitationState::of(UserStatus::Confirmed, sent, at("2026-12-01T00:00:00Z"));
        assert_eq!((accepted.status, accepted.expires_at), (InvitationStatus::Accepted, None));
        let shown = serde_json::to_value(pending).unwrap();
        assert_eq!(shown["status"], "PENDING");
        assert_eq!(shown["sentAt"], "2026-11-01T09:00:00Z");
        assert_eq!(shown["expiresAt"], "2026-11-08T09:00:00Z");
        assert!(serde_json::to_value(accepted).unwrap().get("expiresAt").is_none());
    }

    #[test]
    fn the_reminder_resends_in_the_last_day_and_at_most_three_times() {
        let sent = at("2026-11-01T09:00:00Z");
        let state = |now: &str, auto_resends| InvitationState {
            auto_resends,
            ..InvitationState::of(UserStatus::ForceChangePassword, sent, at(now))
        };
        assert!(!state("2026-11-07T08:59:59Z", 0).due_for_automatic_resend(at("2026-11-07T08:59:59Z")));
        assert!(state("2026-11-07T09:00:00Z", 0).due_for_automatic_resend(at("2026-11-07T09:00:00Z")));
        assert!(state("2026-11-20T00:00:00Z", 2).due_for_automatic_resend(at("2026-11-20T00:00:00Z")), "missed runs");
        assert!(!state("2026-11-20T00:00:00Z", MAX_AUTO_RESENDS).due_for_automatic_resend(at("2026-11-20T00:00:00Z")));
        let accepted = InvitationState::of(UserStatus::Confirmed, sent, at("2026-11-20T00:00:00Z"));
        assert!(!accepted.due_for_automatic_resend(at("2026-11-20T00:00:00Z")));
    }

    #[test]
    fn the_invitation_filter_takes_the_contract_names_only() {
        assert_eq!(InvitationStatus::parse("EXPIRED").unwrap(), InvitationStatus::Expired);
        for bad in ["expired", "", "ANY"] {
            assert_eq!(InvitationStatus::parse(bad).unwrap_err().kind(), crate::error::ErrorKind::Invalid, "{bad}");
        }
        for status in [InvitationStatus::Pending, InvitationStatus::Accepted, InvitationStatus::Expired] {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
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
