//! `Environments` on Elastic Beanstalk.

use async_trait::async_trait;
use aws_sdk_elasticbeanstalk::Client;
use aws_sdk_elasticbeanstalk::types::{EnvironmentHealth as EbHealth, EnvironmentStatus as EbStatus};

use super::aws_failure;
use crate::domain::{EnvironmentHealth, EnvironmentState, EnvironmentStatus};
use crate::error::Result;
use crate::ports::Environments;

/// The Elastic Beanstalk-backed environment port.
#[derive(Debug, Clone)]
pub struct BeanstalkEnvironments {
    client: Client,
}

impl BeanstalkEnvironments {
    /// Builds the client from the function's AWS configuration (once per cold start).
    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        Self::new(Client::new(config))
    }

    pub fn new(client: Client) -> Self {
        BeanstalkEnvironments { client }
    }
}

#[async_trait]
impl Environments for BeanstalkEnvironments {
    async fn environment(&self, name: &str) -> Result<Option<EnvironmentState>> {
        let out = self
            .client
            .describe_environments()
            .environment_names(name)
            .include_deleted(false)
            .send()
            .await
            .map_err(|e| aws_failure("Elastic Beanstalk DescribeEnvironments", e).into_error())?;
        Ok(out.environments().first().map(|env| EnvironmentState {
            status: match env.status() {
                Some(EbStatus::Launching) => EnvironmentStatus::Launching,
                Some(EbStatus::Updating) => EnvironmentStatus::Updating,
                Some(EbStatus::Ready) => EnvironmentStatus::Ready,
                Some(EbStatus::Terminating) => EnvironmentStatus::Terminating,
                Some(EbStatus::Terminated) => EnvironmentStatus::Terminated,
                other => EnvironmentStatus::Other(other.map(|s| s.as_str().to_string()).unwrap_or_default()),
            },
            health: match env.health() {
                Some(EbHealth::Green) => EnvironmentHealth::Green,
                Some(EbHealth::Yellow) => EnvironmentHealth::Yellow,
                Some(EbHealth::Red) => EnvironmentHealth::Red,
                Some(EbHealth::Grey) => EnvironmentHealth::Grey,
                other => EnvironmentHealth::Other(other.map(|h| h.as_str().to_string()).unwrap_or_default()),
            },
        }))
    }

    async fn load_balancer(&self, name: &str) -> Result<Option<String>> {
        let out = self
            .client
            .describe_environment_resources()
            .environment_name(name)
            .send()
            .await
            .map_err(|e| aws_failure("Elastic Beanstalk DescribeEnvironmentResources", e).into_error())?;
        Ok(out
            .environment_resources()
            .and_then(|r| r.load_balancers().first())
            .and_then(|lb| lb.name().map(str::to_string)))
    }
}
