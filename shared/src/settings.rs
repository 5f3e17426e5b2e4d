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

/// Loads `T` from `CONFIG_FILE` (optional TOML) overlaid with the environment, and each
/// of the `secrets` (setting names, upper case) from the file `<NAME>_FILE` names, if set
/// ([`from_files`]).
pub fn load<T: DeserializeOwned>(secrets: &[&str]) -> Result<T, SettingsError> {
    let mut builder = config::Config::builder();
    if let Ok(path) = std::env::var("CONFIG_FILE") {
        builder = builder.add_source(
            config::File::with_name(&path)
                .format(config::FileFormat::Toml)
                .required(true),
        );
    }
    builder = builder.add_source(config::Environment::default().try_parsing(true));
    for name in secrets {
        if let Some(value) = from_file(name)? {
            builder = builder.set_override(name.to_lowercase(), value)?;
        }
    }
    Ok(builder.build()?.try_deserialize()?)
}

/// `name`'s value from the file `<name>_FILE` names, if that is set ([`from_files`]: with
/// `name` set too, refused).
pub fn from_file(name: &str) -> Result<Option<String>, SettingsError> {
    let file = format!("{name}_FILE");
    let vars = std::env::vars_os().filter(|(k, _)| *k == *name || *k == *file);
    Ok(from_files(vars)?.into_iter().next().map(|(_, v)| v))
}

/// The settings given as files (Docker and Kubernetes secrets): for each `<NAME>_FILE` of
/// `vars` (a caller passes only the names it reads; `CONFIG_FILE` aside), `<NAME>` and the file's content, one trailing line end
/// dropped. `<NAME>` set as well is refused, and so is a file that cannot be read; the
/// message names the setting and the path, never the content.
pub fn from_files(
    vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Result<Vec<(String, String)>, SettingsError> {
    let vars: Vec<(String, std::ffi::OsString)> = vars
        .filter_map(|(k, v)| k.into_string().ok().map(|k| (k, v)))
        .collect();
    let mut found = Vec::new();
    for (key, path) in &vars {
        let Some(name) = key.strip_suffix("_FILE").filter(|n| !n.is_empty()) else {
            continue;
        };
        if key == "CONFIG_FILE" {
            continue;
        }
        if vars.iter().any(|(k, _)| k == name) {
            return Err(SettingsError::Invalid(format!(
                "{name} and {key} are both set: set one of them"
            )));
        }
        let shown = std::path::Path::new(path).display().to_string();
        let content = std::fs::read_to_string(path)
            .map_err(|e| SettingsError::Invalid(format!("{key}: cannot read {shown}: {e}")))?;
        let value = content.strip_suffix('\n').unwrap_or(&content);
        let value = value.strip_suffix('\r').unwrap_or(value);
        found.push((name.to_owned(), value.to_owned()));
    }
    Ok(found)
}

/// Prints the error for the operator and exits with [`EXIT_CONFIG`].
pub fn exit_on_error(binary: &str, err: &dyn std::fmt::Display) -> ! {
    eprintln!("{binary}: configuration error: {err}");
    std::process::exit(EXIT_CONFIG)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(
        pairs: &[(&str, &str)],
    ) -> impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn a_setting_comes_from_its_file_without_the_line_end() {
        let dir = std::env::temp_dir().join(format!("settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let file = dir.join("secret");
        std::fs::write(&file, "k:0123456789abcdef\n").expect("written");
        let path = file.display().to_string();
        let found = from_files(vars(&[
            ("SIGNING_KEYS_FILE", &path),
            ("CONFIG_FILE", "x.toml"),
        ]));
        assert_eq!(
            found.expect("read"),
            [("SIGNING_KEYS".to_owned(), "k:0123456789abcdef".to_owned())]
        );
        let both = from_files(vars(&[
            ("SIGNING_KEYS_FILE", &path),
            ("SIGNING_KEYS", "k:x"),
        ]));
        let err = both.expect_err("refused").to_string();
        assert!(err.contains("SIGNING_KEYS and SIGNING_KEYS_FILE"), "{err}");
        let missing = from_files(vars(&[("DATABASE_URL_FILE", "/nonexistent/secret")]));
        let err = missing.expect_err("refused").to_string();
        assert!(
            err.contains("DATABASE_URL_FILE: cannot read /nonexistent/secret"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
