//! The command line of `flashctl` (clap definitions only; `main.rs` runs them).

use clap::{Args, Parser, Subcommand};
use shared::ProductId;
use shared::keys::Scope;

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
        default_value = "redis://127.0.0.1:6379",
        global = true,
        hide_env_values = true
    )]
    pub redis_url: String,
    /// Prefix of every Redis key (same as the API's).
    #[arg(long, env = "REDIS_NAMESPACE", default_value = "fs", global = true)]
    pub redis_namespace: String,
    /// PostgreSQL with the durable record.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://flashsale:flashsale@127.0.0.1:5432/flashsale",
        global = true,
        hide_env_values = true
    )]
    pub database_url: String,
    /// Kafka bootstrap servers.
    #[arg(
        long,
        env = "KAFKA_BROKERS",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    pub kafka_brokers: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Subcommand)]
pub enum Command {
    /// Open, inspect, halt, resume and recover sales.
    Sale {
        /// Which.
        #[command(subcommand)]
        command: SaleCommand,
    },
    /// Read or change a sale's rate limits, live.
    Limits {
        /// Which.
        #[command(subcommand)]
        command: LimitsCommand,
    },
    /// Block an IP (IPv6: its /64), a device fingerprint or a user.
    Block(BlockArgs),
    /// Lift a block.
    Unblock(UnblockArgs),
    /// Limit, block, signature and replay violations per hour (last 24 h).
    Violations {
        /// The sale (without it: violations recorded before a product was known, such as
        /// bad signatures).
        #[arg(long)]
        product: Option<ProductId>,
        /// How many hours back (1–25).
        #[arg(long, default_value_t = 24)]
        hours: u64,
    },
    /// Find suspicious orders.
    Orders {
        /// Which.
        #[command(subcommand)]
        command: OrdersCommand,
    },
    /// Compare Redis with PostgreSQL and the pipeline in between; exit 3 on drift.
    Reconcile {
        /// The sale.
        #[arg(long)]
        product: ProductId,
        /// Wait this long for the pipeline to settle (no lag, no pending hand-off).
        #[arg(long, default_value = "30s")]
        wait: String,
        /// The order topic.
        #[arg(long, env = "KAFKA_TOPIC", default_value = "orders")]
        topic: String,
        /// The worker's consumer group.
        #[arg(long, env = "KAFKA_GROUP", default_value = "inventory-worker")]
        group: String,
    },
    /// Personal data of a user.
    User {
        /// Which.
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Show the audit trail of changes made with flashctl.
    AuditLog {
        /// How many entries, newest first.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Apply pending PostgreSQL migrations from sql/.
    Migrate,
    /// Manage Kafka topics.
    Topics {
        /// Which.
        #[command(subcommand)]
        command: TopicsCommand,
    },
}

/// Limits given on the command line.
#[derive(Args, Default)]
pub struct LimitArgs {
    /// Per client network, e.g. 10/s:20 (RATE/PERIOD:BURST, PERIOD s|m|h) or off.
    #[arg(long, value_name = "LIMIT")]
    pub ip: Option<String>,
    /// Per device fingerprint (requests without one share one bucket).
    #[arg(long, value_name = "LIMIT")]
    pub fingerprint: Option<String>,
    /// Per user.
    #[arg(long, value_name = "LIMIT")]
    pub user: Option<String>,
    /// For the whole product.
    #[arg(long, value_name = "LIMIT")]
    pub global: Option<String>,
}

/// `sale …`.
#[derive(Subcommand)]
pub enum SaleCommand {
    /// Create a sale in PostgreSQL and Redis and open it (default limits unless given).
    Open {
        /// Product id (`[a-z0-9-]{1,50}`).
        #[arg(long)]
        product: ProductId,
        /// Units on sale.
        #[arg(long)]
        stock: u32,
        /// Most units one user may buy (0 = no cap).
        #[arg(long, default_value_t = 0)]
        per_user: u32,
        /// Opening time: RFC 3339 or Unix ms (default: now).
        #[arg(long)]
        starts_at: Option<String>,
        /// Closing time: RFC 3339 or Unix ms (default: none).
        #[arg(long)]
        ends_at: Option<String>,
        /// Limits other than the defaults.
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// State, stock, Redis remaining, persisted units and pending hand-off.
    Status {
        /// Product id.
        #[arg(long)]
        product: ProductId,
    },
    /// Stop admitting orders now (409 SALE_NOT_OPEN on every instance).
    Halt {
        /// Product id.
        #[arg(long)]
        product: ProductId,
    },
    /// Admit orders again after a halt.
    Resume {
        /// Product id.
        #[arg(long)]
        product: ProductId,
    },
    /// Rebuild a sale Redis lost, from PostgreSQL, once the pipeline has drained.
    Recover {
        /// Product id.
        #[arg(long)]
        product: ProductId,
        /// Restore the sale halted (resume it later) instead of open.
        #[arg(long)]
        halted: bool,
        /// The order topic the worker consumes.
        #[arg(long, env = "KAFKA_TOPIC", default_value = "orders")]
        topic: String,
        /// The worker's consumer group.
        #[arg(long, env = "KAFKA_GROUP", default_value = "inventory-worker")]
        group: String,
        /// Limits other than the defaults.
        #[command(flatten)]
        limits: LimitArgs,
    },
}

/// `limits …`.
#[derive(Subcommand)]
pub enum LimitsCommand {
    /// Show a sale's limits as the admission script reads them.
    Get {
        /// Product id.
        #[arg(long)]
        product: ProductId,
    },
    /// Change some limits; the next request on every instance sees them.
    Set {
        /// Product id.
        #[arg(long)]
        product: ProductId,
        /// The new limits.
        #[command(flatten)]
        limits: LimitArgs,
    },
}

/// `block`.
#[derive(Args)]
pub struct BlockArgs {
    /// ip, fingerprint or user.
    #[arg(value_parser = parse_scope)]
    pub scope: Scope,
    /// The address, fingerprint or user id.
    pub value: String,
    /// Only this sale (default: every sale).
    #[arg(long)]
    pub product: Option<ProductId>,
    /// How long, e.g. 15m, 2h; `forever` until unblocked.
    #[arg(long, default_value = "1h")]
    pub ttl: String,
    /// Why (kept with the block).
    #[arg(long, default_value = "blocked by an operator")]
    pub reason: String,
}

/// `unblock`.
#[derive(Args)]
pub struct UnblockArgs {
    /// ip, fingerprint or user.
    #[arg(value_parser = parse_scope)]
    pub scope: Scope,
    /// The address, fingerprint or user id.
    pub value: String,
    /// Only this sale (default: every sale).
    #[arg(long)]
    pub product: Option<ProductId>,
}

fn parse_scope(raw: &str) -> Result<Scope, String> {
    Scope::parse(raw)
        .filter(|s| *s != Scope::Global)
        .ok_or_else(|| format!("{raw:?}: expected ip, fingerprint or user"))
}

/// `orders …`.
#[derive(Subcommand)]
pub enum OrdersCommand {
    /// Users over the cap, devices and networks shared by many users, bursts from one
    /// device (pseudonyms only: no raw address is stored).
    Suspicious {
        /// The sale.
        #[arg(long)]
        product: ProductId,
        /// How far back, e.g. 1h, 30m.
        #[arg(long, default_value = "1h")]
        since: String,
        /// A device or network is shared when at least this many users used it.
        #[arg(long, default_value_t = 3)]
        min_users: i64,
        /// A burst is at least this many orders from one device within a minute.
        #[arg(long, default_value_t = 5)]
        burst: i64,
    },
}

/// `user …`.
#[derive(Subcommand)]
pub enum UserCommand {
    /// Remove a user's personal data on request (orders stay, under a pseudonym).
    Erase {
        /// The user id.
        #[arg(long)]
        user: shared::UserId,
    },
}

/// `topics …`.
#[derive(Subcommand)]
pub enum TopicsCommand {
    /// Create the order topic and its dead-letter topic (existing ones are kept).
    Create {
        /// Partitions per topic.
        #[arg(long, default_value_t = 6)]
        partitions: i32,
        /// Replication factor.
        #[arg(long, default_value_t = 1)]
        replication: i32,
        /// Order topic.
        #[arg(long, env = "KAFKA_TOPIC", default_value = "orders")]
        topic: String,
        /// Dead-letter topic.
        #[arg(long, env = "KAFKA_DLQ_TOPIC", default_value = "orders.dlq")]
        dlq_topic: String,
    },
}
