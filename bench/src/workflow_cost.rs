//! What one provisioning run costs in Step Functions state transitions and Lambda invocations: walked
//! from the real state machine (statemachine/provision.asl.json), with the real poll logic
//! (`PollPolicy`) under the production timing (infra/template.yaml's parameter defaults).

use portcullis::domain::PollPolicy;
use serde::Serialize;
use serde_json::{Map, Value};

/// A state machine definition, as deployed.
pub struct Machine {
    start: String,
    states: Map<String, Value>,
}

/// The path of states one run passes through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path(pub Vec<String>);

impl Machine {
    pub fn from_json(definition: &str) -> Result<Machine, String> {
        let value: Value = serde_json::from_str(definition).map_err(|e| format!("the ASL is not JSON: {e}"))?;
        let start = value["StartAt"].as_str().ok_or("the ASL names no StartAt")?.to_string();
        let states = value["States"].as_object().ok_or("the ASL has no States")?.clone();
        Ok(Machine { start, states })
    }

    fn state(&self, name: &str) -> Result<&Value, String> {
        self.states.get(name).ok_or_else(|| format!("the ASL has no state {name}"))
    }

    fn kind(&self, name: &str) -> Result<&str, String> {
        self.state(name)?["Type"].as_str().ok_or_else(|| format!("state {name} has no Type"))
    }

    /// A Choice's possible next states: its rules' and its default.
    fn branches(&self, name: &str) -> Result<Vec<String>, String> {
        let state = self.state(name)?;
        let rules = state["Choices"].as_array().into_iter().flatten().filter_map(|rule| rule["Next"].as_str());
        Ok(rules.chain(state["Default"].as_str()).map(str::to_string).collect())
    }

    /// The happy path: the run in which every check finds its condition met at once, so no Wait state
    /// is entered. At each Choice it takes the one branch that does not go to a Wait state.
    pub fn happy_path(&self) -> Result<Path, String> {
        let mut path = Vec::new();
        let mut current = Some(self.start.clone());
        while let Some(name) = current {
            if path.contains(&name) {
                return Err(format!("the happy path loops at {name}"));
            }
            let state = self.state(&name)?;
            current = match self.kind(&name)? {
                "Choice" => {
                    let mut onward = Vec::new();
                    for branch in self.branches(&name)? {
                        if self.kind(&branch)? != "Wait" {
                            onward.push(branch);
                        }
                    }
                    match onward.as_slice() {
                        [one] => Some(one.clone()),
                        _ => return Err(format!("choice {name} has no single way on without waiting")),
                    }
                }
                "Fail" => return Err(format!("the happy path reaches the Fail state {name}")),
                _ if state["End"] == true => None,
                "Succeed" => None,
                _ => Some(state["Next"].as_str().ok_or_else(|| format!("state {name} has no Next"))?.to_string()),
            };
            path.push(name);
        }
        Ok(Path(path))
    }

    /// One more turn of the wait loop around the Wait state `wait`: the states entered from it until
    /// the loop comes back to it (the Choice taking the branch back).
    pub fn loop_turn(&self, wait: &str) -> Result<Path, String> {
        if self.kind(wait)? != "Wait" {
            return Err(format!("{wait} is not a Wait state"));
        }
        let mut turn = vec![wait.to_string()];
        let mut current = self.state(wait)?["Next"].as_str().ok_or("the Wait state has no Next")?.to_string();
        while current != wait {
            if turn.contains(&current) || turn.len() > self.states.len() {
                return Err(format!("the loop around {wait} does not come back to it"));
            }
            let next = match self.kind(&current)? {
                "Choice" => self
                    .branches(&current)?
                    .into_iter()
                    .find(|b| b == wait)
                    .ok_or_else(|| format!("choice {current} does not lead back to {wait}"))?,
                _ => self.state(&current)?["Next"]
                    .as_str()
                    .ok_or_else(|| format!("state {current} has no Next"))?
                    .to_string(),
            };
            turn.push(current);
            current = next;
        }
        Ok(Path(turn))
    }

    /// The Wait state of the loop around the Task that runs `step`.
    pub fn wait_around(&self, step: &str) -> Result<String, String> {
        self.states
            .iter()
            .filter(|(_, state)| state["Type"] == "Wait")
            .map(|(name, _)| name)
            .find(|name| {
                self.loop_turn(name)
                    .is_ok_and(|turn| turn.0.iter().any(|s| self.states[s]["Parameters"]["step"] == step))
            })
            .cloned()
            .ok_or_else(|| format!("no wait loop runs the step {step}"))
    }

    /// How many of `path`'s states are Tasks: each is one Lambda invocation.
    pub fn tasks(&self, path: &Path) -> usize {
        path.0.iter().filter(|name| self.kind(name) == Ok("Task")).count()
    }
}

/// The production timing of the certificate wait loop: infra/template.yaml's parameter defaults.
pub fn certificate_policy(template_yaml: &str) -> Result<PollPolicy, String> {
    let template: Value =
        serde_norway::from_str(template_yaml).map_err(|e| format!("infra/template.yaml does not read: {e}"))?;
    let default = |parameter: &str| {
        let value = &template["Parameters"][parameter]["Default"];
        value
            .as_u64()
            .or_else(|| value.as_str().and_then(|v| v.parse().ok()))
            .ok_or_else(|| format!("infra/template.yaml: {parameter} has no numeric Default"))
    };
    Ok(PollPolicy {
        poll_seconds: default("CertificatePollSeconds")?,
        deadline_seconds: default("CertificateDeadlineSeconds")?,
        max_wait_seconds: default("CertificateMaxWaitSeconds")?,
    })
}

