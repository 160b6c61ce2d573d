//! apps-api: `/apps` behind API Gateway. Wires the adapters once per cold start and serves.
//! IAM: the table, starting the two state machines, and reading load balancers and Elastic Beanstalk
//! environments for the preflight.

use std::sync::Arc;

use portcullis::adapters::{
    BeanstalkEnvironments, DynamoStore, ElbLoadBalancer, JwksTokenVerifier, StepFunctionsWorkflow, load_aws_config,
};
use portcullis::api::{AppsApi, Idempotent};
use portcullis::config::{TokenConfig, WorkflowTiming, required, table_name};
use portcullis::lambda::serve_api;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    portcullis::telemetry::init();
    let aws = load_aws_config("portcullis-apps-api").await?;
    let store = Arc::new(DynamoStore::from_config(&aws, table_name()?));
    let verifier = Arc::new(JwksTokenVerifier::new(TokenConfig::from_env()?).with_service_tokens(store.clone()));
    let api = AppsApi {
        apps: store.clone(),
        history: store.clone(),
        tenants: store.clone(),
        workflow: Arc::new(StepFunctionsWorkflow::from_config(
            &aws,
            required("PORTCULLIS_PROVISION_STATE_MACHINE_ARN")?,
            required("PORTCULLIS_DEPROVISION_STATE_MACHINE_ARN")?,
        )),
        verifier: verifier.clone(),
        timing: WorkflowTiming::from_env()?,
        load_balancer: Arc::new(ElbLoadBalancer::from_config(&aws)),
        environments: Arc::new(BeanstalkEnvironments::from_config(&aws)),
    };
    serve_api(Arc::new(Idempotent { operations: api, keys: store, verifier })).await
}
