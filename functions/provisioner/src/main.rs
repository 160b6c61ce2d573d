//! provisioner: the task steps of the provision and deprovision state machines, chosen by the event's
//! `step`, and the scheduled jobs: the drift check (`{"checkDrift": …}`) and the invitation reminder
//! (`{"resendInvitations": {}}`) and the end of expired access (`{"endExpiredAccess": {}}`). IAM: the table, ACM, ELBv2, Cognito user pools (and their invitations),
//! Elastic Beanstalk (read), Route 53 (the tenants' hosted zones).

use std::sync::Arc;

use portcullis::adapters::{
    AcmCertificates, BeanstalkEnvironments, CognitoAppUsers, CognitoUserPools, DynamoStore, ElbLoadBalancer,
    Route53Zone, load_aws_config,
};
use portcullis::config::table_name;
use portcullis::invitations::Resender;
use portcullis::lambda::{ScheduledJobs, serve_steps};
use portcullis::retry::Backoff;
use portcullis::workflow::{AccessExpiry, DriftCheck, InvitationReminder, Provisioner};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    portcullis::telemetry::init();
    let aws = load_aws_config("portcullis-provisioner").await?;
    let store = Arc::new(DynamoStore::from_config(&aws, table_name()?));
    let load_balancer = Arc::new(ElbLoadBalancer::from_config(&aws));
    let user_pools = Arc::new(CognitoUserPools::from_config(&aws));
    let certificates = Arc::new(AcmCertificates::from_config(&aws));
    let drift = DriftCheck {
        apps: store.clone(),
        history: store.clone(),
        tenants: store.clone(),
        certificates: certificates.clone(),
        load_balancer: load_balancer.clone(),
        rules: load_balancer.clone(),
        logins: user_pools.clone(),
        user_pools: user_pools.clone(),
    };
    let app_users = Arc::new(CognitoAppUsers::from_config(&aws));
    let reminder = InvitationReminder {
        apps: store.clone(),
        tenants: store.clone(),
        resender: Resender {
            users: app_users.clone(),
            invitations: store.clone(),
            history: store.clone(),
            backoff: Backoff::default(),
        },
    };
    let access_expiry = AccessExpiry {
        apps: store.clone(),
        tenants: store.clone(),
        invitations: store.clone(),
        users: app_users,
        history: store.clone(),
        backoff: Backoff::default(),
    };
    let provisioner = Provisioner {
        apps: store.clone(),
        history: store.clone(),
        priorities: store.clone(),
        tenants: store.clone(),
        record_claims: store.clone(),
        invitations: store,
        certificates,
        load_balancer,
        environments: Arc::new(BeanstalkEnvironments::from_config(&aws)),
        user_pools,
        dns: Arc::new(Route53Zone::from_config(&aws)),
    };
    serve_steps(Arc::new(provisioner), Arc::new(ScheduledJobs { drift, reminder, access_expiry })).await
}
