//! What verifying a caller's token costs on every request once the issuer's keys are cached: a real
//! ID token of the local stack's operators' pool, verified as the functions verify it (signature,
//! issuer, expiry, audience, claims). Run by `make bench`, beside the stack.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis::adapters::JwksTokenVerifier;
use portcullis::config::TokenConfig;
use portcullis::ports::TokenVerifier;
use portcullis_e2e::Harness;

fn token_verification(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let stack_file =
        std::env::var("PORTCULLIS_STACK_FILE").expect("run under `portcullis_local test-run` (make bench)");
    let env = portcullis_bench::functions_env(Path::new(&stack_file)).expect("the functions' settings");
    let setting = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).expect(name);
    let config = TokenConfig {
        jwks_url: setting("PORTCULLIS_JWKS_URL"),
        issuer: setting("PORTCULLIS_TOKEN_ISSUER"),
        audiences: vec![setting("PORTCULLIS_TOKEN_AUDIENCE")],
    };
    let verifier = JwksTokenVerifier::new(config);
    let token = runtime.block_on(async { Harness::new().await.operator(Some("bench"), Some("admin")).await });
    // The first verification reads the keys; every later one finds them cached.
    runtime.block_on(verifier.verify(&token)).expect("the token verifies");
    c.benchmark_group("token_verification").bench_function("id_token_warm_keys", |b| {
        b.to_async(&runtime).iter(|| async { black_box(verifier.verify(black_box(&token)).await.expect("verified")) })
    });
}

criterion_group!(benches, token_verification);
criterion_main!(benches);
