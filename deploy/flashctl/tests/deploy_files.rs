//! The production deployment (`deploy/docker/`) cannot be run here (no Docker engine), so
//! it is checked as text, and its security rules are checked for real: the Redis ACL file
//! it generates is loaded into a real `redis-server` and the services run against it, and
//! the PostgreSQL grants are applied to a real database.
#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely

use std::collections::BTreeSet;
use std::path::Path;
use stores::records::sale::field as sale_field;
use testkit::api::ApiStack;
use testkit::sales::SaleStack;
use testkit::worker::WorkerStack;

use serde_norway::Value;
use testkit::api::RunningApi;
use testkit::client::Client;
use testkit::worker::RunningWorker;
use testkit::{PrivateRedis, TestStack};

fn repo(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_compose_file_holds_together() {
    let compose: Value =
        serde_norway::from_str(&repo("deploy/docker/compose.yaml")).expect("valid YAML");
    let services = compose["services"].as_mapping().expect("services");
    let names: BTreeSet<&str> = services.keys().filter_map(Value::as_str).collect();
    for needed in [
        "kafka",
        "redis",
        "postgres",
        "migrate",
        "ingest-api",
        "inventory-worker",
        "flashctl",
    ] {
        assert!(names.contains(needed), "service {needed} missing");
    }

    // Production runs the Apache Kafka version the local stack and the tests run.
    let pom = repo("deploy/local/kafka/pom.xml");
    let pinned = pom
        .split_once("<kafka.version>")
        .and_then(|(_, rest)| rest.split_once("</kafka.version>"))
        .map(|(v, _)| v)
        .expect("deploy/local/kafka/pom.xml pins kafka.version");
    assert_eq!(
        services["kafka"]["image"].as_str(),
        Some(format!("apache/kafka:{pinned}").as_str()),
        "the compose file's Kafka differs from the one deploy/local/up.sh runs"
    );

    // Every build target is a stage of the Dockerfile.
    let dockerfile = repo("deploy/docker/Dockerfile");
    for (name, svc) in services {
        if let Some(target) = svc["build"]["target"].as_str() {
            assert!(
                dockerfile.contains(&format!(" AS {target}\n")),
                "{name:?}: no stage {target} in the Dockerfile"
            );
        }
    }

    // Every ${VAR} the file uses has an example value.
    let text = repo("deploy/docker/compose.yaml");
    let example = repo("deploy/docker/.env.example");
    let mut rest = text.as_str();
    while let Some(i) = rest.find("${") {
        let var = rest[i + 2..].split(['}', ':']).next().unwrap_or_default();
        assert!(
            example.lines().any(|l| l.starts_with(&format!("{var}="))),
            "{var} is not in .env.example"
        );
        rest = &rest[i + 2..];
    }

    // Least privilege: the API never sees PostgreSQL; the worker connects with its own
    // role and leaves migrations to the owner's job; production settings are complete.
    let env = |svc: &str, var: &str| {
        services[svc]["environment"][var]
            .as_str()
            .map(str::to_owned)
    };
    assert_eq!(env("ingest-api", "DATABASE_URL"), None);
    assert_eq!(
        env("ingest-api", "ENVIRONMENT").as_deref(),
        Some("production")
    );
    for var in [
        "ALLOWED_ORIGINS",
        "IP_HASH_KEY",
        "SIGNING_KEYS",
        "ROOM_TOKEN_KEYS",
    ] {
        assert!(
            env("ingest-api", var).is_some(),
            "the API needs {var} in production"
        );
    }
    assert!(env("ingest-api", "REDIS_URL").is_some_and(|u| u.starts_with("redis://api:")));
    assert!(
        env("inventory-worker", "DATABASE_URL").is_some_and(|u| u.contains("flashsale_worker:"))
    );
    assert!(env("inventory-worker", "REDIS_URL").is_some_and(|u| u.starts_with("redis://worker:")));
    assert_eq!(
        env("inventory-worker", "MIGRATE_ON_START").as_deref(),
        Some("false")
    );
    assert!(env("migrate", "DATABASE_URL").is_some_and(|u| u.contains("flashsale_owner:")));
    assert!(env("flashctl", "DATABASE_URL").is_some_and(|u| u.contains("flashsale_ops:")));
    assert_eq!(
        services["kafka"]["image"]
            .as_str()
            .map(|i| i.starts_with("apache/kafka")),
        Some(true)
    );
}

/// The ACL file `redis-acl.sh` writes, for these passwords.
fn acl_file(dir: &Path, namespace: &str) -> std::path::PathBuf {
    let out = std::process::Command::new("sh")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker/redis/redis-acl.sh"))
        .arg("--print")
        .env("REDIS_NAMESPACE", namespace)
        .env("REDIS_API_PASSWORD", "api-pw")
        .env("REDIS_WORKER_PASSWORD", "worker-pw")
        .env("REDIS_OPS_PASSWORD", "ops-pw")
        .output()
        .expect("runs");
    assert!(out.status.success());
    let path = dir.join("users.acl");
    std::fs::write(&path, out.stdout).expect("write");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_acl_users_can_do_their_job_and_nothing_more() -> anyhow::Result<()> {
    let mut stack = TestStack::new().await?;
    let ns = stack.keys.namespace().to_owned();
    let dir = std::env::temp_dir().join(format!("acl-{}", ns));
    std::fs::create_dir_all(&dir)?;
    let acl = acl_file(&dir, &ns);
    let server = PrivateRedis::start_with(&["--aclfile", acl.to_str().unwrap_or_default()]).await?;
    let url = |user: &str, pw: &str| format!("redis://{user}:{pw}@127.0.0.1:{}", server.port);

    // Operators open the sale; the API admits and hands off; the worker marks persisted.
    stack.use_redis(url("ops", "ops-pw"));
    stack.open_sale("acl-phone", 5, 1).await?;
    let mut api_settings = stack.api_settings();
    api_settings.redis_url = shared::Secret::new(url("api", "api-pw"));
    let api = RunningApi::start(api_settings).await?;
    let mut worker_settings = stack.worker_settings();
    worker_settings.redis_url = Some(shared::Secret::new(url("worker", "worker-pw")));
    let worker = RunningWorker::start(worker_settings).await?;
    let a = api
        .client
        .place(
            &Client::body("acl-phone", "nia", 1),
            &uuid::Uuid::new_v4().to_string(),
        )
        .await?;
    assert_eq!(a.status, 202, "{}", String::from_utf8_lossy(&a.body));
    let id = a.order_id().unwrap_or_default();
    let mut persisted = false;
    for _ in 0..100 {
        if api.client.get_order(&id).await?.json()["status"] == "persisted" {
            persisted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    if !persisted {
        let got = api.client.get_order(&id).await?;
        let rows: i64 = stack
            .pg()
            .await?
            .query_one("SELECT count(*) FROM orders", &[])
            .await?
            .get(0);
        panic!(
            "not persisted: GET says {} ; rows in PostgreSQL: {rows}",
            String::from_utf8_lossy(&got.body)
        );
    }

    // The waiting room works under the ACL too: the API joins, drains the line (the
    // room registry) and claims.
    stack.open_sale("acl-tv", 5, 1).await?;
    let room = flashctl::room::NewRoom {
        prequeue_from_ms: shared::event::now_ms(),
        opens_at_ms: shared::event::now_ms(),
        rate: 10.0,
        burst: 1,
        max_active: 10,
        claim_window: std::time::Duration::from_secs(30),
        message: String::new(),
    };
    let mut ops = stack.redis().await?;
    flashctl::room::open(&mut ops, &stack.keys, &"acl-tv".parse()?, &room).await?;
    let joined = api.client.join("acl-tv", "nia", "acl-device").await?;
    assert_eq!(
        joined.status,
        200,
        "{}",
        String::from_utf8_lossy(&joined.body)
    );
    let ticket = joined.json()["ticket"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut state = String::new();
    for _ in 0..100 {
        let a = api
            .client
            .queue_status("acl-tv", &ticket, "acl-device")
            .await?;
        state = a.json()["wait"]["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if state == "admitted" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        state, "admitted",
        "the drain released the line under the ACL"
    );
    let claimed = api
        .client
        .claim("acl-tv", "nia", &ticket, "acl-device")
        .await?;
    assert_eq!(
        claimed.status,
        200,
        "{}",
        String::from_utf8_lossy(&claimed.body)
    );

    // … and nothing beyond.
    let sale = stack.keys.sale(&"acl-phone".parse()?);
    let conn = |user: &str, pw: &str| {
        let u = url(user, pw);
        async move {
            redis::Client::open(u)?
                .get_multiplexed_async_connection()
                .await
        }
    };
    let mut w = conn("worker", "worker-pw").await?;
    // Refused by the ACL, and only by the ACL.
    let denied = |r: redis::RedisResult<redis::Value>| match r {
        Err(e) => {
            let text = format!("{e} {e:?}").to_ascii_lowercase();
            text.contains("noperm") || text.contains("no permissions")
        }
        Ok(v) => panic!("allowed, answered {v:?}"),
    };
    let r = redis::cmd("HINCRBY")
        .arg(sale.sale())
        .arg(sale_field::REMAINING)
        .arg(1)
        .query_async(&mut w)
        .await;
    assert!(denied(r), "the worker must not write stock");
    let r = redis::cmd("HGET")
        .arg(sale.sale())
        .arg(sale_field::REMAINING)
        .query_async(&mut w)
        .await;
    assert!(denied(r), "the worker does not even read sales");
    let mut a = conn("api", "api-pw").await?;
    let r = redis::cmd("FLUSHALL").query_async(&mut a).await;
    assert!(denied(r), "the API cannot wipe Redis");
    let r = redis::cmd("GET")
        .arg("other-app:secret")
        .query_async(&mut a)
        .await;
    assert!(denied(r), "the API only touches its own key patterns");
    let r = redis::cmd("DEL").arg(sale.sale()).query_async(&mut a).await;
    assert!(denied(r), "the API cannot delete a sale");
    let mut o = conn("ops", "ops-pw").await?;
    let r = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory")
        .query_async(&mut o)
        .await;
    assert!(denied(r), "operators' tool has no admin commands");
    let anonymous = redis::Client::open(format!("redis://127.0.0.1:{}", server.port))?
        .get_multiplexed_async_connection()
        .await;
    let refused = match anonymous {
        Err(_) => true,
        Ok(mut c) => redis::cmd("PING")
            .query_async::<String>(&mut c)
            .await
            .is_err(),
    };
    assert!(refused, "the default user is off");

    worker.stop().await?;
    api.stop().await?;
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

#[tokio::test]
async fn postgres_grants_are_least_privilege() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    stack.open_sale("grant-me", 5, 0).await?;
    let pg = stack.pg().await?;
    pg.batch_execute(&repo("deploy/docker/postgres/grants.sql"))
        .await?;

    let as_role = |role: &'static str, sql: &'static str| {
        let pg = &pg;
        async move {
            // A failed statement leaves the role set; callers reset it.
            pg.batch_execute(&format!("SET ROLE {role}; {sql}; RESET ROLE"))
                .await
                .map_err(|e| {
                    e.as_db_error()
                        .map_or_else(|| e.to_string(), |d| d.message().to_owned())
                })
        }
    };
    let reset = async || pg.batch_execute("RESET ROLE").await;
    let ok = |r: Result<(), String>, what: &str| assert!(r.is_ok(), "{what}: {r:?}");
    let denied = |r: Result<(), String>, what: &str| {
        assert!(
            r.as_ref().is_err_and(|e| e.contains("permission denied")),
            "{what} must be refused: {r:?}"
        )
    };

    ok(as_role("flashsale_worker",
        "INSERT INTO orders (order_id, product_id, user_id, quantity, idempotency_key, accepted_at) \
         VALUES (gen_random_uuid(), 'grant-me', 'u', 1, 'k-12345678', now()) ON CONFLICT (order_id) DO NOTHING; \
         UPDATE sales SET sold = sold + 1 WHERE product_id = 'grant-me'").await, "worker writes an order");
    denied(
        as_role(
            "flashsale_worker",
            "UPDATE sales SET stock = stock + 100 WHERE product_id = 'grant-me'",
        )
        .await,
        "worker raising stock",
    );
    reset().await?;
    denied(
        as_role("flashsale_worker", "DELETE FROM orders").await,
        "worker deleting orders",
    );
    reset().await?;
    denied(
        as_role("flashsale_worker", "UPDATE orders SET quantity = 2").await,
        "worker rewriting orders",
    );
    reset().await?;
    ok(
        as_role(
            "flashsale_worker",
            "UPDATE orders SET state = 'expired', state_at = now(), state_reason = 'expiry' \
             WHERE state = 'reserved'",
        )
        .await,
        "worker ending a reservation",
    );
    reset().await?;
    denied(
        as_role("flashsale_worker", "SELECT * FROM ops_audit").await,
        "worker reading the audit trail",
    );
    reset().await?;
    ok(as_role("flashsale_ops",
        "INSERT INTO ops_audit (operator, command, arguments, outcome) VALUES ('t', 'test', '{}', 'ok'); \
         UPDATE orders SET user_id = 'erased-x', ip_hash = NULL, device_hash = NULL WHERE user_id = 'u'").await, "ops audit and erase");
    denied(
        as_role("flashsale_ops", "UPDATE sales SET sold = 0").await,
        "ops changing sold",
    );
    reset().await?;
    denied(
        as_role("flashsale_ops", "DELETE FROM orders").await,
        "ops deleting orders",
    );
    reset().await?;
    denied(
        as_role("flashsale_ops", "DELETE FROM ops_audit").await,
        "ops erasing the audit trail",
    );
    reset().await?;
    Ok(())
}
