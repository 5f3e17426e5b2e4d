//! A Redis server of one test's own.

use anyhow::Context;

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
