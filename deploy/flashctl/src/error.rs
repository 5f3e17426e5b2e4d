//! Errors of operator commands, each with the exit code scripts can rely on.

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The arguments make no sense (exit 2).
    #[error("{0}")]
    Invalid(String),
    /// The thing to act on does not exist (exit 4).
    #[error("{0}")]
    NotFound(String),
    /// The current state forbids the command (exit 5).
    #[error("{0}")]
    Conflict(String),
    /// Redis failed (exit 1).
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// PostgreSQL failed (exit 1).
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// Kafka failed (exit 1).
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// Anything else (exit 1).
    #[error("{0:#}")]
    Other(#[from] anyhow::Error),
}

impl From<stores::postgres::ConnectError> for OpsError {
    fn from(e: stores::postgres::ConnectError) -> Self {
        match e {
            stores::postgres::ConnectError::Setting(m) => Self::Invalid(m),
            failed @ stores::postgres::ConnectError::Postgres { .. } => Self::Other(failed.into()),
        }
    }
}

impl OpsError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Invalid(_) => 2,
            Self::NotFound(_) => 4,
            Self::Conflict(_) => 5,
            Self::Redis(_) | Self::Postgres(_) | Self::Kafka(_) | Self::Other(_) => 1,
        }
    }
}
