//! Isolated resources on the local stack (`deploy/local/up.sh`): a fresh PostgreSQL
//! database, a pair of Kafka topics, a Redis key namespace. Tests and benchmarks take
//! their own, so they run in parallel without seeing each other, against the real
//! servers.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;

/// Where the stack runs (the variables `deploy/local/up.sh` writes to `.local/env`).
#[derive(Debug, Clone)]
pub struct StackEnv {
    /// `REDIS_URL`.
    pub redis_url: String,
    /// `DATABASE_URL` of the main database; its role may create databases.
    pub database_url: String,
    /// `KAFKA_BROKERS`.
    pub kafka_brokers: String,
}

impl StackEnv {
    /// From the environment, with the local stack's defaults.
    pub fn from_env() -> Self {
        let var = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
        Self {
            redis_url: var("REDIS_URL", "redis://127.0.0.1:6379"),
            database_url: var(
                "DATABASE_URL",
                "postgres://flashsale:flashsale@127.0.0.1:5432/flashsale",
            ),
            kafka_brokers: var("KAFKA_BROKERS", "127.0.0.1:9092"),
        }
    }
}

/// A short unique name: `{prefix}-{8 hex}`.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A throwaway database with the migrations applied.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    /// Its name (`t_<unix seconds>_<hex>`).
    pub name: String,
    /// A connection URL for it.
    pub url: String,
}

