//! A stand-in for the Lambda Runtime API (the `/2018-06-01/runtime/…` routes a function's runtime
//! long-polls for its next event and posts its answer to), so that a function binary can be started,
//! invoked and timed here exactly as Lambda's own sandbox would drive it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::sync::{mpsc, oneshot};

/// How a function answered one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The handler's response.
    Response(Bytes),
    /// The handler's (or init's) error document.
    Error(Bytes),
}

impl Answer {
    /// The response as JSON; an error answer or a body that is not JSON is an error naming it.
    pub fn json(&self) -> Result<serde_json::Value, String> {
        match self {
            Answer::Response(body) => serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON: {e}")),
            Answer::Error(body) => Err(format!("the function failed: {}", String::from_utf8_lossy(body))),
        }
    }
}

/// The function's runtime did not answer in time, or the stand-in stopped.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    #[error("the runtime API stand-in stopped")]
    Stopped,
}

struct Invocation {
    payload: Bytes,
    answer: oneshot::Sender<Answer>,
}

#[derive(Default)]
struct Shared {
    /// When the runtime first asked for an event: its init is done.
    first_poll: Option<Instant>,
    /// Invocations handed out and not yet answered, by request id.
    pending: HashMap<String, oneshot::Sender<Answer>>,
    /// What the runtime reported through `/runtime/init/error`.
    init_error: Option<Bytes>,
}

#[derive(Clone)]
struct ServerState {
    events: Arc<tokio::sync::Mutex<mpsc::Receiver<Invocation>>>,
    shared: Arc<Mutex<Shared>>,
    function_arn: HeaderValue,
}

/// One stand-in, for one function process: it serves on a free loopback port until dropped.
pub struct RuntimeApi {
    address: SocketAddr,
    events: mpsc::Sender<Invocation>,
    shared: Arc<Mutex<Shared>>,
    server: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    /// Serves on a free loopback port.
    pub async fn start(function_name: &str) -> std::io::Result<RuntimeApi> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (events, receiver) = mpsc::channel(1);
        let shared = Arc::new(Mutex::new(Shared::default()));
        let arn = format!("arn:aws:lambda:us-east-1:000000000000:function:{function_name}");
        let state = ServerState {
            events: Arc::new(tokio::sync::Mutex::new(receiver)),
            shared: shared.clone(),
            function_arn: HeaderValue::from_str(&arn).unwrap_or_else(|_| HeaderValue::from_static("arn")),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(state);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(RuntimeApi { address, events, shared, server })
    }

    /// `host:port`, as `AWS_LAMBDA_RUNTIME_API` takes it.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// Hands `payload` to the function's next poll and waits for its answer.
    pub async fn invoke(&self, payload: Bytes, within: Duration) -> Result<Answer, InvokeError> {
        let (answer, answered) = oneshot::channel();
        let invoked = async {
            self.events.send(Invocation { payload, answer }).await.map_err(|_| InvokeError::Stopped)?;
            answered.await.map_err(|_| InvokeError::Stopped)
        };
        let answer = tokio::time::timeout(within, invoked).await.map_err(|_| InvokeError::TimedOut(within))??;
        Ok(answer)
    }

    /// When the runtime first polled for an event, if it has.
    pub fn first_poll(&self) -> Option<Instant> {
        self.shared.lock().expect("stand-in state").first_poll
    }

    /// What the runtime reported as its init error, if anything.
    pub fn init_error(&self) -> Option<String> {
        let shared = self.shared.lock().expect("stand-in state");
        shared.init_error.as_ref().map(|body| String::from_utf8_lossy(body).into_owned())
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// `GET …/invocation/next`: long-polls until an invocation is queued, as Lambda's does.
async fn next(State(state): State<ServerState>) -> impl IntoResponse {
    state.shared.lock().expect("stand-in state").first_poll.get_or_insert_with(Instant::now);
    let Some(invocation) = state.events.lock().await.recv().await else {
        return (StatusCode::GONE, HeaderMap::new(), Bytes::new());
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let deadline = SystemTime::now() + Duration::from_secs(900);
    let deadline_ms = deadline.duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default();
    let mut headers = HeaderMap::new();
    let header = |value: String| HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("0"));
    headers.insert("lambda-runtime-aws-request-id", header(request_id.clone()));
    headers.insert("lambda-runtime-deadline-ms", header(deadline_ms.to_string()));
    headers.insert("lambda-runtime-invoked-function-arn", state.function_arn.clone());
    headers.insert("lambda-runtime-trace-id", header(format!("Root=1-bench-{request_id}")));
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    state.shared.lock().expect("stand-in state").pending.insert(request_id, invocation.answer);
    (StatusCode::OK, headers, invocation.payload)
}

fn answered(state: &ServerState, id: &str, answer: Answer) -> StatusCode {
    match state.shared.lock().expect("stand-in state").pending.remove(id) {
        Some(waiting) => {
            let _ = waiting.send(answer);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

/// `POST …/invocation/{id}/response`.
async fn response(State(state): State<ServerState>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    answered(&state, &id, Answer::Response(body))
}

/// `POST …/invocation/{id}/error`.
async fn error(State(state): State<ServerState>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    answered(&state, &id, Answer::Error(body))
}

/// `POST …/init/error`: the function could not start.
async fn init_error(State(state): State<ServerState>, body: Bytes) -> StatusCode {
    state.shared.lock().expect("stand-in state").init_error = Some(body);
    StatusCode::ACCEPTED
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A runtime's side of the protocol: poll once, then answer on `route`.
    async fn answer_once(api: &str, route: &str, body: &'static str) -> serde_json::Value {
        let http = reqwest::Client::new();
        let next = http.get(format!("http://{api}/2018-06-01/runtime/invocation/next")).send().await.unwrap();
        let id = next.headers()["lambda-runtime-aws-request-id"].to_str().unwrap().to_string();
        assert!(next.headers().contains_key("lambda-runtime-deadline-ms"));
        let payload = next.json().await.unwrap();
        let url = format!("http://{api}/2018-06-01/runtime/invocation/{id}/{route}");
        assert_eq!(http.post(url).body(body).send().await.unwrap().status(), 202);
        payload
    }

    #[tokio::test]
    async fn an_invocation_reaches_the_runtime_and_its_answer_comes_back() {
        let api = RuntimeApi::start("f").await.unwrap();
        let address = api.address();
        let runtime = tokio::spawn(async move { answer_once(&address, "response", r#"{"ok":true}"#).await });
        let answer = api.invoke(Bytes::from_static(br#"{"n":1}"#), Duration::from_secs(10)).await.unwrap();
        assert_eq!(answer.json().unwrap(), serde_json::json!({"ok": true}));
        assert_eq!(runtime.await.unwrap(), serde_json::json!({"n": 1}));
        assert!(api.first_poll().is_some());
    }

    #[tokio::test]
    async fn an_error_answer_is_an_error() {
        let api = RuntimeApi::start("f").await.unwrap();
        let address = api.address();
        tokio::spawn(async move { answer_once(&address, "error", r#"{"errorType":"Boom"}"#).await });
        let answer = api.invoke(Bytes::from_static(b"{}"), Duration::from_secs(10)).await.unwrap();
        assert!(answer.json().unwrap_err().contains("Boom"));
    }

    #[tokio::test]
    async fn no_runtime_is_a_timeout_not_a_hang() {
        let api = RuntimeApi::start("f").await.unwrap();
        let err = api.invoke(Bytes::from_static(b"{}"), Duration::from_millis(200)).await.unwrap_err();
        assert!(matches!(err, InvokeError::TimedOut(_)));
        assert!(api.first_poll().is_none());
    }
}
