//! tenants-api: the tenant registry behind API Gateway (`/tenants…` for platform operators, `/tenant`
//! for a tenant's own callers). Wires the adapters once per cold start and serves.
//! IAM: the table only.

use std::sync::Arc;

use portcullis::adapters::{DynamoStore, JwksTokenVerifier, load_aws_config};
use portcullis::api::{Idempotent, TenantsApi};
use portcullis::config::{TokenConfig, table_name};
use portcullis::lambda::serve_api;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    portcullis::telemetry::init();
    let aws = load_aws_config("portcullis-tenants-api").await?;
    let store = Arc::new(DynamoStore::from_config(&aws, table_name()?));
    let verifier = Arc::new(JwksTokenVerifier::new(TokenConfig::from_env()?));
    let api =
        TenantsApi { tenants: store.clone(), apps: store.clone(), history: store.clone(), verifier: verifier.clone() };
    serve_api(Arc::new(Idempotent { operations: api, keys: store, verifier })).await
}
