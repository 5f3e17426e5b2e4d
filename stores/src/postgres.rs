//! PostgreSQL: the migrations (`sql/V{n}__{name}.sql`, embedded at build time) and
//! connections.

use tokio_postgres::NoTls;

mod embedded {
    refinery::embed_migrations!("../sql");
}

/// Applies pending migrations. Concurrent callers (several workers starting at once,
/// `flashctl migrate`) serialize on an advisory lock. Returns how many were applied.
pub async fn migrate(url: &str) -> anyhow::Result<usize> {
    let (mut client, connection) = tokio_postgres::connect(url, NoTls).await?;
    let conn_task = tokio::spawn(connection);
    const LOCK: i64 = 0x666c_6173_6873_616c; // "flashsal"
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK])
        .await?;
    let report = embedded::migrations::runner().run_async(&mut client).await;
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK])
        .await;
    drop(client);
    let _ = conn_task.await;
    let applied = report?.applied_migrations().len();
    Ok(applied)
}

/// A connection, driven by a task of its own (a broken connection ends that task; the
/// next query on the client fails).
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "postgres connection ended");
        }
    });
    Ok(client)
}
