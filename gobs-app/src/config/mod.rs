//! The config file: its types, built-in defaults, loading, and the commented file `init` writes
//! (`default.toml`). `raw` holds the file as written and its checks; `tests` the parse errors.
//!
//! Every table denies unknown keys, so a typo is an error, and every error names the file and
//! the line and column it is about. Without a config file the built-in defaults apply
//! ([`Config::for_this_host`]): exactly what [`DEFAULT_CONFIG_TOML`] says, but for the
//! default provider, which is the most real one the host allows ([`default_provider`]).

pub mod default_provider;
pub mod hosts;
pub mod human;
pub mod machines;
pub mod observe;
pub mod state_dir;

use crate::text::floor_char_boundary;
use std::fmt::Write as _;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::DeTable;

pub use crate::config::machines::MachinesConfig;
pub use crate::config::observe::{EventsConfig, ListenerConfig};
use crate::providers;
pub use model::{
    Config, DEFAULT_GROUP_MAX_COMMITS, DEFAULT_GROUP_MAX_DELAY_MS, DaemonConfig, ProviderConfig,
    StoreConfig,
};
pub(crate) use raw::KindName;
use raw::RawConfig;

/// The file `gobs-app init` writes. It parses to [`Config::default`].
pub const DEFAULT_CONFIG_TOML: &str = include_str!("default.toml");

/// A config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}; {hint}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
        /// What to do about it.
        hint: &'static str,
    },
    /// The file is not valid TOML, or not a valid config.
    #[error(
        "invalid config file {}, line {line}, column {column}: {message}\n{snippet}\
         fix the file, or compare it with the one `gobs-app init` writes",
        path.display()
    )]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column (in characters) of the problem.
        column: usize,
        /// What is wrong.
        message: String,
        /// The offending line with a caret under the problem, ending in a newline.
        snippet: String,
    },
}

/// Loads the config a command runs with: the `explicit` file if one was named (it must
/// exist), else `state_default` if it exists, else the built-in defaults.
pub fn load_effective(
    explicit: Option<&Path>,
    state_default: &Path,
) -> Result<Config, ConfigError> {
    match explicit {
        Some(path) => load(path),
        None if state_default.exists() => load(state_default),
        None => {
            tracing::debug!(
                "no config file at {}; using built-in defaults",
                state_default.display()
            );
            Ok(Config::for_this_host())
        }
    }
}

/// Reads and validates a config file. A file that is not UTF-8 is refused with the line
/// and column of its first bad byte.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    tracing::debug!("reading config file {}", path.display());
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
        hint: if source.kind() == io::ErrorKind::NotFound {
            "create it with `gobs-app init`, or name another file with --config / $GOBS_CONFIG"
        } else {
            "check the path and its permissions"
        },
        path: path.to_path_buf(),
        source,
    })?;
    match String::from_utf8(bytes) {
        Ok(text) => parse(&text, path),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let byte = e.as_bytes().get(at).copied().unwrap_or_default();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let (line, column, snippet) = locate(&text, at..at + 1);
            Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                message: format!(
                    "the file is not UTF-8 text: byte 0x{byte:02x} cannot start or continue a \
                     character (TOML files are UTF-8; re-save it as UTF-8)"
                ),
                snippet,
            })
        }
    }
}

/// Parses and validates config text; `path` is only used in error messages.
///
/// ```
/// use std::path::Path;
/// use gobs_app::config::{parse, Config, DEFAULT_CONFIG_TOML};
///
/// assert_eq!(parse(DEFAULT_CONFIG_TOML, Path::new("config.toml")).unwrap(), Config::default());
/// let err = parse("colour = \"blue\"\n", Path::new("config.toml")).unwrap_err();
/// assert!(err.to_string().contains("line 1, column 1"));
/// ```
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let invalid = |span: Range<usize>, message: String| {
        let (line, column, snippet) = locate(text, span);
        ConfigError::Invalid {
            path: path.to_path_buf(),
            line,
            column,
            message,
            snippet,
        }
    };
    let toml_error =
        |e: toml::de::Error| invalid(e.span().unwrap_or(0..0), e.message().trim().to_string());
    let raw: RawConfig = toml::from_str(text).map_err(toml_error)?;
    let mut config = raw
        .into_config()
        .map_err(|(span, message)| invalid(span, message))?;
    // Each provider's own keys are checked by its kind, on the parsed document so that
    // errors keep their positions.
    let document = DeTable::parse(text).map_err(toml_error)?;
    for (name, provider) in &mut config.providers {
        let Some(kind) = providers::kind(provider.kind) else {
            continue;
        };
        let table = provider_table(document.get_ref(), name);
        provider.settings = kind
            .check_config(table)
            .map_err(|(span, message)| invalid(span, message))?;
    }
    Ok(config)
}

/// The `[providers.NAME]` table of `document`, without the keys every provider has.
fn provider_table<'i>(document: &DeTable<'i>, name: &str) -> Spanned<DeTable<'i>> {
    let found = document
        .get("providers")
        .and_then(|p| p.get_ref().as_table())
        .and_then(|t| t.get(name))
        .and_then(|v| v.get_ref().as_table().map(|t| (v.span(), t.clone())));
    let (span, table) = found.unwrap_or_else(|| (0..0, DeTable::new()));
    let own: DeTable<'i> = table
        .into_iter()
        .filter(|(key, _)| !matches!(key.get_ref().as_ref(), "kind" | "enabled"))
        .collect();
    Spanned::new(span, own)
}

/// 1-based line and column (in characters) of `span.start`, and a snippet showing it.
fn locate(text: &str, span: Range<usize>) -> (usize, usize, String) {
    let start = floor_char_boundary(text, span.start);
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line = text[..start].matches('\n').count() + 1;
    let column = text[line_start..start].chars().count() + 1;
    let source_line = text[line_start..line_end].trim_end_matches('\r');
    let end = floor_char_boundary(text, span.end.clamp(start, line_end));
    let width = text[start..end].chars().count().max(1);
    let gutter = " ".repeat(line.to_string().len());
    let mut snippet = String::new();
    let _ = writeln!(snippet, "{gutter} |");
    let _ = writeln!(snippet, "{line} | {source_line}");
    let _ = writeln!(
        snippet,
        "{gutter} | {}{}",
        " ".repeat(column - 1),
        "^".repeat(width)
    );
    (line, column, snippet)
}

mod model;
mod raw;
#[cfg(test)]
mod tests;
