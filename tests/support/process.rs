//! A real `keymint` process, as the CLI and the console meet it.

use std::ops::{Deref, DerefMut};
use std::process::{Child, Command, Stdio};

/// A child process that is killed and reaped when dropped, so a failing test
/// leaves nothing running.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Deref for Reaped {
    type Target = Child;

    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// A Keymint on SQLite in a temporary directory, killed when dropped.
pub struct KeymintProcess {
    pub child: Reaped,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub database_url: String,
    _dir: tempfile::TempDir,
}

/// Starts the binary on a free port with cheap hashing and only the given
/// KEYMINT_* variables besides (none of the developer's environment), in an
/// empty directory (no repository file is read), and waits until it listens.
pub fn spawn_keymint(extra: &[(&str, &str)]) -> KeymintProcess {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}/keymint.db", dir.path().display());
    let child = Command::new(env!("CARGO_BIN_EXE_keymint"))
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
    // Reaped from here, so a start that fails leaves nothing running.
    let mut child = Reaped(child);
    let address = super::stdout::listening_address(&super::stdout::lines_of(child.stdout.take().unwrap()));
    KeymintProcess {
        child,
        url: format!("http://{address}"),
        database_url,
        _dir: dir,
    }
}
