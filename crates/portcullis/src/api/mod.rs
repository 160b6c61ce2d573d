//! The REST operations, independent of Lambda's event types: the Lambda glue (`crate::lambda`) turns
//! its event into an `ApiRequest`, calls `Operations::handle`, and sends back the `ApiResponse`. Errors
//! become `application/problem+json` here and nowhere else, and are logged here, once.

mod apps;
mod cors;
mod idempotency;
mod page_token;
mod preflight;
mod roles;
mod scopes;
mod service_tokens;
mod tenants;
mod users;
mod view;

use std::collections::HashMap;
use std::future::Future;

use async_trait::async_trait;
use tracing::Instrument;

use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, Method, StatusCode};
use serde::Serialize;

pub use apps::AppsApi;
pub use cors::{AllowedOrigins, Cors};
pub use idempotency::{IDEMPOTENCY_KEY, IDEMPOTENCY_REPLAYED, Idempotent};
pub use page_token::{PageScope, PageSeal};
pub use service_tokens::ServiceTokenManagement;
pub use tenants::TenantsApi;
pub use users::UsersApi;
pub use view::AppView;

use crate::domain::Caller;
use crate::error::{Chain, Error};
use crate::ports::TokenVerifier;

/// A set of REST operations served by one function.
#[async_trait]
pub trait Operations: Send + Sync {
    /// Serves one request; every failure is already a problem+json answer.
    async fn handle(&self, request: &ApiRequest) -> ApiResponse;
}

/// An API request as API Gateway routed it.
#[derive(Debug, Clone, Default)]
pub struct ApiRequest {
    /// API Gateway's id of the request, for correlating logs.
    pub request_id: String,
    pub method: Method,
    /// The route template that matched, e.g. `/apps/{id}`.
    pub resource: String,
    pub path_parameters: HashMap<String, String>,
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
    pub body: String,
    /// The caller, once a wrapper in front of the operations (`Idempotent`) has verified this request's
    /// token, so the operation does not verify it again. Never set from what the request carries.
    pub(crate) verified: Option<Caller>,
}

impl ApiRequest {
    /// A path parameter the route guarantees.
    pub fn path(&self, name: &str) -> &str {
        self.path_parameters.get(name).map(String::as_str).unwrap_or_default()
    }
}

/// An API response.
pub type ApiResponse = http::Response<String>;

