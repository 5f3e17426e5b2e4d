//! The audit trail: every change made with `flashctl` is recorded in `ops_audit` (time,
//! operator, command, arguments, outcome), so an incident can be reconstructed later.

use serde_json::Value;
use tokio_postgres::Client;

/// Who is acting: `--operator`, else `$USER`, else `unknown`.
pub fn operator(flag: Option<&str>) -> String {
    flag.map(str::to_owned)
        .or_else(|| std::env::var("USER").ok())
        .filter(|o| !o.trim().is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Records one change and its outcome.
pub async fn record(
    pg: &Client,
    operator: &str,
    command: &str,
    arguments: &Value,
    outcome: Result<(), &str>,
) -> Result<(), tokio_postgres::Error> {
    let (status, detail) = match outcome {
        Ok(()) => ("ok", None),
        Err(e) => ("error", Some(e)),
    };
    pg.execute(
        "INSERT INTO ops_audit (operator, command, arguments, outcome, detail) \
         VALUES ($1, $2, $3, $4, $5)",
        &[&operator, &command, arguments, &status, &detail],
    )
    .await?;
    Ok(())
}

/// The most recent entries, newest first.
pub async fn recent(pg: &Client, limit: i64) -> Result<Vec<Value>, tokio_postgres::Error> {
    let rows = pg
        .query(
            "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), operator, command, \
                    arguments, outcome, detail \
             FROM ops_audit ORDER BY id DESC LIMIT $1",
            &[&limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "at": r.get::<_, String>(0),
                "operator": r.get::<_, String>(1),
                "command": r.get::<_, String>(2),
                "arguments": r.get::<_, Value>(3),
                "outcome": r.get::<_, String>(4),
                "detail": r.get::<_, Option<String>>(5),
            })
        })
        .collect())
}
