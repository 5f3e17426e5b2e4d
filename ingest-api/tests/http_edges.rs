//! The HTTP edges: a request whose body is not read to its end (timeout, too large) is
//! answered and its connection closed; a head that never completes is closed after the
//! request timeout; refused CORS preflights and 405s answer problem+json with a code; and
//! 500 slow connections do not keep ordinary orders from their usual latency.
#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely

mod common;

use std::time::{Duration, Instant};

use common::{assert_problem, body, key};
use flashctl::guard::Limits;
use testkit::TestStack;
use testkit::api::{ApiStack, RunningApi};
use testkit::sales::SaleStack;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection; returns what came and when the close
/// was seen (`None` if it stayed open for `patience`).
async fn read_until_closed(
    stream: &mut TcpStream,
    patience: Duration,
) -> (String, Option<Instant>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (String::from_utf8_lossy(&got).into(), Some(Instant::now()));
            }
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into(), None),
        }
    }
}

/// The head of a signed `POST /order` with a chunked body, as raw bytes.
fn chunked_order_head(api: &RunningApi, body: &[u8], key: &str) -> String {
    let signed = api.client.sign(body, key, shared::event::now_ms());
    format!(
        "POST /order HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nIdempotency-Key: {key}\r\nX-Request-Time: {}\r\n\
         X-Signature: {}\r\nX-Key-Id: {}\r\n\r\n",
        signed.request_time,
        signed.signature,
        api.client.key_id().unwrap_or_default()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_never_finished_gets_408_and_the_connection_closes() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let mut settings = stack.api_settings();
    settings.request_timeout_ms = 1_000;
    let api = RunningApi::start(settings).await?;
    let order = body("kite", "slow");
    let mut stream = TcpStream::connect(("127.0.0.1", api.port)).await?;
    stream
        .write_all(chunked_order_head(&api, &order, &key()).as_bytes())
        .await?;
    // Half of the body, then nothing.
    stream
        .write_all(format!("{:x}\r\n", order.len()).as_bytes())
        .await?;
    stream.write_all(&order[..order.len() / 2]).await?;
    let sent = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // The 408 arrives after the request timeout…
    let answered = loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await??;
        got.extend_from_slice(&buf[..n]);
        if n == 0 || String::from_utf8_lossy(&got).contains("\r\n\r\n") {
            break Instant::now();
        }
    };
    let text = String::from_utf8_lossy(&got).into_owned();
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("REQUEST_TIMEOUT"), "{text}");
    assert!(
        answered - sent >= Duration::from_millis(900),
        "{:?}",
        answered - sent
    );
    // …and the connection is closed right after it, not held open.
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let closed = closed.expect("the connection stayed open after the 408");
    assert!(
        closed - answered < Duration::from_secs(1),
        "closed {:?} after the 408",
        closed - answered
    );
    api.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_never_finished_and_a_body_too_large_close_the_connection() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let mut settings = stack.api_settings();
    settings.request_timeout_ms = 1_000;
    let api = RunningApi::start(settings).await?;
    // A head that never completes: closed once the request timeout passed.
    let mut slow = TcpStream::connect(("127.0.0.1", api.port)).await?;
    slow.write_all(b"POST /order HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await?;
    let opened = Instant::now();
    let (_, closed) = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    let held = closed.expect("a slow head held its connection") - opened;
    assert!(held < Duration::from_secs(2), "held {held:?}");
    // A declared body over the limit: 413, and the connection closes (its body unread).
    let mut big = TcpStream::connect(("127.0.0.1", api.port)).await?;
    big.write_all(
        b"POST /order HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
          Content-Length: 1000000\r\n\r\n{\"productId\":",
    )
    .await?;
    let (text, closed) = read_until_closed(&mut big, Duration::from_secs(3)).await;
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("PAYLOAD_TOO_LARGE"), "{text}");
    assert!(closed.is_some(), "the connection stayed open after the 413");
    api.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_preflights_and_405s_answer_problems() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    let http = api.client.http();
    let url = format!("http://127.0.0.1:{}/order", api.port);
    // A preflight the policy allows…
    let allowed = http
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, idempotency-key",
        )
        .send()
        .await?;
    assert_eq!(allowed.status(), 200);
    // …and ones it refuses: a method, a header.
    for (method, headers) in [("DELETE", "content-type"), ("POST", "x-evil")] {
        let refused = testkit::client::send(
            http.request(reqwest::Method::OPTIONS, &url)
                .header("origin", "https://shop.example")
                .header("access-control-request-method", method)
                .header("access-control-request-headers", headers),
        )
        .await?;
        assert_problem(&refused, 400, "CORS_REJECTED");
    }
    // Other methods: 405 with a code and `Allow`.
    let put = testkit::client::send(http.put(&url)).await?;
    assert_problem(&put, 405, "METHOD_NOT_ALLOWED");
    assert_eq!(put.header("allow"), Some("POST"));
    let delete = testkit::client::send(http.delete(format!("{url}/{}", uuid::Uuid::nil()))).await?;
    assert_problem(&delete, 405, "METHOD_NOT_ALLOWED");
    assert_eq!(delete.header("allow"), Some("GET, HEAD"));
    // HEAD: the same status and headers, no body (RFC 9110).
    let head = testkit::client::send(http.head(&url)).await?;
    assert_eq!(head.status, 405);
    assert_eq!(head.header("allow"), Some("POST"));
    assert_eq!(
        head.header("content-type"),
        Some("application/problem+json")
    );
    let head_order =
        testkit::client::send(http.head(format!("{url}/{}", uuid::Uuid::nil()))).await?;
    assert_eq!(
        head_order.status, 404,
        "HEAD of an order is its GET's status"
    );
    api.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orders_keep_their_latency_beside_500_slow_connections() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    stack
        .open_sale_with("reel", 1_000, 0, Limits::off())
        .await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    let orders = |round: &'static str| {
        let client = api.client.clone();
        async move {
            let mut latencies = Vec::new();
            for i in 0..30 {
                let started = Instant::now();
                let a = client
                    .place(&body("reel", &format!("{round}-{i}")), &key())
                    .await?;
                latencies.push(started.elapsed());
                assert_eq!(a.status, 202, "{round}: {}", a.code());
            }
            latencies.sort();
            anyhow::Ok(latencies)
        }
    };
    orders("warm").await?;
    let usual = orders("usual").await?;
    // 500 clients: half send a head byte by byte and never finish it, half a chunked
    // body they never finish.
    let mut slow = Vec::new();
    for i in 0..500 {
        let mut s = TcpStream::connect(("127.0.0.1", api.port)).await?;
        if i % 2 == 0 {
            s.write_all(b"POST /order HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .await?;
        } else {
            let order = body("reel", &format!("slow-{i}"));
            s.write_all(chunked_order_head(&api, &order, &key()).as_bytes())
                .await?;
            s.write_all(b"10\r\n{\"productId\":").await?;
        }
        slow.push(s);
    }
    let beside = orders("beside").await?;
    let median_and_max = |l: &[Duration]| (l[l.len() / 2], l[l.len() - 1]);
    let (usual_p50, usual_max) = median_and_max(&usual);
    let (beside_p50, beside_max) = median_and_max(&beside);
    eprintln!(
        "usual p50 {usual_p50:?} max {usual_max:?}; beside 500 slow p50 {beside_p50:?} max {beside_max:?}"
    );
    assert!(
        beside_p50 <= usual_p50 * 3 + Duration::from_millis(5),
        "p50 {beside_p50:?} beside the slow connections, {usual_p50:?} usually"
    );
    assert!(beside_max < Duration::from_secs(1), "max {beside_max:?}");
    // And the slow ones are all gone after the request timeout.
    let mut open = 0;
    for mut s in slow {
        let (_, closed) = read_until_closed(&mut s, Duration::from_secs(8)).await;
        open += usize::from(closed.is_none());
    }
    assert_eq!(
        open, 0,
        "slow connections still open after the request timeout"
    );
    api.stop().await
}
