//! The figures of one `make bench` run, their budgets (docs/performance.md), and the table printed at
//! the end.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::stats::{Summary, ratio};
use crate::workflow_cost::WorkflowCost;

/// The budgets, as docs/performance.md states them. Sizes are decimal: 8 MB is 8,000,000 bytes.
pub const COLD_START_RATIO: f64 = 1.5;
pub const WARM_RATIO: f64 = 1.10;
pub const BINARY_BYTES: u64 = 8_000_000;
pub const PEAK_RSS_BYTES: u64 = 32_000_000;
pub const HAPPY_PATH_TRANSITIONS: u64 = 20;
pub const POLLS_FOR_30_MINUTES: u64 = 12;

/// The function every cold start is compared with.
pub const HELLO: &str = "hello";

/// One function's cold starts.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ColdStarts {
    /// Process start → first answer.
    pub total: Summary,
    /// Process start → first poll for an event (the init phase).
    pub init: Summary,
    /// Median total over the hello-world function's.
    pub ratio_to_hello: f64,
    /// What starting adds to the same request warm: median cold total less the median warm invocation.
    pub startup_overhead_ms: f64,
    /// That overhead over the hello-world function's.
    pub startup_overhead_ratio_to_hello: f64,
}

/// One function's warm run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WarmRun {
    pub invocation: Summary,
    pub peak_rss_bytes: u64,
}

/// `GET /apps/{id}` warm against the one `GetItem` it needs.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WarmOverhead {
    pub get_app: Summary,
    pub raw_get_item: Summary,
    pub ratio_p50: f64,
    pub ratio_p99: f64,
}

