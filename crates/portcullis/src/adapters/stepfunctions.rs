//! `Workflow` on Step Functions.

use async_trait::async_trait;
use aws_sdk_sfn::Client;

use super::aws_failure;
use crate::error::Result;
use crate::ports::Workflow;

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

    async fn start(&self, machine: &str, name: String, input: &serde_json::Value) -> Result<()> {
        let result =
            self.client.start_execution().state_machine_arn(machine).name(name).input(input.to_string()).send().await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                let failure = aws_failure("Step Functions StartExecution", e);
                // Executions are named after the app: one already started is the one we want.
                if failure.is("ExecutionAlreadyExists") { Ok(()) } else { Err(failure.into_error()) }
            }
        }
    }
}

#[async_trait]
impl Workflow for StepFunctionsWorkflow {
    async fn start_provisioning(&self, input: &serde_json::Value, app_id: &str) -> Result<()> {
        self.start(&self.provision_arn, app_id.to_string(), input).await
    }

    async fn start_deprovisioning(&self, input: &serde_json::Value, execution_name: &str) -> Result<()> {
        self.start(&self.deprovision_arn, execution_name.to_string(), input).await
    }
}
