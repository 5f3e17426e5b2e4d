//! `flashctl`: see `flashctl --help` and the runbook in `deploy/ops/RUNBOOK.md`.
#![forbid(unsafe_code)]

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use flashctl::guard::{self, Limits, Target};
use flashctl::{OpsError, sale, topics};
use serde::Serialize;
use shared::ProductId;
use shared::keys::{Keyspace, Scope};

/// Operate a flash sale: open it, halt it, block abusers, tune limits, and keep Redis,
/// Kafka and PostgreSQL in agreement.
#[derive(Parser)]
#[command(name = "flashctl", version, about, long_about = None)]
struct Cli {
    /// Machine-readable output (one JSON document on stdout).
    #[arg(long, global = true)]
    json: bool,
    /// Redis holding the live sale.
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        global = true,
        hide_env_values = true
    )]
    redis_url: String,
    /// Prefix of every Redis key (same as the API's).
    #[arg(long, env = "REDIS_NAMESPACE", default_value = "fs", global = true)]
    redis_namespace: String,
    /// PostgreSQL with the durable record.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://flashsale:flashsale@127.0.0.1:5432/flashsale",
        global = true,
        hide_env_values = true
    )]
    database_url: String,
    /// Kafka bootstrap servers.
    #[arg(
        long,
        env = "KAFKA_BROKERS",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    kafka_brokers: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Open, inspect, halt and resume sales.
    Sale {
        #[command(subcommand)]
        command: SaleCommand,
    },
    /// Read or change a sale's rate limits, live.
    Limits {
        #[command(subcommand)]
        command: LimitsCommand,
    },
    /// Block an IP (IPv6: its /64), a device fingerprint or a user.
    Block(BlockArgs),
    /// Lift a block.
    Unblock(UnblockArgs),
    /// Apply pending PostgreSQL migrations from sql/.
    Migrate,
    /// Manage Kafka topics.
    Topics {
        #[command(subcommand)]
        command: TopicsCommand,
    },
}

#[derive(Args, Default)]
struct LimitArgs {
    /// Per client network, e.g. 10/s:20 (RATE/PERIOD:BURST, PERIOD s|m|h) or off.
    #[arg(long, value_name = "LIMIT")]
    ip: Option<String>,
    /// Per device fingerprint (requests without one share one bucket).
    #[arg(long, value_name = "LIMIT")]
    fingerprint: Option<String>,
    /// Per user.
    #[arg(long, value_name = "LIMIT")]
    user: Option<String>,
    /// For the whole product.
    #[arg(long, value_name = "LIMIT")]
    global: Option<String>,
}

impl LimitArgs {
    /// The limits given on the command line.
    fn given(&self) -> Result<Limits, OpsError> {
        let mut out = std::collections::BTreeMap::new();
        for (scope, raw) in [
            (Scope::Ip, &self.ip),
            (Scope::Fingerprint, &self.fingerprint),
            (Scope::User, &self.user),
            (Scope::Global, &self.global),
        ] {
            if let Some(raw) = raw {
                out.insert(scope, guard::parse_limit(raw)?);
            }
        }
        Ok(Limits(out))
    }
}

#[derive(Subcommand)]
enum SaleCommand {
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
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// State, stock, Redis remaining, persisted units and pending hand-off.
    Status {
        /// Product id.
        #[arg(long)]
        product: ProductId,
    },
    /// Stop admitting orders now (answers 409 SALE_NOT_OPEN on every instance).
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
        #[command(flatten)]
        limits: LimitArgs,
    },
}

#[derive(Subcommand)]
enum LimitsCommand {
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
        #[command(flatten)]
        limits: LimitArgs,
    },
}

#[derive(Args)]
struct BlockArgs {
    /// ip, fingerprint or user.
    #[arg(value_parser = parse_scope)]
    scope: Scope,
    /// The address, fingerprint or user id.
    value: String,
    /// Only this sale (default: every sale).
    #[arg(long)]
    product: Option<ProductId>,
    /// How long, e.g. 15m, 2h; `forever` until unblocked.
    #[arg(long, default_value = "1h")]
    ttl: String,
    /// Why (kept with the block).
    #[arg(long, default_value = "blocked by an operator")]
    reason: String,
}

