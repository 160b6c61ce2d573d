//! users-api: `/apps/{id}/users` and `/apps/{id}/roles` behind API Gateway. Wires the adapters once per
//! cold start and serves. IAM: the table, and user and group administration in Portcullis-tagged user pools.

use std::sync::Arc;

use portcullis::adapters::{CognitoAppUsers, DynamoStore, JwksTokenVerifier, load_aws_config};
use portcullis::api::{Idempotent, UsersApi};
use portcullis::config::{TokenConfig, table_name};
use portcullis::lambda::{serve_api, warm_up};
use portcullis::retry::Backoff;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    portcullis::telemetry::init();
    let aws = load_aws_config("portcullis-users-api").await?;
    let store = Arc::new(DynamoStore::from_config(&aws, table_name()?));
    let verifier = Arc::new(JwksTokenVerifier::new(TokenConfig::from_env()?).with_service_tokens(store.clone()));
    let cognito = Arc::new(CognitoAppUsers::from_config(&aws));
    let api = UsersApi {
        apps: store.clone(),
        history: store.clone(),
        invitations: store.clone(),
        users: cognito.clone(),
        roles: cognito,
        verifier: verifier.clone(),
        backoff: Backoff::default(),
    };
    warm_up(&verifier, &store).await;
    serve_api(Arc::new(Idempotent { operations: api, keys: store, verifier })).await
}
