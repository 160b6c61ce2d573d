//! `Idempotency-Key` on every POST. `Idempotent` wraps a function's operations: a POST carrying a key
//! claims it (per tenant) before the operation runs and keeps the answer after, so the same request sent
//! again gets the first answer (marked `Idempotency-Replayed: true`) and the work is done once. The same
//! key with another request is refused (422); one still running answers 409. Without a key nothing
//! changes. Which answers are kept is `domain::is_final`: 5xx, 401/403, 409 and 429 free the key.

use std::sync::Arc;

use async_trait::async_trait;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue, LOCATION};
use http::{Method, StatusCode};
use time::OffsetDateTime;
use tracing::Instrument;

use super::{ApiRequest, ApiResponse, Operations, Problem, authenticate, json_response, problem};
use crate::domain::{
    ClaimOutcome, IdempotencyKey, KeyClaim, KeyScope, KeyVerdict, StoredAnswer, fingerprint, is_final, verdict,
};
use crate::error::{Chain, Error};
use crate::ports::{IdempotencyStore, TokenVerifier};

/// The request header naming a key.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// The response header marking an answer given again.
pub const IDEMPOTENCY_REPLAYED: HeaderName = HeaderName::from_static("idempotency-replayed");
/// The headers kept with an answer: the ones a client acts on.
const KEPT_HEADERS: [HeaderName; 2] = [CONTENT_TYPE, LOCATION];

/// A function's operations, with `Idempotency-Key` honoured on every POST.
pub struct Idempotent<O> {
    pub operations: O,
    pub keys: Arc<dyn IdempotencyStore>,
    /// The same verifier the operations use: keys are scoped by the verified caller's tenant.
    pub verifier: Arc<dyn TokenVerifier>,
}

#[async_trait]
impl<O: Operations> Operations for Idempotent<O> {
    async fn handle(&self, request: &ApiRequest) -> ApiResponse {
        let Some(raw_key) = request.headers.get(IDEMPOTENCY_KEY).filter(|_| request.method == Method::POST) else {
            return self.operations.handle(request).await;
        };
        // A caller who does not verify gets the operation's own 401; nothing is claimed for them.
        let Ok(caller) = authenticate(self.verifier.as_ref(), request).await else {
            return self.operations.handle(request).await;
        };
        // The operation takes the caller verified here rather than verifying the token again (for a
        // service token, that is a read of its record).
        let request = &ApiRequest { verified: Some(caller.clone()), ..request.clone() };
        let key = match IdempotencyKey::parse(raw_key.as_bytes()) {
            Ok(key) => key,
            Err(err) => return refused(problem(&err)),
        };
        let span = tracing::info_span!(
            "idempotency",
            request_id = %request.request_id,
            key = key.as_str(),
            tenant = KeyScope::of(&caller).label(),
        );
        let target = request_target(request);
        let fingerprint = fingerprint(request.method.as_str(), &target, &request.body);
        let claim = KeyClaim::new(KeyScope::of(&caller), key, fingerprint, OffsetDateTime::now_utc());
        self.once(&claim, request).instrument(span).await
    }
}

impl<O: Operations> Idempotent<O> {
    /// Claims the key, then runs the operation and keeps its answer; or answers from what holds the key.
    async fn once(&self, claim: &KeyClaim, request: &ApiRequest) -> ApiResponse {
        match self.keys.claim(claim).await {
            Ok(ClaimOutcome::Claimed) => {}
            Ok(ClaimOutcome::Held(record)) => return held(claim, verdict(claim, record)),
            Err(err) => {
                tracing::error!(error = %Chain(&err), "the idempotency key could not be claimed");
                return problem(&err);
            }
        }
        let response = self.operations.handle(request).await;
        let status = response.status().as_u16();
        if is_final(status) {
            if let Err(err) = self.keys.answer(claim, &stored(&response)).await {
                // The work is done: the caller still gets its answer. A retry runs it again once the
                // claim's lease has passed.
                tracing::error!(error = %Chain(&err), status, "the answer could not be kept for the key");
            }
        } else if let Err(err) = self.keys.release(claim).await {
            tracing::error!(error = %Chain(&err), status, "the idempotency key could not be freed");
        }
        response
    }
}