#[derive(Args)]
struct UnblockArgs {
    /// ip, fingerprint or user.
    #[arg(value_parser = parse_scope)]
    scope: Scope,
    /// The address, fingerprint or user id.
    value: String,
    /// Only this sale (default: every sale).
    #[arg(long)]
    product: Option<ProductId>,
}

fn parse_scope(raw: &str) -> Result<Scope, String> {
    Scope::parse(raw)
        .filter(|s| *s != Scope::Global)
        .ok_or_else(|| format!("{raw:?}: expected ip, fingerprint or user"))
}

#[derive(Subcommand)]
enum TopicsCommand {
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

/// What a command prints: JSON with `--json`, text otherwise.
struct Output {
    json: serde_json::Value,
    human: String,
}

impl Output {
    fn new(value: &impl Serialize, human: String) -> Self {
        Self {
            json: serde_json::to_value(value).unwrap_or_default(),
            human,
        }
    }
}

async fn postgres(url: &str) -> Result<tokio_postgres::Client, OpsError> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("flashctl: postgres connection: {e}");
        }
    });
    Ok(client)
}

async fn redis_conn(url: &str) -> Result<redis::aio::MultiplexedConnection, OpsError> {
    let client = redis::Client::open(url)?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(3)))
        .set_response_timeout(Some(Duration::from_secs(5)));
    Ok(client
        .get_multiplexed_async_connection_with_config(&config)
        .await?)
}

fn parse_ttl(raw: &str) -> Result<Option<Duration>, OpsError> {
    if raw == "forever" {
        return Ok(None);
    }
    humantime::parse_duration(raw)
        .map(Some)
        .map_err(|e| OpsError::Invalid(format!("--ttl {raw:?}: {e}")))
}

