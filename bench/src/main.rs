//! `make bench`, after the builds: runs the functions' release binaries beside the local stack
//! (`portcullis_local test-run`) and writes `results.json` and a table. docs/performance.md says how
//! to read them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use axum::body::Bytes;
use clap::Parser;
use portcullis_bench::function::{ColdStart, Expect, Function};
use portcullis_bench::report::{self, ColdStarts, HELLO, Results, WarmRun};
use portcullis_bench::stats::{Summary, ratio};
use portcullis_bench::workflow_cost::{Machine, WorkflowCost, certificate_policy, executed_happy_path};
use portcullis_e2e::{Harness, TABLE_NAME};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(about = "Cold start, warm overhead, size, memory and workflow cost of the functions")]
struct Args {
    /// Cold starts of each function.
    #[arg(long, default_value_t = 20)]
    starts: usize,
    /// Warm invocations of each function, and raw GetItem calls.
    #[arg(long, default_value_t = 1000)]
    warm: usize,
    /// Where the host release binaries are.
    #[arg(long, default_value = "target/release")]
    binaries: PathBuf,
    /// Where `cargo lambda build --release --arm64` put the arm64 ones.
    #[arg(long, default_value = "target/lambda")]
    lambda_dir: PathBuf,
    /// Where criterion wrote the token verification bench.
    #[arg(long, default_value = "target/criterion")]
    criterion_dir: PathBuf,
    #[arg(long, default_value = "target/bench/results.json")]
    out: PathBuf,
}

/// The functions measured, with the hello-world one; their arm64 builds are sized.
const SIZED: [&str; 5] = [HELLO, "apps-api", "users-api", "provisioner", "tenants-api"];

