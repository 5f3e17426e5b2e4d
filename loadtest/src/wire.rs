//! A lean HTTP/1.1 client for closed-loop benchmarks ([`crate::bench::saturate`]).
//!
//! The load generator shares the machine with what it measures, so every microsecond it
//! spends is taken from the server. This client keeps one connection open, writes each
//! signed `POST /order` (or waiting-room poll) as bytes, and reads the answer with `httparse`, keeping only the
//! status and the problem code: about a third of the CPU per request of the full
//! `reqwest` client the tests and the scenarios use ([`testkit::client::Client`]),
//! which signs the same way.

use std::io;

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use flashsale_client::Client;

/// One keep-alive connection to an API instance.
#[derive(Debug)]
pub struct Wire {
    stream: TcpStream,
    host: String,
    request: Vec<u8>,
    buf: Vec<u8>,
}

impl Wire {
    /// Connects to the host of `base_url` (`http://host:port`).
    pub async fn connect(base_url: &str) -> io::Result<Self> {
        let host = base_url
            .strip_prefix("http://")
            .unwrap_or(base_url)
            .trim_end_matches('/')
            .to_owned();
        let stream = TcpStream::connect(&host).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            host,
            request: Vec::with_capacity(512),
            buf: Vec::with_capacity(2048),
        })
    }

    /// Signs (as `client` does) and sends one order; returns the status and the code
    /// (`ACCEPTED` for a 202, the problem's `code` otherwise).
    pub async fn place(
        &mut self,
        client: &Client,
        body: &[u8],
        idempotency_key: &str,
    ) -> io::Result<(u16, String)> {
        let signed = client.sign(body, idempotency_key, shared::event::now_ms());
        let r = &mut self.request;
        r.clear();
        r.extend_from_slice(b"POST /order HTTP/1.1\r\nhost: ");
        r.extend_from_slice(self.host.as_bytes());
        r.extend_from_slice(b"\r\ncontent-type: application/json\r\nidempotency-key: ");
        r.extend_from_slice(idempotency_key.as_bytes());
        r.extend_from_slice(b"\r\nx-request-time: ");
        r.extend_from_slice(signed.request_time.as_bytes());
        r.extend_from_slice(b"\r\nx-signature: ");
        r.extend_from_slice(signed.signature.as_bytes());
        if let Some(id) = client.key_id() {
            r.extend_from_slice(b"\r\nx-key-id: ");
            r.extend_from_slice(id.as_bytes());
        }
        r.extend_from_slice(format!("\r\ncontent-length: {}\r\n\r\n", body.len()).as_bytes());
        r.extend_from_slice(body);
        self.stream.write_all(r).await?;
        self.read_answer().await
    }

    /// Sends one `GET /queue/{product}/status` of `ticket` from `device`; returns the
    /// status and the code (`OK` for a 200).
    pub async fn poll(
        &mut self,
        product: &str,
        ticket: &str,
        device: &str,
    ) -> io::Result<(u16, String)> {
        let r = &mut self.request;
        r.clear();
        r.extend_from_slice(b"GET /queue/");
        r.extend_from_slice(product.as_bytes());
        r.extend_from_slice(b"/status HTTP/1.1\r\nhost: ");
        r.extend_from_slice(self.host.as_bytes());
        r.extend_from_slice(b"\r\nx-queue-ticket: ");
        r.extend_from_slice(ticket.as_bytes());
        r.extend_from_slice(b"\r\nx-device-fingerprint: ");
        r.extend_from_slice(device.as_bytes());
        r.extend_from_slice(b"\r\n\r\n");
        self.stream.write_all(r).await?;
        self.read_answer().await
    }

    async fn read_answer(&mut self) -> io::Result<(u16, String)> {
        self.buf.clear();
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            let parsed = response
                .parse(&self.buf)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if let httparse::Status::Complete(head) = parsed {
                let status = response.code.unwrap_or(0);
                let length = response
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                    .unwrap_or(0usize);
                while self.buf.len() < head + length {
                    self.fill().await?;
                }
                return Ok((status, code(status, &self.buf[head..head + length])));
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

/// `ACCEPTED` for a 202, `OK` for a 200, else the problem body's `code` (or `HTTP_<status>`).
fn code(status: u16, body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Problem<'a> {
        #[serde(borrow)]
        code: Option<&'a str>,
    }
    match status {
        202 => return "ACCEPTED".to_owned(),
        200 => return "OK".to_owned(),
        _ => {}
    }
    serde_json::from_slice::<Problem<'_>>(body)
        .ok()
        .and_then(|p| p.code.map(str::to_owned))
        .unwrap_or_else(|| format!("HTTP_{status}"))
}
