//! A bounded load run against a running local stack (`make load` starts one; or `make dev`'s):
//! `--readers` concurrent readers (`GET /apps`, `GET /apps/{id}`, `GET /apps/{id}/users`) and `--writers`
//! concurrent writers (invitations; every fourth write a `POST /apps` of a fresh domain and its `DELETE`)
//! for `--seconds`, or until `--max-requests` answers. Prints the answers by operation and status, the
//! latency percentiles, and the number of 5xx; exits non-zero on any 5xx or request unanswered within
//! API Gateway's 29 s.
//!
//! `cargo run --locked -p portcullis-e2e --example load -- --readers 200 --writers 50 --seconds 30`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use portcullis_e2e::{Harness, TestTenant, fresh_domain, short_id};
use reqwest::Method;
use serde_json::{Value, json};

#[derive(Parser)]
#[command(about = "A bounded load run against the local stack")]
struct Args {
    /// Concurrent readers.
    #[arg(long, default_value_t = 200)]
    readers: usize,
    /// Concurrent writers.
    #[arg(long, default_value_t = 50)]
    writers: usize,
    /// How long to run.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Stop after this many requests, whichever comes first.
    #[arg(long, default_value_t = 20_000)]
    max_requests: usize,
}

/// One answer: which operation, its status (0: no answer at all), how long it took.
struct Sample {
    operation: &'static str,
    status: u16,
    latency: Duration,
}

/// API Gateway's integration timeout: an answer slower than this is a 504 on AWS, so it counts as none.
const GATEWAY_TIMEOUT: Duration = Duration::from_secs(29);

/// What every worker shares: the harness, the app it reads and invites to, the target new apps use.
struct Load {
    h: Harness,
    http: reqwest::Client,
    tenant: TestTenant,
    app_id: String,
    spare_target: Value,
    deadline: Instant,
    max_requests: usize,
    sent: AtomicUsize,
}

impl Load {
    /// Room for one more request (the budget is taken when it is).
    fn go_on(&self) -> bool {
        Instant::now() < self.deadline && self.sent.fetch_add(1, Ordering::Relaxed) < self.max_requests
    }

    async fn timed(
        &self,
        operation: &'static str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (Sample, Value) {
        let start = Instant::now();
        let request = self.http.request(method, format!("{}{}", self.h.stack.api_url, path));
        let mut request = request.bearer_auth(&self.tenant.admin);
        if let Some(body) = body {
            request = request.json(body);
        }
        let (status, body) = match request.send().await {
            Ok(answer) => {
                let status = answer.status().as_u16();
                (status, answer.json().await.unwrap_or(Value::Null))
            }
            Err(error) => {
                eprintln!("{operation}: no answer: {error}");
                (0, Value::Null)
            }
        };
        (Sample { operation, status, latency: start.elapsed() }, body)
    }

    async fn reader(self: Arc<Self>, worker: usize) -> Vec<Sample> {
        let mut samples = Vec::new();
        let app = format!("/apps/{}", self.app_id);
        for round in worker.. {
            if !self.go_on() {
                break;
            }
            let (operation, path) = match round % 3 {
                0 => ("GET /apps", "/apps?limit=20".to_string()),
                1 => ("GET /apps/{id}", app.clone()),
                _ => ("GET /apps/{id}/users", format!("{app}/users?limit=20")),
            };
            samples.push(self.timed(operation, Method::GET, &path, None).await.0);
        }
        samples
    }

    async fn writer(self: Arc<Self>, worker: usize) -> Vec<Sample> {
        let mut samples = Vec::new();
        let users = format!("/apps/{}/users", self.app_id);
        for round in worker.. {
            if !self.go_on() {
                break;
            }
            if round % 4 != 3 {
                let body = json!({"email": format!("load-{}@example.com", short_id())});
                samples.push(self.timed("POST /apps/{id}/users", Method::POST, &users, Some(&body)).await.0);
                continue;
            }
            let body = json!({"name": "Load", "domain": fresh_domain("load"), "target": self.spare_target});
            let (created, app) = self.timed("POST /apps", Method::POST, "/apps", Some(&body)).await;
            samples.push(created);
            if let Some(id) = app["id"].as_str() {
                samples.push(self.timed("DELETE /apps/{id}", Method::DELETE, &format!("/apps/{id}"), None).await.0);
            }
        }
        samples
    }
}