#[tokio::main]
async fn main() {
    if let Err(error) = run(Args::parse()).await {
        eprintln!("bench: {error}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    let h = Harness::new().await;
    let stack_file = std::env::var("PORTCULLIS_STACK_FILE").map_err(|_| "run under `portcullis_local test-run`")?;
    let env = portcullis_bench::functions_env(Path::new(&stack_file))?;
    let setting = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();

    eprintln!("bench: an ACTIVE app to read, and one PROVISIONING with an issued certificate to check");
    let tenant = h.tenant().await;
    let app = h.active_app(&tenant, "bench").await;
    let app_id = app["id"].as_str().ok_or("the app has no id")?.to_string();
    let checked = h.active_app(&tenant, "bench-check").await;
    let checked_id = checked["id"].as_str().ok_or("the app has no id")?;
    h.force_status(&tenant.id, checked_id, "PROVISIONING").await;

    let function = |name: &str, event: Value, expect: Expect| Function {
        name: name.to_string(),
        binary: args.binaries.join(name),
        env: env.clone(),
        event: Bytes::from(event.to_string()),
        expect,
    };
    let check_certificate = json!({
        "step": "checkCertificate", "tenantId": tenant.id, "appId": checked_id, "execution": checked_id,
        "poll": {"pollSeconds": 15, "deadlineSeconds": 259200, "maxWaitSeconds": 300},
    });
    let functions = [
        function(HELLO, json!({"hello": "bench"}), Expect::Json),
        function(
            "apps-api",
            api_event("/apps/{id}", &format!("/apps/{app_id}"), Some(&app_id), &tenant.admin),
            Expect::Ok200,
        ),
        function(
            "users-api",
            api_event("/apps/{id}/users", &format!("/apps/{app_id}/users"), Some(&app_id), &tenant.admin),
            Expect::Ok200,
        ),
        function("provisioner", check_certificate, Expect::PollDone),
        function("tenants-api", api_event("/tenant", "/tenant", None, &tenant.admin), Expect::Ok200),
    ];

    eprintln!("bench: {} cold starts of each function, interleaved", args.starts);
    for f in &functions {
        f.cold_start().await?; // page cache and emulator warmed; not counted
    }
    let mut cold: BTreeMap<String, Vec<ColdStart>> = BTreeMap::new();
    for _ in 0..args.starts {
        for f in &functions {
            cold.entry(f.name.clone()).or_default().push(f.cold_start().await?);
        }
    }
    eprintln!("bench: {} warm invocations of each function (apps-api's each followed by a raw GetItem)", args.warm);
    let get_item = AppRecordRead { h: &h, tenant_id: &tenant.id, app_id: &app_id };
    get_item.once().await?;
    let mut warm = BTreeMap::new();
    let mut raw_get_item = None;
    for f in &functions {
        let paired = (f.name == "apps-api").then_some(&get_item);
        let (run, reads) = warm_run(f, args.warm, paired).await?;
        warm.insert(f.name.clone(), run);
        raw_get_item = raw_get_item.or(Summary::of(&reads));
    }
    let cold_start = cold_summaries(&cold, &warm)?;
    let warm_overhead = report::overhead(warm["apps-api"].invocation, raw_get_item.ok_or("no raw GetItem calls")?);

    let machine = Machine::from_json(&read("statemachine/provision.asl.json")?)?;
    let workflow = WorkflowCost::of(&machine, certificate_policy(&read("infra/template.yaml")?)?)?;
    let entered = states_entered(&h, &setting("PORTCULLIS_PROVISION_STATE_MACHINE_ARN"), &app_id).await?;
    let executed = executed_happy_path(&machine, &entered)?;
    if executed != workflow.happy_path_transitions {
        return Err(format!(
            "the emulator's run took {executed} happy-path transitions, the walk of the ASL {}: {entered:?}",
            workflow.happy_path_transitions
        ));
    }

    let mut results = Results {
        machine: machine_note(),
        cold_start,
        warm,
        warm_overhead,
        token_verification_us: token_verification_us(&args.criterion_dir)?,
        arm64_binary_bytes: binary_sizes(&args.lambda_dir)?,
        workflow,
        executed_happy_path_transitions: executed,
        budgets: Vec::new(),
    };
    results.budgets = report::budgets(&results);
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let json = serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?;
    std::fs::write(&args.out, json + "\n").map_err(|e| format!("{}: {e}", args.out.display()))?;
    print!("{}", report::table(&results));
    println!("\n{} written", args.out.display());
    Ok(())
}

/// API Gateway's REST proxy event for a GET, as the local gateway builds it.
fn api_event(resource: &str, path: &str, app_id: Option<&str>, token: &str) -> Value {
    let bearer = format!("Bearer {token}");
    json!({
        "resource": resource, "path": path, "httpMethod": "GET",
        "headers": {"Authorization": bearer, "Host": "api.bench"},
        "multiValueHeaders": {"Authorization": [bearer], "Host": ["api.bench"]},
        "queryStringParameters": null, "multiValueQueryStringParameters": null,
        "pathParameters": app_id.map(|id| json!({"id": id})), "stageVariables": null,
        "requestContext": {
            "resourceId": "bench", "resourcePath": resource, "httpMethod": "GET", "path": format!("/v1{path}"),
            "accountId": "000000000000", "stage": "v1", "requestId": "bench", "apiId": "bench",
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": null, "isBase64Encoded": false,
    })
}

fn cold_summaries(
    cold: &BTreeMap<String, Vec<ColdStart>>,
    warm: &BTreeMap<String, WarmRun>,
) -> Result<BTreeMap<String, ColdStarts>, String> {
    let summary = |starts: &[ColdStart], pick: fn(&ColdStart) -> Duration| {
        Summary::of(&starts.iter().map(pick).collect::<Vec<_>>()).ok_or("no cold starts")
    };
    let startup = |name: &str, total: Summary| total.p50_ms - warm.get(name).map_or(0.0, |w| w.invocation.p50_ms);
    let hello = summary(&cold[HELLO], |c| c.total)?;
    let hello_startup = startup(HELLO, hello);
    cold.iter()
        .map(|(name, starts)| {
            let total = summary(starts, |c| c.total)?;
            let init = summary(starts, |c| c.init)?;
            let startup_overhead_ms = (startup(name, total) * 100.0).round() / 100.0;
            Ok((
                name.clone(),
                ColdStarts {
                    total,
                    init,
                    ratio_to_hello: ratio(total.p50_ms, hello.p50_ms),
                    startup_overhead_ms,
                    startup_overhead_ratio_to_hello: ratio(startup_overhead_ms, hello_startup),
                },
            ))
        })
        .collect()
}

/// One process, invoked once to warm it and then `count` times, timed; its peak RSS at the end. With
/// `paired`, each invocation is followed by that raw read, timed too: both then meet the emulator in
/// the same state, which a run of one and then a run of the other do not.
async fn warm_run(
    function: &Function,
    count: usize,
    paired: Option<&AppRecordRead<'_>>,
) -> Result<(WarmRun, Vec<Duration>), String> {
    let (running, _) = function.start().await?;
    running.invoke(function.event.clone()).await?;
    let (mut took, mut reads) = (Vec::with_capacity(count), Vec::new());
    for _ in 0..count {
        took.push(running.invoke(function.event.clone()).await?);
        if let Some(read) = paired {
            reads.push(read.once().await?);
        }
    }
    let peak_rss_bytes = running.peak_rss_bytes().ok_or("no peak RSS in /proc")?;
    running.stop().await;
    Ok((WarmRun { invocation: Summary::of(&took).ok_or("no warm invocations")?, peak_rss_bytes }, reads))
}

/// `GetItem` of the app's record from a Rust SDK client, as `GET /apps/{id}` reads it.
struct AppRecordRead<'a> {
    h: &'a Harness,
    tenant_id: &'a str,
    app_id: &'a str,
}

impl AppRecordRead<'_> {
    async fn once(&self) -> Result<Duration, String> {
        let sent = Instant::now();
        let item = self
            .h
            .aws
            .dynamodb
            .get_item()
            .table_name(TABLE_NAME)
            .key("pk", AttributeValue::S(format!("TENANT#{}", self.tenant_id)))
            .key("sk", AttributeValue::S(format!("APP#{}", self.app_id)))
            .send()
            .await
            .map_err(|e| format!("GetItem: {e}"))?;
        let took = sent.elapsed();
        item.item.ok_or("GetItem found no app record")?;
        Ok(took)
    }
}

/// The states the emulator entered, in order, in the app's provisioning run.
async fn states_entered(h: &Harness, machine_arn: &str, app_id: &str) -> Result<Vec<String>, String> {
    let execution = format!("{}:{app_id}", machine_arn.replacen(":stateMachine:", ":execution:", 1));
    let mut pages = h.aws.sfn.get_execution_history().execution_arn(&execution).into_paginator().send();
    let mut entered = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| format!("GetExecutionHistory {execution}: {e}"))?;
        for event in page.events() {
            if event.r#type().as_str().ends_with("StateEntered")
                && let Some(details) = event.state_entered_event_details()
            {
                entered.push(details.name().to_string());
            }
        }
    }
    Ok(entered)
}

/// Criterion's median for the token verification bench (benches/token_verification.rs), in µs.
fn token_verification_us(criterion_dir: &Path) -> Result<f64, String> {
    let path = criterion_dir.join("token_verification/id_token_warm_keys/new/estimates.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("{}: {e} (run the criterion bench first)", path.display()))?;
    let estimates: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let nanos = estimates["median"]["point_estimate"].as_f64().ok_or("no median in criterion's estimates")?;
    Ok((nanos / 1e3 * 10.0).round() / 10.0)
}

fn binary_sizes(lambda_dir: &Path) -> Result<BTreeMap<String, u64>, String> {
    SIZED
        .iter()
        .map(|name| {
            let path = lambda_dir.join(name).join("bootstrap");
            let bytes =
                std::fs::metadata(&path).map_err(|e| format!("{}: {e} (make bench builds it)", path.display()))?.len();
            Ok((name.to_string(), bytes))
        })
        .collect()
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

/// What the figures were measured on: absolute times are only context.
fn machine_note() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{} {} with {cpus} CPUs; host release binaries (the arm64 profile), local emulator over loopback HTTP",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}
