//! Who is calling: taken only from a verified token, never from a body or a path.

use super::{Scope, Scopes, ServiceToken};
use crate::error::{Error, Result};

/// What a caller may do within their tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads and writes.
    Admin,
    /// Reads only.
    Viewer,
    /// A service token: only the routes its scopes cover (checked per route by `api::authenticate`, which
    /// refuses it every other route), and never the management of service tokens.
    Service(Scopes),
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

    /// A service token's caller: its tenant is the registry's record of it, never a claim.
    pub fn service(token: &ServiceToken, granted: Scopes) -> Self {
        Caller {
            actor: token.actor(),
            tenant: Some((token.tenant_id.clone(), Role::Service(granted))),
            platform: false,
        }
    }

    /// The scopes of a service token's caller; none for a person.
    pub fn service_scopes(&self) -> Option<Scopes> {
        match self.tenant.as_ref().map(|(_, role)| *role) {
            Some(Role::Service(scopes)) => Some(scopes),
            _ => None,
        }
    }

    /// 403 naming the scope unless the caller is a person, or a service token holding `scope`.
    pub fn require_scope(&self, scope: Scope) -> Result<()> {
        match self.service_scopes() {
            Some(scopes) if !scopes.contains(scope) => Err(Error::Forbidden(format!(
                "this service token lacks the scope '{}' this operation needs",
                scope.as_str()
            ))),
            _ => Ok(()),
        }
    }

    /// The caller's tenant, if the caller may change things in it (403 otherwise). A service token
    /// passes: `api::authenticate` has already checked the route's scope.
    pub fn require_admin(&self) -> Result<&str> {
        let tenant_id = self.tenant_id()?;
        match self.tenant.as_ref().map(|(_, role)| *role) {
            Some(Role::Admin | Role::Service(_)) => Ok(tenant_id),
            _ => Err(Error::Forbidden("viewers may read but not change anything; this needs the 'admin' group".into())),
        }
    }

    /// The caller's tenant, for a person in its `admin` group only: service tokens are managed by people.
    pub fn require_person_admin(&self) -> Result<&str> {
        if self.service_scopes().is_some() {
            return Err(Error::Forbidden("a service token cannot manage service tokens".into()));
        }
        self.require_admin()
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
    fn a_service_token_has_its_scopes_and_cannot_manage_tokens() {
        let token = ServiceToken {
            client_id: "c1".into(),
            tenant_id: "t".into(),
            name: "ci".into(),
            scopes: vec![Scope::AppsRead],
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            created_by: "sub-1".into(),
            expires_at: None,
        };
        let c = Caller::service(&token, [Scope::AppsRead].into_iter().collect());
        assert_eq!(c.tenant_id().unwrap(), "t");
        assert!(c.require_scope(Scope::AppsRead).is_ok());
        let err = c.require_scope(Scope::AppsWrite).unwrap_err();
        assert!(err.to_string().contains("'apps:write'"), "{err}");
        assert!(matches!(c.require_person_admin(), Err(Error::Forbidden(_))));
        assert!(c.require_platform().is_err());
        let person = Caller::from_claims(claims(Some("t"), &["admin"])).unwrap();
        assert!(person.require_scope(Scope::UsersWrite).is_ok() && person.require_person_admin().is_ok());
    }

    #[test]
    fn the_actor_is_the_subject_and_the_email_only_when_verified() {
        assert_eq!(Caller::from_claims(claims(Some("t"), &["admin"])).unwrap().actor, "sub-1 (a@example.com)");
        let unverified = Claims { email_verified: false, ..claims(Some("t"), &["admin"]) };
        assert_eq!(Caller::from_claims(unverified).unwrap().actor, "sub-1");
    }
}
