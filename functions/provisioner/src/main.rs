//! provisioner: the task steps of the provision and deprovision state machines, dispatched by the
//! event's `step`. IAM: the table, ACM, ELBv2, Cognito user pools, Elastic Beanstalk (read).

use std::sync::Arc;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use portcullis::adapters::{
    AcmCertificates, BeanstalkEnvironments, CognitoUserPools, DynamoStore, ElbLoadBalancer, load_aws_config,
};
use portcullis::config::table_name;
use portcullis::workflow::{Provisioner, StepError, StepRequest};
use serde_json::Value;

/// Runs one step. The Lambda error's `errorType` is the step error's stable name, which ASL
/// `Retry`/`Catch` match on.
async fn handle(provisioner: &Provisioner, event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    let request: StepRequest = serde_json::from_value(event.payload).map_err(|e| Diagnostic {
        error_type: "InvalidStepRequest".into(),
        error_message: format!("the task input is not a step request: {e}"),
    })?;
    let (step, app_id) = (request.step, request.app_id.clone());
    provisioner.run(request).await.map_err(|StepError { name, message }| {
        tracing::warn!(?step, %app_id, error = name, %message, "step failed");
        Diagnostic { error_type: name.into(), error_message: message }
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    portcullis::telemetry::init();
    let aws = load_aws_config().await;
    let provisioner = Provisioner {
        store: Arc::new(DynamoStore::from_config(&aws, table_name()?)),
        certificates: Arc::new(AcmCertificates::from_config(&aws)),
        load_balancer: Arc::new(ElbLoadBalancer::from_config(&aws)),
        environments: Arc::new(BeanstalkEnvironments::from_config(&aws)),
        user_pools: Arc::new(CognitoUserPools::from_config(&aws)),
    };
    let provisioner = &provisioner;
    lambda_runtime::run(service_fn(move |event| handle(provisioner, event))).await
}