/// Lets the tenant keep many apps at once (creates under load are deleted, but not at once): the
/// registration as it stands, with the quota at its maximum.
async fn raise_app_quota(h: &Harness, tenant_id: &str) {
    let platform = h.platform().await;
    let path = format!("/tenants/{tenant_id}");
    let current = h.call(Method::GET, &path, Some(&platform), None).await;
    assert_eq!(current.status, 200, "{}", current.text);
    let registration = &current.body;
    let body = json!({"allowedDomains": registration["allowedDomains"], "targets": registration["targets"],
        "quotas": {"apps": 1000}});
    let raised = h.call(Method::PUT, &path, Some(&platform), Some(&body)).await;
    assert_eq!(raised.status, 200, "{}", raised.text);
}

/// The `q`-th quantile of sorted latencies, in milliseconds.
fn quantile(sorted: &[Duration], q: f64) -> u128 {
    if sorted.is_empty() {
        return 0;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index].as_millis()
}

fn summary(label: &str, samples: &[&Sample]) -> String {
    let mut latencies: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    latencies.sort();
    format!(
        "{label:<24} {:>6} requests  p50 {:>5} ms  p90 {:>5} ms  p99 {:>5} ms",
        samples.len(),
        quantile(&latencies, 0.5),
        quantile(&latencies, 0.9),
        quantile(&latencies, 0.99)
    )
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let app = h.active_app(&tenant, "Load").await;
    // Apps created under load wait for a target that never becomes healthy, and are deleted at once:
    // the run measures the API, not how fast the emulator provisions.
    let spare_target = h
        .grant(
            &tenant,
            json!({"type": "alb", "listenerArn": h.stack.listener_arn,
            "targetGroupArn": h.target_group("load", false).await}),
        )
        .await;
    raise_app_quota(&h, &tenant.id).await;
    let http = reqwest::Client::builder().timeout(GATEWAY_TIMEOUT).build().expect("an HTTP client");
    let load = Arc::new(Load {
        http,
        app_id: app["id"].as_str().expect("an id").to_string(),
        h,
        tenant,
        spare_target,
        deadline: Instant::now() + Duration::from_secs(args.seconds),
        max_requests: args.max_requests,
        sent: AtomicUsize::new(0),
    });

    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..args.readers {
        workers.spawn(load.clone().reader(worker));
    }
    for worker in 0..args.writers {
        workers.spawn(load.clone().writer(worker));
    }
    let mut samples = Vec::new();
    while let Some(done) = workers.join_next().await {
        samples.extend(done.expect("a worker panicked"));
    }
    let elapsed = started.elapsed();

    let mut by_operation: BTreeMap<&str, BTreeMap<u16, usize>> = BTreeMap::new();
    for sample in &samples {
        *by_operation.entry(sample.operation).or_default().entry(sample.status).or_insert(0) += 1;
    }
    println!(
        "{} readers, {} writers, {:.1} s: {} requests ({:.0}/s)",
        args.readers,
        args.writers,
        elapsed.as_secs_f64(),
        samples.len(),
        samples.len() as f64 / elapsed.as_secs_f64()
    );
    for (operation, statuses) in &by_operation {
        println!("  {operation:<24} {statuses:?}");
    }
    let reads: Vec<&Sample> = samples.iter().filter(|s| s.operation.starts_with("GET")).collect();
    let writes: Vec<&Sample> = samples.iter().filter(|s| !s.operation.starts_with("GET")).collect();
    println!("{}", summary("reads", &reads));
    println!("{}", summary("writes", &writes));
    println!("{}", summary("all", &samples.iter().collect::<Vec<_>>()));
    let server_errors = samples.iter().filter(|s| s.status >= 500).count();
    let unanswered = samples.iter().filter(|s| s.status == 0).count();
    println!("5xx: {server_errors}; unanswered within {GATEWAY_TIMEOUT:?}: {unanswered}");
    if server_errors + unanswered > 0 { std::process::ExitCode::FAILURE } else { std::process::ExitCode::SUCCESS }
}
