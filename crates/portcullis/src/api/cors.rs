//! CORS for the self-service portal, in one place: `Cors` wraps a function's `Operations`, answers
//! preflights (`OPTIONS` on any path of the contract, no token needed) and puts the CORS headers on
//! every other answer, errors included. Only an origin named in `PORTCULLIS_ALLOWED_ORIGINS` gets them;
//! any other gets none, and the browser then blocks the answer.
//!
//! The methods a preflight allows are the ones openapi.yaml declares for the path, compiled in from the
//! contract by build.rs, so a preflight answers exactly what API Gateway routes.

use std::sync::Arc;

use async_trait::async_trait;
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ALLOW, HeaderValue, ORIGIN, VARY,
};
use http::{Method, StatusCode};

use super::{ApiRequest, ApiResponse, Operations, problem};
use crate::error::{Error, Result};

/// The request headers a portal may send.
pub const ALLOWED_HEADERS: &str = "Authorization, Content-Type, Idempotency-Key";
/// The answer headers a portal may read beyond the CORS-safelisted ones.
pub const EXPOSED_HEADERS: &str = "Location, Retry-After, WWW-Authenticate, Idempotency-Replayed";
/// How long a browser may cache a preflight (Chromium caps it at 2 hours).
pub const MAX_AGE_SECONDS: &str = "3600";

/// The browser origins allowed to call the API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins(Vec<String>);

impl AllowedOrigins {
    /// Exact origins (`https://portal.example.com`, no path, no trailing slash), comma-separated; blank
    /// for none. Anything else is refused at start-up rather than silently never matching.
    pub fn parse(list: &str) -> Result<Self> {
        let mut origins = Vec::new();
        for origin in list.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let serialized = url::Url::parse(origin).ok().map(|u| u.origin().ascii_serialization());
            if serialized.as_deref() != Some(origin)
                || !(origin.starts_with("https://") || origin.starts_with("http://"))
            {
                return Err(Error::config(format!(
                    "PORTCULLIS_ALLOWED_ORIGINS: '{origin}' is not an origin; write scheme://host[:port], \
                     lower case, without a path or trailing slash"
                )));
            }
            origins.push(origin.to_string());
        }
        Ok(AllowedOrigins(origins))
    }

    /// `PORTCULLIS_ALLOWED_ORIGINS`; unset means none.
    pub fn from_env() -> Result<Self> {
        Self::parse(&std::env::var("PORTCULLIS_ALLOWED_ORIGINS").unwrap_or_default())
    }

    /// The request's `Origin`, when it is allowed.
    fn allowed<'r>(&self, request: &'r ApiRequest) -> Option<&'r HeaderValue> {
        let origin = request.headers.get(ORIGIN)?;
        self.0.iter().any(|allowed| origin.as_bytes() == allowed.as_bytes()).then_some(origin)
    }
}

/// A function's operations with CORS around them.
pub struct Cors {
    pub operations: Arc<dyn Operations>,
    pub origins: AllowedOrigins,
}

#[async_trait]
impl Operations for Cors {
    async fn handle(&self, request: &ApiRequest) -> ApiResponse {
        let response = if request.method == Method::OPTIONS {
            self.preflight(request)
        } else {
            self.operations.handle(request).await
        };
        self.decorate(request, response)
    }
}

impl Cors {
    /// 204 with the path's methods for an allowed origin; without the CORS headers otherwise.
    fn preflight(&self, request: &ApiRequest) -> ApiResponse {
        let Some(methods) = declared_methods(&request.resource) else {
            return problem(&Error::NotFound(format!("no resource {}", request.resource)));
        };
        let mut response = http::Response::new(String::new());
        *response.status_mut() = StatusCode::NO_CONTENT;
        let allow = methods.iter().copied().chain(["OPTIONS"]).collect::<Vec<_>>().join(", ");
        let headers = response.headers_mut();
        if let Ok(allow) = HeaderValue::from_str(&allow) {
            headers.insert(ALLOW, allow);
        }
        if self.origins.allowed(request).is_some() {
            let declared = methods.join(", ");
            if let Ok(declared) = HeaderValue::from_str(&declared) {
                headers.insert(ACCESS_CONTROL_ALLOW_METHODS, declared);
            }
            headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOWED_HEADERS));
            headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE_SECONDS));
        }
        response
    }

    /// Every answer varies by `Origin`; an allowed origin is named back, with the headers it may read.
    fn decorate(&self, request: &ApiRequest, mut response: ApiResponse) -> ApiResponse {
        let headers = response.headers_mut();
        headers.append(VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = self.origins.allowed(request) {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED_HEADERS));
        }
        response
    }
}

// openapi.yaml's paths and the methods each declares (OPTIONS, the preflight itself, left out), compiled
// in by build.rs.
include!(concat!(env!("OUT_DIR"), "/declared_methods.rs"));

