//! `flashctl`: see `flashctl --help` and the runbook in `deploy/ops/RUNBOOK.md`.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use flashctl::{OpsError, sale, topics};
use serde::Serialize;
use shared::ProductId;
use shared::keys::Keyspace;

/// Operate a flash sale: open it, watch it, and keep Redis, Kafka and PostgreSQL in
/// agreement.
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
        default_value = "postgres://postgres@127.0.0.1:5432/flashsale",
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
    /// Open and inspect sales.
    Sale {
        #[command(subcommand)]
        command: SaleCommand,
    },
    /// Apply pending PostgreSQL migrations from sql/.
    Migrate,
    /// Manage Kafka topics.
    Topics {
        #[command(subcommand)]
        command: TopicsCommand,
    },
}

#[derive(Subcommand)]
enum SaleCommand {
    /// Create a sale in PostgreSQL and Redis and open it.
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
    },
    /// State, stock, Redis remaining, persisted units and pending hand-off.
    Status {
        /// Product id.
        #[arg(long)]
        product: ProductId,
    },
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
        .set_connection_timeout(Some(std::time::Duration::from_secs(3)))
        .set_response_timeout(Some(std::time::Duration::from_secs(5)));
    Ok(client
        .get_multiplexed_async_connection_with_config(&config)
        .await?)
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
            } => {
                let new = sale::NewSale {
                    product,
                    stock,
                    per_user,
                    starts_at: starts_at.as_deref().map(sale::parse_time).transpose()?,
                    ends_at: ends_at.as_deref().map(sale::parse_time).transpose()?,
                };
                let pg = postgres(&cli.database_url).await?;
                let mut redis = redis_conn(&cli.redis_url).await?;
                let outcome = sale::open(&pg, &mut redis, &keys, &new).await?;
                let human = match outcome {
                    sale::OpenOutcome::Created => {
                        format!(
                            "sale {} open: {} units, per-user cap {}",
                            new.product, stock, per_user
                        )
                    }
                    sale::OpenOutcome::AlreadyOpen => {
                        format!("sale {} was already open", new.product)
                    }
                };
                Ok(Output::new(
                    &serde_json::json!({"product": new.product, "outcome": outcome, "stock": stock, "per_user": per_user}),
                    human,
                ))
            }
            SaleCommand::Status { product } => {
                let pg = postgres(&cli.database_url).await?;
                let mut redis = redis_conn(&cli.redis_url).await?;
                let status = sale::status(&pg, &mut redis, &keys, &product).await?;
                Ok(Output::new(&status, status.human()))
            }
        },
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
