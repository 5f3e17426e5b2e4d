//! `flashctl`: see `flashctl --help` and the runbook in `deploy/ops/RUNBOOK.md`.
#![forbid(unsafe_code)]

/// mimalloc: request handling allocates many small, short-lived buffers, where glibc's
/// malloc showed up as about an eighth of the API's CPU time in profiles.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;

use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use clap::Parser;
use cli::{
    BlockArgs, Cli, Command, LimitArgs, LimitsCommand, OrdersCommand, SaleCommand, TopicsCommand,
    UnblockArgs, UserCommand,
};
use flashctl::guard::{self, Limits, Target};
use flashctl::{OpsError, erase, insight, sale, topics, trail};
use serde::Serialize;
use serde_json::{Value, json};
use shared::ProductId;
use shared::keys::{Keyspace, Scope};

/// What a command prints (JSON with `--json`, text otherwise) and its exit code.
struct Output {
    json: Value,
    human: String,
    exit: i32,
}

impl Output {
    fn new(value: &impl Serialize, human: String) -> Self {
        Self {
            json: serde_json::to_value(value).unwrap_or_default(),
            human,
            exit: 0,
        }
    }
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

    /// The defaults, overridden by what was given.
    fn over_defaults(&self) -> Result<Limits, OpsError> {
        let mut all = Limits::defaults();
        all.0.extend(self.given()?.0);
        Ok(all)
    }

