//! The log carries the request: a failed order's ERROR line, written in the production
//! format (`shared::service::telemetry`), names the product and the user of the `order` span it
//! was logged in.
#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely

use std::io::Write;
use std::sync::{Arc, Mutex};

use testkit::TestStack;
use testkit::api::{ApiStack, RunningApi};
use testkit::client::Client;

/// Everything logged, as the binary would print it.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Captured {
    type Writer = Self;

    fn make_writer(&'w self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn a_failed_order_is_logged_with_its_product_and_user() -> anyhow::Result<()> {
    let log = Captured::default();
    shared::service::telemetry::init_with("ingest-api", log.clone());
    let mut stack = TestStack::new().await?;
    // Nothing listens there: every admission fails closed, and is logged.
    stack.use_redis("redis://127.0.0.1:1".into());
    let api = RunningApi::start(stack.api_settings()).await?;
    let answer = api
        .client
        .place(&Client::body("lamp", "u-logs", 1), "logs-0001")
        .await?;
    assert_eq!(answer.status, 503);
    api.stop().await?;
    let text = String::from_utf8(log.0.lock().unwrap_or_else(|p| p.into_inner()).clone())?;
    let failed: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["message"] == "order failed")
        .collect();
    assert_eq!(failed.len(), 1, "one ERROR line for the one order:\n{text}");
    let line = &failed[0];
    assert_eq!(line["level"], "ERROR");
    assert_eq!(line["code"], "UNAVAILABLE");
    assert_eq!(line["span"]["name"], "order", "{line}");
    assert_eq!(line["span"]["product"], "lamp", "{line}");
    assert_eq!(line["span"]["user"], "u-logs", "{line}");
    Ok(())
}
