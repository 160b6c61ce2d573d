//! A function binary started as Lambda starts one: a clean environment (the function's settings and
//! Lambda's own variables), its runtime pointed at a Runtime API stand-in of its own.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

pub use axum::body::Bytes;
use serde_json::Value;
use tokio::process::{Child, Command};

use crate::runtime_api::RuntimeApi;

/// Longer than any answer should take here; a function that needs it is broken, not slow.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);
/// The memory size Lambda reports to the function (infra/template.yaml's `MemorySize`).
const MEMORY_SIZE_MB: &str = "256";

/// What a right answer looks like, so that no failed invocation is timed as a fast one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Any JSON (the hello-world function).
    Json,
    /// An API Gateway proxy response with status 200.
    Ok200,
    /// A wait loop's state with the condition met (`checkCertificate` of an issued certificate).
    PollDone,
}

impl Expect {
    fn check(self, answer: &Value) -> Result<(), String> {
        let right = match self {
            Expect::Json => true,
            Expect::Ok200 => answer["statusCode"] == 200,
            Expect::PollDone => answer["done"] == true,
        };
        if right { Ok(()) } else { Err(format!("unexpected answer ({self:?}): {answer}")) }
    }
}

/// One function under measurement.
#[derive(Debug, Clone)]
pub struct Function {
    pub name: String,
    pub binary: PathBuf,
    /// The function's own settings (the local stack's functions.env).
    pub env: Vec<(String, String)>,
    pub event: Bytes,
    pub expect: Expect,
}

/// A started function process and its stand-in.
pub struct Running {
    child: Child,
    api: RuntimeApi,
    expect: Expect,
}

/// One cold start: process start → first answer, and the part of it before the first poll (init).
#[derive(Debug, Clone, Copy)]
pub struct ColdStart {
    pub total: Duration,
    pub init: Duration,
}

impl Function {
    /// Starts the process; the clock of a cold start starts here.
    pub async fn start(&self) -> Result<(Running, Instant), String> {
        let api = RuntimeApi::start(&self.name).await.map_err(|e| format!("stand-in for {}: {e}", self.name))?;
        let mut command = Command::new(&self.binary);
        command
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", &self.name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", MEMORY_SIZE_MB)
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", self.name))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            // Lambda sends stdout to CloudWatch; here nobody reads it.
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let started = Instant::now();
        let child = command.spawn().map_err(|e| format!("{}: {e}", self.binary.display()))?;
        Ok((Running { child, api, expect: self.expect }, started))
    }

    /// Starts the function, invokes it once, stops it.
    pub async fn cold_start(&self) -> Result<ColdStart, String> {
        let (running, started) = self.start().await?;
        running.invoke(self.event.clone()).await?;
        let total = started.elapsed();
        let init = running.api.first_poll().map(|at| at - started).unwrap_or(total);
        running.stop().await;
        Ok(ColdStart { total, init })
    }
}

impl Running {
    /// One invocation, timed from the event handed over to the answer back; a wrong answer is an error.
    pub async fn invoke(&self, event: Bytes) -> Result<Duration, String> {
        let sent = Instant::now();
        let answer = self.api.invoke(event, ANSWER_WITHIN).await;
        let took = sent.elapsed();
        let answer = answer.map_err(|e| match self.api.init_error() {
            Some(init) => format!("init failed: {init}"),
            None => e.to_string(),
        })?;
        self.expect.check(&answer.json()?)?;
        Ok(took)
    }

    /// The process's peak resident set so far (Linux's VmHWM), in bytes.
    pub fn peak_rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        let kib = status.lines().find_map(|line| line.strip_prefix("VmHWM:"))?.trim().strip_suffix("kB")?;
        kib.trim().parse::<u64>().ok().map(|k| k * 1024)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_right_answer_passes() {
        assert!(Expect::Ok200.check(&serde_json::json!({"statusCode": 200})).is_ok());
        assert!(Expect::Ok200.check(&serde_json::json!({"statusCode": 401})).is_err());
        assert!(Expect::PollDone.check(&serde_json::json!({"done": true})).is_ok());
        assert!(Expect::PollDone.check(&serde_json::json!({"done": false})).is_err());
        assert!(Expect::Json.check(&serde_json::json!(null)).is_ok());
    }
}