/// Builds a JSON response.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> ApiResponse {
    let body = serde_json::to_string(body).unwrap_or_else(|_| "{}".into());
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// An empty 204 answer: the delete is done.
pub fn no_content() -> ApiResponse {
    let mut response = http::Response::new(String::new());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// Adds a `Location` header.
pub fn with_location(mut response: ApiResponse, location: &str) -> ApiResponse {
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// RFC 9457 problem details.
#[derive(Debug, Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    problem_type: &'a str,
    title: &'a str,
    status: u16,
    detail: &'a str,
}

/// The one mapping from domain errors to HTTP. 5xx details stay generic: the specifics are logged by
/// `respond`.
pub fn problem(err: &Error) -> ApiResponse {
    let status = match err {
        Error::Invalid(_) => StatusCode::BAD_REQUEST,
        Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Conflict(_) | Error::PriorityInUse(_) => StatusCode::CONFLICT,
        Error::QuotaExceeded(_) | Error::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Error::Retryable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Error::Upstream { .. } => StatusCode::BAD_GATEWAY,
        Error::Internal { .. } | Error::Config { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let detail = match err {
        Error::Retryable { .. } => "a service Portcullis depends on is busy; try again shortly".to_string(),
        Error::Upstream { .. } => "a service Portcullis depends on failed; the error is logged".to_string(),
        Error::Internal { .. } | Error::Config { .. } => "Portcullis failed; the error is logged".to_string(),
        _ => err.to_string(),
    };
    let body = Problem {
        problem_type: "about:blank",
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail: &detail,
    };
    let mut response = json_response(status, &body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    match err {
        Error::Unauthenticated(_) => {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        Error::Retryable { .. } => {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        }
        _ => {}
    }
    response
}

/// Runs one operation in a span naming it (operation, request id, app id, and the tenant once the
/// caller is known), turns its error into problem+json, and logs the outcome once: server-side
/// failures with their cause chain, the caller's mistakes as one line.
pub async fn respond(
    operation: &'static str,
    request: &ApiRequest,
    work: impl Future<Output = Result<ApiResponse, Error>>,
) -> ApiResponse {
    let span = tracing::info_span!(
        "request",
        operation,
        request_id = %request.request_id,
        app_id = request.path_parameters.get("id").map(String::as_str),
        tenant = tracing::field::Empty,
    );
    async move {
        match work.await {
            Ok(response) => {
                tracing::info!(status = response.status().as_u16(), "answered");
                response
            }
            Err(err) => {
                let response = problem(&err);
                let status = response.status().as_u16();
                if err.is_server_side() {
                    tracing::error!(status, error = %Chain(&err), "request failed");
                } else {
                    tracing::info!(status, detail = %err, "request refused");
                }
                response
            }
        }
    }
    .instrument(span)
    .await
}

/// Verifies the request's bearer token and returns the caller; the request's span gets the tenant.
pub async fn authenticate(verifier: &dyn TokenVerifier, request: &ApiRequest) -> Result<Caller, Error> {
    let caller = match &request.verified {
        Some(caller) => caller.clone(),
        None => verifier.verify(bearer_token(request)?).await?,
    };
    let tenant = caller.tenant.as_ref().map(|(id, _)| id.as_str()).unwrap_or("(platform)");
    tracing::Span::current().record("tenant", tenant);
    scopes::check(&caller, &request.method, &request.resource)?;
    Ok(caller)
}

/// The token of `Authorization: Bearer <token>`.
fn bearer_token(request: &ApiRequest) -> Result<&str, Error> {
    let header = request
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| Error::Unauthenticated("send 'Authorization: Bearer <ID token>'".into()))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| Error::Unauthenticated("the Authorization header must be 'Bearer <ID token>'".into()))?;
    Ok(token)
}

/// Listing parameters: `limit` (1–100, default 20) and the opaque `nextToken`, opened: the store's
/// position, from a token this listing sealed (`PageSeal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub next_token: Option<String>,
}

impl PageRequest {
    pub fn from_query(query: &HashMap<String, String>, scope: &PageScope) -> Result<Self, Error> {
        let limit = match query.get("limit") {
            None => 20,
            Some(l) => l
                .parse::<u32>()
                .ok()
                .filter(|l| (1..=100).contains(l))
                .ok_or_else(|| Error::Invalid(format!("limit '{l}' must be a whole number from 1 to 100")))?,
        };
        let next_token = match query.get("nextToken").filter(|t| !t.is_empty()) {
            None => None,
            Some(token) => Some(PageSeal::get()?.open(scope, token)?),
        };
        Ok(PageRequest { limit, next_token })
    }
}

/// A listing's body: `{items, nextToken?}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listing<T: Serialize> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

impl<T: Serialize> Listing<T> {
    /// The page, its store position sealed for this listing only.
    pub fn sealed(items: Vec<T>, position: Option<String>, scope: &PageScope) -> Result<Self, Error> {
        let next_token = match position {
            None => None,
            Some(position) => Some(PageSeal::get()?.seal(scope, &position)),
        };
        Ok(Listing { items, next_token })
    }
}

/// The answer for a method or path the function does not serve (API Gateway routes only known ones).
pub fn no_route(request: &ApiRequest) -> ApiResponse {
    problem(&Error::NotFound(format!("no operation {} {}", request.method, request.resource)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_carry_status_type_and_detail() {
        let response = problem(&Error::Invalid("domain is bad".into()));
        assert_eq!(response.status(), 400);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
        let body: serde_json::Value = serde_json::from_str(response.body()).unwrap();
        assert_eq!(body["detail"], "domain is bad");
        assert_eq!(body["title"], "Bad Request");
        assert_eq!(body["status"], 400);
        assert_eq!(body["type"], "about:blank");
    }

    #[test]
    fn server_errors_do_not_leak_details() {
        let response = problem(&Error::upstream("arn:aws:secret-thing failed"));
        assert_eq!(response.status(), 502);
        assert!(!response.body().contains("arn:aws"));
        let response = problem(&Error::internal("no user pool is recorded"));
        assert_eq!(response.status(), 500);
        assert!(!response.body().contains("user pool"));
        assert_eq!(problem(&Error::config("PORTCULLIS_TABLE_NAME is not set")).status(), 500);
        assert_eq!(problem(&Error::retryable("slow down")).headers()[RETRY_AFTER], "2");
        assert_eq!(problem(&Error::Unauthenticated("x".into())).headers()[WWW_AUTHENTICATE], "Bearer");
    }

    #[test]
    fn page_requests_are_bounded_and_open_only_their_listings_tokens() {
        let q = |k: &str, v: &str| HashMap::from([(k.to_string(), v.to_string())]);
        let scope = PageScope::apps("t1");
        assert_eq!(PageRequest::from_query(&HashMap::new(), &scope).unwrap().limit, 20);
        assert_eq!(PageRequest::from_query(&q("limit", "100"), &scope).unwrap().limit, 100);
        assert!(PageRequest::from_query(&q("limit", "0"), &scope).is_err());
        assert!(PageRequest::from_query(&q("limit", "x"), &scope).is_err());
        let listing = Listing::sealed(vec![1], Some("abc".into()), &scope).unwrap();
        let token = listing.next_token.unwrap();
        assert_ne!(token, "abc");
        assert_eq!(
            PageRequest::from_query(&q("nextToken", &token), &scope).unwrap().next_token.as_deref(),
            Some("abc")
        );
        let foreign = PageRequest::from_query(&q("nextToken", &token), &PageScope::apps("t2")).unwrap_err();
        assert_eq!(problem(&foreign).status(), 400);
        assert_eq!(problem(&PageRequest::from_query(&q("nextToken", "abc"), &scope).unwrap_err()).status(), 400);
    }
}
