//! The `loadtest` subcommands, one module each with its arguments and its run; what
//! several share — the stack they target and the audit line they print — is here.

pub mod audit;
pub mod bench;
pub mod burst;
pub mod room;
pub mod run;
pub mod shop;
pub mod stream;

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use flashsale_client::Client;
use loadtest::audit::{self as checks, Expectation, Report};
use shared::ProductId;
use shared::keys::Keyspace;

/// The stack a command sends to and audits.
#[derive(Args)]
pub struct Target {
    /// Base URL of an ingest-api instance (repeat for several; shoppers spread over them
    /// and retry on the next one).
    #[arg(long = "url", default_value = "http://127.0.0.1:8080")]
    pub urls: Vec<String>,
    /// `id:secret` used to sign requests (one of the API's SIGNING_KEYS; or a file named
    /// by SIGNING_KEY_FILE).
    #[arg(long, env = "SIGNING_KEY", hide_env_values = true)]
    pub signing_key: Option<String>,
    /// Redis of the stack (for the audit).
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = shared::defaults::REDIS_URL,
        hide_env_values = true
    )]
    pub redis_url: String,
    /// Seed nodes (`host:port,…`) of the stack's Redis Cluster, if it runs on one.
    #[arg(long, env = "REDIS_CLUSTER_NODES", default_value = "")]
    pub redis_cluster_nodes: String,
    /// Redis key namespace of the stack.
    #[arg(long, env = "REDIS_NAMESPACE", default_value = shared::defaults::REDIS_NAMESPACE)]
    pub redis_namespace: String,
    /// PostgreSQL of the stack (for the audit).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = shared::defaults::DATABASE_URL,
        hide_env_values = true
    )]
    pub database_url: String,
}

impl Target {
    /// A signing client per `--url`.
    pub fn clients(&self) -> anyhow::Result<Vec<Client>> {
        let key = match &self.signing_key {
            Some(key) => key.clone(),
            None => shared::settings::from_file("SIGNING_KEY")?
                .context("give --signing-key, SIGNING_KEY or SIGNING_KEY_FILE")?,
        };
        let (id, secret) = key
            .split_once(':')
            .context("--signing-key must be id:secret")?;
        Ok(self
            .urls
            .iter()
            .map(|u| Client::new(u.trim_end_matches('/'), Some(id), secret.as_bytes()))
            .collect())
    }

    /// The client of the first `--url`.
    pub fn client(&self) -> anyhow::Result<Client> {
        self.clients()?
            .into_iter()
            .next()
            .context("give at least one --url")
    }

    /// PostgreSQL, Redis and the key layout, for the audit.
    pub async fn stores(
        &self,
    ) -> anyhow::Result<(tokio_postgres::Client, stores::redis::Conn, Keyspace)> {
        let file = shared::settings::from_file;
        let database_url = file("DATABASE_URL")?.unwrap_or_else(|| self.database_url.clone());
        let redis_url = file("REDIS_URL")?.unwrap_or_else(|| self.redis_url.clone());
        let pg = stores::postgres::connect(&database_url)
            .await
            .context("connecting to DATABASE_URL for the audit")?;
        let target = stores::redis::Target::new(&redis_url, &self.redis_cluster_nodes)
            .with_tls(stores::redis::Tls::from_env());
        let redis = stores::redis::connect(&target)
            .await
            .context("connecting to REDIS_URL for the audit")?;
        Ok((pg, redis, Keyspace::new(self.redis_namespace.clone())))
    }
}

/// The payment webhook's secret: the flag or PAYMENT_WEBHOOK_SECRET, else the file
/// PAYMENT_WEBHOOK_SECRET_FILE names.
pub fn webhook_secret(given: Option<&str>) -> anyhow::Result<Option<String>> {
    match given {
        Some(secret) => Ok(Some(secret.to_owned())),
        None => Ok(shared::settings::from_file("PAYMENT_WEBHOOK_SECRET")?),
    }
}

/// Drains, audits and prints one line; `Ok(true)` on PASS.
pub async fn audit_and_print(
    target: &Target,
    product: &ProductId,
    expect: &Expectation,
    label: &str,
    drain_timeout: Duration,
) -> anyhow::Result<(bool, Report)> {
    let (pg, mut redis, keys) = target.stores().await?;
    eprintln!("{label}: waiting for the pipeline to drain…");
    let report =
        checks::drained_audit(&pg, &mut redis, &keys, product, expect, drain_timeout).await?;
    println!(
        "{label:<10} 202s {:>5} ({} units) | 503→accepted {:>3} | persisted {:>5} | redis remaining {:>5} | \
         pending handoff {} | duplicates {} | oversold {} | over cap {} | lost {} | leaked {} | 5xx {} | {}{}",
        report.accepted_orders,
        report.accepted_units - report.resolved_late_units,
        report.resolved_late_units,
        report.persisted_units,
        report.redis_remaining.map_or("?".into(), |r| r.to_string()),
        report.pending_handoff,
        report.duplicated,
        report.oversold,
        report.over_cap_users,
        report.lost,
        report.leaked.map_or("?".into(), |l| l.to_string()),
        report.server_errors,
        if report.paid_units + report.returned_units > 0 {
            format!(
                "paid {} | returned {} | ",
                report.paid_units, report.returned_units
            )
        } else {
            String::new()
        },
        report.verdict(),
    );
    Ok((report.passed(), report))
}
