//! Where an app's target is reached: the HTTPS listener and target group, given for an ALB target or
//! discovered from an Elastic Beanstalk environment's own load balancer. Shared by the provisioning
//! and the preflight, so both look in the same place.

use crate::domain::ListenerProtocol;
use crate::error::{Error, Result};
use crate::ports::{Environments, LoadBalancer};

/// The listener the app's rule goes on and the target group it forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub listener_arn: String,
    pub target_group_arn: String,
}

/// The environment's HTTPS listener on port 443 and its target group; `Invalid` naming what the
/// environment lacks.
pub async fn beanstalk_endpoint(
    environments: &dyn Environments,
    load_balancer: &dyn LoadBalancer,
    environment_name: &str,
) -> Result<Endpoint> {
    let invalid = |what: &str| Error::Invalid(format!("environment {environment_name} {what}"));
    let balancer =
        environments.load_balancer(environment_name).await?.ok_or_else(|| invalid("has no load balancer"))?;
    let listener_arn = load_balancer
        .https_listener(&balancer)
        .await?
        .ok_or_else(|| invalid("has no HTTPS listener on port 443; add one with a certificate"))?;
    let target_group_arn = load_balancer
        .default_target_group(&listener_arn, &balancer)
        .await?
        .ok_or_else(|| invalid("has no target group"))?;
    Ok(Endpoint { listener_arn, target_group_arn })
}

/// Why the listener cannot carry the login: it does not exist, or it is not HTTPS.
pub fn listener_problem(listener_arn: &str, protocol: Option<&ListenerProtocol>) -> Option<String> {
    match protocol {
        Some(ListenerProtocol::Https) => None,
        Some(other) => Some(format!("listener {listener_arn} is {other}, not HTTPS")),
        None => Some(format!("listener {listener_arn} does not exist")),
    }
}

/// Why an Elastic Beanstalk target cannot be used: no environment by that name.
pub fn no_environment(environment_name: &str) -> String {
    format!("no Elastic Beanstalk environment '{environment_name}'")
}
