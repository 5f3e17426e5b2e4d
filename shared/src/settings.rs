//! Typed settings from environment variables and an optional file.
//!
//! Each binary declares a `serde` struct; [`load`] fills it from `CONFIG_FILE` (TOML, if
//! set) and then the environment, which wins. Names are the upper-case field names
//! (`LISTEN_ADDR` → `listen_addr`). A setting that does not parse or validate ends the
//! process with [`EXIT_CONFIG`] and a message that names it.

use serde::de::DeserializeOwned;

/// Exit code for a configuration error (`EX_CONFIG` would be 78; sysexits' `EX_USAGE`,
/// 64, is what operators' scripts in this project check for).
pub const EXIT_CONFIG: i32 = 64;

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// Missing, or of the wrong type, as the `config` crate reports it.
    #[error("{0}")]
    Load(#[from] config::ConfigError),
    /// Parsed but refused by the binary's own validation.
    #[error("{0}")]
    Invalid(String),
}

/// Loads `T` from `CONFIG_FILE` (optional TOML) overlaid with the environment.
pub fn load<T: DeserializeOwned>() -> Result<T, SettingsError> {
    let mut builder = config::Config::builder();
    if let Ok(path) = std::env::var("CONFIG_FILE") {
        builder = builder.add_source(
            config::File::with_name(&path)
                .format(config::FileFormat::Toml)
                .required(true),
        );
    }
    let cfg = builder
        .add_source(config::Environment::default().try_parsing(true))
        .build()?;
    Ok(cfg.try_deserialize()?)
}

/// Prints the error for the operator and exits with [`EXIT_CONFIG`].
pub fn exit_on_error(binary: &str, err: &dyn std::fmt::Display) -> ! {
    eprintln!("{binary}: configuration error: {err}");
    std::process::exit(EXIT_CONFIG)
}
