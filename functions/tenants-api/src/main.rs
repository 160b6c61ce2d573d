//! tenants-api: the tenant registry behind API Gateway (`/tenants…` for platform operators, `/tenant`
//! for a tenant's own callers, `/tenant/service-tokens…` for its admins). Wires the adapters once per
//! cold start and serves.
//! IAM: the table; CreateUserPoolClient and DeleteUserPoolClient on the operators' pool only.

use std::sync::Arc;

use portcullis::adapters::{CognitoServiceCredentials, DynamoStore, JwksTokenVerifier, load_aws_config};
use portcullis::api::{Idempotent, ServiceTokenManagement, TenantsApi};
use portcullis::config::{ServiceTokenConfig, TokenConfig, table_name};
use portcullis::lambda::{serve_api, warm_up};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    portcullis::telemetry::init();
    let aws = load_aws_config("portcullis-tenants-api").await?;
    let store = Arc::new(DynamoStore::from_config(&aws, table_name()?));
    let service = ServiceTokenConfig::from_env()?;
    let verifier = Arc::new(JwksTokenVerifier::new(TokenConfig::from_env()?).with_service_tokens(store.clone()));
    let api = TenantsApi {
        tenants: store.clone(),
        apps: store.clone(),
        history: store.clone(),
        verifier: verifier.clone(),
        service_tokens: ServiceTokenManagement {
            records: store.clone(),
            credentials: Arc::new(CognitoServiceCredentials::from_config(&aws, service.operators_pool_id)),
            token_url: service.token_url,
        },
    };
    warm_up(&verifier, &store).await;
    serve_api(Arc::new(Idempotent { operations: api, keys: store, verifier })).await
}
