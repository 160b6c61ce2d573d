//! `LoadBalancer` on Elastic Load Balancing v2.

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, AuthenticateCognitoActionConditionalBehaviorEnum, AuthenticateCognitoActionConfig,
    Certificate, HostHeaderConditionConfig, ProtocolEnum, RuleCondition, Tag, TargetHealthStateEnum,
};

use super::{APP_ID_TAG, AwsFailure, all_pages, aws_failure, build_error, done_if};
use crate::domain::ListenerProtocol;
use crate::error::{Error, Result};
use crate::ports::{ListenerRule, LoadBalancer, ProtectRule};

/// The ELBv2-backed load balancer port.
#[derive(Debug, Clone)]
pub struct ElbLoadBalancer {
    client: Client,
}

impl ElbLoadBalancer {
    /// Builds the client from the function's AWS configuration (once per cold start).
    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        Self::new(Client::new(config))
    }

    pub fn new(client: Client) -> Self {
        ElbLoadBalancer { client }
    }
}

/// ELB's "not found" and quota codes, translated once.
fn elb_error(failure: AwsFailure) -> Error {
    match failure.code.as_deref() {
        Some("ListenerNotFound" | "TargetGroupNotFound" | "LoadBalancerNotFound") => Error::Invalid(failure.message),
        Some("PriorityInUse") => Error::PriorityInUse(failure.message),
        Some("TooManyRules" | "TooManyCertificates" | "TooManyActions") => Error::QuotaExceeded(failure.message),
        _ => failure.into_error(),
    }
}

#[async_trait]
impl LoadBalancer for ElbLoadBalancer {
    async fn listener_protocol(&self, listener_arn: &str) -> Result<Option<ListenerProtocol>> {
        let result = self.client.describe_listeners().listener_arns(listener_arn).send().await;
        let Some(out) = done_if(result.map_err(|e| aws_failure("ELB DescribeListeners", e)), &["ListenerNotFound"])
            .map_err(elb_error)?
        else {
            return Ok(None);
        };
        Ok(out.listeners().first().map(|l| match l.protocol() {
            Some(ProtocolEnum::Https) => ListenerProtocol::Https,
            Some(ProtocolEnum::Http) => ListenerProtocol::Http,
            other => ListenerProtocol::Other(other.map(|p| p.as_str().to_string()).unwrap_or_default()),
        }))
    }

    async fn https_listener(&self, load_balancer_arn: &str) -> Result<Option<String>> {
        let out = self
            .client
            .describe_listeners()
            .load_balancer_arn(load_balancer_arn)
            .send()
            .await
            .map_err(|e| elb_error(aws_failure("ELB DescribeListeners", e)))?;
        Ok(out
            .listeners()
            .iter()
            .find(|l| l.port() == Some(443) && l.protocol() == Some(&ProtocolEnum::Https))
            .and_then(|l| l.listener_arn().map(str::to_string)))
    }

    async fn default_target_group(&self, listener_arn: &str, load_balancer_arn: &str) -> Result<Option<String>> {
        let listeners = self
            .client
            .describe_listeners()
            .listener_arns(listener_arn)
            .send()
            .await
            .map_err(|e| elb_error(aws_failure("ELB DescribeListeners", e)))?;
        let forwarded = listeners
            .listeners()
            .iter()
            .flat_map(|l| l.default_actions())
            .find_map(|a| a.target_group_arn().map(str::to_string));
        if forwarded.is_some() {
            return Ok(forwarded);
        }
        let groups = self
            .client
            .describe_target_groups()
            .load_balancer_arn(load_balancer_arn)
            .send()
            .await
            .map_err(|e| elb_error(aws_failure("ELB DescribeTargetGroups", e)))?;
        Ok(groups.target_groups().first().and_then(|g| g.target_group_arn().map(str::to_string)))
    }

    async fn has_healthy_target(&self, target_group_arn: &str) -> Result<bool> {
        let out = self
            .client
            .describe_target_health()
            .target_group_arn(target_group_arn)
            .send()
            .await
            .map_err(|e| elb_error(aws_failure("ELB DescribeTargetHealth", e)))?;
        Ok(out
            .target_health_descriptions()
            .iter()
            .any(|d| d.target_health().and_then(|h| h.state()) == Some(&TargetHealthStateEnum::Healthy)))
    }

