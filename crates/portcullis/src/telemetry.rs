//! Logging set-up shared by every function: JSON (or text) to stdout for CloudWatch, at the level and
//! in the format Lambda's advanced logging controls ask for (`AWS_LAMBDA_LOG_LEVEL`,
//! `AWS_LAMBDA_LOG_FORMAT`), else `RUST_LOG`, else `info`.

use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::filter::{Targets, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

/// How the functions log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// A level, or `RUST_LOG`'s `target=level` directives.
    pub filter: String,
    pub json: bool,
}

impl LogSettings {
    pub fn from_env() -> Self {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        Self::from_vars(var("AWS_LAMBDA_LOG_LEVEL"), var("AWS_LAMBDA_LOG_FORMAT"), var("RUST_LOG"))
    }

    fn from_vars(lambda_level: Option<String>, lambda_format: Option<String>, rust_log: Option<String>) -> Self {
        let filter = match lambda_level.map(|l| l.to_ascii_lowercase()) {
            // Lambda's FATAL is tracing's ERROR.
            Some(level) if level == "fatal" => "error".to_string(),
            Some(level) => level,
            None => rust_log.unwrap_or_else(|| "info".into()),
        };
        // Lambda's default format is text, but these functions have always logged JSON: only an
        // explicit Text switches.
        let json = !lambda_format.is_some_and(|f| f.eq_ignore_ascii_case("text"));
        LogSettings { filter, json }
    }
}

/// What the Lambda runtime logs that must not reach the log:
/// - every raw event, at TRACE: events carry bearer tokens, so never, whatever the level;
/// - every handler error again, as its `Debug` (a line with only a message): the provisioner has
///   already logged it once, with its cause chain. Panics (a line with an `error` field) still pass.
fn is_unwanted_runtime_line(meta: &Metadata<'_>) -> bool {
    let raw_event = *meta.level() == Level::TRACE && meta.target().starts_with("lambda_");
    let repeated_error = *meta.level() == Level::ERROR
        && meta.target() == "lambda_runtime::layers::panic"
        && meta.fields().field("error").is_none();
    raw_event || repeated_error
}

/// The subscriber for `settings`, writing to `writer`.
pub fn subscriber<W>(settings: &LogSettings, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = settings.filter.parse::<Targets>().unwrap_or_else(|_| Targets::new().with_default(Level::INFO));
    let format = if settings.json {
        // Lambda stamps every line itself; the current span carries operation, tenant, app and request.
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .without_time()
            .with_writer(writer)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer().without_time().with_ansi(false).with_writer(writer).boxed()
    };
    tracing_subscriber::registry().with(filter).with(filter_fn(|meta| !is_unwanted_runtime_line(meta))).with(format)
}

/// Installs the subscriber from the environment. Call once in `main`.
pub fn init() {
    subscriber(&LogSettings::from_env(), std::io::stdout).init();
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'w self) -> Buffer {
            self.clone()
        }
    }

    fn logged(settings: &LogSettings, emit: impl FnOnce()) -> String {
        let buffer = Buffer::default();
        tracing::subscriber::with_default(subscriber(settings, buffer.clone()), emit);
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn lambdas_controls_win_and_fatal_means_error() {
        let s = |l: Option<&str>, f: Option<&str>, r: Option<&str>| {
            LogSettings::from_vars(l.map(Into::into), f.map(Into::into), r.map(Into::into))
        };
        assert_eq!(s(None, None, None), LogSettings { filter: "info".into(), json: true });
        assert_eq!(s(Some("DEBUG"), Some("JSON"), Some("warn")).filter, "debug");
        assert_eq!(s(Some("FATAL"), None, None).filter, "error");
        assert_eq!(s(None, None, Some("portcullis=debug")).filter, "portcullis=debug");
        assert!(!s(None, Some("Text"), None).json);
    }

    #[test]
    fn raw_runtime_events_never_reach_the_log_even_at_trace() {
        let settings = LogSettings { filter: "trace".into(), json: true };
        let out = logged(&settings, || {
            tracing::trace!(target: "lambda_runtime::layers::api_response", body = "Bearer eyJsecret", "raw JSON event");
            tracing::trace!("our own trace");
        });
        assert!(!out.contains("eyJsecret"), "{out}");
        assert!(out.contains("our own trace"), "{out}");
    }

    #[test]
    fn handler_errors_are_not_repeated_but_panics_are_kept() {
        let settings = LogSettings { filter: "info".into(), json: true };
        let out = logged(&settings, || {
            tracing::error!(target: "lambda_runtime::layers::panic", "{}", "Diagnostic { error_type: \"AwsError\" }");
            tracing::error!(target: "lambda_runtime::layers::panic", error = "boom", "user handler panicked");
        });
        assert!(!out.contains("Diagnostic"), "{out}");
        assert!(out.contains("user handler panicked"), "{out}");
    }

    #[test]
    fn json_lines_carry_the_request_span() {
        let settings = LogSettings { filter: "info".into(), json: true };
        let out = logged(&settings, || {
            let span = tracing::info_span!("request", operation = "getApp", tenant = tracing::field::Empty);
            let _entered = span.enter();
            span.record("tenant", "demo");
            tracing::info!("answered");
        });
        let line: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
        assert_eq!(line["span"]["operation"], "getApp", "{line}");
        assert_eq!(line["span"]["tenant"], "demo", "{line}");
        assert_eq!(line["fields"]["message"], "answered");
        let text = logged(&LogSettings { filter: "info".into(), json: false }, || tracing::info!("plain"));
        assert!(text.contains("plain") && !text.starts_with('{'), "{text}");
    }
}
