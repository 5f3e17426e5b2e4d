//! The `inventory-worker` binary: settings, telemetry, build, run.
#![forbid(unsafe_code)]

/// mimalloc, as in the API: a batch decodes and frees many small messages at once (the
/// worker was not profiled without it; the API was, see `ingest-api/src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use inventory_worker::{Application, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::service::telemetry::init("inventory-worker");
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => shared::settings::exit_on_error("inventory-worker", &e),
    };
    let app = Application::build(settings).await?;
    app.run_until_stopped().await
}
