//! Structured logging set-up.

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Installs the global subscriber: JSON lines on stdout (one object per event, with the
/// current span's fields), filtered by `RUST_LOG` (default `info`). `LOG_FORMAT=text`
/// gives human-readable lines for local work. Calling it twice is harmless (tests).
pub fn init(service: &'static str) {
    init_with(service, std::io::stdout);
}

/// [`init`], writing to `writer` instead of stdout (a test that reads the log).
pub fn init_with<W>(service: &'static str, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let text = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("text"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if text {
        registry
            .with(fmt::layer().with_target(false).with_writer(writer))
            .try_init()
    } else {
        registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(writer),
            )
            .try_init()
    };
    if result.is_ok() {
        tracing::debug!(service, "telemetry initialised");
    }
}
