//! An app's roles: named sets of its users, given by the app's admins. The identity provider holds them
//! (one group per role in the app's pool), and the app reads a signed-in user's roles from the access
//! token the load balancer forwards.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::validate::{plain_text, required_string};
use crate::error::{Error, Result};

/// Most roles one user may hold: every one travels in each request's access token.
pub const MAX_ROLES_PER_USER: usize = 25;

/// Longest role name; short enough to read in a token, a log line and a URL.
pub const MAX_ROLE_NAME: usize = 64;

/// A role as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRole {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A validated new role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAppRole {
    pub name: String,
    pub description: Option<String>,
}

/// `POST /apps/{id}/roles`'s body, as received.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRoleBody {
    pub name: Option<serde_json::Value>,
    pub description: Option<serde_json::Value>,
}

impl AppRoleBody {
    pub fn validate(&self) -> Result<NewAppRole> {
        let name = validate_role_name(&required_string(self.name.clone(), "name")?)?;
        let description = match &self.description {
            None | Some(serde_json::Value::Null) => None,
            // As the contract's pattern says: no white space at either end (nothing is trimmed away).
            Some(serde_json::Value::String(text)) if text.trim() != text => {
                return Err(Error::Invalid("'description' must not start or end with white space".into()));
            }
            Some(serde_json::Value::String(text)) => Some(plain_text(text, "description", 256)?),
            Some(_) => return Err(Error::Invalid("'description' must be a string".into())),
        };
        Ok(NewAppRole { name, description })
    }
}

/// A role name: 1 to 64 lower-case letters, digits, '-' and '_', starting with a letter. One spelling per
/// role, so that `Editor` and `editor` can never be two roles an app must tell apart.
pub fn validate_role_name(name: &str) -> Result<String> {
    let valid = (1..=MAX_ROLE_NAME).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        return Err(Error::Invalid(format!(
            "role name '{name}' must be 1 to {MAX_ROLE_NAME} lower-case letters, digits, '-' and '_', starting \
             with a letter"
        )));
    }
    Ok(name.to_string())
}

/// A list of role names (`roles` at invite, or a user's new roles): each valid, none twice, at most
/// [`MAX_ROLES_PER_USER`]; sorted.
pub fn parse_roles(value: Option<&serde_json::Value>) -> Result<BTreeSet<String>> {
    let items = match value {
        None | Some(serde_json::Value::Null) => return Ok(BTreeSet::new()),
        Some(serde_json::Value::Array(items)) => items,
        Some(_) => return Err(Error::Invalid("'roles' must be an array of role names".into())),
    };
    if items.len() > MAX_ROLES_PER_USER {
        return Err(Error::Invalid(format!("a user may hold at most {MAX_ROLES_PER_USER} roles, not {}", items.len())));
    }
    let mut roles = BTreeSet::new();
    for item in items {
        let name = item.as_str().ok_or_else(|| Error::Invalid("'roles' must be an array of role names".into()))?;
        if !roles.insert(validate_role_name(name)?) {
            return Err(Error::Invalid(format!("role '{name}' is listed twice")));
        }
    }
    Ok(roles)
}

/// The roles named that the app does not have: a schema-valid request the app cannot take (422).
pub fn unknown_roles(unknown: &[&str]) -> Error {
    let names = unknown.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ");
    Error::Unprocessable(format!("the app has no role {names}; create it first with POST /apps/{{id}}/roles"))
}

/// A user's roles as the API shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRoles {
    pub username: String,
    pub roles: BTreeSet<String>,
}

/// What setting a user's roles to `wanted` changes, from `held`: (to give, to take away).
pub fn role_changes(held: &BTreeSet<String>, wanted: &BTreeSet<String>) -> (Vec<String>, Vec<String>) {
    (wanted.difference(held).cloned().collect(), held.difference(wanted).cloned().collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn role_names_have_one_spelling() {
        for good in ["editor", "read-only", "team_lead", "a", "r2d2"] {
            assert_eq!(validate_role_name(good).unwrap(), good);
        }
        let long = "a".repeat(MAX_ROLE_NAME + 1);
        for bad in ["", "Editor", "1st", "-x", "with space", "é", "a/b", long.as_str()] {
            assert_eq!(validate_role_name(bad).unwrap_err().kind(), ErrorKind::Invalid, "{bad}");
        }
    }

    #[test]
    fn a_role_list_is_checked_and_sorted() {
        let roles = parse_roles(Some(&json!(["viewer", "editor"]))).unwrap();
        assert_eq!(roles.into_iter().collect::<Vec<_>>(), ["editor", "viewer"]);
        assert!(parse_roles(None).unwrap().is_empty());
        assert!(parse_roles(Some(&json!([]))).unwrap().is_empty());
        let twice = parse_roles(Some(&json!(["editor", "editor"]))).unwrap_err();
        assert!(twice.to_string().contains("listed twice"), "{twice}");
        let many: Vec<String> = (0..=MAX_ROLES_PER_USER).map(|i| format!("r{i}")).collect();
        assert!(parse_roles(Some(&json!(many))).unwrap_err().to_string().contains("at most 25"));
        for bad in [json!("editor"), json!([1]), json!(["Editor"])] {
            assert_eq!(parse_roles(Some(&bad)).unwrap_err().kind(), ErrorKind::Invalid, "{bad}");
        }
    }

    #[test]
    fn a_new_role_takes_a_name_and_an_optional_description() {
        let body: AppRoleBody =
            serde_json::from_value(json!({"name": "editor", "description": "Edits pages"})).unwrap();
        let role = body.validate().unwrap();
        assert_eq!((role.name.as_str(), role.description.as_deref()), ("editor", Some("Edits pages")));
        let padded: AppRoleBody = serde_json::from_value(json!({"name": "editor", "description": " x"})).unwrap();
        assert!(padded.validate().unwrap_err().to_string().contains("white space"));
        let body: AppRoleBody = serde_json::from_value(json!({"description": "x"})).unwrap();
        assert_eq!(body.validate().unwrap_err().to_string(), "'name' is required");
        assert!(serde_json::from_value::<AppRoleBody>(json!({"name": "x", "precedence": 1})).is_err());
    }

    #[test]
    fn setting_roles_gives_the_missing_and_takes_the_extra() {
        let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
        let (give, take) = role_changes(&set(&["admin", "viewer"]), &set(&["editor", "viewer"]));
        assert_eq!((give, take), (vec!["editor".to_string()], vec!["admin".to_string()]));
        assert_eq!(role_changes(&set(&["a"]), &set(&["a"])), (vec![], vec![]));
    }

    #[test]
    fn unknown_roles_are_unprocessable_and_named() {
        let err = unknown_roles(&["editor", "owner"]);
        assert_eq!(err.kind(), ErrorKind::Unprocessable);
        assert!(err.to_string().contains("'editor', 'owner'"), "{err}");
    }
}
