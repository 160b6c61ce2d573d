//! The contract between the state machines (`statemachine/*.asl.json`) and Rust, in one place: what an
//! execution starts with and how it is named (written by the API), and what each task state sends the
//! provisioner and gets back. A unit test below reads both state machines and fails on any step,
//! error name or path that these types do not know.

use serde::{Deserialize, Serialize};

use crate::config::WorkflowTiming;
use crate::domain::{App, Poll};

/// Which state machine an execution runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateMachine {
    Provision,
    Deprovision,
    /// Applying a change of an ACTIVE app's settings (`PATCH /apps/{id}`).
    Settings,
}

/// What every execution starts with: which app, and how its wait loops poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionInput {
    pub tenant_id: String,
    pub app_id: String,
    pub timing: WorkflowTiming,
}

/// An execution to start: the machine, its name and its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    pub machine: StateMachine,
    /// Unique per machine among executions Step Functions remembers: a repeated start is refused, so a
    /// retried API call cannot start the same work twice.
    pub name: String,
    pub input: ExecutionInput,
}

impl Execution {
    /// Provisioning an app: named after the app, so it can be started once.
    pub fn provision(app: &App, timing: WorkflowTiming) -> Self {
        Execution { machine: StateMachine::Provision, name: app.id.clone(), input: Self::input(app, timing) }
    }

    /// Whether the execution named so is the app's provisioning (not one of its deletions).
    pub fn is_provisioning(execution_name: &str, app: &App) -> bool {
        execution_name == app.id
    }

    /// Deprovisioning an app: named after the app and the version it had when this deletion began,
    /// which is new with every delete attempt, so deleting again after a failed or stuck delete starts
    /// afresh (Step Functions refuses to reuse a name for 90 days) while a repeat of the same attempt is
    /// still harmless; and the name stays the same while the workflow writes the app, so a later delete
    /// can ask whether it still runs.
    pub fn deprovision(app: &App, timing: WorkflowTiming) -> Self {
        Execution {
            machine: StateMachine::Deprovision,
            name: Self::deletion_name(app),
            input: Self::input(app, timing),
        }
    }

    /// Whether the execution named so is the app's current deletion attempt.
    pub fn is_current_deletion(execution_name: &str, app: &App) -> bool {
        execution_name == Self::deletion_name(app)
    }

    /// Applying the change of settings the app records: named after the app and the version it had
    /// when the change was asked for, new with every change.
    pub fn change_settings(app: &App, timing: WorkflowTiming) -> Self {
        let name = format!("{}-settings-{}", app.id, app.version);
        Execution { machine: StateMachine::Settings, name, input: Self::input(app, timing) }
    }

    fn deletion_name(app: &App) -> String {
        // A deletion begun before `deletion_version` was recorded was named after the version then.
        let attempt = app.deletion_version.unwrap_or(app.version);
        format!("{}-delete-{attempt}", app.id)
    }

    fn input(app: &App, timing: WorkflowTiming) -> ExecutionInput {
        ExecutionInput { tenant_id: app.tenant_id.clone(), app_id: app.id.clone(), timing }
    }
}

/// A run of either state machine that ended without succeeding, as the platform reports it once it
/// has ended (its name, how it ended, the input it started with, and the error and cause if any).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunEnded {
    pub name: String,
    /// FAILED, TIMED_OUT or ABORTED.
    pub status: String,
    /// The execution input, as JSON text.
    pub input: String,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub cause: Option<String>,
}

impl RunEnded {
    /// The app the run worked on.
    pub fn app(&self) -> Result<AppRef, serde_json::Error> {
        let input: ExecutionInput = serde_json::from_str(&self.input)?;
        Ok(AppRef { tenant_id: input.tenant_id, app_id: input.app_id, execution: Some(self.name.clone()) })
    }

    /// What the run failed with, worded like a caught error; a run stopped by hand has none of its own.
    pub fn caught(&self) -> CaughtError {
        let error = self.error.clone().unwrap_or_else(|| format!("Workflow{}", camel(&self.status)));
        let ended = format!("the workflow run ended {} outside its error handling", self.status);
        let message = match self.cause.as_deref().map(readable_cause).filter(|c| !c.is_empty()) {
            Some(cause) => format!("{ended}: {cause}"),
            None => ended,
        };
        CaughtError { error, cause: Some(message) }
    }
}