/// Creates a fresh, migrated database, and drops test databases older than an hour
/// (left by earlier runs).
pub async fn database(env: &StackEnv) -> anyhow::Result<TestDatabase> {
    let (client, conn) = tokio_postgres::connect(&env.database_url, tokio_postgres::NoTls)
        .await
        .context("connecting to DATABASE_URL (is the local stack up? deploy/local/up.sh)")?;
    tokio::spawn(conn);
    let now = now_secs();
    for row in client
        .query(
            "SELECT datname FROM pg_database WHERE datname LIKE 't\\_%'",
            &[],
        )
        .await?
    {
        let name: String = row.get(0);
        let ts = name.split('_').nth(1).and_then(|t| t.parse::<u64>().ok());
        if ts.is_some_and(|ts| ts + 3600 < now) {
            let _ = client
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
        }
    }
    let name = format!(
        "t_{now}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    client
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .context("creating a test database (the role needs CREATEDB)")?;
    let url = with_database(&env.database_url, &name);
    schema::migrate(&url).await?;
    Ok(TestDatabase { name, url })
}

/// `base` (a `postgres://` URL) with its database name replaced by `name`.
pub fn with_database(base: &str, name: &str) -> String {
    // postgres://user:pass@host:port/dbname?params → swap the path segment.
    let (head, query) = base
        .split_once('?')
        .map_or((base, None), |(h, q)| (h, Some(q)));
    let head = match head.rfind('/') {
        Some(i) if head[..i].contains("://") && i > head.find("://").unwrap_or(0) + 2 => &head[..i],
        _ => head,
    };
    match query {
        Some(q) => format!("{head}/{name}?{q}"),
        None => format!("{head}/{name}"),
    }
}

/// A pair of fresh topics, as `flashctl topics create` makes them.
#[derive(Debug, Clone)]
pub struct TestTopics {
    /// Order topic.
    pub orders: String,
    /// Its dead-letter topic.
    pub dlq: String,
}

/// Creates `t-<unix seconds>-<hex>` and its `.dlq` with `partitions` partitions, and
/// deletes test topics older than an hour (left by earlier runs: every partition is a
/// log the broker must load when it restarts).
pub async fn topics(env: &StackEnv, partitions: i32) -> anyhow::Result<TestTopics> {
    let now = now_secs();
    let stale: Vec<String> = flashctl::topics::list(&env.kafka_brokers)
        .await
        .context("listing topics (is the broker up? deploy/local/up.sh)")?
        .into_iter()
        .filter(|t| test_topic_created(t).is_some_and(|ts| ts + 3600 < now))
        .collect();
    if !stale.is_empty() {
        let names: Vec<&str> = stale.iter().map(String::as_str).collect();
        // Best effort: another test run may be deleting the same ones.
        let _ = flashctl::topics::delete(&env.kafka_brokers, &names).await;
    }
    let orders = format!(
        "t-{now}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let dlq = format!("{orders}.dlq");
    flashctl::topics::create(&env.kafka_brokers, &[&orders, &dlq], partitions, 1)
        .await
        .context("creating test topics (is the broker up? deploy/local/up.sh)")?;
    Ok(TestTopics { orders, dlq })
}

/// When a topic made by [`topics`] was created (unix seconds); `None` for other topics.
fn test_topic_created(topic: &str) -> Option<u64> {
    let rest = topic.strip_prefix("t-")?;
    let (secs, tail) = rest.split_once('-')?;
    let hex = tail.strip_suffix(".dlq").unwrap_or(tail);
    (hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| secs.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swaps_the_database_name() {
        assert_eq!(
            with_database("postgres://a:b@h:1/x", "y"),
            "postgres://a:b@h:1/y"
        );
        assert_eq!(
            with_database("postgres://a:b@h:1/x?sslmode=disable", "y"),
            "postgres://a:b@h:1/y?sslmode=disable"
        );
        assert_eq!(with_database("postgres://a@h", "y"), "postgres://a@h/y");
    }

    #[test]
    fn recognises_test_topics_and_their_age() {
        assert_eq!(
            test_topic_created("t-1700000000-0a1b2c3d"),
            Some(1_700_000_000)
        );
        assert_eq!(
            test_topic_created("t-1700000000-0a1b2c3d.dlq"),
            Some(1_700_000_000)
        );
        assert_eq!(test_topic_created("orders"), None);
        assert_eq!(test_topic_created("t-abc-0a1b2c3d"), None);
        assert_eq!(test_topic_created("t-1700000000-0a1b2c3"), None);
        assert_eq!(test_topic_created("faults-1700000000-orders"), None);
    }

    #[test]
    fn reroutes_through_a_proxy() {
        let url = "postgres://u:p@db.example:6543/sales?sslmode=disable";
        assert_eq!(host_port(url), "db.example:6543");
        assert_eq!(
            via_port(url, 7),
            "postgres://u:p@127.0.0.1:7/sales?sslmode=disable"
        );
        assert_eq!(host_port("postgres://u@h/x"), "h:5432");
    }
}

/// The signing key every test stack is configured with.
pub const TEST_KEY_ID: &str = "test";
/// Its secret.
pub const TEST_SECRET: &[u8] = b"test-secret-0123456789";

/// One test's private slice of the local stack: a key namespace, topics, a database.
#[derive(Debug, Clone)]
pub struct TestStack {
    /// Server addresses.
    pub env: StackEnv,
    /// The Redis key namespace.
    pub keys: shared::keys::Keyspace,
    /// The topics.
    pub topics: TestTopics,
    /// The database.
    pub db: TestDatabase,
}

impl TestStack {
    /// Creates a namespace, a topic pair and a migrated database.
    pub async fn new() -> anyhow::Result<Self> {
        let env = StackEnv::from_env();
        let (topics, db) = tokio::try_join!(topics(&env, 6), database(&env))?;
        Ok(Self {
            keys: shared::keys::Keyspace::new(unique("t")),
            env,
            topics,
            db,
        })
    }

    /// API settings for this stack (port 0, test signing key).
    pub fn api_settings(&self) -> ingest_api::Settings {
        ingest_api::Settings {
            listen_addr: "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()),
            admin_addr: "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()),
            redis_url: shared::Secret::new(self.env.redis_url.clone()),
            redis_namespace: self.keys.namespace().to_owned(),
            redis_timeout_ms: 500,
            kafka_brokers: self.env.kafka_brokers.clone(),
            kafka_topic: self.topics.orders.clone(),
            kafka_publish_timeout_ms: 5_000,
            kafka_linger_ms: ingest_api::settings::DEFAULT_KAFKA_LINGER_MS,
            order_status_ttl_secs: shared::status::DEFAULT_TTL_SECS,
            signing_keys: shared::Secret::new(format!(
                "{TEST_KEY_ID}:{}",
                String::from_utf8_lossy(TEST_SECRET)
            )),
            signature_window_ms: 30_000,
            idempotency_ttl_secs: 3_600,
            environment: ingest_api::settings::Environment::Development,
            http_workers: Some(2),
            relay_idle_ms: 2_000,
            trusted_proxies: String::new(),
            allowed_origins: String::new(),
            rate_limit_enabled: true,
            fallback_ip_limit: "10/s:20".into(),
            ip_hash_key: None,
            request_timeout_ms: 5_000,
        }
    }

    /// Worker settings for this stack (admin port 0, own consumer group).
    pub fn worker_settings(&self) -> inventory_worker::Settings {
        inventory_worker::Settings {
            admin_addr: "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()),
            database_url: shared::Secret::new(self.db.url.clone()),
            kafka_brokers: self.env.kafka_brokers.clone(),
            kafka_topic: self.topics.orders.clone(),
            kafka_group: format!("{}-worker", self.topics.orders),
            kafka_dlq_topic: self.topics.dlq.clone(),
            redis_url: Some(shared::Secret::new(self.env.redis_url.clone())),
            redis_namespace: self.keys.namespace().to_owned(),
            order_status_ttl_secs: shared::status::DEFAULT_TTL_SECS,
            batch_max: 500,
            batch_linger_ms: 20,
            shutdown_grace_ms: 5_000,
            db_pool_size: 2,
            migrate_on_start: true,
        }
    }

    /// A PostgreSQL connection to this stack's database.
    pub async fn pg(&self) -> anyhow::Result<tokio_postgres::Client> {
        let (client, conn) = tokio_postgres::connect(&self.db.url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        Ok(client)
    }

    /// A Redis connection.
    pub async fn redis(&self) -> anyhow::Result<redis::aio::MultiplexedConnection> {
        Ok(redis::Client::open(self.env.redis_url.as_str())?
            .get_multiplexed_async_connection()
            .await?)
    }

    /// Waits (up to a minute) for the pipeline to drain, then audits `product` against
    /// what clients were told.
    pub async fn drained_audit(
        &self,
        product: &str,
        expect: &crate::audit::Expectation,
    ) -> anyhow::Result<crate::audit::Report> {
        let pg = self.pg().await?;
        let mut redis = self.redis().await?;
        let product: shared::ProductId = product.parse()?;
        let timeout = std::time::Duration::from_secs(60);
        crate::audit::drained_audit(&pg, &mut redis, &self.keys, &product, expect, timeout).await
    }

    /// Opens a sale with the default limits through `flashctl`'s code (PostgreSQL row,
    /// then Redis).
    pub async fn open_sale(&self, product: &str, stock: u32, per_user: u32) -> anyhow::Result<()> {
        self.open_sale_with(
            product,
            stock,
            per_user,
            flashctl::guard::Limits::defaults(),
        )
        .await
    }

    /// Opens a sale with the given limits.
    pub async fn open_sale_with(
        &self,
        product: &str,
        stock: u32,
        per_user: u32,
        limits: flashctl::guard::Limits,
    ) -> anyhow::Result<()> {
        let pg = self.pg().await?;
        let mut redis = self.redis().await?;
        flashctl::sale::open(
            &pg,
            &mut redis,
            &self.keys,
            &flashctl::sale::NewSale {
                product: product.parse()?,
                stock,
                per_user,
                starts_at: None,
                ends_at: None,
                limits,
            },
        )
        .await?;
        Ok(())
    }
}

/// A service running in this process until stopped (drained like on SIGTERM).
struct Running {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Runs `run(stop)` on the runtime; `stop` resolves when [`Running::stop`] is called.
    fn spawn<F>(
        run: impl FnOnce(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) -> F,
    ) -> Self
    where
        F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run(Box::pin(async move {
            let _ = rx.await;
        })));
        Self {
            stop: Some(tx),
            task,
        }
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await?
    }
}

/// An API running in this process on a free port.
pub struct RunningApi {
    /// Public port.
    pub port: u16,
    /// Admin port.
    pub admin_port: u16,
    /// A client signing with the test key.
    pub client: crate::client::OrderClient,
    running: Running,
}

impl RunningApi {
    /// Builds and starts the API with `settings`.
    pub async fn start(settings: ingest_api::Settings) -> anyhow::Result<Self> {
        let app = ingest_api::Application::build(settings.validate()?).await?;
        let (port, admin_port) = (app.port(), app.admin_port());
        Ok(Self {
            port,
            admin_port,
            client: crate::client::OrderClient::new(
                format!("http://127.0.0.1:{port}"),
                Some(TEST_KEY_ID),
                TEST_SECRET,
            ),
            running: Running::spawn(|stop| app.run_until(stop)),
        })
    }

    /// Drains and stops it.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.running.stop().await
    }
}

/// A worker running in this process.
pub struct RunningWorker {
    /// Admin port.
    pub admin_port: u16,
    running: Running,
}

impl RunningWorker {
    /// Builds and starts the worker with `settings`.
    pub async fn start(settings: inventory_worker::Settings) -> anyhow::Result<Self> {
        let app = inventory_worker::Application::build(settings.validate()?).await?;
        Ok(Self {
            admin_port: app.admin_port(),
            running: Running::spawn(|stop| app.run_until(stop)),
        })
    }

    /// Finishes the batch in hand, commits and stops.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.running.stop().await
    }
}

