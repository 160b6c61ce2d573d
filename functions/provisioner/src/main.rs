//! provisioner: the task steps of the provision and deprovision state machines, chosen by the event's
//! `step`. IAM: the table, ACM, ELBv2, Cognito user pools, Elastic Beanstalk (read), Route 53 (the
//! tenants' hosted zones).

use std::sync::Arc;

use portcullis::adapters::{
    AcmCertificates, BeanstalkEnvironments, CognitoUserPools, DynamoStore, ElbLoadBalancer, Route53Zone,
    load_aws_config,
};
use portcullis::config::table_name;
use portcullis::lambda::serve_steps;
use portcullis::workflow::Provisioner;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    portcullis::telemetry::init();
    let aws = load_aws_config("portcullis-provisioner").await?;
    let store = Arc::new(DynamoStore::from_config(&aws, table_name()?));
    let provisioner = Provisioner {
        apps: store.clone(),
        history: store.clone(),
        priorities: store.clone(),
        tenants: store.clone(),
        record_claims: store.clone(),
        invitations: store,
        certificates: Arc::new(AcmCertificates::from_config(&aws)),
        load_balancer: Arc::new(ElbLoadBalancer::from_config(&aws)),
        environments: Arc::new(BeanstalkEnvironments::from_config(&aws)),
        user_pools: Arc::new(CognitoUserPools::from_config(&aws)),
        dns: Arc::new(Route53Zone::from_config(&aws)),
    };
    serve_steps(Arc::new(provisioner)).await
}
