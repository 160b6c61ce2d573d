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
    /// Who did it, for audit records: the token's `sub`, with the email when it is verified.
    pub actor: String,
    /// The caller's tenant and role in it; none for a platform operator without a tenant.
    pub tenant: Option<(String, Role)>,
    /// A platform operator: runs the tenant registry.
    pub platform: bool,
}

/// What Portcullis reads from a verified token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub tenant: Option<String>,
    pub groups: Vec<String>,
}

impl Caller {
    /// Builds a caller from verified claims: the tenant attribute and the group list. A tenant caller needs
    /// both a tenant and the `admin` or `viewer` group; a platform operator needs neither.
    pub fn from_claims(claims: Claims) -> Result<Self> {
        let platform = claims.groups.iter().any(|g| g == "platform");
        let tenant_id = claims.tenant.filter(|t| !t.trim().is_empty());
        let role = if claims.groups.iter().any(|g| g == "admin") {
            Some(Role::Admin)
        } else if claims.groups.iter().any(|g| g == "viewer") {
            Some(Role::Viewer)
        } else {
            None
        };
        let tenant = match (tenant_id, role) {
            (Some(tenant_id), Some(role)) => Some((tenant_id, role)),
            _ if platform => None,
            (None, _) => return Err(Error::Forbidden("the token carries no custom:tenant claim".into())),
            (Some(_), None) => {
                return Err(Error::Forbidden(
                    "the token's cognito:groups holds none of 'admin', 'viewer' or 'platform'".into(),
                ));
            }
        };
        // An unverified email is whatever the user typed: never let it stand for them alone.
        let actor = match claims.email.filter(|_| claims.email_verified) {
            Some(email) => format!("{} ({email})", claims.subject),
            None => claims.subject,
        };
        Ok(Caller { actor, tenant, platform })
    }

    /// The caller's tenant, for any tenant role; 403 for a platform operator without one.
    pub fn tenant_id(&self) -> Result<&str> {
        self.tenant.as_ref().map(|(id, _)| id.as_str()).ok_or_else(|| {
            Error::Forbidden("this operation needs a tenant's token (custom:tenant and group admin or viewer)".into())
        })
    }

    /// The caller's tenant, if the caller may change things in it (403 otherwise).
    pub fn require_admin(&self) -> Result<&str> {
        let tenant_id = self.tenant_id()?;
        match self.tenant.as_ref().map(|(_, role)| *role) {
            Some(Role::Admin) => Ok(tenant_id),
            _ => Err(Error::Forbidden("viewers may read but not change anything; this needs the 'admin' group".into())),
        }
    }

    /// Fails with 403 unless the caller is a platform operator.
    pub fn require_platform(&self) -> Result<()> {
        if self.platform {
            Ok(())
        } else {
            Err(Error::Forbidden("the tenant registry is for platform operators (group 'platform')".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(tenant: Option<&str>, groups: &[&str]) -> Claims {
        Claims {
            subject: "sub-1".into(),
            email: Some("a@example.com".into()),
            email_verified: true,
            tenant: tenant.map(str::to_string),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    #[test]
    fn admin_wins_over_viewer_and_groups_are_required() {
        let c = Caller::from_claims(claims(Some("t"), &["viewer", "admin"])).unwrap();
        assert_eq!(c.tenant, Some(("t".into(), Role::Admin)));
        assert_eq!(c.require_admin().unwrap(), "t");
        assert!(matches!(Caller::from_claims(claims(Some("t"), &[])), Err(Error::Forbidden(_))));
    }

    #[test]
    fn tenant_claim_is_required_for_tenant_callers() {
        assert!(matches!(Caller::from_claims(claims(None, &["admin"])), Err(Error::Forbidden(_))));
        assert!(matches!(Caller::from_claims(claims(Some(" "), &["admin"])), Err(Error::Forbidden(_))));
    }

    #[test]
    fn viewer_cannot_write() {
        let c = Caller::from_claims(claims(Some("t"), &["viewer"])).unwrap();
        assert!(c.require_admin().is_err());
        assert_eq!(c.tenant_id().unwrap(), "t");
        assert!(c.require_platform().is_err());
    }

    #[test]
    fn platform_operators_need_no_tenant_but_get_none() {
        let c = Caller::from_claims(claims(None, &["platform"])).unwrap();
        assert!(c.require_platform().is_ok());
        assert!(c.tenant_id().is_err() && c.require_admin().is_err());
        let both = Caller::from_claims(claims(Some("t"), &["platform", "admin"])).unwrap();
        assert!(both.require_platform().is_ok() && both.require_admin().is_ok());
    }

    #[test]
    fn the_actor_is_the_subject_and_the_email_only_when_verified() {
        assert_eq!(Caller::from_claims(claims(Some("t"), &["admin"])).unwrap().actor, "sub-1 (a@example.com)");
        let unverified = Claims { email_verified: false, ..claims(Some("t"), &["admin"]) };
        assert_eq!(Caller::from_claims(unverified).unwrap().actor, "sub-1");
    }
}
