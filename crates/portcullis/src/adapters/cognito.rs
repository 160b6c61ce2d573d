//! `UserPools` on Amazon Cognito user pools.

use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::types::{
    AccountRecoverySettingType, AdminCreateUserConfigType, EmailConfigurationType, EmailSendingAccountType,
    MessageTemplateType, OAuthFlowType, PasswordPolicyType, PreventUserExistenceErrorTypes, RecoveryOptionNameType,
    RecoveryOptionType, SoftwareTokenMfaConfigType, UserPoolMfaType, UserPoolPolicyType, UsernameAttributeType,
    VerifiedAttributeType,
};

use super::{APP_ID_TAG, AwsFailure, all_pages, aws_failure, build_error, done_if};
use crate::domain::{ClientSettings, Mfa, SesIdentity, is_pool_name_of};
use crate::error::{Error, Result};
use crate::ports::{ClientSpec, CreatedPool, FoundPool, LoginInspection, PoolSpec, UserPools};

/// The Cognito-backed user pool port.
#[derive(Debug, Clone)]
pub struct CognitoUserPools {
    client: Client,
}

impl CognitoUserPools {
    /// Builds the client from the function's AWS configuration (once per cold start).
    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        Self::new(Client::new(config))
    }

    pub fn new(client: Client) -> Self {
        CognitoUserPools { client }
    }

    fn region(&self) -> String {
        self.client.config().region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into())
    }
}

/// Cognito's default sender, or the tenant's SES identity (Cognito sends as the tenant, "DEVELOPER").
fn email_configuration(ses: Option<&SesIdentity>) -> EmailConfigurationType {
    match ses {
        None => {
            EmailConfigurationType::builder().email_sending_account(EmailSendingAccountType::CognitoDefault).build()
        }
        Some(ses) => EmailConfigurationType::builder()
            .email_sending_account(EmailSendingAccountType::Developer)
            .source_arn(&ses.source_arn)
            .set_from(ses.from.clone())
            .build(),
    }
}

/// Cognito's default password rules, stated because the temporary password's lifetime is part of the
/// same policy (an omitted rule would be off, not the default).
fn password_policy(temporary_password_days: u8) -> UserPoolPolicyType {
    let rules = PasswordPolicyType::builder()
        .minimum_length(8)
        .require_uppercase(true)
        .require_lowercase(true)
        .require_numbers(true)
        .require_symbols(true)
        .temporary_password_validity_days(temporary_password_days.into())
        .build();
    UserPoolPolicyType::builder().password_policy(rules).build()
}

/// Deletes treat a missing resource as already deleted.
fn gone_is_done<T>(result: std::result::Result<T, AwsFailure>) -> Result<()> {
    done_if(result, &["ResourceNotFoundException"]).map_err(AwsFailure::into_error)?;
    Ok(())
}

/// What creating and updating a pool both set: only admins invite, with the app's invitation; users
/// recover their account by verified email.
fn pool_parts(spec: &PoolSpec) -> Result<(AdminCreateUserConfigType, AccountRecoverySettingType)> {
    let invitation = MessageTemplateType::builder()
        .email_subject(&spec.invitation_subject)
        .email_message(&spec.invitation_body)
        .build();
    let admin_create_user = AdminCreateUserConfigType::builder()
        .allow_admin_create_user_only(true)
        .invite_message_template(invitation)
        .build();
    let recovery = AccountRecoverySettingType::builder()
        .recovery_mechanisms(
            RecoveryOptionType::builder()
                .name(RecoveryOptionNameType::VerifiedEmail)
                .priority(1)
                .build()
                .map_err(|e| build_error("a Cognito recovery option", e))?,
        )
        .build();
    Ok((admin_create_user, recovery))
}

/// The pool's MFA setting in Cognito's words (TOTP is the only second factor Portcullis sets).
fn mfa_type(mfa: Mfa) -> UserPoolMfaType {
    match mfa {
        Mfa::Off => UserPoolMfaType::Off,
        Mfa::Optional => UserPoolMfaType::Optional,
        Mfa::Required => UserPoolMfaType::On,
    }
}