fn declared_methods(resource: &str) -> Option<&'static [&'static str]> {
    DECLARED_METHODS.iter().find(|(path, _)| *path == resource).map(|(_, methods)| *methods)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::HeaderName;

    /// Every value of a header.
    fn names(response: &ApiResponse, name: &HeaderName) -> Vec<String> {
        response.headers().get_all(name).iter().map(|v| v.to_str().unwrap_or_default().to_string()).collect()
    }

    const PORTAL: &str = "https://portal.example.com";

    /// Answers 401 to everything, as a function does without a token.
    struct Refusing;

    #[async_trait]
    impl Operations for Refusing {
        async fn handle(&self, _request: &ApiRequest) -> ApiResponse {
            let mut response = problem(&Error::Unauthenticated("send a token".into()));
            response.headers_mut().insert(http::header::LOCATION, HeaderValue::from_static("/x"));
            response
        }
    }

    fn cors() -> Cors {
        Cors { operations: Arc::new(Refusing), origins: AllowedOrigins::parse(&format!(" {PORTAL} ,")).unwrap() }
    }

    fn request(method: Method, resource: &str, origin: Option<&str>) -> ApiRequest {
        let mut request = ApiRequest { method, resource: resource.into(), ..Default::default() };
        if let Some(origin) = origin {
            request.headers.insert(ORIGIN, HeaderValue::from_str(origin).unwrap());
        }
        request
    }

    #[tokio::test]
    async fn a_preflight_from_an_allowed_origin_names_the_paths_methods_and_needs_no_token() {
        let response = cors().handle(&request(Method::OPTIONS, "/apps", Some(PORTAL))).await;
        assert_eq!(response.status(), 204);
        let h = response.headers();
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], PORTAL);
        assert_eq!(h[ACCESS_CONTROL_ALLOW_METHODS], "GET, POST");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_HEADERS], "Authorization, Content-Type, Idempotency-Key");
        assert_eq!(h[ACCESS_CONTROL_MAX_AGE], MAX_AGE_SECONDS);
        assert_eq!(h[ALLOW], "GET, POST, OPTIONS");
        assert_eq!(names(&response, &VARY), ["Origin"]);
        let one = cors().handle(&request(Method::OPTIONS, "/apps/{id}", Some(PORTAL))).await;
        assert_eq!(one.headers()[ACCESS_CONTROL_ALLOW_METHODS], "GET, PATCH, DELETE");
    }

    #[tokio::test]
    async fn another_origin_gets_no_cors_headers() {
        for origin in [Some("https://evil.example.com"), Some("https://portal.example.com.evil"), Some("null"), None] {
            for method in [Method::OPTIONS, Method::GET] {
                let response = cors().handle(&request(method.clone(), "/apps", origin)).await;
                let h = response.headers();
                for name in
                    [&ACCESS_CONTROL_ALLOW_ORIGIN, &ACCESS_CONTROL_ALLOW_METHODS, &ACCESS_CONTROL_EXPOSE_HEADERS]
                {
                    assert!(!h.contains_key(name), "{method} from {origin:?}: {name}");
                }
                assert_eq!(h[VARY], "Origin");
            }
        }
    }

    #[tokio::test]
    async fn errors_carry_the_origin_and_the_headers_it_may_read() {
        let response = cors().handle(&request(Method::GET, "/apps/{id}", Some(PORTAL))).await;
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], PORTAL);
        let exposed = response.headers()[ACCESS_CONTROL_EXPOSE_HEADERS].to_str().unwrap();
        for header in ["Location", "Retry-After", "WWW-Authenticate"] {
            assert!(exposed.contains(header), "{exposed}");
        }
    }

    #[tokio::test]
    async fn a_preflight_of_a_path_outside_the_contract_is_404() {
        let response = cors().handle(&request(Method::OPTIONS, "/nowhere", Some(PORTAL))).await;
        assert_eq!(response.status(), 404);
        assert_eq!(response.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], PORTAL);
    }

    #[test]
    fn origins_are_exact_and_malformed_ones_refused_at_start_up() {
        assert_eq!(AllowedOrigins::parse("").unwrap(), AllowedOrigins::default());
        assert!(AllowedOrigins::parse("https://a.test,http://localhost:5173").is_ok());
        for bad in ["*", "https://a.test/", "https://a.test/portal", "portal.test", "HTTPS://A.TEST", "ftp://a.test"] {
            let err = AllowedOrigins::parse(bad).unwrap_err();
            assert_eq!(err.kind(), crate::error::ErrorKind::Config, "{bad}");
        }
    }

    #[test]
    fn every_path_of_the_contract_routes_its_preflight_to_the_function_that_owns_it() {
        let contract: serde_json::Value = serde_norway::from_str(include_str!("../../../../openapi.yaml")).unwrap();
        let function = |op: &serde_json::Value| op["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"].clone();
        for (path, item) in contract["paths"].as_object().unwrap() {
            let options = item.get("options").unwrap_or_else(|| panic!("{path} has no options operation"));
            assert_eq!(options["security"], serde_json::json!([]), "{path}: a preflight carries no token");
            assert_eq!(options["x-amazon-apigateway-integration"]["type"], "aws_proxy", "{path}");
            let declared = declared_methods(path).unwrap_or_else(|| panic!("{path} is not compiled in"));
            for method in declared {
                let operation = &item[method.to_ascii_lowercase()];
                assert_eq!(function(options), function(operation), "{path}: OPTIONS and {method} differ");
            }
            assert!(!declared.is_empty(), "{path}");
        }
    }
}
