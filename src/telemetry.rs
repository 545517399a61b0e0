//! Log output. Secrets never reach it, whatever a client sends:
//! - domain types redact themselves in `Debug`, and SQL statement logging
//!   (whose bind values include key hashes) is disabled in the database adapter;
//! - the HTTP layer logs paths without query strings and errors without their
//!   `Debug` form;
//! - and every line passes through [`redact`] on its way out, which masks
//!   anything shaped like a private key, a bearer token, a JWT or an argon2 hash,
//!   for what a client puts where nobody expected it (a key as a JSON field
//!   name, a token in a path).

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::LazyLock;

use regex::Regex;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::configuration::{LogFormat, LogSettings};

/// What a secret looks like, most specific first, with the marker that replaces
/// it, so a redacted line still says what was there.
const PATTERNS: [(&str, &str); 5] = [
    // `Bearer <anything>` / `Basic <anything>`, whatever the token is.
    (r"(?i)\b(?:bearer|basic)\s+[^\s\x22',;]+", "[redacted credential]"),
    // JWTs: base64url JSON headers start with `eyJ`.
    (
        r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*)?",
        "[redacted JWT]",
    ),
    // Keymint private keys, with or without a deployment prefix (a masked
    // display such as `sk_live_…6R7c` is left alone).
    (
        r"\b(?:[A-Za-z0-9]+_)?sk_(?:live|test)_[A-Za-z0-9_]{8,}",
        "[redacted key]",
    ),
    // argon2 PHC strings.
    (r"\$argon2(?:id|i|d)?\$[^\s\x22',;]*", "[redacted hash]"),
    // Any long opaque run: a key's bare secret, a hash, a signature. `/` is not
    // part of a run, so paths (`/api/v2/api-keys/<uuid>/events`) stay readable.
    (r"[A-Za-z0-9+_-]{40,}={0,2}", "[redacted]"),
];

/// The compiled patterns (a test checks that every one compiles).
static SECRETS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    PATTERNS
        .iter()
        .filter_map(|(pattern, marker)| Regex::new(pattern).ok().map(|regex| (regex, *marker)))
        .collect()
});

/// `line` with every secret-shaped run replaced by a marker.
pub fn redact(line: &str) -> Cow<'_, str> {
    let mut text = Cow::Borrowed(line);
    for (pattern, marker) in SECRETS.iter() {
        if let Cow::Owned(replaced) = pattern.replace_all(&text, *marker) {
            text = Cow::Owned(replaced);
        }
    }
    text
}

/// A log writer that redacts each formatted event before it is written.
#[derive(Clone, Debug)]
pub struct Redacting<W>(pub W);

impl<W: Write> Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // The formatter hands over one whole event per call.
        match std::str::from_utf8(buf) {
            Ok(text) => self.0.write_all(redact(text).as_bytes())?,
            Err(_) => self.0.write_all(redact(&String::from_utf8_lossy(buf)).as_bytes())?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Redacting<M> {
    type Writer = Redacting<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        Redacting(self.0.make_writer())
    }
}

/// Installs the global subscriber writing to `writer`, through [`Redacting`].
/// `RUST_LOG`, when set, overrides `settings.level`. `ansi` colours text output
/// (only for terminals). Does nothing if one is already installed.
pub fn init<W>(settings: &LogSettings, writer: W, ansi: bool)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    // PostgreSQL's NOTICEs ("relation seaql_migrations already exists, skipping",
    // three times per start) are the server talking to itself, not news.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},sqlx::postgres::notice=warn", settings.level)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Redacting(writer))
        .with_ansi(ansi);
    let _ = match settings.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles() {
        assert_eq!(SECRETS.len(), PATTERNS.len());
    }

    #[test]
    fn secrets_are_masked_and_ordinary_text_is_not() {
        let key = "sk_live_ZYitJ9LeGOXJFPIO_LQPRhxyowF6QjcEowlwvOlnFhxAqEjADgRcwzQAqPZ60a6R7c";
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
        for (line, secret) in [
            (format!("POST /verify key={key} done"), key),
            (format!("{{\"{key}\": 1}}"), key),
            (format!("acme_{key}"), key),
            (format!("authorization: Bearer {jwt}"), jwt),
            ("authorization: Basic dXNlcjpwYXNz".to_owned(), "dXNlcjpwYXNz"),
            ("Authorization: bearer Tok3n-short".to_owned(), "Tok3n-short"),
            (format!("token={jwt}&x=1"), jwt),
            (format!("stored {hash}"), "aGFzaGhhc2hoYXNo"),
            (format!("secret part {}", &key[25..]), &key[25..]),
        ] {
            let redacted = redact(&line);
            assert!(!redacted.contains(secret), "{line} -> {redacted}");
            assert!(redacted.contains("[redacted"), "{redacted}");
        }
        for ordinary in [
            "API key created key_id=019ac0c5-5d1e-7be3-9a4e-3f3c1d1a6a10 org_id=3c90c3cc-0d44-4b50-8888-8dd25736052a",
            "public_key=pk_live_jd6jOLEibB9kXIBNPUovZioV display=sk_live_…6R7c",
            "request failed: storage is unavailable",
            "http.target=/api/v2/api-keys/019ac0c5-5d1e-7be3-9a4e-3f3c1d1a6a10/events http.route=/api/v2/api-keys/{key_id}/events",
            "cannot create crates/infrastructure/src/sql/repository/data",
            // Keymint's own start-up line reaches the log as written.
            "INFO keymint::startup: management API tokens are verified auth=mode=hs256 require_permissions=false",
        ] {
            assert_eq!(redact(ordinary), ordinary);
        }
        assert_eq!(redact("nothing to see"), Cow::Borrowed("nothing to see"));
    }
}