/// A `redis-server` of this test's own, on a free port, that the test may pause, kill
/// and restart without disturbing anything else.
pub struct PrivateRedis {
    /// Its port.
    pub port: u16,
    child: Option<std::process::Child>,
    args: Vec<String>,
}

impl PrivateRedis {
    /// Starts `redis-server` (no persistence) and waits until it answers.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(&[]).await
    }

    /// Same, with extra server arguments (e.g. `--aclfile`).
    pub async fn start_with(args: &[&str]) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut me = Self {
            port,
            child: None,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
        };
        me.spawn().await?;
        Ok(me)
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .args(&self.args)
            .stdout(std::process::Stdio::null())
            .spawn()
            .context("starting redis-server (installed by deploy/local/up.sh)")?;
        self.child = Some(child);
        for _ in 0..100 {
            // Listening is enough: with ACLs the default user may not even say PONG.
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        anyhow::bail!("private redis-server on port {} did not come up", self.port)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn signal(&self, sig: &str) -> anyhow::Result<()> {
        if let Some(child) = &self.child {
            std::process::Command::new("kill")
                .args([sig, &child.id().to_string()])
                .status()?;
        }
        Ok(())
    }

    /// SIGSTOP: the server hangs (connections open, no answers).
    pub fn pause(&self) -> anyhow::Result<()> {
        self.signal("-STOP")
    }

    /// SIGCONT.
    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal("-CONT")
    }

    /// SIGKILL: gone, connections refused. Its data is lost (no persistence).
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Starts a fresh server on the same port.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill()?;
        self.spawn().await
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.resume();
        let _ = self.kill();
    }
}

