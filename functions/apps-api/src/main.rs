//! apps-api: `/apps` behind API Gateway. Wires the adapters once per cold start and serves.
//! IAM: the table, starting the two state machines, and reading load balancers and Elastic Beanstalk
//! environments for the preflight; and for `POST /apps/{id}/repair`, reading an app's resources and
//! putting back its rule, listener certificate, app client and pool domain.

use std::sync::Arc;

use portcullis::adapters::{
    AcmCertificates, BeanstalkEnvironments, CognitoUserPools, DynamoStore, ElbLoadBalancer, JwksTokenVerifier,
    StateMachineArns, StepFunctionsWorkflow, load_aws_config,
};
use portcullis::api::{AppsApi, Idempotent};
use portcullis::config::{TokenConfig, WorkflowTiming, required, table_name};
use portcullis::lambda::{serve_api, warm_up};
use portcullis::workflow::DriftCheck;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    portcullis::telemetry::init();
    let aws = load_aws_config("portcullis-apps-api").await?;
    let store = Arc::new(DynamoStore::from_config(&aws, table_name()?));
    let verifier = Arc::new(JwksTokenVerifier::new(TokenConfig::from_env()?).with_service_tokens(store.clone()));
    let load_balancer = Arc::new(ElbLoadBalancer::from_config(&aws));
    let user_pools = Arc::new(CognitoUserPools::from_config(&aws));
    let drift = DriftCheck {
        apps: store.clone(),
        history: store.clone(),
        tenants: store.clone(),
        certificates: Arc::new(AcmCertificates::from_config(&aws)),
        load_balancer: load_balancer.clone(),
        rules: load_balancer.clone(),
        logins: user_pools.clone(),
        user_pools,
    };
    let api = AppsApi {
        apps: store.clone(),
        history: store.clone(),
        tenants: store.clone(),
        workflow: Arc::new(StepFunctionsWorkflow::from_config(
            &aws,
            StateMachineArns {
                provision: required("PORTCULLIS_PROVISION_STATE_MACHINE_ARN")?,
                deprovision: required("PORTCULLIS_DEPROVISION_STATE_MACHINE_ARN")?,
                settings: required("PORTCULLIS_SETTINGS_STATE_MACHINE_ARN")?,
            },
        )),
        verifier: verifier.clone(),
        timing: WorkflowTiming::from_env()?,
        load_balancer,
        environments: Arc::new(BeanstalkEnvironments::from_config(&aws)),
        drift: Some(Arc::new(drift)),
    };
    warm_up(&verifier, &store).await;
    serve_api(Arc::new(Idempotent { operations: api, keys: store, verifier })).await
}
