//! What is known about a leaked private key: where a scanner found it.

use std::fmt;

/// Characters a [`LeakSource`] may have at most.
pub const MAX_LEAK_SOURCE_CHARS: usize = 64;
/// Characters a [`LeakUrl`] may have at most.
pub const MAX_LEAK_URL_CHARS: usize = 2048;

/// Where a leak was seen, in the reporter's terms: GitHub's `source`
/// (`commit`, `content`, `issue_comment`, …) or `self_report` when the key's
/// holder reported it. 1 to [`MAX_LEAK_SOURCE_CHARS`] ASCII letters, digits and
/// `_.:-`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeakSource(String);

/// The source of a report made by whoever holds the key.
pub const SELF_REPORT: &str = "self_report";

/// The text is not a leak source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a leak source has 1 to {MAX_LEAK_SOURCE_CHARS} ASCII letters, digits and _.:-")]
pub struct LeakSourceError;

impl LeakSource {
    /// Checks a reported source.
    pub fn parse(raw: &str) -> Result<Self, LeakSourceError> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-');
        if raw.is_empty() || raw.len() > MAX_LEAK_SOURCE_CHARS || !raw.chars().all(allowed) {
            return Err(LeakSourceError);
        }
        Ok(Self(raw.to_owned()))
    }

    /// The source of a holder's own report.
    pub fn self_report() -> Self {
        Self(SELF_REPORT.to_owned())
    }

    /// The source of a report that named none usable.
    pub fn unknown() -> Self {
        Self("unknown".to_owned())
    }

    /// The source as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LeakSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where the leaked key was found: an `http(s)` URL of at most
/// [`MAX_LEAK_URL_CHARS`] characters with no whitespace or control characters
/// (so that it is stored alike by every database and cannot forge log lines).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeakUrl(String);

/// The text is not a leak URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a leak URL is an http(s) URL of at most {MAX_LEAK_URL_CHARS} characters without spaces or control characters")]
pub struct LeakUrlError;

impl LeakUrl {
    /// Checks a reported URL.
    pub fn parse(raw: &str) -> Result<Self, LeakUrlError> {
        let scheme = raw.starts_with("https://") || raw.starts_with("http://");
        if !scheme
            || raw.chars().count() > MAX_LEAK_URL_CHARS
            || raw.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(LeakUrlError);
        }
        Ok(Self(raw.to_owned()))
    }

    /// The URL as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LeakUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A report that a key's private key leaked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeakReport {
    /// Where it was seen.
    pub source: LeakSource,
    /// The page it was seen on, if the reporter said.
    pub url: Option<LeakUrl>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_short_plain_words() {
        for good in ["commit", "self_report", "pull_request_title", "a:b.c-d"] {
            assert_eq!(LeakSource::parse(good).unwrap().as_str(), good);
        }
        for bad in ["", "has space", "new\nline", "é", &"x".repeat(65), "nul\0"] {
            assert_eq!(LeakSource::parse(bad), Err(LeakSourceError), "{bad:?}");
        }
        assert_eq!(LeakSource::self_report().as_str(), SELF_REPORT);
    }

    #[test]
    fn urls_are_http_without_spaces_or_control_characters() {
        let good = "https://github.com/o/r/blob/abc/config.env#L3";
        assert_eq!(LeakUrl::parse(good).unwrap().as_str(), good);
        assert!(LeakUrl::parse("http://example.test/ü").is_ok());
        let longest = format!("https://e.test/{}", "a".repeat(MAX_LEAK_URL_CHARS - 15));
        assert!(LeakUrl::parse(&longest).is_ok());
        for bad in [
            "",
            "ftp://e.test/",
            "javascript:alert(1)",
            "https://e.test/a b",
            "https://e.test/\u{0}",
            "https://e.test/\r\nX-Injected: 1",
            &format!("{longest}a"),
        ] {
            assert_eq!(LeakUrl::parse(bad), Err(LeakUrlError), "{bad:?}");
        }
    }
}
