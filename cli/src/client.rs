//! The Portcullis API over HTTP: one request helper, the token (given, or exchanged for service-token
//! credentials), and the failures a script can branch on.

use reqwest::Method;
use serde_json::Value;

/// Why a command failed, and the exit code that says so.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The API refused the request (a 4xx); `detail` is its problem detail.
    #[error("{status}: {detail}")]
    Refused { status: u16, detail: String },
    /// The API could not be reached, or failed (a 5xx).
    #[error("{0}")]
    Unavailable(String),
    /// Nothing to call the API with: a missing or malformed setting or file.
    #[error("{0}")]
    Setup(String),
    /// `--wait` saw the app end FAILED.
    #[error("app {id} FAILED: {reason}")]
    AppFailed { id: String, reason: String },
    /// A preflight found a check that fails (each has its line).
    #[error("a preflight check failed")]
    ChecksFailed,
    /// Some rows of an import were not invited (each has its line).
    #[error("{failed} of {total} rows failed")]
    RowsFailed { failed: usize, total: usize },
}

impl Failure {
    /// The process exit code: 2 is clap's own for usage errors.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Setup(_) => 1,
            Failure::Refused { .. } | Failure::ChecksFailed => 3,
            Failure::Unavailable(_) => 4,
            Failure::AppFailed { .. } => 5,
            Failure::RowsFailed { .. } => 6,
        }
    }
}

pub type Outcome<T = ()> = Result<T, Failure>;

/// How the CLI proves who it is.
pub enum Credentials {
    /// An ID token (a person) or an access token (already exchanged).
    Token(String),
    /// A service token's client credentials, exchanged at `token_url` for an access token.
    Client { token_url: String, client_id: String, client_secret: String, scope: Option<String> },
}

pub struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    /// Connects: exchanges client credentials once, if that is what was given.
    pub async fn connect(base: &str, credentials: Credentials) -> Outcome<Api> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("portcullis-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Failure::Setup(format!("cannot build an HTTP client: {e}")))?;
        let token = match credentials {
            Credentials::Token(token) => token,
            Credentials::Client { token_url, client_id, client_secret, scope } => {
                exchange(&http, &token_url, &client_id, &client_secret, scope.as_deref()).await?
            }
        };
        Ok(Api { http, base: base.trim_end_matches('/').to_string(), token })
    }

    /// Sends one request and returns the answer's body (`Null` when empty). Every POST carries an
    /// `Idempotency-Key`, the same on each attempt, so a request that failed on the way or timed out is
    /// sent again (twice at most) without the risk of doing the work twice.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Outcome<Value> {
        let key = (method == Method::POST).then(|| uuid::Uuid::new_v4().to_string());
        let mut attempt = 0;
        loop {
            match self.send(&method, path, body, key.as_deref()).await {
                Err(Failure::Unavailable(_)) if attempt < 2 && (key.is_some() || method == Method::GET) => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(500 * attempt)).await;
                }
                outcome => return outcome,
            }
        }
    }

    async fn send(&self, method: &Method, path: &str, body: Option<&Value>, key: Option<&str>) -> Outcome<Value> {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| Failure::Unavailable(format!("{method} {path}: {e}")))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| Failure::Unavailable(format!("{method} {path}: {e}")))?;
        let body =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        if status.is_server_error() {
            return Err(Failure::Unavailable(format!("{method} {path}: {status}: {}", detail(&body))));
        }
        if status.is_client_error() {
            return Err(Failure::Refused { status: status.as_u16(), detail: detail(&body) });
        }
        Ok(body)
    }

    pub async fn get(&self, path: &str) -> Outcome<Value> {
        self.call(Method::GET, path, None).await
    }
}

/// The problem detail of an error answer, or the answer itself.
fn detail(body: &Value) -> String {
    body.get("detail")
        .or_else(|| body.get("message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| body.to_string())
}

/// OAuth 2.0 client credentials (RFC 6749 §4.4), the client authenticating with HTTP Basic.
async fn exchange(
    http: &reqwest::Client,
    token_url: &str,
    client_id: &str,
    client_secret: &str,
    scope: Option<&str>,
) -> Outcome<String> {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    let response = http
        .post(token_url)
        .basic_auth(client_id, Some(client_secret))
        .form(&form)
        .send()
        .await
        .map_err(|e| Failure::Unavailable(format!("token endpoint {token_url}: {e}")))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    match body.get("access_token").and_then(Value::as_str) {
        Some(token) if status.is_success() => Ok(token.to_string()),
        _ if status.is_server_error() => Err(Failure::Unavailable(format!("token endpoint: {status}"))),
        _ => Err(Failure::Refused {
            status: status.as_u16(),
            detail: format!("the token endpoint refused the client credentials: {}", detail(&body)),
        }),
    }
}
