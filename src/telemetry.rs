//! Log output. Secrets never reach it: domain types redact themselves in `Debug`,
//! and SQL statement logging (whose bind values include key hashes) is disabled in
//! the database adapter.

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::configuration::{LogFormat, LogSettings};

/// Installs the global subscriber writing to `writer`. `RUST_LOG`, when set,
/// overrides `settings.level`. `ansi` colours text output (only for terminals).
/// Does nothing if one is already installed.
pub fn init<W>(settings: &LogSettings, writer: W, ansi: bool)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    let _ = match settings.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