/// TIMED_OUT → TimedOut.
fn camel(status: &str) -> String {
    status
        .split('_')
        .map(|word| {
            let lower = word.to_lowercase();
            let mut chars = lower.chars();
            chars.next().map(|c| c.to_uppercase().chain(chars).collect::<String>()).unwrap_or_default()
        })
        .collect()
}

/// The app a task works on, and the execution it runs in (for logs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRef {
    pub tenant_id: String,
    pub app_id: String,
    /// The execution's name (`$$.Execution.Name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
}

/// A wait loop's check: the app and the loop's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollingInput {
    #[serde(flatten)]
    pub app: AppRef,
    pub poll: Poll,
}

/// What the Catch put in the state, for `markFailed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureReport {
    #[serde(flatten)]
    pub app: AppRef,
    /// What failed.
    #[serde(default)]
    pub error: Option<CaughtError>,
    /// How compensation ended: the teardown's output, or what it failed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teardown: Option<serde_json::Value>,
}

impl FailureReport {
    /// The compensation's failure, if it failed (its success output is not a caught error).
    pub fn teardown_error(&self) -> Option<CaughtError> {
        self.teardown.clone().and_then(|t| serde_json::from_value(t).ok())
    }
}

/// What Step Functions put in `$.error` when a Catch fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaughtError {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: Option<String>,
}

impl CaughtError {
    /// The human message: a Lambda error's `errorMessage` when the cause is one, else the cause itself.
    pub fn message(&self) -> String {
        readable_cause(self.cause.as_deref().unwrap_or_default())
    }
}

/// A Lambda error's `errorMessage` when the cause is one, else the cause itself.
fn readable_cause(cause: &str) -> String {
    serde_json::from_str::<serde_json::Value>(cause)
        .ok()
        .and_then(|v| v.get("errorMessage").and_then(|m| m.as_str()).map(str::to_string))
        .unwrap_or_else(|| cause.to_string())
}

/// A task's input, as the state's `Parameters` build it; `step` says which task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "camelCase")]
pub enum StepInput {
    RequestCertificate(AppRef),
    PublishValidationRecord(AppRef),
    CheckCertificate(PollingInput),
    CheckEnvironment(PollingInput),
    CreateAuth(AppRef),
    WireListener(AppRef),
    VerifyProtection(AppRef),
    PublishDnsAlias(AppRef),
    Activate(AppRef),
    Teardown(AppRef),
    MarkFailed(FailureReport),
    MarkDeleted(AppRef),
    ApplySettings(AppRef),
    SettingsFailed(FailureReport),
}

/// Which task, without its input: for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepName {
    RequestCertificate,
    PublishValidationRecord,
    CheckCertificate,
    CheckEnvironment,
    CreateAuth,
    WireListener,
    VerifyProtection,
    PublishDnsAlias,
    Activate,
    Teardown,
    MarkFailed,
    MarkDeleted,
    ApplySettings,
    SettingsFailed,
}

impl StepName {
    /// Every step, for checking the state machines against.
    pub const ALL: [StepName; 14] = [
        StepName::RequestCertificate,
        StepName::PublishValidationRecord,
        StepName::CheckCertificate,
        StepName::CheckEnvironment,
        StepName::CreateAuth,
        StepName::WireListener,
        StepName::VerifyProtection,
        StepName::PublishDnsAlias,
        StepName::Activate,
        StepName::Teardown,
        StepName::MarkFailed,
        StepName::MarkDeleted,
        StepName::ApplySettings,
        StepName::SettingsFailed,
    ];

    /// The steps that build the app, which only a PROVISIONING app may run.
    pub fn provisions(self) -> bool {
        matches!(
            self,
            StepName::RequestCertificate
                | StepName::PublishValidationRecord
                | StepName::CheckCertificate
                | StepName::CheckEnvironment
                | StepName::CreateAuth
                | StepName::WireListener
                | StepName::VerifyProtection
                | StepName::PublishDnsAlias
                | StepName::Activate
        )
    }

