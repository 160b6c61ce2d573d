//! `Environments` on Elastic Beanstalk.

use async_trait::async_trait;
use aws_sdk_elasticbeanstalk::Client;

use super::aws_failure;
use crate::error::Result;
use crate::ports::{EnvironmentState, Environments};

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
            status: env.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
            health: env.health().map(|h| h.as_str().to_string()).unwrap_or_default(),
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
