//! `LoadBalancer` on Elastic Load Balancing v2.

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, AuthenticateCognitoActionConditionalBehaviorEnum, AuthenticateCognitoActionConfig,
    Certificate, FixedResponseActionConfig, HostHeaderConditionConfig, Listener, ProtocolEnum, RedirectActionConfig,
    RedirectActionStatusCodeEnum, Rule, RuleCondition, Tag, TargetHealthStateEnum,
};

use super::{APP_ID_TAG, AwsFailure, all_pages, aws_failure, build_error, done_if};
use crate::domain::{
    self, AliasTarget, ListenerDefault, ListenerProtocol, ListenerView, LoadBalancerView, LoginSettings, RuleAction,
    RuleSettings, RuleView,
};
use crate::error::{Error, Result};
use crate::ports::{ListenerRule, LoadBalancer, ProtectRule, RuleInspection};

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

/// A protecting rule's host-header condition and its two actions: sign in with the app's pool, then
/// forward to its target group.
fn rule_parts(rule: &ProtectRule) -> (RuleCondition, [Action; 2]) {
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
    (condition, [authenticate, forward])
}

#[async_trait]
impl LoadBalancer for ElbLoadBalancer {
    async fn listener_protocol(&self, listener_arn: &str) -> Result<Option<ListenerProtocol>> {
        Ok(self.describe_listener(listener_arn).await?.as_ref().map(protocol_of))
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
        let listener = self.describe_listener(listener_arn).await?;
        let forwarded =
            listener.iter().flat_map(|l| l.default_actions()).find_map(|a| a.target_group_arn().map(str::to_string));
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
        let rules = self.describe_rules(listener_arn).await?;
        Ok(rules.iter().filter_map(listener_rule).collect())
    }