    /// The `step` value of the task input.
    pub fn as_str(self) -> &'static str {
        match self {
            StepName::RequestCertificate => "requestCertificate",
            StepName::PublishValidationRecord => "publishValidationRecord",
            StepName::CheckCertificate => "checkCertificate",
            StepName::CheckEnvironment => "checkEnvironment",
            StepName::CreateAuth => "createAuth",
            StepName::WireListener => "wireListener",
            StepName::VerifyProtection => "verifyProtection",
            StepName::PublishDnsAlias => "publishDnsAlias",
            StepName::Activate => "activate",
            StepName::Teardown => "teardown",
            StepName::MarkFailed => "markFailed",
            StepName::MarkDeleted => "markDeleted",
            StepName::ApplySettings => "applySettings",
            StepName::SettingsFailed => "settingsFailed",
        }
    }
}

impl StepInput {
    /// Which task this is.
    pub fn name(&self) -> StepName {
        match self {
            StepInput::RequestCertificate(_) => StepName::RequestCertificate,
            StepInput::PublishValidationRecord(_) => StepName::PublishValidationRecord,
            StepInput::CheckCertificate(_) => StepName::CheckCertificate,
            StepInput::CheckEnvironment(_) => StepName::CheckEnvironment,
            StepInput::CreateAuth(_) => StepName::CreateAuth,
            StepInput::WireListener(_) => StepName::WireListener,
            StepInput::VerifyProtection(_) => StepName::VerifyProtection,
            StepInput::PublishDnsAlias(_) => StepName::PublishDnsAlias,
            StepInput::Activate(_) => StepName::Activate,
            StepInput::Teardown(_) => StepName::Teardown,
            StepInput::MarkFailed(_) => StepName::MarkFailed,
            StepInput::MarkDeleted(_) => StepName::MarkDeleted,
            StepInput::ApplySettings(_) => StepName::ApplySettings,
            StepInput::SettingsFailed(_) => StepName::SettingsFailed,
        }
    }

    /// The app the task works on.
    pub fn app(&self) -> &AppRef {
        match self {
            StepInput::RequestCertificate(app)
            | StepInput::PublishValidationRecord(app)
            | StepInput::CreateAuth(app)
            | StepInput::WireListener(app)
            | StepInput::VerifyProtection(app)
            | StepInput::PublishDnsAlias(app)
            | StepInput::Activate(app)
            | StepInput::Teardown(app)
            | StepInput::MarkDeleted(app)
            | StepInput::ApplySettings(app) => app,
            StepInput::CheckCertificate(input) | StepInput::CheckEnvironment(input) => &input.app,
            StepInput::MarkFailed(report) | StepInput::SettingsFailed(report) => &report.app,
        }
    }
}

/// What a task returns into the state (`ResultPath`): nothing, or a wait loop's next state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutput {
    /// `{}`.
    Done,
    /// The loop's state after this check.
    Poll(Poll),
}

impl Serialize for StepOutput {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            StepOutput::Done => serde_json::Map::new().serialize(serializer),
            StepOutput::Poll(poll) => poll.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::domain::{AppStatus, PollPolicy};
    use crate::workflow::FailureName;

    const MACHINES: [(&str, &str); 3] = [
        ("provision.asl.json", include_str!("../../../../statemachine/provision.asl.json")),
        ("deprovision.asl.json", include_str!("../../../../statemachine/deprovision.asl.json")),
        ("settings.asl.json", include_str!("../../../../statemachine/settings.asl.json")),
    ];

    fn timing() -> WorkflowTiming {
        let policy = PollPolicy { poll_seconds: 1, deadline_seconds: 60, max_wait_seconds: 2 };
        WorkflowTiming { certificate: policy, environment: policy }
    }

    /// Everything the state can hold, built from the Rust types: the execution input, the wait loop's
    /// state a check returns, and what a Catch puts in `$.error`/`$.teardown`.
    fn state() -> Value {
        let mut state =
            serde_json::to_value(ExecutionInput { tenant_id: "t".into(), app_id: "a".into(), timing: timing() })
                .unwrap();
        let poll = Poll::new(timing().certificate).after_check(false, 100).unwrap();
        state["poll"] = serde_json::to_value(StepOutput::Poll(poll)).unwrap();
        state["error"] =
            serde_json::to_value(CaughtError { error: "Retryable".into(), cause: Some("x".into()) }).unwrap();
        state["teardown"] = serde_json::to_value(StepOutput::Done).unwrap();
        state
    }

    fn context() -> Value {
        json!({"Execution": {"Name": "a", "Id": "arn:execution"}})
    }

