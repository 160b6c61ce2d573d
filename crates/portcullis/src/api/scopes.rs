//! Which scope a service token needs for each route. Deny by default: a route missing here refuses every
//! service token, whatever its scopes (the tenant registry, `GET /tenant`, and the management of service
//! tokens themselves among them).

use http::Method;

use crate::domain::{Caller, Scope};
use crate::error::{Error, Result};

/// The scope a service token needs for `method resource`, if service tokens may call it at all.
pub fn needed(method: &Method, resource: &str) -> Option<Scope> {
    Some(match (method, resource) {
        (
            &Method::GET,
            "/apps"
            | "/apps/{id}"
            | "/apps/{id}/events"
            | "/apps/{id}/users"
            | "/apps/{id}/roles"
            | "/apps/{id}/users/{username}/roles",
        ) => Scope::AppsRead,
        // Preflight creates nothing: it is a read.
        (&Method::POST, "/apps/preflight") => Scope::AppsRead,
        (&Method::POST, "/apps" | "/apps/{id}/repair") | (&Method::DELETE | &Method::PATCH, "/apps/{id}") => {
            Scope::AppsWrite
        }
        (
            &Method::POST,
            "/apps/{id}/users"
            | "/apps/{id}/users/batch"
            | "/apps/{id}/users/{username}/resend"
            | "/apps/{id}/users/resend-expired"
            | "/apps/{id}/roles",
        )
        | (&Method::DELETE, "/apps/{id}/users/{username}" | "/apps/{id}/roles/{role}")
        | (&Method::PUT, "/apps/{id}/users/{username}/roles") => Scope::UsersWrite,
        _ => return None,
    })
}

/// For a service token's caller: 403 unless the route is open to service tokens and the token holds its
/// scope (the answer names the scope). People pass: their group decides, as before.
pub fn check(caller: &Caller, method: &Method, resource: &str) -> Result<()> {
    if caller.service_scopes().is_none() {
        return Ok(());
    }
    match needed(method, resource) {
        Some(scope) => caller.require_scope(scope),
        None => Err(Error::Forbidden(format!("service tokens cannot call {method} {resource}; a person's token can"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Role, Scopes};

    fn service(scopes: &[Scope]) -> Caller {
        let scopes: Scopes = scopes.iter().copied().collect();
        Caller {
            actor: "service-token:c (ci)".into(),
            tenant: Some(("t".into(), Role::Service(scopes))),
            platform: false,
        }
    }

    #[test]
    fn each_scope_opens_its_routes_only() {
        let reader = service(&[Scope::AppsRead]);
        assert!(check(&reader, &Method::GET, "/apps/{id}/users").is_ok());
        assert!(check(&reader, &Method::POST, "/apps/preflight").is_ok());
        let err = check(&reader, &Method::POST, "/apps").unwrap_err();
        assert!(matches!(err, Error::Forbidden(_)) && err.to_string().contains("'apps:write'"), "{err}");
        let err = check(&reader, &Method::DELETE, "/apps/{id}/users/{username}").unwrap_err();
        assert!(err.to_string().contains("'users:write'"), "{err}");
        let err = check(&reader, &Method::POST, "/apps/{id}/repair").unwrap_err();
        assert!(err.to_string().contains("'apps:write'"), "{err}");
        assert!(check(&service(&[Scope::AppsWrite]), &Method::POST, "/apps/{id}/repair").is_ok());
        assert!(check(&service(&[Scope::AppsWrite]), &Method::PATCH, "/apps/{id}").is_ok());
        assert!(check(&reader, &Method::PATCH, "/apps/{id}").is_err());
        let inviter = service(&[Scope::UsersWrite]);
        assert!(check(&inviter, &Method::POST, "/apps/{id}/users/batch").is_ok());
        assert!(check(&inviter, &Method::POST, "/apps/{id}/users/resend-expired").is_ok());
        assert!(check(&reader, &Method::POST, "/apps/{id}/users/resend-expired").is_err());
        assert!(check(&inviter, &Method::GET, "/apps").is_err());
        assert!(check(&inviter, &Method::PUT, "/apps/{id}/users/{username}/roles").is_ok());
        assert!(check(&inviter, &Method::DELETE, "/apps/{id}/roles/{role}").is_ok());
        assert!(check(&reader, &Method::GET, "/apps/{id}/roles").is_ok());
        assert!(check(&reader, &Method::POST, "/apps/{id}/roles").is_err());
    }

    #[test]
    fn routes_outside_the_table_refuse_every_service_token() {
        let all = service(&Scope::ALL);
        for (method, resource) in [
            (Method::POST, "/tenant/service-tokens"),
            (Method::GET, "/tenant/service-tokens"),
            (Method::DELETE, "/tenant/service-tokens/{clientId}"),
            (Method::GET, "/tenant"),
            (Method::PUT, "/tenants/{tenantId}"),
        ] {
            assert!(matches!(check(&all, &method, resource), Err(Error::Forbidden(_))), "{method} {resource}");
        }
    }

    #[test]
    fn people_are_not_affected() {
        let admin = Caller { actor: "a".into(), tenant: Some(("t".into(), Role::Admin)), platform: false };
        assert!(check(&admin, &Method::POST, "/tenant/service-tokens").is_ok());
    }
}
