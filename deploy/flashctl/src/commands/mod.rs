//! The subcommands of `flashctl`, one module each: its clap arguments, what it runs, what
//! it prints, and how it is named in the audit trail. What they share lives here: the
//! context the global flags give, the output, the connections and prompts, and
//! [`execute`], which runs a command, records it, prints and exits.

pub mod audit_log;
pub mod block;
pub mod limits;
pub mod migrate;
pub mod order;
pub mod orders;
pub mod reconcile;
pub mod room;
pub mod sale;
pub mod topics;
pub mod user;
pub mod violations;

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use flashctl::{OpsError, trail};
use serde::Serialize;
use serde_json::{Value, json};
use shared::keys::Keyspace;

/// A command: what it runs and, when it changes something, how the audit trail names it.
pub trait Run {
    /// The audit-trail name and arguments of a command that changes something; `None`
    /// for one that only reads.
    fn change(&self) -> Option<(&'static str, Value)> {
        None
    }

    /// Runs the command.
    async fn run(&self, ctx: &Ctx) -> Result<Output, OpsError>;
}

/// What the global flags give every command.
pub struct Ctx {
    /// `--json`: print the JSON document instead of the text.
    pub json: bool,
    /// `--yes`: do not ask before destructive commands.
    pub yes: bool,
    /// `--operator`: who is acting, for the audit trail.
    pub operator: Option<String>,
    /// Redis holding the live sale.
    pub redis: stores::redis::Target,
    /// PostgreSQL with the durable record.
    pub database_url: String,
    /// Kafka bootstrap servers.
    pub kafka_brokers: String,
    /// The Redis keys, under `--redis-namespace`.
    pub keys: Keyspace,
}

impl Ctx {
    /// A connection to PostgreSQL, driven by a task of its own.
    pub async fn postgres(&self) -> Result<tokio_postgres::Client, OpsError> {
        Ok(stores::postgres::connect(&self.database_url).await?)
    }

    /// A connection to Redis, with connection and response timeouts.
    pub async fn redis(&self) -> Result<stores::redis::Conn, OpsError> {
        Ok(stores::redis::connect(&self.redis).await?)
    }

    /// Asks before a destructive command unless `--yes`; without a terminal, refuses.
    pub fn confirm(&self, what: &str) -> Result<(), OpsError> {
        if self.yes {
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
}

/// What a command prints (JSON with `--json`, text otherwise) and its exit code.
pub struct Output {
    /// The document printed with `--json`.
    pub json: Value,
    /// The text printed otherwise.
    pub human: String,
    /// The process exit code.
    pub exit: i32,
}

impl Output {
    /// Exit 0 with `value` as the JSON document and `human` as the text.
    pub fn new(value: &impl Serialize, human: String) -> Self {
        Self {
            json: serde_json::to_value(value).unwrap_or_default(),
            human,
            exit: 0,
        }
    }
}

/// Runs a command, records it in the audit trail if it changes something, prints its
/// output (or its error) and exits with its code.
pub async fn execute(command: &impl Run, ctx: &Ctx) -> ! {
    let result = command.run(ctx).await;
    if let Some((name, arguments)) = command.change() {
        let error = result.as_ref().err().map(ToString::to_string);
        audit(ctx, name, &arguments, error.as_deref()).await;
    }
    match result {
        Ok(out) => {
            if ctx.json {
                println!("{}", out.json);
            } else {
                println!("{}", out.human);
            }
            std::process::exit(out.exit);
        }
        Err(e) => {
            if ctx.json {
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

/// Records a change and its error, if any, in the audit trail; a trail that cannot be
/// written is reported loudly but does not undo the change (an incident must not wait on
/// PostgreSQL).
async fn audit(ctx: &Ctx, command: &str, arguments: &Value, error: Option<&str>) {
    let operator = trail::operator(ctx.operator.as_deref());
    let written = match ctx.postgres().await {
        Ok(pg) => trail::record(
            &pg,
            &operator,
            command,
            arguments,
            error.map_or(Ok(()), Err),
        )
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

/// Parses the duration `raw` given to `flag`, e.g. `30s`, `1h`.
pub fn duration(flag: &str, raw: &str) -> Result<Duration, OpsError> {
    humantime::parse_duration(raw).map_err(|e| OpsError::Invalid(format!("{flag} {raw:?}: {e}")))
}
