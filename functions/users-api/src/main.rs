//! users-api: `/apps/{id}/users` behind API Gateway. Wires the adapters once per cold start and serves.
//! IAM: the table, and user administration in Portcullis-tagged user pools.

use std::sync::Arc;

use portcullis::adapters::{CognitoAppUsers, DynamoStore, JwksTokenVerifier, load_aws_config};
use portcullis::api::UsersApi;
use portcullis::api::lambda::serve;
use portcullis::config::{TokenConfig, table_name};
use portcullis::retry::Backoff;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    portcullis::telemetry::init();
    let aws = load_aws_config().await;
    let api = UsersApi {
        store: Arc::new(DynamoStore::from_config(&aws, table_name()?)),
        users: Arc::new(CognitoAppUsers::from_config(&aws)),
        verifier: Arc::new(JwksTokenVerifier::new(TokenConfig::from_env()?)),
        backoff: Backoff::default(),
    };
    serve(Arc::new(api)).await
}