/// A TCP proxy in front of a real server that a test can cut and restore: a network
/// partition between one client and the server, without stopping the server other tests
/// use. While down, open connections are dropped and new ones are closed at once.
pub struct FaultProxy {
    /// The port clients connect to.
    pub port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Proxies `127.0.0.1:<port>` to `target` (`host:port`).
    pub async fn start(target: String) -> anyhow::Result<Self> {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let conns = std::sync::Arc::new(std::sync::Mutex::new(
            Vec::<tokio::task::JoinHandle<()>>::new(),
        ));
        let (up2, conns2) = (up.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let handle = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                if let Ok(mut c) = conns2.lock() {
                    c.retain(|h| !h.is_finished());
                    c.push(handle);
                }
            }
        });
        Ok(Self {
            port,
            up,
            conns,
            accept,
        })
    }

    /// Cuts every connection and refuses new ones.
    pub fn down(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut c) = self.conns.lock() {
            for h in c.drain(..) {
                h.abort();
            }
        }
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.down();
    }
}

/// `url` (a `postgres://` URL) pointed at `127.0.0.1:<port>` instead of its host.
pub fn via_port(url: &str, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (auth, after) = match rest.rsplit_once('@') {
        Some((a, r)) => (format!("{a}@"), r),
        None => (String::new(), rest),
    };
    let path = after.find('/').map_or("", |i| &after[i..]);
    format!("{scheme}://{auth}127.0.0.1:{port}{path}")
}

/// `host:port` of a `postgres://` URL.
pub fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let after = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let hp = after.split(['/', '?']).next().unwrap_or(after);
    if hp.contains(':') {
        hp.to_owned()
    } else {
        format!("{hp}:5432")
    }
}
