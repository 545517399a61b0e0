//! A real `keymint` process, as the CLI and the console meet it.

use std::process::{Child, Command, Stdio};

/// A Keymint on SQLite in a temporary directory, killed when dropped.
pub struct KeymintProcess {
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub database_url: String,
    _dir: tempfile::TempDir,
}

impl Drop for KeymintProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary on a free port with cheap hashing and only the given
/// KEYMINT_* variables besides (none of the developer's environment), in an
/// empty directory (no repository file is read), and waits until it listens.
pub fn spawn_keymint(extra: &[(&str, &str)]) -> KeymintProcess {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}/keymint.db", dir.path().display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_keymint"))
        .current_dir(dir.path())
        .env_clear()
        .env("KEYMINT_SERVER__LISTEN", "127.0.0.1:0")
        .env("KEYMINT_DATABASE__URL", &database_url)
        .env("KEYMINT_HASHING__MEMORY_KIB", "64")
        .env("KEYMINT_HASHING__ITERATIONS", "1")
        .envs(extra.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let address = super::stdout::listening_address(&super::stdout::lines_of(child.stdout.take().unwrap()));
    KeymintProcess {
        child,
        url: format!("http://{address}"),
        database_url,
        _dir: dir,
    }
}
