//! `ServiceCredentials` on app clients of the operators' Cognito pool: client-credentials clients with a
//! secret and scopes of the `portcullis` resource server. The secret passes through once, to the caller.

use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::types::{OAuthFlowType, TimeUnitsType, TokenValidityUnitsType};

use super::{AwsFailure, aws_failure, done_if};
use crate::domain::{ACCESS_TOKEN_MINUTES, Scope};
use crate::error::{Error, Result};
use crate::ports::{ClientSecret, CreatedCredential, ServiceCredentials};

/// Service tokens' clients in the operators' pool.
#[derive(Debug, Clone)]
pub struct CognitoServiceCredentials {
    client: Client,
    pool_id: String,
}

impl CognitoServiceCredentials {
    /// Builds the client from the function's AWS configuration (once per cold start).
    pub fn from_config(config: &aws_config::SdkConfig, operators_pool_id: impl Into<String>) -> Self {
        CognitoServiceCredentials { client: Client::new(config), pool_id: operators_pool_id.into() }
    }
}

fn client_error(failure: AwsFailure) -> Error {
    match failure.code.as_deref() {
        Some("LimitExceededException") => Error::QuotaExceeded(failure.message),
        _ => failure.into_error(),
    }
}

#[async_trait]
impl ServiceCredentials for CognitoServiceCredentials {
    async fn create(&self, client_name: &str, scopes: &[Scope]) -> Result<CreatedCredential> {
        let validity = TokenValidityUnitsType::builder().access_token(TimeUnitsType::Minutes).build();
        let out = self
            .client
            .create_user_pool_client()
            .user_pool_id(&self.pool_id)
            .client_name(client_name)
            .generate_secret(true)
            .allowed_o_auth_flows_user_pool_client(true)
            .allowed_o_auth_flows(OAuthFlowType::ClientCredentials)
            .set_allowed_o_auth_scopes(Some(scopes.iter().map(|s| s.oauth_name()).collect()))
            .access_token_validity(i32::try_from(ACCESS_TOKEN_MINUTES).unwrap_or(60))
            .token_validity_units(validity)
            .send()
            .await
            .map_err(|e| client_error(aws_failure("Cognito CreateUserPoolClient (service token)", e)))?;
        let client =
            out.user_pool_client.ok_or_else(|| Error::upstream("Cognito CreateUserPoolClient returned no client"))?;
        match (client.client_id, client.client_secret) {
            (Some(client_id), Some(secret)) => Ok(CreatedCredential { client_id, client_secret: ClientSecret(secret) }),
            _ => Err(Error::upstream("Cognito CreateUserPoolClient returned no client id or secret")),
        }
    }

    async fn delete(&self, client_id: &str) -> Result<()> {
        let result = self
            .client
            .delete_user_pool_client()
            .user_pool_id(&self.pool_id)
            .client_id(client_id)
            .send()
            .await
            .map_err(|e| aws_failure("Cognito DeleteUserPoolClient (service token)", e));
        done_if(result, &["ResourceNotFoundException"]).map_err(AwsFailure::into_error)?;
        Ok(())
    }
}
