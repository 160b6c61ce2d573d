//! What an app's admins may change once it is ACTIVE (`PATCH /apps/{id}`), without provisioning it
//! again: its name, session timeout, access policy, MFA and automatic resending. Some of them live in
//! the identity provider and the listener rule too; a change of those is applied by the workflow.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::validate::{parse_session_timeout, validate_name};
use super::{AccessPolicy, App, Mfa, parse_access_days, parse_email_domains, parse_mfa};
use crate::error::{Error, Result};

/// An app's changeable settings, whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppSettings {
    pub name: String,
    pub session_timeout_seconds: u32,
    pub access_policy: AccessPolicy,
    pub mfa: Mfa,
    pub auto_resend: bool,
}

impl AppSettings {
    /// Whether going from `current` to these settings changes something outside Portcullis's records:
    /// the pool's invitation (it names the app), its MFA, or the rule's session timeout.
    pub fn reach_beyond_the_record(&self, current: &AppSettings) -> bool {
        self.name != current.name
            || self.mfa != current.mfa
            || self.session_timeout_seconds != current.session_timeout_seconds
    }

    /// What changes from `current`, in words for the app's history.
    pub fn changes_from(&self, current: &AppSettings) -> String {
        let mut changes = Vec::new();
        if self.name != current.name {
            changes.push(format!("name '{}' → '{}'", current.name, self.name));
        }
        if self.session_timeout_seconds != current.session_timeout_seconds {
            changes.push(format!(
                "sessionTimeoutSeconds {} → {}",
                current.session_timeout_seconds, self.session_timeout_seconds
            ));
        }
        let (was, now) = (&current.access_policy, &self.access_policy);
        if now.allowed_email_domains != was.allowed_email_domains {
            let list = |domains: &[String]| match domains.is_empty() {
                true => "any".to_string(),
                false => domains.join(", "),
            };
            changes.push(format!(
                "allowedEmailDomains {} → {}",
                list(&was.allowed_email_domains),
                list(&now.allowed_email_domains)
            ));
        }
        if now.default_access_days != was.default_access_days {
            let days = |d: Option<u32>| d.map_or("none".to_string(), |d| d.to_string());
            changes.push(format!(
                "defaultAccessDays {} → {}",
                days(was.default_access_days),
                days(now.default_access_days)
            ));
        }
        if self.mfa != current.mfa {
            changes.push(format!("mfa {} → {}", current.mfa.as_str(), self.mfa.as_str()));
        }
        if self.auto_resend != current.auto_resend {
            changes.push(format!("autoResend {} → {}", current.auto_resend, self.auto_resend));
        }
        changes.join("; ")
    }
}

impl App {
    /// The app's changeable settings as they are now.
    pub fn settings(&self) -> AppSettings {
        AppSettings {
            name: self.name.clone(),
            session_timeout_seconds: self.session_timeout_seconds,
            access_policy: self.access_policy.clone(),
            mfa: self.mfa,
            auto_resend: self.auto_resend,
        }
    }

    /// Takes these settings as the app's own.
    pub fn adopt(&mut self, settings: AppSettings) {
        self.name = settings.name;
        self.session_timeout_seconds = settings.session_timeout_seconds;
        self.access_policy = settings.access_policy;
        self.mfa = settings.mfa;
        self.auto_resend = settings.auto_resend;
    }
}

/// A change of settings being applied by the workflow: what was asked, by whom and when. Until it is
/// done the app keeps its settings, and no other change is taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsChange {
    pub settings: AppSettings,
    pub requested_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    /// The workflow run applying it.
    pub execution: String,
}

/// The fields `PATCH /apps/{id}` takes: those of `POST /apps` that can change.
const FIELDS: [&str; 6] =
    ["name", "sessionTimeoutSeconds", "allowedEmailDomains", "defaultAccessDays", "mfa", "autoResend"];

/// A validated `PATCH /apps/{id}`: the fields it names, each to be set (`defaultAccessDays: null` ends
/// the default; `allowedEmailDomains: []` allows any address).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsPatch {
    name: Option<String>,
    session_timeout_seconds: Option<u32>,
    allowed_email_domains: Option<Vec<String>>,
    default_access_days: Option<Option<u32>>,
    mfa: Option<Mfa>,
    auto_resend: Option<bool>,
}

