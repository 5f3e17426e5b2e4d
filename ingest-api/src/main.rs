//! The `ingest-api` binary: settings, telemetry, build, run.
#![forbid(unsafe_code)]

/// mimalloc: request handling allocates many small, short-lived buffers, where glibc's
/// malloc showed up as about an eighth of the API's CPU time in profiles.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use ingest_api::{Application, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::service::telemetry::init("ingest-api");
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => shared::settings::exit_on_error("ingest-api", &e),
    };
    let app = Application::build(settings).await?;
    app.run_until_stopped().await
}