#[async_trait]
impl UserPools for CognitoUserPools {
    async fn create_pool(&self, spec: &PoolSpec) -> Result<CreatedPool> {
        let (admin_create_user, recovery) = pool_parts(spec)?;
        let out = self
            .client
            .create_user_pool()
            .pool_name(&spec.pool_name)
            // Only admins invite: nobody can sign themselves up to an app.
            .admin_create_user_config(admin_create_user)
            .policies(password_policy(spec.temporary_password_days))
            .username_attributes(UsernameAttributeType::Email)
            .auto_verified_attributes(VerifiedAttributeType::Email)
            .account_recovery_setting(recovery)
            .email_configuration(email_configuration(spec.ses.as_ref()))
            .user_pool_tags(APP_ID_TAG, &spec.app_id)
            .customize()
            .config_override(sent_once())
            .send()
            .await
            .map_err(|e| aws_failure("Cognito CreateUserPool", e).into_error())?;
        let pool = out.user_pool.ok_or_else(|| Error::upstream("Cognito CreateUserPool returned no pool"))?;
        match (pool.id, pool.arn) {
            (Some(id), Some(arn)) => Ok(CreatedPool { id, arn }),
            _ => Err(Error::upstream("Cognito CreateUserPool returned a pool without id or ARN")),
        }
    }

    async fn update_pool(&self, pool_id: &str, spec: &PoolSpec, mfa: Mfa) -> Result<()> {
        let (admin_create_user, recovery) = pool_parts(spec)?;
        self.client
            .update_user_pool()
            .user_pool_id(pool_id)
            .admin_create_user_config(admin_create_user)
            .policies(password_policy(spec.temporary_password_days))
            .auto_verified_attributes(VerifiedAttributeType::Email)
            .account_recovery_setting(recovery)
            .email_configuration(email_configuration(spec.ses.as_ref()))
            .mfa_configuration(mfa_type(mfa))
            // Tags left out would be removed, and the functions' rights on the pool with them.
            .user_pool_tags(APP_ID_TAG, &spec.app_id)
            .send()
            .await
            .map_err(|e| aws_failure("Cognito UpdateUserPool", e).into_error())?;
        Ok(())
    }

    async fn set_mfa(&self, pool_id: &str, mfa: Mfa) -> Result<()> {
        let (configuration, totp) = (mfa_type(mfa), mfa != Mfa::Off);
        self.client
            .set_user_pool_mfa_config()
            .user_pool_id(pool_id)
            .mfa_configuration(configuration)
            .software_token_mfa_configuration(SoftwareTokenMfaConfigType::builder().enabled(totp).build())
            .send()
            .await
            .map_err(|e| aws_failure("Cognito SetUserPoolMfaConfig", e).into_error())?;
        Ok(())
    }

    async fn create_client(&self, pool_id: &str, spec: &ClientSpec) -> Result<String> {
        let out = self
            .client
            .create_user_pool_client()
            .user_pool_id(pool_id)
            .client_name(&spec.client_name)
            // The ALB authenticates with the secret; Portcullis never reads or returns it.
            .generate_secret(true)
            .allowed_o_auth_flows_user_pool_client(true)
            .allowed_o_auth_flows(OAuthFlowType::Code)
            .allowed_o_auth_scopes("openid")
            .allowed_o_auth_scopes("email")
            .callback_urls(&spec.callback_url)
            .logout_urls(&spec.logout_url)
            .supported_identity_providers("COGNITO")
            .prevent_user_existence_errors(PreventUserExistenceErrorTypes::Enabled)
            .customize()
            .config_override(sent_once())
            .send()
            .await
            .map_err(|e| aws_failure("Cognito CreateUserPoolClient", e).into_error())?;
        out.user_pool_client
            .and_then(|c| c.client_id)
            .ok_or_else(|| Error::upstream("Cognito CreateUserPoolClient returned no client id"))
    }

    async fn create_domain(&self, pool_id: &str, prefix: &str) -> Result<String> {
        let result = self.client.create_user_pool_domain().user_pool_id(pool_id).domain(prefix).send().await;
        if let Err(e) = result {
            let failure = aws_failure("Cognito CreateUserPoolDomain", e);
            // A retry after a lost response finds the domain already ours.
            let ours = self
                .client
                .describe_user_pool_domain()
                .domain(prefix)
                .send()
                .await
                .ok()
                .and_then(|d| d.domain_description)
                .is_some_and(|d| d.user_pool_id() == Some(pool_id));
            if !ours {
                return Err(failure.into_error());
            }
        }
        Ok(format!("{prefix}.auth.{}.amazoncognito.com", self.region()))
    }

    async fn delete_domain(&self, pool_id: &str, prefix: &str) -> Result<()> {
        gone_is_done(
            self.client
                .delete_user_pool_domain()
                .user_pool_id(pool_id)
                .domain(prefix)
                .send()
                .await
                .map_err(|e| aws_failure("Cognito DeleteUserPoolDomain", e)),
        )
    }

    async fn delete_client(&self, pool_id: &str, client_id: &str) -> Result<()> {
        gone_is_done(
            self.client
                .delete_user_pool_client()
                .user_pool_id(pool_id)
                .client_id(client_id)
                .send()
                .await
                .map_err(|e| aws_failure("Cognito DeleteUserPoolClient", e)),
        )
    }