/// The answer for a key another request holds.
fn held(claim: &KeyClaim, verdict: KeyVerdict) -> ApiResponse {
    let key = claim.key.as_str();
    match verdict {
        KeyVerdict::Replay(answer) => {
            tracing::info!(status = answer.status, "answered again");
            replay(answer)
        }
        KeyVerdict::Mismatch => refused(unprocessable(&format!(
            "Idempotency-Key '{key}' was already used for a different request; send a new key"
        ))),
        KeyVerdict::InProgress => {
            refused(problem(&Error::Conflict(format!("a request with Idempotency-Key '{key}' is in progress; retry"))))
        }
    }
}

fn refused(response: ApiResponse) -> ApiResponse {
    tracing::info!(status = response.status().as_u16(), "request refused");
    response
}

/// 422 problem+json: the one refusal `api::problem` has no error for.
fn unprocessable(detail: &str) -> ApiResponse {
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    let body = Problem { problem_type: "about:blank", title: "Unprocessable Entity", status: status.as_u16(), detail };
    let mut response = json_response(status, &body);
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    response
}

/// What identifies the operation a request asks for: its route, with its path parameters and query in
/// a stable order.
fn request_target(request: &ApiRequest) -> String {
    let sorted = |map: &std::collections::HashMap<String, String>| {
        let mut pairs: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
        pairs.sort();
        pairs.join("&")
    };
    format!("{} {} ?{}", request.resource, sorted(&request.path_parameters), sorted(&request.query))
}

/// The answer as kept for the key, without what is shown once and never stored: a new service token's
/// `clientSecret`. Its replay names the credential without the secret (revoke it and create another if
/// the first answer was lost).
fn stored(response: &ApiResponse) -> StoredAnswer {
    let headers = KEPT_HEADERS
        .iter()
        .filter_map(|name| Some((name.as_str().to_string(), response.headers().get(name)?.to_str().ok()?.to_string())))
        .collect();
    let mut body = response.body().clone();
    if let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_str::<serde_json::Value>(&body)
        && fields.remove(SHOWN_ONCE).is_some()
    {
        body = serde_json::Value::Object(fields).to_string();
    }
    StoredAnswer { status: response.status().as_u16(), headers, body }
}

/// The answer field never kept with a key.
const SHOWN_ONCE: &str = "clientSecret";

