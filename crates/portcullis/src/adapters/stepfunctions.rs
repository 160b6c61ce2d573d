//! `Workflow` on Step Functions.

use async_trait::async_trait;
use aws_sdk_sfn::Client;

use super::{aws_failure, done_if};
use crate::error::{Error, Result};
use crate::ports::Workflow;
use crate::workflow::{Execution, StateMachine};

/// Starts the provision and deprovision state machines.
#[derive(Debug, Clone)]
pub struct StepFunctionsWorkflow {
    client: Client,
    provision_arn: String,
    deprovision_arn: String,
}

impl StepFunctionsWorkflow {
    /// Builds the client from the function's AWS configuration (once per cold start).
    pub fn from_config(config: &aws_config::SdkConfig, provision_arn: String, deprovision_arn: String) -> Self {
        Self::new(Client::new(config), provision_arn, deprovision_arn)
    }

    pub fn new(client: Client, provision_arn: String, deprovision_arn: String) -> Self {
        StepFunctionsWorkflow { client, provision_arn, deprovision_arn }
    }
}

#[async_trait]
impl Workflow for StepFunctionsWorkflow {
    async fn start(&self, execution: &Execution) -> Result<()> {
        let machine = match execution.machine {
            StateMachine::Provision => &self.provision_arn,
            StateMachine::Deprovision => &self.deprovision_arn,
        };
        let input = serde_json::to_string(&execution.input)
            .map_err(|e| Error::internal_from("cannot write the execution input", e))?;
        let result = self
            .client
            .start_execution()
            .state_machine_arn(machine)
            .name(&execution.name)
            .input(input)
            .send()
            .await
            .map_err(|e| aws_failure("Step Functions StartExecution", e));
        // Executions are named so that one already started is the one we want.
        done_if(result, &["ExecutionAlreadyExists"]).map_err(|f| f.into_error())?;
        Ok(())
    }
}
