//! Building and running the API: its parts ([`parts`]: connections, the pipeline's
//! stages, the handlers' state), its two servers ([`server`]), the tasks beside them
//! ([`background`]), and the graceful drain on shutdown.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::web;
use anyhow::Context;
use rdkafka::producer::Producer;

use crate::routes::state::AppState;
use crate::settings::Validated;

pub mod background;
pub mod parts;
pub mod server;

/// A built, not yet running, API: both listeners are bound, so the ports are known.
pub struct Application {
    port: u16,
    admin_port: u16,
    server: Server,
    admin: Server,
    state: web::Data<AppState>,
    background: background::Background,
}

impl Application {
    /// Connects, compiles and binds. Port 0 in the settings picks a free port.
    pub async fn build(settings: Validated) -> anyhow::Result<Self> {
        let raw = &settings.raw;
        let parts::Parts { state, background } = parts::parts(&settings)?;
        let listener = TcpListener::bind(raw.listen_addr)
            .with_context(|| format!("cannot listen on LISTEN_ADDR {}", raw.listen_addr))?;
        let admin_listener = TcpListener::bind(raw.admin_addr)
            .with_context(|| format!("cannot listen on ADMIN_ADDR {}", raw.admin_addr))?;
        let port = listener.local_addr()?.port();
        let admin_port = admin_listener.local_addr()?.port();
        let server = server::public(listener, state.clone(), &settings)?;
        let admin = server::admin(admin_listener, state.clone())?;
        tracing::info!(
            listen = %raw.listen_addr, port, admin_port,
            topic = %raw.kafka_topic, namespace = %settings.keyspace.namespace(),
            signing_key_ids = ?settings.keyring.ids().collect::<Vec<_>>(),
            environment = ?raw.environment,
            "ingest-api built"
        );
        Ok(Self {
            port,
            admin_port,
            server,
            admin,
            state,
            background,
        })
    }

    /// The public port (useful when built with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The admin port.
    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// Runs until SIGTERM/SIGINT.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shared::service::shutdown::signal()).await
    }

    /// Runs until `stop` resolves, then drains: no new connections, in-flight requests
    /// finish (up to 10 s), the background tasks stop, the producer flushes.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let Self {
            server,
            admin,
            state,
            background,
            ..
        } = self;
        let consumer = format!(
            "api-{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let background = background.start(consumer);
        let (server_handle, admin_handle) = (server.handle(), admin.handle());
        let server_task = tokio::spawn(server);
        let admin_task = tokio::spawn(admin);
        tokio::pin!(stop);
        tokio::select! {
            () = &mut stop => tracing::info!("draining"),
            r = server_task => { r??; anyhow::bail!("HTTP server stopped unexpectedly") }
        }
        server_handle.stop(true).await;
        admin_handle.stop(true).await;
        background.stop().await;
        let _ = admin_task.await;
        let producer = state.placer.handoff().producer().clone();
        let _ = tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(5))).await;
        tracing::info!("ingest-api stopped");
        Ok(())
    }
}
