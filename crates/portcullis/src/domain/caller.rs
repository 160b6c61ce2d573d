//! Who is calling: taken only from a verified token, never from a body or a path.

use crate::error::{Error, Result};

/// What a caller may do within their tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads and writes.
    Admin,
    /// Reads only.
    Viewer,
}

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// A human-readable name for audit records (email when present, else the subject).
    pub display_name: String,
    pub tenant_id: String,
    pub role: Role,
}

impl Caller {
    /// Builds a caller from verified claims: the tenant attribute and the group list.
    pub fn from_claims(
        subject: String,
        email: Option<String>,
        tenant_id: Option<String>,
        groups: &[String],
    ) -> Result<Self> {
        let tenant_id = tenant_id
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| Error::Forbidden("the token carries no custom:tenant claim".into()))?;
        let role = if groups.iter().any(|g| g == "admin") {
            Role::Admin
        } else if groups.iter().any(|g| g == "viewer") {
            Role::Viewer
        } else {
            return Err(Error::Forbidden("the token's cognito:groups holds neither 'admin' nor 'viewer'".into()));
        };
        let display_name = email.unwrap_or(subject);
        Ok(Caller { display_name, tenant_id, role })
    }

    /// Fails with 403 unless the caller may change things.
    pub fn require_admin(&self) -> Result<()> {
        match self.role {
            Role::Admin => Ok(()),
            Role::Viewer => {
                Err(Error::Forbidden("viewers may read but not change anything; this needs the 'admin' group".into()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_wins_over_viewer_and_groups_are_required() {
        let groups = vec!["viewer".to_string(), "admin".to_string()];
        let c = Caller::from_claims("s".into(), None, Some("t".into()), &groups).unwrap();
        assert_eq!(c.role, Role::Admin);
        assert_eq!(c.display_name, "s");
        let none = Caller::from_claims("s".into(), None, Some("t".into()), &[]);
        assert!(matches!(none, Err(Error::Forbidden(_))));
    }

    #[test]
    fn tenant_claim_is_required() {
        let groups = vec!["admin".to_string()];
        assert!(matches!(Caller::from_claims("s".into(), None, None, &groups), Err(Error::Forbidden(_))));
        assert!(matches!(Caller::from_claims("s".into(), None, Some(" ".into()), &groups), Err(Error::Forbidden(_))));
    }

    #[test]
    fn viewer_cannot_write() {
        let c = Caller::from_claims("s".into(), Some("v@x".into()), Some("t".into()), &["viewer".into()]).unwrap();
        assert!(c.require_admin().is_err());
        assert_eq!(c.display_name, "v@x");
    }
}
