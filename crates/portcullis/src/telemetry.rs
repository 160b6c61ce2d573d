//! Logging set-up shared by every function.

/// JSON logs to stdout (CloudWatch), level from `RUST_LOG` (default `info`). Call once in `main`.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .without_time() // Lambda stamps every line itself.
        .init();
}