    async fn listener_certificates(&self, listener_arn: &str) -> Result<Vec<String>> {
        all_pages(|marker| async move {
            let out = self
                .client
                .describe_listener_certificates()
                .listener_arn(listener_arn)
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| elb_error(aws_failure("ELB DescribeListenerCertificates", e)))?;
            let arns = out.certificates().iter().filter_map(|c| c.certificate_arn().map(str::to_string)).collect();
            Ok((arns, out.next_marker))
        })
        .await
    }

    async fn attach_certificate(&self, listener_arn: &str, certificate_arn: &str) -> Result<()> {
        self.client
            .add_listener_certificates()
            .listener_arn(listener_arn)
            .certificates(Certificate::builder().certificate_arn(certificate_arn).build())
            .send()
            .await
            .map_err(|e| elb_error(aws_failure("ELB AddListenerCertificates", e)))?;
        Ok(())
    }

    async fn detach_certificate(&self, listener_arn: &str, certificate_arn: &str) -> Result<()> {
        let result = self
            .client
            .remove_listener_certificates()
            .listener_arn(listener_arn)
            .certificates(Certificate::builder().certificate_arn(certificate_arn).build())
            .send()
            .await
            .map_err(|e| aws_failure("ELB RemoveListenerCertificates", e));
        // Gone already: the listener (and so the attachment) or the certificate.
        done_if(result, &["ListenerNotFound", "CertificateNotFound"]).map_err(elb_error)?;
        Ok(())
    }

    async fn rules(&self, listener_arn: &str) -> Result<Vec<ListenerRule>> {
        all_pages(|marker| async move {
            let out = self
                .client
                .describe_rules()
                .listener_arn(listener_arn)
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| elb_error(aws_failure("ELB DescribeRules", e)))?;
            // The default rule's priority is "default"; it does not parse and is skipped.
            let rules = out.rules().iter().filter_map(|r| {
                Some(ListenerRule {
                    arn: r.rule_arn()?.to_string(),
                    priority: r.priority()?.parse().ok()?,
                    hosts: r
                        .conditions()
                        .iter()
                        .filter(|c| c.field() == Some("host-header"))
                        .flat_map(|c| c.host_header_config().map(|h| h.values().to_vec()).unwrap_or_default())
                        .collect(),
                    cognito_client_id: r
                        .actions()
                        .iter()
                        .find_map(|a| a.authenticate_cognito_config()?.user_pool_client_id().map(str::to_string)),
                })
            });
            Ok((rules.collect(), out.next_marker.clone()))
        })
        .await
    }

    async fn create_rule(&self, rule: &ProtectRule) -> Result<String> {
        let authenticate = Action::builder()
            .r#type(ActionTypeEnum::AuthenticateCognito)
            .order(1)
            .authenticate_cognito_config(
                AuthenticateCognitoActionConfig::builder()
                    .user_pool_arn(&rule.user_pool_arn)
                    .user_pool_client_id(&rule.client_id)
                    .user_pool_domain(&rule.pool_domain_prefix)
                    .session_timeout(i64::from(rule.session_timeout_seconds))
                    .scope("openid email")
                    .on_unauthenticated_request(AuthenticateCognitoActionConditionalBehaviorEnum::Authenticate)
                    .build(),
            )
            .build();
        let forward =
            Action::builder().r#type(ActionTypeEnum::Forward).order(2).target_group_arn(&rule.target_group_arn).build();
        let condition = RuleCondition::builder()
            .field("host-header")
            .host_header_config(HostHeaderConditionConfig::builder().values(&rule.host).build())
            .build();
        let out = self
            .client
            .create_rule()
            .listener_arn(&rule.listener_arn)
            .priority(i32::try_from(rule.priority).map_err(|e| build_error("an ELB rule priority", e))?)
            .conditions(condition)
            .actions(authenticate)
            .actions(forward)
            // Tagged in the request, so IAM can allow the creation only with this tag.
            .tags(Tag::builder().key(APP_ID_TAG).value(&rule.app_id).build())
            .send()
            .await
            .map_err(|e| elb_error(aws_failure("ELB CreateRule", e)))?;
        out.rules()
            .first()
            .and_then(|r| r.rule_arn().map(str::to_string))
            .ok_or_else(|| Error::upstream("ELB CreateRule returned no rule"))
    }

    async fn delete_rule(&self, rule_arn: &str) -> Result<()> {
        let result = self.client.delete_rule().rule_arn(rule_arn).send().await;
        done_if(result.map_err(|e| aws_failure("ELB DeleteRule", e)), &["RuleNotFound"]).map_err(elb_error)?;
        Ok(())
    }
}
