//! Redis connections, with timeouts, for the services and for one-shot tools.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};

/// A reconnecting, multiplexed connection for a service, with `timeout` for connecting
/// and for every answer, one retry, and at most 500 ms between reconnection attempts. It
/// is lazy: it connects on first use, on the runtime of the thread that creates it, so a
/// service starts (and reports not ready) while Redis is down.
pub fn manager(url: &str, timeout: Duration) -> redis::RedisResult<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(timeout))
        .set_connection_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500));
    redis::Client::open(url)?.get_connection_manager_lazy(config)
}

/// One multiplexed connection for a tool or a test: 3 s to connect, 5 s per answer.
pub async fn connect(url: &str) -> redis::RedisResult<MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(3)))
        .set_response_timeout(Some(Duration::from_secs(5)));
    redis::Client::open(url)?
        .get_multiplexed_async_connection_with_config(&config)
        .await
}