fn product_list(products: &[ProductId]) -> String {
    if products.is_empty() {
        "no sale".into()
    } else {
        products
            .iter()
            .map(ProductId::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

async fn run(cli: Cli) -> Result<Output, OpsError> {
    let keys = Keyspace::new(cli.redis_namespace.clone());
    match cli.command {
        Command::Sale { command } => match command {
            SaleCommand::Open {
                product,
                stock,
                per_user,
                starts_at,
                ends_at,
                limits,
            } => {
                let mut all = Limits::defaults();
                all.0.extend(limits.given()?.0);
                let new = sale::NewSale {
                    product,
                    stock,
                    per_user,
                    starts_at: starts_at.as_deref().map(sale::parse_time).transpose()?,
                    ends_at: ends_at.as_deref().map(sale::parse_time).transpose()?,
                    limits: all,
                };
                let pg = postgres(&cli.database_url).await?;
                let mut redis = redis_conn(&cli.redis_url).await?;
                let outcome = sale::open(&pg, &mut redis, &keys, &new).await?;
                let human = match outcome {
                    sale::OpenOutcome::Created => format!(
                        "sale {} open: {} units, per-user cap {}\n{}",
                        new.product,
                        stock,
                        per_user,
                        new.limits.human()
                    ),
                    sale::OpenOutcome::AlreadyOpen => {
                        format!("sale {} was already open", new.product)
                    }
                };
                Ok(Output::new(
                    &serde_json::json!({"product": new.product, "outcome": outcome, "stock": stock,
                                        "per_user": per_user, "limits": new.limits}),
                    human,
                ))
            }
            SaleCommand::Status { product } => {
                let pg = postgres(&cli.database_url).await?;
                let mut redis = redis_conn(&cli.redis_url).await?;
                let status = sale::status(&pg, &mut redis, &keys, &product).await?;
                Ok(Output::new(&status, status.human()))
            }
            SaleCommand::Halt { product } => {
                let mut redis = redis_conn(&cli.redis_url).await?;
                sale::set_state(&mut redis, &keys, &product, sale::SaleState::Halted).await?;
                Ok(Output::new(
                    &serde_json::json!({"product": product, "state": "halted"}),
                    format!("sale {product} halted: every instance answers SALE_NOT_OPEN"),
                ))
            }
            SaleCommand::Resume { product } => {
                let mut redis = redis_conn(&cli.redis_url).await?;
                sale::set_state(&mut redis, &keys, &product, sale::SaleState::Open).await?;
                Ok(Output::new(
                    &serde_json::json!({"product": product, "state": "open"}),
                    format!("sale {product} open again"),
                ))
            }
            SaleCommand::Recover {
                product,
                halted,
                topic,
                group,
                limits,
            } => {
                let mut all = Limits::defaults();
                all.0.extend(limits.given()?.0);
                let pg = postgres(&cli.database_url).await?;
                let mut redis = redis_conn(&cli.redis_url).await?;
                let pipeline = sale::Pipeline {
                    brokers: cli.kafka_brokers.clone(),
                    topic,
                    group,
                };
                let state = if halted {
                    sale::SaleState::Halted
                } else {
                    sale::SaleState::Open
                };
                let r =
                    sale::recover(&pg, &mut redis, &keys, &product, &pipeline, &all, state).await?;
                let human = format!(
                    "recovered {}: {} of {} units remaining ({} sold, {} buyers restored), {}",
                    r.product,
                    r.remaining,
                    r.stock,
                    r.sold,
                    r.buyers,
                    r.state.as_str()
                );
                Ok(Output::new(&r, human))
            }
        },
        Command::Limits { command } => {
            let mut redis = redis_conn(&cli.redis_url).await?;
            match command {
                LimitsCommand::Get { product } => {
                    let limits = guard::limits_get(&mut redis, &keys, &product).await?;
                    Ok(Output::new(&limits, limits.human()))
                }
                LimitsCommand::Set { product, limits } => {
                    let changes = limits.given()?;
                    if changes.0.is_empty() {
                        return Err(OpsError::Invalid(
                            "give at least one of --ip, --fingerprint, --user, --global".into(),
                        ));
                    }
                    let now = guard::limits_set(&mut redis, &keys, &product, &changes).await?;
                    Ok(Output::new(
                        &now,
                        format!("limits of {product} now:\n{}", now.human()),
                    ))
                }
            }
        }
        Command::Block(args) => {
            let target = Target::parse(args.scope, &args.value)?;
            let ttl = parse_ttl(&args.ttl)?;
            let mut redis = redis_conn(&cli.redis_url).await?;
            let products = guard::block(
                &mut redis,
                &keys,
                &target,
                args.product.as_ref(),
                ttl,
                &args.reason,
            )
            .await?;
            let human = format!(
                "blocked {} {} on {} for {}",
                target.scope.as_str(),
                target.value,
                product_list(&products),
                args.ttl
            );
            Ok(Output::new(
                &serde_json::json!({"target": target, "products": products, "ttl": args.ttl}),
                human,
            ))
        }
        Command::Unblock(args) => {
            let target = Target::parse(args.scope, &args.value)?;
            let mut redis = redis_conn(&cli.redis_url).await?;
            let products =
                guard::unblock(&mut redis, &keys, &target, args.product.as_ref()).await?;
            let human = format!(
                "unblocked {} {} on {}",
                target.scope.as_str(),
                target.value,
                product_list(&products)
            );
            Ok(Output::new(
                &serde_json::json!({"target": target, "products": products}),
                human,
            ))
        }
        Command::Migrate => {
            let applied = inventory_worker::db::migrate(&cli.database_url).await?;
            Ok(Output::new(
                &serde_json::json!({"applied": applied}),
                format!("{applied} migration(s) applied; schema up to date"),
            ))
        }
        Command::Topics { command } => match command {
            TopicsCommand::Create {
                partitions,
                replication,
                topic,
                dlq_topic,
            } => {
                let results = topics::create(
                    &cli.kafka_brokers,
                    &[&topic, &dlq_topic],
                    partitions,
                    replication,
                )
                .await?;
                let human = results
                    .iter()
                    .map(|r| format!("{:<20} {}", r.topic, r.outcome))
                    .collect::<Vec<_>>()
                    .join("\n");
                Ok(Output::new(&results, human))
            }
        },
    }
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli).await {
        Ok(out) => {
            if json {
                println!("{}", out.json);
            } else {
                println!("{}", out.human);
            }
        }
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"error": e.to_string(), "exit_code": e.exit_code()})
                );
            }
            eprintln!("flashctl: {e}");
            std::process::exit(e.exit_code());
        }
    }
}
