//! How each typed setting is read from its text or number, with an error that
//! says what was expected. Each reader is the one place its rule lives.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use keymint_application::LeakAction;
use keymint_domain::{Environment, KeyPrefix};
use keymint_infrastructure::parse_algorithm;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use super::StorageUrl;

/// A whole number of seconds.
pub(super) fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_secs)
}

/// A whole number of seconds, at least one.
pub(super) fn positive_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    match u64::deserialize(d)? {
        0 => Err(D::Error::custom("must be greater than 0")),
        n => Ok(Duration::from_secs(n)),
    }
}

/// A whole number of milliseconds, at least one.
pub(super) fn positive_millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    match u64::deserialize(d)? {
        0 => Err(D::Error::custom("must be greater than 0")),
        n => Ok(Duration::from_millis(n)),
    }
}

/// A whole number of days, from one to ten years'.
pub(super) fn positive_days<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    match u64::deserialize(d)? {
        0 => Err(D::Error::custom("must be greater than 0")),
        n if n > 3660 => Err(D::Error::custom("must be at most 3660 (ten years)")),
        n => Ok(Duration::from_secs(n * 86_400)),
    }
}

/// A whole number of hours.
pub(super) fn hours<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let hours = u64::deserialize(d)?;
    if hours > 24 * 365 {
        return Err(D::Error::custom("must be at most 8760 (a year)"));
    }
    Ok(Duration::from_secs(hours * 3600))
}

/// `127.0.0.1:8080`, `[::1]:8080`, `0.0.0.0:0`.
pub(super) fn socket_address<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    text.parse()
        .map_err(|_| D::Error::custom(format!("'{text}' is not a socket address such as 127.0.0.1:8080")))
}

/// A socket address, or empty for "not set".
pub(super) fn optional_socket_address<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    match optional_text(d)? {
        None => Ok(None),
        Some(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("'{text}' is not a socket address such as 127.0.0.1:9090"))),
    }
}

/// `live` or `test`.
pub(super) fn environment<'de, D: Deserializer<'de>>(d: D) -> Result<Environment, D::Error> {
    String::deserialize(d)?
        .parse()
        .map_err(|_| D::Error::custom("must be 'live' or 'test'"))
}

/// A key prefix: `sk` (the default, unbranded) or a brand such as `acme`.
pub(super) fn key_prefix<'de, D: Deserializer<'de>>(d: D) -> Result<KeyPrefix, D::Error> {
    let text = String::deserialize(d)?;
    KeyPrefix::parse(text.trim()).map_err(|err| D::Error::custom(format!("'{text}': {err}")))
}

/// Key prefixes, as a list or one comma-separated text; empty is none.
pub(super) fn key_prefixes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<KeyPrefix>, D::Error> {
    names(d)?
        .iter()
        .map(|name| KeyPrefix::parse(name).map_err(|err| D::Error::custom(format!("'{name}': {err}"))))
        .collect()
}

/// `memory:`, `sqlite:…` or `postgres://…`. The URL may hold a password, so the
/// error never repeats it.
pub(super) fn storage_url<'de, D: Deserializer<'de>>(d: D) -> Result<StorageUrl, D::Error> {
    StorageUrl::from_str(&String::deserialize(d)?).map_err(D::Error::custom)
}

/// `revoke` or `flag`.
pub(super) fn leak_action<'de, D: Deserializer<'de>>(d: D) -> Result<LeakAction, D::Error> {
    String::deserialize(d)?.trim().parse().map_err(D::Error::custom)
}

/// An `http(s)://` URL that must be set.
pub(super) fn required_http_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    optional_http_url(d)?.ok_or_else(|| D::Error::custom("must not be empty"))
}

/// Text that means "not set" when empty or blank.
pub(super) fn optional_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let text = String::deserialize(d)?;
    Ok((!text.trim().is_empty()).then_some(text))
}

/// Text that must not be empty or blank.
pub(super) fn required_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    optional_text(d)?.ok_or_else(|| D::Error::custom("must not be empty"))
}

/// An `http(s)://` URL, or empty for "not set".
pub(super) fn optional_http_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match optional_text(d)? {
        Some(url) if !(url.starts_with("https://") || url.starts_with("http://")) => {
            Err(D::Error::custom("must be an http(s) URL"))
        }
        url => Ok(url),
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Names {
    Joined(String),
    List(Vec<String>),
}

/// A list of names, or one comma-separated text (what an environment variable
/// can hold), each trimmed, empty ones left out.
fn names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let names = match Names::deserialize(d)? {
        Names::Joined(text) => text.split(',').map(str::to_owned).collect(),
        Names::List(names) => names,
    };
    Ok(names
        .iter()
        .map(|name| name.trim())
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect())
}

/// At least one supported asymmetric algorithm: a list, or one comma-separated
/// text (`"RS256, ES256"`), which is what an environment variable can hold.
pub(super) fn algorithms<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Algorithm>, D::Error> {
    let algorithms = names(d)?
        .iter()
        .map(|name| parse_algorithm(name).map_err(D::Error::custom))
        .collect::<Result<Vec<_>, _>>()?;
    if algorithms.is_empty() {
        return Err(D::Error::custom("must name at least one algorithm"));
    }
    Ok(algorithms)
}

/// Addresses and CIDR networks: a list, or one comma-separated text
/// (`"10.0.0.0/8, 127.0.0.1"`), which is what an environment variable can hold.
/// An address alone is a network of one.
pub(super) fn networks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    names(d)?
        .iter()
        .map(|name| {
            name.parse::<ipnet::IpNet>()
                .or_else(|_| name.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| D::Error::custom(format!("'{name}' is not an IP address or CIDR network")))
        })
        .collect()
}

/// `x-forwarded-for` or `forwarded`, in any case.
pub(super) fn forwarded_header<'de, D: Deserializer<'de>>(d: D) -> Result<keymint_web::ForwardedHeader, D::Error> {
    let name = String::deserialize(d)?;
    match name.trim().to_ascii_lowercase().as_str() {
        "x-forwarded-for" => Ok(keymint_web::ForwardedHeader::XForwardedFor),
        "forwarded" => Ok(keymint_web::ForwardedHeader::Forwarded),
        _ => Err(D::Error::custom(format!(
            "'{name}' is not one of 'x-forwarded-for', 'forwarded'"
        ))),
    }
}