    async fn create_rule(&self, rule: &ProtectRule) -> Result<String> {
        let (condition, [authenticate, forward]) = rule_parts(rule);
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

    async fn modify_rule(&self, rule_arn: &str, rule: &ProtectRule) -> Result<()> {
        let (condition, [authenticate, forward]) = rule_parts(rule);
        self.client
            .modify_rule()
            .rule_arn(rule_arn)
            .conditions(condition)
            .actions(authenticate)
            .actions(forward)
            .send()
            .await
            .map_err(|e| match aws_failure("ELB ModifyRule", e) {
                failure if failure.is("RuleNotFound") => Error::NotFound(format!("rule {rule_arn} is gone")),
                failure => elb_error(failure),
            })?;
        Ok(())
    }

    async fn delete_rule(&self, rule_arn: &str) -> Result<()> {
        let result = self.client.delete_rule().rule_arn(rule_arn).send().await;
        done_if(result.map_err(|e| aws_failure("ELB DeleteRule", e)), &["RuleNotFound"]).map_err(elb_error)?;
        Ok(())
    }

    async fn snapshot(&self, listener_arn: &str) -> Result<LoadBalancerView> {
        let listener = self.describe_listener(listener_arn).await?;
        let load_balancer = listener
            .as_ref()
            .and_then(|l| l.load_balancer_arn())
            .ok_or_else(|| Error::Invalid(format!("listener {listener_arn} does not exist")))?
            .to_string();
        let listeners = all_pages(|marker| {
            let load_balancer = load_balancer.clone();
            async move {
                let out = self
                    .client
                    .describe_listeners()
                    .load_balancer_arn(load_balancer)
                    .set_marker(marker)
                    .send()
                    .await
                    .map_err(|e| elb_error(aws_failure("ELB DescribeListeners", e)))?;
                Ok((out.listeners().to_vec(), out.next_marker))
            }
        })
        .await?;
        let mut views = Vec::with_capacity(listeners.len());
        for listener in &listeners {
            let arn = listener.listener_arn().unwrap_or_default().to_string();
            let rules = self.describe_rules(&arn).await?;
            views.push(ListenerView {
                port: listener.port().and_then(|p| u16::try_from(p).ok()).unwrap_or_default(),
                protocol: protocol_of(listener),
                default_actions: listener.default_actions().iter().map(action_view).collect(),
                // The default rule repeats the default actions; its priority is "default".
                rules: rules.iter().filter_map(rule_view).collect(),
                arn,
            });
        }
        Ok(LoadBalancerView { listeners: views })
    }

    async fn set_default(&self, listener_arn: &str, default: &ListenerDefault) -> Result<()> {
        let action = match default {
            ListenerDefault::Forward { target_group_arn } => {
                Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(target_group_arn).build()
            }
            // The ALB's placeholders keep host, path and query; only scheme and port change.
            ListenerDefault::RedirectToHttps => Action::builder()
                .r#type(ActionTypeEnum::Redirect)
                .redirect_config(
                    RedirectActionConfig::builder()
                        .protocol("HTTPS")
                        .port("443")
                        .host("#{host}")
                        .path("/#{path}")
                        .query("#{query}")
                        .status_code(RedirectActionStatusCodeEnum::Http301)
                        .build(),
                )
                .build(),
            ListenerDefault::NotFound => Action::builder()
                .r#type(ActionTypeEnum::FixedResponse)
                .fixed_response_config(
                    FixedResponseActionConfig::builder()
                        .status_code("404")
                        .content_type("text/plain")
                        .message_body("Not found")
                        .build(),
                )
                .build(),
        };
        let result = self.client.modify_listener().listener_arn(listener_arn).default_actions(action).send().await;
        done_if(result.map_err(|e| aws_failure("ELB ModifyListener", e)), &["ListenerNotFound"]).map_err(elb_error)?;
        Ok(())
    }

    async fn app_rules(&self, listener_arn: &str, app_id: &str) -> Result<Vec<ListenerRule>> {
        let rules: Vec<ListenerRule> =
            self.describe_rules(listener_arn).await?.iter().filter_map(listener_rule).collect();
        let arns: Vec<String> = rules.iter().map(|r| r.arn.clone()).collect();
        let tagged: Vec<String> = self
            .rule_tags(&arns)
            .await?
            .into_iter()
            .filter(|(_, tags)| tags.iter().any(|t| t.key() == Some(APP_ID_TAG) && t.value() == Some(app_id)))
            .map(|(arn, _)| arn)
            .collect();
        Ok(rules.into_iter().filter(|r| tagged.contains(&r.arn)).collect())
    }

    async fn alias_target(&self, listener_arn: &str) -> Result<Option<AliasTarget>> {
        let Some(load_balancer) = self.describe_listener(listener_arn).await?.and_then(|l| l.load_balancer_arn) else {
            return Ok(None);
        };
        let result = self.client.describe_load_balancers().load_balancer_arns(&load_balancer).send().await;
        let found = done_if(result.map_err(|e| aws_failure("ELB DescribeLoadBalancers", e)), &["LoadBalancerNotFound"])
            .map_err(elb_error)?;
        Ok(found.and_then(|out| {
            let balancer = out.load_balancers().first()?;
            Some(AliasTarget {
                dns_name: balancer.dns_name()?.to_string(),
                zone_id: balancer.canonical_hosted_zone_id()?.to_string(),
            })
        }))
    }
}

impl ElbLoadBalancer {
    /// The tags of each rule, by ARN (DescribeTags takes at most 20 resources).
    async fn rule_tags(&self, rule_arns: &[String]) -> Result<Vec<(String, Vec<Tag>)>> {
        let mut tags = Vec::with_capacity(rule_arns.len());
        for chunk in rule_arns.chunks(20) {
            let result = self.client.describe_tags().set_resource_arns(Some(chunk.to_vec())).send().await;
            // A rule deleted since the listing makes the whole call fail; read one by one then.
            let out = match done_if(result.map_err(|e| aws_failure("ELB DescribeTags", e)), &["RuleNotFound"])
                .map_err(elb_error)?
            {
                Some(out) => out,
                None if chunk.len() > 1 => {
                    for arn in chunk {
                        tags.extend(Box::pin(self.rule_tags(std::slice::from_ref(arn))).await?);
                    }
                    continue;
                }
                None => continue,
            };
            for description in out.tag_descriptions() {
                if let Some(arn) = description.resource_arn() {
                    tags.push((arn.to_string(), description.tags().to_vec()));
                }
            }
        }
        Ok(tags)
    }

    /// The listener, or `None` if there is no such listener.
    async fn describe_listener(&self, listener_arn: &str) -> Result<Option<Listener>> {
        let result = self.client.describe_listeners().listener_arns(listener_arn).send().await;
        let found = done_if(result.map_err(|e| aws_failure("ELB DescribeListeners", e)), &["ListenerNotFound"])
            .map_err(elb_error)?;
        Ok(found.and_then(|out| out.listeners().first().cloned()))
    }

    /// Every rule of the listener, the default rule included.
    async fn describe_rules(&self, listener_arn: &str) -> Result<Vec<Rule>> {
        all_pages(|marker| async move {
            let out = self
                .client
                .describe_rules()
                .listener_arn(listener_arn)
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| elb_error(aws_failure("ELB DescribeRules", e)))?;
            Ok((out.rules().to_vec(), out.next_marker))
        })
        .await
    }
}

fn protocol_of(listener: &Listener) -> ListenerProtocol {
    match listener.protocol() {
        Some(ProtocolEnum::Https) => ListenerProtocol::Https,
        Some(ProtocolEnum::Http) => ListenerProtocol::Http,
        other => ListenerProtocol::Other(other.map(|p| p.as_str().to_string()).unwrap_or_default()),
    }
}

