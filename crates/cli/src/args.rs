//! Parsers of option values shared by `keys create` and `keys update`: each
//! checks only the shape and says what it expected; the server checks values.

use clap::ValueEnum;
use serde_json::{json, Value};

/// `daily:AMOUNT` or `monthly:AMOUNT`, as the API's `credits.refill`. Only the
/// shape is checked here; the server checks the values and names what it refuses.
pub(crate) fn parse_refill(raw: &str) -> Result<Value, String> {
    let (interval, amount) = raw
        .split_once(':')
        .ok_or("expected daily:AMOUNT or monthly:AMOUNT, e.g. daily:1000")?;
    if !matches!(interval, "daily" | "monthly") {
        return Err(format!("{interval:?} is not daily or monthly"));
    }
    let amount: u64 = amount
        .parse()
        .map_err(|_| format!("{amount:?} is not a whole number"))?;
    Ok(json!({"interval": interval, "amount": amount}))
}

/// `NAME=LIMIT/WINDOW`, the window a number with `s`, `m`, `h` or `d`.
pub(crate) fn parse_ratelimit(raw: &str) -> Result<Value, String> {
    const SHAPE: &str = "expected NAME=LIMIT/WINDOW, e.g. requests=100/1m";
    let (name, rest) = raw.split_once('=').ok_or(SHAPE)?;
    let (limit, window) = rest.split_once('/').ok_or(SHAPE)?;
    let limit: u64 = limit.parse().map_err(|_| format!("{limit:?} is not a whole number"))?;
    let split = window.find(|c: char| !c.is_ascii_digit()).unwrap_or(window.len());
    let (count, unit) = window.split_at(split);
    let count: u64 = count
        .parse()
        .map_err(|_| format!("{window:?} is not a window such as 1s, 10m, 1h or 1d"))?;
    let unit_ms: u64 = match unit {
        "s" | "" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{window:?} is not a window such as 1s, 10m, 1h or 1d")),
    };
    let duration_ms = count.checked_mul(unit_ms).ok_or(format!("{window:?} is too long"))?;
    Ok(json!({"name": name, "limit": limit, "duration_ms": duration_ms}))
}

/// A JSON value; the server says whether it is an acceptable `meta`.
pub(crate) fn parse_meta(raw: &str) -> Result<Value, String> {
    serde_json::from_str(raw).map_err(|e| format!("not JSON: {e}"))
}

/// A key's environment.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum EnvironmentArg {
    /// Production traffic.
    Live,
    /// Test and staging traffic.
    Test,
}

impl EnvironmentArg {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EnvironmentArg::Live => "live",
            EnvironmentArg::Test => "test",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_limit_reads_name_limit_and_window_in_any_unit() {
        assert_eq!(
            parse_ratelimit("requests=100/1m").unwrap(),
            json!({"name": "requests", "limit": 100, "duration_ms": 60_000})
        );
        assert_eq!(parse_ratelimit("burst=10/1s").unwrap()["duration_ms"], 1_000);
        assert_eq!(parse_ratelimit("day=5/2d").unwrap()["duration_ms"], 172_800_000);
        assert_eq!(
            parse_ratelimit("plain=5/30").unwrap()["duration_ms"],
            30_000,
            "seconds by default"
        );
        for (bad, says) in [
            ("requests=100", "NAME=LIMIT/WINDOW"),
            ("requests", "NAME=LIMIT/WINDOW"),
            ("r=ten/1m", "not a whole number"),
            ("r=10/1w", "not a window"),
            ("r=10/m", "not a window"),
        ] {
            let err = parse_ratelimit(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
        assert!(parse_ratelimit("r=10/9999999999999999d")
            .unwrap_err()
            .contains("too long"));
    }

    #[test]
    fn a_refill_is_daily_or_monthly_with_an_amount() {
        assert_eq!(
            parse_refill("monthly:1000").unwrap(),
            json!({"interval": "monthly", "amount": 1000})
        );
        assert!(parse_refill("weekly:5").unwrap_err().contains("not daily or monthly"));
        assert!(parse_refill("daily").unwrap_err().contains("daily:AMOUNT"));
        assert!(parse_refill("daily:-1").unwrap_err().contains("not a whole number"));
    }
}