/// One provisioning run whose certificate takes `validation_seconds` to validate (the environment is
/// healthy at its first check).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Scenario {
    pub validation: String,
    pub validation_seconds: u64,
    /// How often the certificate is checked (`checkCertificate` invocations).
    pub certificate_polls: u64,
    pub lambda_invocations: u64,
    pub state_transitions: u64,
}

/// The workflow's cost, side by side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowCost {
    /// States entered on the happy path, no poll repeated.
    pub happy_path_transitions: u64,
    pub happy_path_invocations: u64,
    /// States one more certificate poll adds.
    pub transitions_per_poll: u64,
    pub certificate_policy: PollPolicy,
    pub scenarios: Vec<Scenario>,
}

/// The validation times the issue asks about: 30 minutes, 2 hours, 72 hours (ACM's own limit).
pub const VALIDATIONS: [(&str, u64); 3] = [("30 min", 30 * 60), ("2 h", 2 * 3600), ("72 h", 72 * 3600)];

impl WorkflowCost {
    pub fn of(machine: &Machine, policy: PollPolicy) -> Result<WorkflowCost, String> {
        let happy = machine.happy_path()?;
        let turn = machine.loop_turn(&machine.wait_around("checkCertificate")?)?;
        let happy_tasks = machine.tasks(&happy) as u64;
        let turn_tasks = machine.tasks(&turn) as u64;
        let (happy_len, turn_len) = (happy.0.len() as u64, turn.0.len() as u64);
        let scenarios = VALIDATIONS
            .iter()
            .map(|&(validation, seconds)| {
                let polls = policy
                    .checks_until_ready(seconds)
                    .ok_or_else(|| format!("a {validation} validation passes the certificate deadline ({policy:?})"))?;
                Ok(Scenario {
                    validation: validation.to_string(),
                    validation_seconds: seconds,
                    certificate_polls: polls,
                    lambda_invocations: happy_tasks + (polls - 1) * turn_tasks,
                    state_transitions: happy_len + (polls - 1) * turn_len,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(WorkflowCost {
            happy_path_transitions: happy_len,
            happy_path_invocations: happy_tasks,
            transitions_per_poll: turn_len,
            certificate_policy: policy,
            scenarios,
        })
    }
}

/// The happy-path transitions of a run the emulator executed: the states it entered, less the turns
/// its wait loops took (each entry of a Wait state is one more turn of that loop).
pub fn executed_happy_path(machine: &Machine, entered: &[String]) -> Result<u64, String> {
    let mut transitions = entered.len() as u64;
    for name in entered {
        if machine.kind(name)? == "Wait" {
            transitions = transitions.saturating_sub(machine.loop_turn(name)?.0.len() as u64);
        }
    }
    Ok(transitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROVISION: &str = include_str!("../../statemachine/provision.asl.json");
    const TEMPLATE: &str = include_str!("../../infra/template.yaml");

    fn machine() -> Machine {
        Machine::from_json(PROVISION).unwrap()
    }

    #[test]
    fn the_happy_path_skips_every_wait_and_ends_at_activate() {
        let happy = machine().happy_path().unwrap();
        assert_eq!(happy.0.first().map(String::as_str), Some("RequestCertificate"));
        assert_eq!(happy.0.last().map(String::as_str), Some("Activate"));
        assert!(happy.0.iter().all(|s| !s.starts_with("WaitFor")), "{happy:?}");
        assert!(happy.0.iter().any(|s| s == "CheckCertificate") && happy.0.iter().any(|s| s == "CheckEnvironment"));
    }

    #[test]
    fn one_poll_is_the_wait_the_check_and_the_choice() {
        let m = machine();
        let wait = m.wait_around("checkCertificate").unwrap();
        let turn = m.loop_turn(&wait).unwrap();
        assert_eq!(turn.0, vec!["WaitForCertificate", "CheckCertificate", "CertificateReady?"]);
        assert_eq!(m.tasks(&turn), 1);
    }

    #[test]
    fn a_run_that_polled_counts_as_its_happy_path_once_the_turns_are_taken_off() {
        let m = machine();
        let mut entered = m.happy_path().unwrap().0;
        let at = entered.iter().position(|s| s == "CertificateReady?").unwrap();
        let turn = ["WaitForCertificate", "CheckCertificate", "CertificateReady?"].map(str::to_string);
        entered.splice(at + 1..at + 1, turn.iter().chain(turn.iter()).cloned());
        assert_eq!(executed_happy_path(&m, &entered).unwrap(), m.happy_path().unwrap().0.len() as u64);
    }

    #[test]
    fn the_cost_of_a_slow_validation_grows_by_one_turn_per_poll() {
        let m = machine();
        let policy = certificate_policy(TEMPLATE).unwrap();
        let cost = WorkflowCost::of(&m, policy).unwrap();
        for scenario in &cost.scenarios {
            let extra = scenario.certificate_polls - 1;
            assert_eq!(scenario.state_transitions, cost.happy_path_transitions + extra * cost.transitions_per_poll);
            assert_eq!(scenario.lambda_invocations, cost.happy_path_invocations + extra);
        }
        let polls: Vec<u64> = cost.scenarios.iter().map(|s| s.certificate_polls).collect();
        assert!(polls.windows(2).all(|w| w[0] < w[1]), "{polls:?}");
    }

    #[test]
    fn a_machine_whose_choice_cannot_leave_its_loop_is_refused() {
        let stuck = r#"{"StartAt":"C","States":{
            "C":{"Type":"Choice","Choices":[{"Variable":"$.x","BooleanEquals":true,"Next":"W"}],"Default":"W"},
            "W":{"Type":"Wait","Seconds":1,"Next":"C"}}}"#;
        assert!(Machine::from_json(stuck).unwrap().happy_path().unwrap_err().contains("no single way on"));
    }
}
