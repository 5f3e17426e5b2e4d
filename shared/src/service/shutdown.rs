//! The shutdown signal shared by every long-running binary, and the periodic loop of
//! their background tasks.

use std::time::Duration;

use tokio::sync::watch;

/// Waits `period` for the next round of a background task; `false` once `stop` has
/// turned (or its sender is gone), so the task's loop ends:
/// `while next_round(&mut stop, period).await { … }`.
pub async fn next_round(stop: &mut watch::Receiver<bool>, period: Duration) -> bool {
    tokio::select! {
        _ = stop.changed() => false,
        () = tokio::time::sleep(period) => !*stop.borrow(),
    }
}

/// Resolves on SIGTERM (orchestrators) or SIGINT (Ctrl-C).
pub async fn signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        () = term => tracing::info!("SIGTERM received, shutting down"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn rounds_go_on_until_stop_turns() {
        let (tx, mut rx) = watch::channel(false);
        assert!(next_round(&mut rx, Duration::from_secs(1)).await);
        let stopper = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let _ = tx.send(true);
        });
        assert!(next_round(&mut rx, Duration::from_secs(1)).await);
        assert!(!next_round(&mut rx, Duration::from_secs(1)).await);
        let _ = stopper.await;
    }
}
