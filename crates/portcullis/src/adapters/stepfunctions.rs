//! `Workflow` on Step Functions.

use async_trait::async_trait;
use aws_sdk_sfn::Client;
use aws_sdk_sfn::types::ExecutionStatus;

use super::{aws_failure, done_if};
use crate::error::{Error, Result};
use crate::ports::Workflow;
use crate::workflow::{Execution, StateMachine};

/// The ARN of each state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateMachineArns {
    pub provision: String,
    pub deprovision: String,
    pub settings: String,
}

/// Starts, stops and describes executions of the provision, deprovision and settings state machines.
#[derive(Debug, Clone)]
pub struct StepFunctionsWorkflow {
    client: Client,
    arns: StateMachineArns,
}

impl StepFunctionsWorkflow {
    /// Builds the client from the function's AWS configuration (once per cold start).
    pub fn from_config(config: &aws_config::SdkConfig, arns: StateMachineArns) -> Self {
        Self::new(Client::new(config), arns)
    }

    pub fn new(client: Client, arns: StateMachineArns) -> Self {
        StepFunctionsWorkflow { client, arns }
    }

    fn machine_arn(&self, machine: StateMachine) -> &str {
        match machine {
            StateMachine::Provision => &self.arns.provision,
            StateMachine::Deprovision => &self.arns.deprovision,
            StateMachine::Settings => &self.arns.settings,
        }
    }

    fn execution_arn(&self, execution: &Execution) -> Result<String> {
        execution_arn(self.machine_arn(execution.machine), &execution.name)
    }
}

/// The ARN of a standard state machine's execution, which Step Functions makes from the machine's ARN
/// and the execution's name: `arn:…:stateMachine:NAME` → `arn:…:execution:NAME:EXECUTION`.
fn execution_arn(state_machine_arn: &str, execution_name: &str) -> Result<String> {
    let (prefix, machine) = state_machine_arn.rsplit_once(":stateMachine:").ok_or_else(|| {
        Error::config(format!("'{state_machine_arn}' is not a state machine ARN (arn:…:stateMachine:NAME)"))
    })?;
    Ok(format!("{prefix}:execution:{machine}:{execution_name}"))
}

#[async_trait]
impl Workflow for StepFunctionsWorkflow {
    async fn start(&self, execution: &Execution) -> Result<()> {
        let input = serde_json::to_string(&execution.input)
            .map_err(|e| Error::internal_from("cannot write the execution input", e))?;
        let result = self
            .client
            .start_execution()
            .state_machine_arn(self.machine_arn(execution.machine))
            .name(&execution.name)
            .input(input)
            .send()
            .await
            .map_err(|e| aws_failure("Step Functions StartExecution", e));
        // Executions are named so that one already started is the one we want.
        done_if(result, &["ExecutionAlreadyExists"]).map_err(|f| f.into_error())?;
        Ok(())
    }

    async fn stop(&self, execution: &Execution) -> Result<()> {
        // No error or cause: with none, stopping needs no KMS rights on an encrypted execution.
        let result = self
            .client
            .stop_execution()
            .execution_arn(self.execution_arn(execution)?)
            .send()
            .await
            .map_err(|e| aws_failure("Step Functions StopExecution", e));
        // One that never started has nothing to stop.
        match done_if(result, &["ExecutionDoesNotExist"]) {
            Ok(_) => Ok(()),
            // The API reference does not say what stopping an ended execution answers; ended is stopped.
            Err(failure) if !failure.retryable && !self.is_running(execution).await? => Ok(()),
            Err(failure) => Err(failure.into_error()),
        }
    }

    async fn is_running(&self, execution: &Execution) -> Result<bool> {
        let result = self
            .client
            .describe_execution()
            .execution_arn(self.execution_arn(execution)?)
            .send()
            .await
            .map_err(|e| aws_failure("Step Functions DescribeExecution", e));
        let described = done_if(result, &["ExecutionDoesNotExist"]).map_err(|f| f.into_error())?;
        // A redrive that was asked for is about to run again.
        Ok(described.is_some_and(|d| matches!(d.status(), ExecutionStatus::Running | ExecutionStatus::PendingRedrive)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_execution_arn_is_made_from_its_machine_and_name() {
        let machine = "arn:aws-us-gov:states:us-gov-west-1:123456789012:stateMachine:portcullis-deprovision";
        assert_eq!(
            execution_arn(machine, "0193-delete-4").unwrap(),
            "arn:aws-us-gov:states:us-gov-west-1:123456789012:execution:portcullis-deprovision:0193-delete-4"
        );
        let err = execution_arn("arn:aws:states:us-east-1:123456789012:activity:x", "0193").unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::Config);
    }
}
