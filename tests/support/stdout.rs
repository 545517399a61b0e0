//! Reading a `keymint` child process's log from its stdout.

use std::io::{BufRead, BufReader};
use std::process::ChildStdout;
use std::sync::mpsc;
use std::time::Duration;

/// The lines `stdout` yields, read on a thread of their own. The thread reads to
/// the end even when nobody listens any more, so the child never blocks on a full
/// pipe.
pub fn lines_of(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    received
}

/// Waits (at most 30 s) for the "Keymint listening address=…" line and returns
/// the address.
pub fn listening_address(lines: &mpsc::Receiver<String>) -> String {
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("keymint starts listening");
        if let Some(rest) = line.split("address=").nth(1) {
            return rest.split_whitespace().next().expect("an address").to_owned();
        }
    }
}