/// One figure held against its budget.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    pub figure: String,
    pub measured: String,
    pub budget: String,
    pub met: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Results {
    pub machine: String,
    pub cold_start: BTreeMap<String, ColdStarts>,
    pub warm: BTreeMap<String, WarmRun>,
    pub warm_overhead: WarmOverhead,
    /// Criterion's median of one ID token's verification with the keys cached, in microseconds.
    pub token_verification_us: f64,
    /// `cargo lambda build --release --arm64`, stripped.
    pub arm64_binary_bytes: BTreeMap<String, u64>,
    pub workflow: WorkflowCost,
    /// Happy-path transitions of the run the emulator executed for this bench (polls taken off).
    pub executed_happy_path_transitions: u64,
    pub budgets: Vec<Budget>,
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Every budget, against this run's figures.
pub fn budgets(results: &Results) -> Vec<Budget> {
    let mut out = Vec::new();
    let mut push = |figure: String, measured: String, budget: String, met: bool| {
        out.push(Budget { figure, measured, budget, met });
    };
    for (name, cold) in results.cold_start.iter().filter(|(name, _)| *name != HELLO) {
        let met = cold.ratio_to_hello <= COLD_START_RATIO;
        push(
            format!("cold start {name} / hello (p50)"),
            format!("{:.2}×", cold.ratio_to_hello),
            format!("≤ {COLD_START_RATIO}×"),
            met,
        );
    }
    for (name, cold) in results.cold_start.iter().filter(|(name, _)| *name != HELLO) {
        let met = cold.startup_overhead_ratio_to_hello <= COLD_START_RATIO;
        let ratio = format!("{:.2}×", cold.startup_overhead_ratio_to_hello);
        push(format!("start-up overhead {name} / hello (p50)"), ratio, format!("≤ {COLD_START_RATIO}×"), met);
    }
    let warm = &results.warm_overhead;
    push(
        "warm GET /apps/{id} / GetItem (p50)".into(),
        format!("{:.2}×", warm.ratio_p50),
        format!("≤ {WARM_RATIO}×"),
        warm.ratio_p50 <= WARM_RATIO,
    );
    push(
        "warm GET /apps/{id} / GetItem (p99)".into(),
        format!("{:.2}×", warm.ratio_p99),
        format!("≤ {WARM_RATIO}×"),
        warm.ratio_p99 <= WARM_RATIO,
    );
    for (name, &bytes) in results.arm64_binary_bytes.iter().filter(|(name, _)| *name != HELLO) {
        push(format!("arm64 binary {name}"), mb(bytes), mb(BINARY_BYTES), bytes <= BINARY_BYTES);
    }
    for (name, run) in results.warm.iter().filter(|(name, _)| *name != HELLO) {
        let bytes = run.peak_rss_bytes;
        push(format!("peak RSS {name}"), mb(bytes), mb(PEAK_RSS_BYTES), bytes <= PEAK_RSS_BYTES);
    }
    let transitions = results.workflow.happy_path_transitions;
    push(
        "happy path transitions (no polls)".into(),
        transitions.to_string(),
        format!("≤ {HAPPY_PATH_TRANSITIONS}"),
        transitions <= HAPPY_PATH_TRANSITIONS,
    );
    if let Some(half_hour) = results.workflow.scenarios.first() {
        let polls = half_hour.certificate_polls;
        push(
            format!("certificate polls, {} validation", half_hour.validation),
            polls.to_string(),
            format!("≤ {POLLS_FOR_30_MINUTES}"),
            polls <= POLLS_FOR_30_MINUTES,
        );
    }
    out
}

/// The table printed at the end of the run.
pub fn table(results: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n{}\n", results.machine);
    let _ = writeln!(
        out,
        "{:<14} {:>12} {:>12} {:>12} {:>10} {:>12} {:>12} {:>12} {:>12}",
        "function",
        "cold p50 ms",
        "cold p90 ms",
        "init p50 ms",
        "× hello",
        "start-up ms",
        "warm p50 ms",
        "warm p99 ms",
        "peak RSS"
    );
    for (name, cold) in &results.cold_start {
        let warm = results.warm.get(name);
        let _ = writeln!(
            out,
            "{:<14} {:>12.1} {:>12.1} {:>12.1} {:>10.2} {:>12.1} {:>12.2} {:>12.2} {:>12}",
            name,
            cold.total.p50_ms,
            cold.total.p90_ms,
            cold.init.p50_ms,
            cold.ratio_to_hello,
            cold.startup_overhead_ms,
            warm.map_or(f64::NAN, |w| w.invocation.p50_ms),
            warm.map_or(f64::NAN, |w| w.invocation.p99_ms),
            warm.map_or("-".into(), |w| mb(w.peak_rss_bytes)),
        );
    }
    let warm = &results.warm_overhead;
    let _ = writeln!(
        out,
        "\nwarm GET /apps/{{id}}: p50 {:.2} ms, p99 {:.2} ms; raw GetItem: p50 {:.2} ms, p99 {:.2} ms ({} each)",
        warm.get_app.p50_ms,
        warm.get_app.p99_ms,
        warm.raw_get_item.p50_ms,
        warm.raw_get_item.p99_ms,
        warm.get_app.samples
    );
    let _ = writeln!(out, "token verification (warm keys): {:.1} µs", results.token_verification_us);
    let sizes: Vec<String> = results.arm64_binary_bytes.iter().map(|(n, &b)| format!("{n} {}", mb(b))).collect();
    let _ = writeln!(out, "arm64 binaries (stripped): {}", sizes.join(", "));
    let w = &results.workflow;
    let _ = writeln!(
        out,
        "workflow: {} transitions and {} invocations on the happy path (executed here: {}); each poll adds {}",
        w.happy_path_transitions,
        w.happy_path_invocations,
        results.executed_happy_path_transitions,
        w.transitions_per_poll
    );
    for s in &w.scenarios {
        let _ = writeln!(
            out,
            "  {:>6} validation: {:>4} certificate polls, {:>4} invocations, {:>5} transitions",
            s.validation, s.certificate_polls, s.lambda_invocations, s.state_transitions
        );
    }
    let _ = writeln!(out, "\n{:<44} {:>12} {:>12}  met", "budget", "measured", "target");
    for b in &results.budgets {
        let _ =
            writeln!(out, "{:<44} {:>12} {:>12}  {}", b.figure, b.measured, b.budget, if b.met { "yes" } else { "NO" });
    }
    out
}

/// The ratio of two summaries' medians and 99th percentiles.
pub fn overhead(get_app: Summary, raw_get_item: Summary) -> WarmOverhead {
    WarmOverhead {
        ratio_p50: ratio(get_app.p50_ms, raw_get_item.p50_ms),
        ratio_p99: ratio(get_app.p99_ms, raw_get_item.p99_ms),
        get_app,
        raw_get_item,
    }
}