    /// Resolves a plain JSONPath (`$.a.b`, `$$.Execution.Name`); None if any part is missing.
    fn resolve<'a>(state: &'a Value, context: &'a Value, path: &str) -> Option<&'a Value> {
        let (root, rest) = match path.strip_prefix("$$") {
            Some(rest) => (context, rest),
            None => (state, path.strip_prefix('$')?),
        };
        rest.split('.').filter(|p| !p.is_empty()).try_fold(root, |v, key| v.get(key))
    }

    fn assert_resolves(machine: &str, state_name: &str, path: &Value) {
        let path = path.as_str().unwrap_or_else(|| panic!("{machine} {state_name}: path {path} is not a string"));
        assert!(
            resolve(&state(), &context(), path).is_some(),
            "{machine} {state_name}: {path} names nothing the Rust side writes or reads"
        );
    }

    /// The payload a Task's `Parameters` build from the state.
    fn payload(machine: &str, name: &str, parameters: &Value) -> Value {
        let (state, context) = (state(), context());
        let mut payload = serde_json::Map::new();
        for (key, value) in parameters.as_object().expect("Parameters is an object") {
            match key.strip_suffix(".$") {
                Some(key) => {
                    let path = value.as_str().unwrap();
                    let found = resolve(&state, &context, path)
                        .unwrap_or_else(|| panic!("{machine} {name}: {key} reads {path}, which nothing writes"));
                    payload.insert(key.to_string(), found.clone());
                }
                None => {
                    payload.insert(key.clone(), value.clone());
                }
            }
        }
        Value::Object(payload)
    }

    #[test]
    fn every_state_machine_speaks_the_rust_contract() {
        let known_errors: Vec<&str> = FailureName::ALL.iter().map(|n| n.as_str()).collect();
        let mut run = std::collections::HashSet::new();
        for (machine, text) in MACHINES {
            let asl: Value = serde_json::from_str(text).unwrap();
            let states = asl["States"].as_object().unwrap();
            let mut tasks = 0;
            for (name, s) in states {
                for path_field in ["InputPath", "SecondsPath"] {
                    if let Some(path) = s.get(path_field) {
                        assert_resolves(machine, name, path);
                    }
                }
                if let Some(path) = s.get("ResultPath").filter(|p| !p.is_null()) {
                    assert_resolves(machine, name, path);
                }
                for choice in s.get("Choices").and_then(Value::as_array).into_iter().flatten() {
                    assert_resolves(machine, name, &choice["Variable"]);
                }
                for handler in ["Retry", "Catch"].iter().filter_map(|h| s.get(*h)).flat_map(|h| h.as_array().unwrap()) {
                    for error in handler["ErrorEquals"].as_array().unwrap() {
                        let error = error.as_str().unwrap();
                        assert!(
                            known_errors.contains(&error)
                                || error.starts_with("States.")
                                || error.starts_with("Lambda.")
                                || error == "Sandbox.Timedout",
                            "{machine} {name}: ErrorEquals {error} is no FailureName"
                        );
                    }
                }
                if s["Type"] != "Task" {
                    continue;
                }
                tasks += 1;
                let sent = payload(machine, name, &s["Parameters"]);
                let input: StepInput = serde_json::from_value(sent.clone())
                    .unwrap_or_else(|e| panic!("{machine} {name}: {sent} is not a StepInput: {e}"));
                run.insert(input.name());
                let read = serde_json::to_value(&input).unwrap();
                for key in sent.as_object().unwrap().keys() {
                    assert!(read.get(key).is_some(), "{machine} {name}: the provisioner ignores '{key}'");
                }
            }
            assert!(tasks >= 2, "{machine} has its task states");
        }
        for step in StepName::ALL {
            assert!(run.contains(&step), "no state machine runs {}", step.as_str());
        }
    }

    /// Lambda's transient service errors, as Step Functions' best practice lists them to retry.
    const LAMBDA_SERVICE_ERRORS: [&str; 5] = [
        "Lambda.ClientExecutionTimeoutException",
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    ];

    /// The errors a retrier of this task catches.
    fn retried(task: &Value) -> Vec<&str> {
        let retriers = task.get("Retry").and_then(Value::as_array).into_iter().flatten();
        retriers.flat_map(|r| r["ErrorEquals"].as_array().unwrap()).map(|e| e.as_str().unwrap()).collect()
    }

