//! A service running inside the test's process: the application a test built, driven on
//! the test's runtime until the test stops it (drained like on SIGTERM).

/// A service running in this process until stopped (drained like on SIGTERM).
pub struct Running {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Runs `run(stop)` on the runtime; `stop` resolves when [`Running::stop`] is called.
    pub fn spawn<F>(
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

    /// Signals the stop and waits for the service to finish.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await?
    }
}
