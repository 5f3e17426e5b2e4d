//! A TCP proxy a test can cut: a network partition between one client and a real
//! server, without stopping the server other tests use.

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

#[cfg(test)]
mod tests {
    use super::*;

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