fn replay(answer: StoredAnswer) -> ApiResponse {
    let mut response = http::Response::new(answer.body);
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            response.headers_mut().insert(name, value);
        }
    }
    response.headers_mut().insert(IDEMPOTENCY_REPLAYED, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use http::header::AUTHORIZATION;

    use super::*;
    use crate::api::with_location;
    use crate::domain::{Caller, Role};
    use crate::fakes::MemoryKeys;

    /// The bearer token is the caller's tenant; `bad` does not verify.
    struct TokenIsTenant;

    #[async_trait]
    impl TokenVerifier for TokenIsTenant {
        async fn verify(&self, token: &str) -> crate::Result<Caller> {
            if token == "bad" {
                return Err(Error::Unauthenticated("the token does not verify".into()));
            }
            Ok(Caller { actor: "sub".into(), tenant: Some((token.into(), Role::Admin)), platform: false })
        }
    }

    /// An operation that counts its runs and answers `status` with the run's number.
    struct Counting {
        runs: AtomicU32,
        status: Mutex<StatusCode>,
        pause: Option<Duration>,
    }

    #[async_trait]
    impl Operations for Counting {
        async fn handle(&self, request: &ApiRequest) -> ApiResponse {
            if let Err(err) = authenticate(&TokenIsTenant, request).await {
                return problem(&err);
            }
            let run = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some(pause) = self.pause {
                tokio::time::sleep(pause).await;
            }
            let status = *self.status.lock().unwrap();
            with_location(json_response(status, &serde_json::json!({ "run": run })), &format!("/apps/{run}"))
        }
    }

    fn api(status: StatusCode, pause: Option<Duration>) -> (Idempotent<Counting>, Arc<MemoryKeys>) {
        let keys = Arc::new(MemoryKeys::default());
        let api = Idempotent {
            operations: Counting { runs: AtomicU32::new(0), status: Mutex::new(status), pause },
            keys: keys.clone(),
            verifier: Arc::new(TokenIsTenant),
        };
        (api, keys)
    }

    #[test]
    fn a_secret_shown_once_is_never_kept_with_the_key() {
        let body = serde_json::json!({"clientId": "c1", "clientSecret": "s3cr3t", "scopes": ["apps:read"]});
        let kept = stored(&json_response(StatusCode::CREATED, &body));
        assert!(!kept.body.contains("s3cr3t"), "{}", kept.body);
        let replayed: serde_json::Value = serde_json::from_str(&kept.body).unwrap();
        assert_eq!(replayed, serde_json::json!({"clientId": "c1", "scopes": ["apps:read"]}));
        assert_eq!(kept.status, 201);
    }

    fn post(tenant: &str, key: Option<&str>, body: &str) -> ApiRequest {
        let mut request =
            ApiRequest { method: Method::POST, resource: "/apps".into(), body: body.into(), ..ApiRequest::default() };
        request.headers.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {tenant}")).unwrap());
        if let Some(key) = key {
            request.headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_str(key).unwrap());
        }
        request
    }

    fn runs(api: &Idempotent<Counting>) -> u32 {
        api.operations.runs.load(Ordering::SeqCst)
    }

    fn detail(response: &ApiResponse) -> String {
        let body: serde_json::Value = serde_json::from_str(response.body()).unwrap();
        body["detail"].as_str().unwrap_or_default().to_string()
    }

    #[tokio::test]
    async fn the_same_request_with_a_key_gets_the_first_answer_and_runs_once() {
        let (api, _) = api(StatusCode::ACCEPTED, None);
        let first = api.handle(&post("acme", Some("k1"), r#"{"name":"A","domain":"a.example.com"}"#)).await;
        let again = api.handle(&post("acme", Some("k1"), "{\"domain\": \"a.example.com\", \"name\": \"A\"}")).await;
        assert_eq!(runs(&api), 1);
        assert_eq!((first.status(), again.status()), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
        assert_eq!(first.body(), again.body());
        assert_eq!(again.headers()[LOCATION], "/apps/1");
        assert_eq!(again.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(again.headers()[IDEMPOTENCY_REPLAYED], "true");
        assert!(!first.headers().contains_key(IDEMPOTENCY_REPLAYED));
    }

    #[tokio::test]
    async fn the_same_key_with_another_request_is_refused_with_422() {
        let (api, _) = api(StatusCode::ACCEPTED, None);
        api.handle(&post("acme", Some("k1"), r#"{"name":"A"}"#)).await;
        let other = api.handle(&post("acme", Some("k1"), r#"{"name":"B"}"#)).await;
        assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(other.headers()[CONTENT_TYPE], "application/problem+json");
        assert!(detail(&other).contains("'k1'"), "{}", other.body());
        let mut other_route = post("acme", Some("k1"), r#"{"name":"A"}"#);
        other_route.resource = "/apps/preflight".into();
        assert_eq!(api.handle(&other_route).await.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(runs(&api), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_meeting_its_key_in_progress_gets_409_and_runs_nothing() {
        let (api, _) = api(StatusCode::ACCEPTED, Some(Duration::from_secs(5)));
        let request = post("acme", Some("k1"), "{}");
        let (a, b) = tokio::join!(api.handle(&request), api.handle(&request));
        assert_eq!(runs(&api), 1);
        let mut statuses = [a.status().as_u16(), b.status().as_u16()];
        statuses.sort();
        assert_eq!(statuses, [202, 409]);
        let refused = if a.status() == StatusCode::CONFLICT { &a } else { &b };
        assert!(detail(refused).contains("in progress"), "{}", refused.body());
        // Once answered, the same request gets the answer.
        assert_eq!(api.handle(&request).await.status(), StatusCode::ACCEPTED);
        assert_eq!(runs(&api), 1);
    }

    #[tokio::test]
    async fn an_expired_key_runs_the_request_again() {
        let (api, keys) = api(StatusCode::ACCEPTED, None);
        api.handle(&post("acme", Some("k1"), "{}")).await;
        *keys.later.lock().unwrap() = time::Duration::hours(25);
        let again = api.handle(&post("acme", Some("k1"), r#"{"other":"body"}"#)).await;
        assert_eq!((again.status(), runs(&api)), (StatusCode::ACCEPTED, 2));
        assert!(!again.headers().contains_key(IDEMPOTENCY_REPLAYED));
    }

    #[tokio::test]
    async fn a_claim_whose_request_died_is_taken_over() {
        let (api, _) = api(StatusCode::ACCEPTED, None);
        let request = post("acme", Some("k1"), "{}");
        let dead = KeyClaim::new(
            KeyScope::Tenant("acme".into()),
            IdempotencyKey::parse(b"k1").unwrap(),
            fingerprint("POST", &request_target(&request), "{}"),
            OffsetDateTime::now_utc() - crate::domain::CLAIM_LEASE,
        );
        assert_eq!(api.keys.claim(&dead).await.unwrap(), ClaimOutcome::Claimed);
        assert_eq!(api.handle(&request).await.status(), StatusCode::ACCEPTED);
        assert_eq!(runs(&api), 1);
    }

    #[tokio::test]
    async fn server_failures_and_conflicts_free_the_key_for_a_retry() {
        for status in [StatusCode::SERVICE_UNAVAILABLE, StatusCode::BAD_GATEWAY, StatusCode::CONFLICT] {
            let (api, keys) = api(status, None);
            assert_eq!(api.handle(&post("acme", Some("k1"), "{}")).await.status(), status);
            *api.operations.status.lock().unwrap() = StatusCode::ACCEPTED;
            let retry = api.handle(&post("acme", Some("k1"), "{}")).await;
            assert_eq!((retry.status(), runs(&api)), (StatusCode::ACCEPTED, 2), "after {status}");
            assert!(keys.records.lock().unwrap().values().all(|r| r.fingerprint.len() == 64));
        }
    }

    #[tokio::test]
    async fn the_requests_own_mistakes_are_kept_like_successes() {
        let (api, _) = api(StatusCode::BAD_REQUEST, None);
        api.handle(&post("acme", Some("k1"), "{}")).await;
        *api.operations.status.lock().unwrap() = StatusCode::ACCEPTED;
        let again = api.handle(&post("acme", Some("k1"), "{}")).await;
        assert_eq!((again.status(), runs(&api)), (StatusCode::BAD_REQUEST, 1));
        assert_eq!(again.headers()[IDEMPOTENCY_REPLAYED], "true");
    }

    #[tokio::test]
    async fn keys_are_per_tenant() {
        let (api, _) = api(StatusCode::ACCEPTED, None);
        let acme = api.handle(&post("acme", Some("k1"), "{}")).await;
        let globex = api.handle(&post("globex", Some("k1"), r#"{"other":"body"}"#)).await;
        assert_eq!((acme.status(), globex.status()), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
        assert_eq!(runs(&api), 2);
        assert_ne!(acme.body(), globex.body());
    }

    #[tokio::test]
    async fn without_a_key_or_for_other_methods_nothing_changes() {
        let (api, keys) = api(StatusCode::ACCEPTED, None);
        api.handle(&post("acme", None, "{}")).await;
        api.handle(&post("acme", None, "{}")).await;
        let mut delete = post("acme", Some("k1"), "");
        delete.method = Method::DELETE;
        api.handle(&delete).await;
        api.handle(&delete).await;
        assert_eq!(runs(&api), 4);
        assert!(keys.records.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_malformed_key_is_refused_before_anything_runs() {
        let (api, _) = api(StatusCode::ACCEPTED, None);
        let mut request = post("acme", None, "{}");
        request.headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_bytes(b"tab\tkey").unwrap());
        let refused = api.handle(&request).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        assert!(detail(&refused).contains("Idempotency-Key"));
        request.headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_str(&"k".repeat(256)).unwrap());
        assert_eq!(api.handle(&request).await.status(), StatusCode::BAD_REQUEST);
        assert_eq!(runs(&api), 0);
    }

    #[tokio::test]
    async fn a_caller_who_does_not_verify_gets_401_and_claims_nothing() {
        let (api, keys) = api(StatusCode::ACCEPTED, None);
        let refused = api.handle(&post("bad", Some("k1"), "{}")).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert!(keys.records.lock().unwrap().is_empty());
    }
}