    fn as_json(&self) -> Value {
        json!({"ip": self.ip, "fingerprint": self.fingerprint, "user": self.user, "global": self.global})
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

fn duration(flag: &str, raw: &str) -> Result<Duration, OpsError> {
    humantime::parse_duration(raw).map_err(|e| OpsError::Invalid(format!("{flag} {raw:?}: {e}")))
}

fn parse_ttl(raw: &str) -> Result<Option<Duration>, OpsError> {
    if raw == "forever" {
        return Ok(None);
    }
    duration("--ttl", raw).map(Some)
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

/// Asks before a destructive command unless `--yes`; without a terminal, refuses.
fn confirm(yes: bool, what: &str) -> Result<(), OpsError> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(OpsError::Invalid(format!(
            "{what}: refusing without --yes (no terminal to confirm on)"
        )));
    }
    eprint!("{what}. Type yes to go on: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| OpsError::Other(e.into()))?;
    if line.trim() == "yes" {
        Ok(())
    } else {
        Err(OpsError::Invalid("not confirmed; nothing changed".into()))
    }
}

/// The audit-trail name and arguments of a command that changes something.
fn describe(command: &Command) -> Option<(&'static str, Value)> {
    Some(match command {
        Command::Sale { command } => match command {
            SaleCommand::Open {
                product,
                stock,
                per_user,
                starts_at,
                ends_at,
                limits,
            } => (
                "sale open",
                json!({"product": product, "stock": stock, "per_user": per_user,
                       "starts_at": starts_at, "ends_at": ends_at, "limits": limits.as_json()}),
            ),
            SaleCommand::Status { .. } => return None,
            SaleCommand::Halt { product } => ("sale halt", json!({"product": product})),
            SaleCommand::Resume { product } => ("sale resume", json!({"product": product})),
            SaleCommand::Recover {
                product,
                halted,
                limits,
                ..
            } => (
                "sale recover",
                json!({"product": product, "halted": halted, "limits": limits.as_json()}),
            ),
        },
        Command::Limits {
            command: LimitsCommand::Set { product, limits },
        } => (
            "limits set",
            json!({"product": product, "limits": limits.as_json()}),
        ),
        Command::Block(BlockArgs {
            scope,
            value,
            product,
            ttl,
            reason,
        }) => (
            "block",
            json!({"scope": scope.as_str(), "value": value, "product": product, "ttl": ttl, "reason": reason}),
        ),
        Command::Unblock(UnblockArgs {
            scope,
            value,
            product,
        }) => (
            "unblock",
            json!({"scope": scope.as_str(), "value": value, "product": product}),
        ),
        Command::User {
            command: UserCommand::Erase { .. },
        } => ("user erase", json!({})),
        Command::Migrate => ("migrate", json!({})),
        Command::Topics {
            command:
                TopicsCommand::Create {
                    partitions,
                    topic,
                    dlq_topic,
                    ..
                },
        } => (
            "topics create",
            json!({"partitions": partitions, "topic": topic, "dlq_topic": dlq_topic}),
        ),
        Command::Limits { .. }
        | Command::Violations { .. }
        | Command::Orders { .. }
        | Command::Reconcile { .. }
        | Command::AuditLog { .. } => return None,
    })
}

async fn run(cli: &Cli) -> Result<Output, OpsError> {
    let keys = Keyspace::new(cli.redis_namespace.clone());
    match &cli.command {
        Command::Sale { command } => sale_command(cli, &keys, command).await,
        Command::Limits { command } => {
            let mut redis = redis_conn(&cli.redis_url).await?;
            match command {
                LimitsCommand::Get { product } => {
                    let limits = guard::limits_get(&mut redis, &keys, product).await?;
                    Ok(Output::new(&limits, limits.human()))
                }
                LimitsCommand::Set { product, limits } => {
                    let changes = limits.given()?;
                    if changes.0.is_empty() {
                        return Err(OpsError::Invalid(
                            "give at least one of --ip, --fingerprint, --user, --global".into(),
                        ));
                    }
                    let now = guard::limits_set(&mut redis, &keys, product, &changes).await?;
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
                &json!({"target": target, "products": products, "ttl": args.ttl}),
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
                &json!({"target": target, "products": products}),
                human,
            ))
        }
        Command::Violations { product, hours } => {
            let mut redis = redis_conn(&cli.redis_url).await?;
            let rows = insight::violations(&mut redis, &keys, product.as_ref(), *hours).await?;
            let mut human = format!(
                "violations per hour, {} (UTC):\n",
                product
                    .as_ref()
                    .map_or("before admission".into(), |p| format!("sale {p}"))
            );
            for h in &rows {
                let list = h
                    .counts
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                human.push_str(&format!(
                    "{}  {}\n",
                    h.hour,
                    if list.is_empty() { "-".into() } else { list }
                ));
            }
            Ok(Output::new(&rows, human.trim_end().to_owned()))
        }
        Command::Orders {
            command:
                OrdersCommand::Suspicious {
                    product,
                    since,
                    min_users,
                    burst,
                },
        } => {
            let pg = postgres(&cli.database_url).await?;
            let since = duration("--since", since)?;
            let s = insight::suspicious(&pg, product, since, *min_users, *burst).await?;
            let mut human = format!(
                "suspicious orders of {product} in the last {}:\n",
                humantime::format_duration(since)
            );
            section(&mut human, "users over the cap", &s.over_cap, |(u, n)| {
                format!("{u}  {n} units")
            });
            section(
                &mut human,
                &format!("devices shared by ≥ {min_users} users"),
                &s.shared_devices,
                |(d, users, orders)| format!("device {d}  {users} users, {orders} orders"),
            );
            section(
                &mut human,
                &format!("networks shared by ≥ {min_users} users"),
                &s.shared_networks,
                |(n, users, orders)| format!("network {n}  {users} users, {orders} orders"),
            );
            section(
                &mut human,
                &format!("devices with ≥ {burst} orders in a minute"),
                &s.device_bursts,
                |(d, minute, orders)| format!("device {d}  {orders} orders at {minute}"),
            );
            Ok(Output::new(&s, human.trim_end().to_owned()))
        }
        Command::Reconcile {
            product,
            wait,
            topic,
            group,
        } => {
            let pg = postgres(&cli.database_url).await?;
            let mut redis = redis_conn(&cli.redis_url).await?;
            let deadline = Instant::now() + duration("--wait", wait)?;
            let probe = topics::LagProbe::new(&cli.kafka_brokers, topic, group)?;
            let r = loop {
                let lag = probe.read().await?.total();
                let r = insight::reconcile(&pg, &mut redis, &keys, product, lag).await?;
                if r.verdict != shared::sale::Verdict::Settling || Instant::now() >= deadline {
                    break r;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            };
            let opt = |v: Option<i64>| v.map_or("-".to_owned(), |v| v.to_string());
            let human = format!(
                "{}: {}\nstock {} | Redis taken {} | persisted {} (rows {}) | in outbox {} | worker lag {} | dead-lettered {} | drift {}",
                r.product,
                r.verdict.as_str(),
                r.stock,
                opt(r.redis_taken),
                r.persisted,
                r.row_units,
                r.pending_handoff_units,
                r.worker_lag,
                r.dead_lettered,
                opt(r.drift)
            );
            let mut out = Output::new(&r, human);
            out.exit = i32::from(r.verdict.exit_code());
            Ok(out)
        }
        Command::User {
            command: UserCommand::Erase { user },
        } => {
            confirm(cli.yes, &format!("erase the personal data of user {user}"))?;
            let mut pg = postgres(&cli.database_url).await?;
            let mut redis = redis_conn(&cli.redis_url).await?;
            let e = erase::erase_user(&mut pg, &mut redis, &keys, user).await?;
            let human = format!(
                "erased: {} order(s) now under {}, {} dead letter(s) and {} audit entr(ies) redacted, {} Redis key(s) deleted; sale totals unchanged",
                e.orders, e.pseudonym, e.dead_letters, e.audit_entries, e.redis_keys
            );
            Ok(Output::new(&e, human))
        }
        Command::AuditLog { limit } => {
            let pg = postgres(&cli.database_url).await?;
            let entries = trail::recent(&pg, *limit).await?;
            let human = entries
                .iter()
                .map(|e| {
                    format!(
                        "{}  {:<10} {:<14} {:<6} {}",
                        e["at"].as_str().unwrap_or_default(),
                        e["operator"].as_str().unwrap_or_default(),
                        e["command"].as_str().unwrap_or_default(),
                        e["outcome"].as_str().unwrap_or_default(),
                        e["arguments"]
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Output::new(&entries, human))
        }
        Command::Migrate => {
            let applied = schema::migrate(&cli.database_url).await?;
            Ok(Output::new(
                &json!({"applied": applied}),
                format!("{applied} migration(s) applied; schema up to date"),
            ))
        }
        Command::Topics {
            command:
                TopicsCommand::Create {
                    partitions,
                    replication,
                    topic,
                    dlq_topic,
                },
        } => {
            let results = topics::create(
                &cli.kafka_brokers,
                &[topic, dlq_topic],
                *partitions,
                *replication,
            )
            .await?;
            let human = results
                .iter()
                .map(|r| format!("{:<20} {}", r.topic, r.outcome))
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Output::new(&results, human))
        }
    }
}

async fn sale_command(
    cli: &Cli,
    keys: &Keyspace,
    command: &SaleCommand,
) -> Result<Output, OpsError> {
    match command {
        SaleCommand::Open {
            product,
            stock,
            per_user,
            starts_at,
            ends_at,
            limits,
        } => {
            let new = sale::NewSale {
                product: product.clone(),
                stock: *stock,
                per_user: *per_user,
                starts_at: starts_at.as_deref().map(sale::parse_time).transpose()?,
                ends_at: ends_at.as_deref().map(sale::parse_time).transpose()?,
                limits: limits.over_defaults()?,
            };
            let pg = postgres(&cli.database_url).await?;
            let mut redis = redis_conn(&cli.redis_url).await?;
            let outcome = sale::open(&pg, &mut redis, keys, &new).await?;
            let human = match outcome {
                sale::OpenOutcome::Created => format!(
                    "sale {} open: {} units, per-user cap {}\n{}",
                    new.product,
                    stock,
                    per_user,
                    new.limits.human()
                ),
                sale::OpenOutcome::AlreadyOpen => format!("sale {} was already open", new.product),
            };
            Ok(Output::new(
                &json!({"product": new.product, "outcome": outcome, "stock": stock,
                        "per_user": per_user, "limits": new.limits}),
                human,
            ))
        }
        SaleCommand::Status { product } => {
            let pg = postgres(&cli.database_url).await?;
            let mut redis = redis_conn(&cli.redis_url).await?;
            let status = sale::status(&pg, &mut redis, keys, product).await?;
            Ok(Output::new(&status, status.human()))
        }
        SaleCommand::Halt { product } => {
            confirm(cli.yes, &format!("halt sale {product} on every instance"))?;
            let mut redis = redis_conn(&cli.redis_url).await?;
            sale::set_state(&mut redis, keys, product, shared::sale::SaleState::Halted).await?;
            Ok(Output::new(
                &json!({"product": product, "state": "halted"}),
                format!("sale {product} halted: every instance answers SALE_NOT_OPEN"),
            ))
        }
        SaleCommand::Resume { product } => {
            let mut redis = redis_conn(&cli.redis_url).await?;
            sale::set_state(&mut redis, keys, product, shared::sale::SaleState::Open).await?;
            Ok(Output::new(
                &json!({"product": product, "state": "open"}),
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
            confirm(
                cli.yes,
                &format!("rebuild sale {product} in Redis from PostgreSQL"),
            )?;
            let pg = postgres(&cli.database_url).await?;
            let mut redis = redis_conn(&cli.redis_url).await?;
            let pipeline = sale::Pipeline {
                brokers: cli.kafka_brokers.clone(),
                topic: topic.clone(),
                group: group.clone(),
            };
            let state = if *halted {
                shared::sale::SaleState::Halted
            } else {
                shared::sale::SaleState::Open
            };
            let r = sale::recover(
                &pg,
                &mut redis,
                keys,
                product,
                &pipeline,
                &limits.over_defaults()?,
                state,
            )
            .await?;
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
    }
}

/// Records a change in the audit trail; a trail that cannot be written is reported
/// loudly but does not undo the change (an incident must not wait on PostgreSQL).
async fn audit(cli: &Cli, command: &str, arguments: &Value, outcome: Result<(), &str>) {
    let operator = trail::operator(cli.operator.as_deref());
    let written = match postgres(&cli.database_url).await {
        Ok(pg) => trail::record(&pg, &operator, command, arguments, outcome)
            .await
            .map_err(OpsError::from),
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        eprintln!(
            "flashctl: WARNING: the audit trail was not written ({e}); note this change by hand"
        );
    }
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let change = describe(&cli.command);
    let result = run(&cli).await;
    if let Some((command, arguments)) = &change {
        let outcome = result.as_ref().map(|_| ()).map_err(ToString::to_string);
        audit(
            &cli,
            command,
            arguments,
            outcome.as_ref().map(|_| ()).map_err(String::as_str),
        )
        .await;
    }
    match result {
        Ok(out) => {
            if cli.json {
                println!("{}", out.json);
            } else {
                println!("{}", out.human);
            }
            std::process::exit(out.exit);
        }
        Err(e) => {
            if cli.json {
                println!(
                    "{}",
                    json!({"error": e.to_string(), "exit_code": e.exit_code()})
                );
            }
            eprintln!("flashctl: {e}");
            std::process::exit(e.exit_code());
        }
    }
}

/// Appends `title: count` and one indented line per row.
fn section<T>(out: &mut String, title: &str, rows: &[T], line: impl Fn(&T) -> String) {
    out.push_str(&format!("{title}: {}\n", rows.len()));
    for row in rows {
        out.push_str(&format!("  {}\n", line(row)));
    }
}
