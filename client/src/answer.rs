//! One answer of the API, kept whole, and sending a request to get it.

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;

use crate::problem::Problem;

/// One answer, kept whole: status, headers and the body byte for byte.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// Raw body, byte for byte.
    pub body: Vec<u8>,
    /// Time from send to complete body.
    pub latency: Duration,
}

impl Answer {
    /// The body as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The refusal, if this answer is one (`application/problem+json` with a `code`).
    pub fn problem(&self) -> Option<Problem> {
        Problem::parse(self.status, &self.body, self.retry_after_secs())
    }

    /// The problem `code`, `ACCEPTED` for a 202, `HTTP_<status>` for anything else.
    pub fn code(&self) -> String {
        if self.status == 202 {
            return "ACCEPTED".into();
        }
        self.problem()
            .map_or_else(|| format!("HTTP_{}", self.status), |p| p.raw_code)
    }

    /// The order id of a 202.
    pub fn order_id(&self) -> Option<String> {
        self.json()["orderId"].as_str().map(str::to_owned)
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `Retry-After` in seconds, if present.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.header("retry-after")
            .and_then(|v| v.trim().parse().ok())
    }
}

/// Sends a request and reads the whole answer.
pub async fn send(req: reqwest::RequestBuilder) -> reqwest::Result<Answer> {
    let started = Instant::now();
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await?.to_vec();
    Ok(Answer {
        status,
        headers,
        body,
        latency: started.elapsed(),
    })
}
