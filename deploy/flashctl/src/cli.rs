//! The command line of `flashctl`: the global flags and the list of commands (each
//! command's own arguments live in its module under `commands/`).

use clap::{Parser, Subcommand};

use shared::keys::Keyspace;

use crate::commands::{
    Ctx, audit_log, block, limits, migrate, order, orders, reconcile, room, sale, topics, user,
    violations,
};

/// Operate a flash sale: open it, halt it, block abusers, tune limits, find suspicious
/// orders, and keep Redis, Kafka and PostgreSQL in agreement. Every change is recorded
/// in the `ops_audit` table.
#[derive(Parser)]
#[command(name = "flashctl", version, about, long_about = None)]
pub struct Cli {
    /// Machine-readable output (one JSON document on stdout).
    #[arg(long, global = true)]
    pub json: bool,
    /// Do not ask before destructive commands (halt, recover, user erase).
    #[arg(long, global = true)]
    pub yes: bool,
    /// Who is acting, for the audit trail (default: $USER).
    #[arg(long, global = true)]
    pub operator: Option<String>,
    /// Redis holding the live sale.
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = shared::defaults::REDIS_URL,
        global = true,
        hide_env_values = true
    )]
    pub redis_url: String,
    /// Seed nodes (`host:port,…`) of a Redis Cluster; when given, the cluster is used and
    /// --redis-url only lends its credentials.
    #[arg(long, env = "REDIS_CLUSTER_NODES", default_value = "", global = true)]
    pub redis_cluster_nodes: String,
    /// Prefix of every Redis key (same as the API's).
    #[arg(long, env = "REDIS_NAMESPACE", default_value = shared::defaults::REDIS_NAMESPACE, global = true)]
    pub redis_namespace: String,
    /// PostgreSQL with the durable record.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = shared::defaults::DATABASE_URL,
        global = true,
        hide_env_values = true
    )]
    pub database_url: String,
    /// Kafka bootstrap servers.
    #[arg(
        long,
        env = "KAFKA_BROKERS",
        default_value = shared::defaults::KAFKA_BROKERS,
        global = true
    )]
    pub kafka_brokers: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// What the global flags give every command; `REDIS_URL_FILE` and `DATABASE_URL_FILE`,
    /// when set, name files holding those URLs (Docker and Kubernetes secrets).
    pub fn ctx(&self) -> Result<Ctx, shared::settings::SettingsError> {
        let file = shared::settings::from_file;
        let redis_url = file("REDIS_URL")?.unwrap_or_else(|| self.redis_url.clone());
        let database_url = file("DATABASE_URL")?.unwrap_or_else(|| self.database_url.clone());
        Ok(Ctx {
            json: self.json,
            yes: self.yes,
            operator: self.operator.clone(),
            redis: stores::redis::Target::new(&redis_url, &self.redis_cluster_nodes)
                .with_tls(stores::redis::Tls::from_env()),
            database_url,
            kafka_brokers: self.kafka_brokers.clone(),
            keys: Keyspace::new(self.redis_namespace.clone()),
        })
    }
}

/// The commands.
#[derive(Subcommand)]
pub enum Command {
    /// Open, inspect, halt, resume and recover sales.
    #[command(subcommand)]
    Sale(sale::SaleCommand),
    /// Read or change a sale's rate limits, live.
    #[command(subcommand)]
    Limits(limits::LimitsCommand),
    /// Block an IP (IPv6: its /64), a device fingerprint or a user.
    Block(block::Block),
    /// Lift a block.
    Unblock(block::Unblock),
    /// Limit, block, signature and replay violations per hour (last 24 h).
    Violations(violations::Violations),
    /// Find suspicious orders.
    #[command(subcommand)]
    Orders(orders::OrdersCommand),
    /// Act on one order: cancel a reservation.
    #[command(subcommand)]
    Order(order::OrderCommand),
    /// A sale's waiting room: open, pause, resume, rate, message, close, status, verify.
    #[command(subcommand)]
    Room(room::RoomCommand),
    /// Compare Redis with PostgreSQL and the pipeline in between; exit 3 on drift.
    Reconcile(reconcile::Reconcile),
    /// Personal data of a user.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Show the audit trail of changes made with flashctl.
    AuditLog(audit_log::AuditLog),
    /// Apply pending PostgreSQL migrations from sql/.
    Migrate(migrate::Migrate),
    /// Manage Kafka topics.
    #[command(subcommand)]
    Topics(topics::TopicsCommand),
}