impl SettingsPatch {
    /// Parses the body: a JSON object naming at least one field, and only fields that can change.
    pub fn parse(body: &str) -> Result<SettingsPatch> {
        let fields: serde_json::Map<String, serde_json::Value> = serde_json::from_str(body)
            .map_err(|e| Error::Invalid(format!("the body must be a JSON object of the settings to change: {e}")))?;
        if let Some(unknown) = fields.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(Error::Invalid(format!("'{unknown}' cannot be changed; an app's {} can", FIELDS.join(", "))));
        }
        if fields.is_empty() {
            return Err(Error::Invalid(format!("name at least one of {} to change", FIELDS.join(", "))));
        }
        let not_null = |field: &str| match fields.get(field) {
            Some(serde_json::Value::Null) => Err(Error::Invalid(format!("'{field}' cannot be null"))),
            other => Ok(other),
        };
        let name = match not_null("name")? {
            Some(serde_json::Value::String(name)) if name.trim() != name => {
                return Err(Error::Invalid("'name' must not start or end with white space".into()));
            }
            Some(serde_json::Value::String(name)) => Some(validate_name(name.clone())?),
            Some(_) => return Err(Error::Invalid("'name' must be a string".into())),
            None => None,
        };
        let session_timeout_seconds = not_null("sessionTimeoutSeconds")?.map(parse_session_timeout).transpose()?;
        let allowed_email_domains = parse_email_domains(not_null("allowedEmailDomains")?, "allowedEmailDomains")?;
        let default_access_days = match fields.get("defaultAccessDays") {
            None => None,
            Some(days) => Some(parse_access_days(Some(days))?),
        };
        let mfa = parse_mfa(not_null("mfa")?)?;
        let auto_resend = match not_null("autoResend")? {
            Some(serde_json::Value::Bool(flag)) => Some(*flag),
            Some(_) => return Err(Error::Invalid("autoResend must be true or false".into())),
            None => None,
        };
        Ok(SettingsPatch {
            name,
            session_timeout_seconds,
            allowed_email_domains,
            default_access_days,
            mfa,
            auto_resend,
        })
    }

    /// The settings `current` becomes under this patch.
    pub fn applied_to(&self, current: &AppSettings) -> AppSettings {
        let policy = &current.access_policy;
        AppSettings {
            name: self.name.clone().unwrap_or_else(|| current.name.clone()),
            session_timeout_seconds: self.session_timeout_seconds.unwrap_or(current.session_timeout_seconds),
            access_policy: AccessPolicy {
                allowed_email_domains: self
                    .allowed_email_domains
                    .clone()
                    .unwrap_or_else(|| policy.allowed_email_domains.clone()),
                default_access_days: self.default_access_days.unwrap_or(policy.default_access_days),
            },
            mfa: self.mfa.unwrap_or(current.mfa),
            auto_resend: self.auto_resend.unwrap_or(current.auto_resend),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn current() -> AppSettings {
        AppSettings {
            name: "Wiki".into(),
            session_timeout_seconds: 28_800,
            access_policy: AccessPolicy {
                allowed_email_domains: vec!["example.com".into()],
                default_access_days: Some(30),
            },
            mfa: Mfa::Off,
            auto_resend: false,
        }
    }

    #[test]
    fn a_patch_changes_what_it_names_and_keeps_the_rest() {
        let patch = SettingsPatch::parse(r#"{"name": "Team Wiki", "defaultAccessDays": null}"#).unwrap();
        let next = patch.applied_to(&current());
        assert_eq!(next.name, "Team Wiki");
        assert_eq!(next.access_policy.default_access_days, None, "null ends the default");
        assert_eq!(next.access_policy.allowed_email_domains, ["example.com"]);
        assert_eq!(next.session_timeout_seconds, 28_800);
        assert!(next.reach_beyond_the_record(&current()), "the invitation names the app");
        assert_eq!(next.changes_from(&current()), "name 'Wiki' → 'Team Wiki'; defaultAccessDays 30 → none");

        let record_only = SettingsPatch::parse(r#"{"autoResend": true, "allowedEmailDomains": []}"#).unwrap();
        let next = record_only.applied_to(&current());
        assert!(!next.reach_beyond_the_record(&current()));
        assert_eq!(next.changes_from(&current()), "allowedEmailDomains example.com → any; autoResend false → true");
        let timeout = SettingsPatch::parse(r#"{"sessionTimeoutSeconds": 900, "mfa": "REQUIRED"}"#).unwrap();
        assert!(timeout.applied_to(&current()).reach_beyond_the_record(&current()));
    }

    #[test]
    fn a_bad_patch_says_what_is_wrong() {
        for (body, says) in [
            ("{}", "at least one"),
            ("[]", "JSON object"),
            (r#"{"domain": "x.example.com"}"#, "'domain' cannot be changed"),
            (r#"{"name": null}"#, "'name' cannot be null"),
            (r#"{"name": "-x"}"#, "name '-x'"),
            (r#"{"name": " x"}"#, "white space"),
            (r#"{"sessionTimeoutSeconds": 0}"#, "sessionTimeoutSeconds"),
            (r#"{"mfa": "SOMETIMES"}"#, "mfa"),
            (r#"{"autoResend": "yes"}"#, "autoResend"),
            (r#"{"defaultAccessDays": 0}"#, "defaultAccessDays"),
        ] {
            let err = SettingsPatch::parse(body).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Invalid, "{body}");
            assert!(err.to_string().contains(says), "{body}: {err}");
        }
    }
}