/// A rule as the wiring sees it; `None` for the default rule, whose priority is "default".
fn listener_rule(r: &Rule) -> Option<ListenerRule> {
    Some(ListenerRule {
        arn: r.rule_arn()?.to_string(),
        priority: r.priority()?.parse().ok()?,
        hosts: host_values(r.conditions().iter().filter(|c| c.field() == Some("host-header"))),
        cognito_client_id: r
            .actions()
            .iter()
            .find_map(|a| a.authenticate_cognito_config()?.user_pool_client_id().map(str::to_string)),
    })
}

/// The values of host-header conditions, in the structured form or the older flat `Values`.
fn host_values<'a>(conditions: impl Iterator<Item = &'a RuleCondition>) -> Vec<String> {
    conditions
        .flat_map(|c| match c.host_header_config() {
            Some(config) if !config.values().is_empty() => config.values().to_vec(),
            _ => c.values().to_vec(),
        })
        .collect()
}

/// A rule as the exposure analysis sees it; `None` for the default rule.
fn rule_view(rule: &Rule) -> Option<RuleView> {
    Some(RuleView {
        arn: rule.rule_arn()?.to_string(),
        priority: rule.priority()?.parse().ok()?,
        conditions: rule
            .conditions()
            .iter()
            .map(|c| match c.field() {
                Some("host-header") => domain::RuleCondition::HostHeader(host_values(std::iter::once(c))),
                _ => domain::RuleCondition::Other,
            })
            .collect(),
        actions: rule.actions().iter().map(action_view).collect(),
    })
}

fn action_view(action: &Action) -> RuleAction {
    match action.r#type() {
        Some(ActionTypeEnum::Forward) => {
            let mut target_groups: Vec<String> = action.target_group_arn().map(str::to_string).into_iter().collect();
            if let Some(config) = action.forward_config() {
                for group in config.target_groups() {
                    if let Some(arn) = group.target_group_arn().filter(|arn| !target_groups.iter().any(|t| t == arn)) {
                        target_groups.push(arn.to_string());
                    }
                }
            }
            RuleAction::Forward { target_groups }
        }
        Some(ActionTypeEnum::AuthenticateCognito) => RuleAction::AuthenticateCognito {
            client_id: action
                .authenticate_cognito_config()
                .and_then(|c| c.user_pool_client_id())
                .unwrap_or_default()
                .to_string(),
        },
        Some(ActionTypeEnum::AuthenticateOidc) => RuleAction::AuthenticateOidc,
        Some(ActionTypeEnum::Redirect) => RuleAction::Redirect,
        Some(ActionTypeEnum::FixedResponse) => RuleAction::FixedResponse,
        _ => RuleAction::Other,
    }
}

#[async_trait]
impl RuleInspection for ElbLoadBalancer {
    async fn rule_settings(&self, listener_arn: &str, rule_arn: &str) -> Result<Option<RuleSettings>> {
        if self.describe_listener(listener_arn).await?.is_none() {
            return Ok(None);
        }
        let rules = self.describe_rules(listener_arn).await?;
        Ok(rules.iter().find(|r| r.rule_arn() == Some(rule_arn)).map(rule_settings))
    }
}

/// A rule's conditions and actions, as the drift check compares them.
fn rule_settings(rule: &Rule) -> RuleSettings {
    let is_host = |c: &&RuleCondition| c.field() == Some("host-header");
    let mut settings = RuleSettings {
        hosts: host_values(rule.conditions().iter().filter(is_host)),
        other_conditions: rule.conditions().iter().filter(|c| !is_host(c)).count(),
        login: None,
        forward_to: Vec::new(),
        other_actions: 0,
    };
    for action in rule.actions() {
        match (action.r#type(), action_view(action)) {
            (_, RuleAction::Forward { target_groups }) if settings.forward_to.is_empty() => {
                settings.forward_to = target_groups
            }
            (Some(ActionTypeEnum::AuthenticateCognito), _) if settings.login.is_none() => {
                let config = action.authenticate_cognito_config();
                let mut scopes: Vec<String> =
                    config.and_then(|c| c.scope()).unwrap_or_default().split_whitespace().map(str::to_string).collect();
                scopes.sort();
                settings.login = Some(LoginSettings {
                    user_pool_arn: config.and_then(|c| c.user_pool_arn()).unwrap_or_default().to_string(),
                    client_id: config.and_then(|c| c.user_pool_client_id()).unwrap_or_default().to_string(),
                    pool_domain: config.and_then(|c| c.user_pool_domain()).unwrap_or_default().to_string(),
                    session_timeout_seconds: config
                        .and_then(|c| c.session_timeout())
                        .and_then(|t| u32::try_from(t).ok()),
                    scopes,
                    // ALB's default for an absent behaviour is to authenticate.
                    authenticates_unauthenticated: config
                        .and_then(|c| c.on_unauthenticated_request())
                        .is_none_or(|b| *b == AuthenticateCognitoActionConditionalBehaviorEnum::Authenticate),
                });
            }
            _ => settings.other_actions += 1,
        }
    }
    settings
}