    async fn delete_pool(&self, pool_id: &str) -> Result<()> {
        gone_is_done(
            self.client
                .delete_user_pool()
                .user_pool_id(pool_id)
                .send()
                .await
                .map_err(|e| aws_failure("Cognito DeleteUserPool", e)),
        )
    }

    async fn find_pools(&self, app_id: &str) -> Result<Vec<FoundPool>> {
        // Pools cannot be listed by tag: find them by the app id in their name, then confirm by the tag.
        let named = all_pages(|token| async move {
            let out = self
                .client
                .list_user_pools()
                .max_results(60)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| aws_failure("Cognito ListUserPools", e).into_error())?;
            let ids = out
                .user_pools()
                .iter()
                .filter(|p| p.name().is_some_and(|name| is_pool_name_of(name, app_id)))
                .filter_map(|p| p.id().map(str::to_string))
                .collect();
            Ok((ids, out.next_token))
        })
        .await?;
        let mut found = Vec::new();
        for id in named {
            let result = self.client.describe_user_pool().user_pool_id(&id).send().await;
            let described =
                done_if(result.map_err(|e| aws_failure("Cognito DescribeUserPool", e)), &["ResourceNotFoundException"])
                    .map_err(AwsFailure::into_error)?;
            let Some(pool) = described.and_then(|d| d.user_pool) else { continue };
            let tagged = pool.user_pool_tags().and_then(|tags| tags.get(APP_ID_TAG)).is_some_and(|v| v == app_id);
            if let (true, Some(arn)) = (tagged, pool.arn()) {
                found.push(FoundPool { arn: arn.to_string(), domain_prefix: pool.domain().map(str::to_string), id });
            }
        }
        Ok(found)
    }

    async fn find_client(&self, pool_id: &str, client_name: &str) -> Result<Option<String>> {
        let clients = all_pages(|token| async move {
            let out = self
                .client
                .list_user_pool_clients()
                .user_pool_id(pool_id)
                .max_results(60)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| aws_failure("Cognito ListUserPoolClients", e).into_error())?;
            Ok((out.user_pool_clients().to_vec(), out.next_token))
        })
        .await?;
        Ok(clients.into_iter().find(|c| c.client_name() == Some(client_name)).and_then(|c| c.client_id))
    }
}

/// A create that Cognito cannot de-duplicate (no idempotency token) is sent once: after a lost answer
/// the SDK's own retry would make a second pool or client, and orphan the first. The state machine
/// retries the step instead, and the step first looks for what the lost attempt made, by the app's
/// name and tag.
fn sent_once() -> aws_sdk_cognitoidentityprovider::config::Builder {
    aws_sdk_cognitoidentityprovider::config::Builder::default()
        .retry_config(aws_sdk_cognitoidentityprovider::config::retry::RetryConfig::disabled())
}

#[async_trait]
impl LoginInspection for CognitoUserPools {
    async fn pool_exists(&self, pool_id: &str) -> Result<bool> {
        let result = self.client.describe_user_pool().user_pool_id(pool_id).send().await;
        let found =
            done_if(result.map_err(|e| aws_failure("Cognito DescribeUserPool", e)), &["ResourceNotFoundException"])
                .map_err(AwsFailure::into_error)?;
        Ok(found.is_some_and(|out| out.user_pool.is_some()))
    }

    async fn client_settings(&self, pool_id: &str, client_id: &str) -> Result<Option<ClientSettings>> {
        let result = self.client.describe_user_pool_client().user_pool_id(pool_id).client_id(client_id).send().await;
        let found = done_if(
            result.map_err(|e| aws_failure("Cognito DescribeUserPoolClient", e)),
            &["ResourceNotFoundException"],
        )
        .map_err(AwsFailure::into_error)?;
        Ok(found.and_then(|out| out.user_pool_client).map(|client| {
            let mut scopes = client.allowed_o_auth_scopes().to_vec();
            scopes.sort();
            ClientSettings {
                callback_urls: client.callback_urls().to_vec(),
                logout_urls: client.logout_urls().to_vec(),
                code_flow_only: client.allowed_o_auth_flows() == [OAuthFlowType::Code],
                scopes,
            }
        }))
    }

    async fn domain_holder(&self, prefix: &str) -> Result<Option<String>> {
        let out = self
            .client
            .describe_user_pool_domain()
            .domain(prefix)
            .send()
            .await
            .map_err(|e| aws_failure("Cognito DescribeUserPoolDomain", e).into_error())?;
        // A free prefix is an empty description, not an error.
        Ok(out.domain_description.and_then(|d| d.user_pool_id).filter(|id| !id.is_empty()))
    }
}