    #[test]
    fn every_task_retries_lambdas_transient_errors_and_a_run_that_may_have_half_run() {
        for (machine, text) in MACHINES {
            let asl: Value = serde_json::from_str(text).unwrap();
            for (name, state) in asl["States"].as_object().unwrap().iter().filter(|(_, s)| s["Type"] == "Task") {
                let retried = retried(state);
                for error in LAMBDA_SERVICE_ERRORS {
                    assert!(retried.contains(&error), "{machine} {name} does not retry {error}");
                }
                // Every step is idempotent (docs/architecture.md, "Idempotency and concurrency"): a check
                // changes nothing, and a step that makes something finds what a run that died after AWS
                // made it left (by the app id), so running it again after a timeout or a crash is safe.
                for error in ["States.Timeout", "Sandbox.Timedout", "Lambda.Unknown"] {
                    assert!(retried.contains(&error), "{machine} {name} does not retry {error}");
                }
            }
        }
    }

    /// History events a state writes when it runs once and succeeds (a Lambda task: entered,
    /// scheduled, started, succeeded, exited; the others: entered, exited).
    fn events_of(state: &Value) -> u64 {
        if state["Type"] == "Task" { 5 } else { 2 }
    }

    #[test]
    fn one_turn_of_each_wait_loop_writes_the_events_the_history_budget_counts() {
        let asl: Value = serde_json::from_str(MACHINES[0].1).unwrap();
        let states = asl["States"].as_object().unwrap();
        for check in ["CheckCertificate", "CheckEnvironment"] {
            // Round the loop: the check, its Choice's Default (not done yet), the Wait, back to the check.
            let (mut name, mut events) = (check, 0);
            loop {
                let state = &states[name];
                events += events_of(state);
                name = state.get("Next").or_else(|| state.get("Default")).and_then(Value::as_str).unwrap();
                if name == check {
                    break;
                }
                assert!(events < 100, "{check} is not a loop");
            }
            assert_eq!(events, crate::config::EVENTS_PER_CHECK, "{check}");
        }
    }

    #[test]
    fn the_check_is_meaningful_an_unknown_step_and_a_missing_poll_fail() {
        let unknown = json!({"step": "frobnicate", "tenantId": "t", "appId": "a"});
        assert!(serde_json::from_value::<StepInput>(unknown).is_err());
        let no_poll = json!({"step": "checkCertificate", "tenantId": "t", "appId": "a"});
        assert!(serde_json::from_value::<StepInput>(no_poll).is_err());
        assert!(resolve(&state(), &context(), "$.poll.wait").is_none());
        assert!(resolve(&state(), &context(), "$.poll.waitSeconds").is_some());
    }

    #[test]
    fn reads_a_catch_result() {
        let input: StepInput = serde_json::from_value(json!({
            "step": "markFailed", "tenantId": "t", "appId": "a",
            "error": {"Error": "EnvironmentNotReady", "Cause": "{\"errorType\":\"EnvironmentNotReady\",\"errorMessage\":\"no healthy target\"}"}
        }))
        .unwrap();
        let StepInput::MarkFailed(report) = input else { panic!("markFailed") };
        let error = report.error.clone().unwrap();
        assert_eq!(error.error, "EnvironmentNotReady");
        assert_eq!(error.message(), "no healthy target");
        assert_eq!(report.teardown_error(), None);
        let plain = CaughtError { error: "States.Timeout".into(), cause: Some("timed out".into()) };
        assert_eq!(plain.message(), "timed out");
    }

    #[test]
    fn executions_are_named_in_one_place() {
        let mut app = crate::fakes::app("0193", AppStatus::Deleting);
        app.version = 4;
        let provision = Execution::provision(&app, timing());
        assert_eq!((provision.machine, provision.name.as_str()), (StateMachine::Provision, "0193"));
        let delete = Execution::deprovision(&app, timing());
        assert_eq!((delete.machine, delete.name.as_str()), (StateMachine::Deprovision, "0193-delete-4"));
        // Once recorded, the deletion keeps its name however often the workflow writes the app.
        app.deletion_version = Some(2);
        app.version = 7;
        assert_eq!(Execution::deprovision(&app, timing()).name, "0193-delete-2");
        assert_eq!(
            serde_json::to_value(&delete.input).unwrap(),
            json!({"tenantId": "t", "appId": "0193", "timing": {
                "certificate": {"pollSeconds": 1, "deadlineSeconds": 60, "maxWaitSeconds": 2},
                "environment": {"pollSeconds": 1, "deadlineSeconds": 60, "maxWaitSeconds": 2}}})
        );
    }
}
