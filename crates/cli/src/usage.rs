//! `keymint usage`: how an organisation's keys were used, as totals per key,
//! owner, tag or outcome over a period, each with a bar to compare them.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use clap::{Args, ValueEnum};
use serde_json::Value;

use crate::http::{segment, Client};
use crate::output::shown;
use crate::table::{table, text};
use crate::{Connection, Failure};

/// What to total the verifications by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum UsageGroup {
    /// VALID, REVOKED, EXPIRED, INSUFFICIENT_PERMISSIONS, RATE_LIMITED, USAGE_EXCEEDED.
    Outcome,
    /// Each key.
    Key,
    /// Each owner.
    Owner,
    /// Each tag (a verification with two tags counts under both).
    Tag,
}

impl UsageGroup {
    fn field(self) -> &'static str {
        match self {
            UsageGroup::Outcome => "outcome",
            UsageGroup::Key => "key_id",
            UsageGroup::Owner => "owner_id",
            UsageGroup::Tag => "tag",
        }
    }
}

/// `keymint usage`'s options.
#[derive(Debug, Args)]
pub struct UsageArgs {
    /// Only this key (its id).
    #[arg(long = "key", value_name = "ID")]
    key: Option<String>,
    /// Only keys of this owner.
    #[arg(long = "owner", value_name = "ID")]
    owner: Option<String>,
    /// Only verifications carrying this tag (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// How far back: minutes, hours or days, e.g. 30m, 24h, 7d.
    #[arg(long, value_name = "PERIOD", default_value = "24h", value_parser = parse_period)]
    since: Duration,
    /// What to total by.
    #[arg(long, value_enum, default_value = "outcome")]
    by: UsageGroup,
    /// Show the largest this many (1 to 10000).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    limit: u32,
}

/// `30m`, `24h`, `7d`.
fn parse_period(raw: &str) -> Result<Duration, String> {
    let (number, unit) = raw.split_at(raw.len().saturating_sub(1));
    let n: i64 = number
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{raw:?}: expected a positive number and m, h or d, e.g. 24h"))?;
    match unit {
        "m" => Ok(Duration::minutes(n)),
        "h" => Ok(Duration::hours(n)),
        "d" => Ok(Duration::days(n)),
        _ => Err(format!("{raw:?}: expected m, h or d after the number, e.g. 7d")),
    }
}

/// The query for `args` as of `now`: one total per group for the period,
/// the largest `--limit` of them (so that 100 000 keys are one short answer,
/// not a bucket per key and hour).
fn query_of(args: &UsageArgs, now: DateTime<Utc>) -> Result<String, Failure> {
    let from = now - args.since;
    let mut params: Vec<(&str, String)> = vec![
        ("from", from.to_rfc3339_opts(SecondsFormat::Secs, true)),
        ("to", now.to_rfc3339_opts(SecondsFormat::Secs, true)),
        ("granularity", "total".to_owned()),
        ("group_by", args.by.field().to_owned()),
        ("order_by", "count".to_owned()),
        ("limit", args.limit.to_string()),
    ];
    params.extend(args.key.iter().map(|key| ("key_id", key.clone())));
    params.extend(args.owner.iter().map(|owner| ("owner_id", owner.clone())));
    params.extend(args.tags.iter().map(|tag| ("tag", tag.clone())));
    serde_urlencoded::to_string(&params).map_err(|e| Failure {
        message: format!("cannot encode the query: {e}"),
        code: 2,
    })
}

/// A bar of at most `width` cells, `count` of `max`.
fn bar(count: u64, max: u64, width: usize) -> String {
    if max == 0 {
        return String::new();
    }
    let cells = (count as f64 / max as f64 * width as f64).round() as usize;
    "█".repeat(cells.max(usize::from(count > 0)))
}

/// The answer's rows totalled by the grouped field, largest first; `limit`
/// rows mean there may be more.
fn totals(answer: &Value, field: &str, limit: u32) -> String {
    let mut groups: Vec<(String, u64, u64)> = Vec::new();
    for row in answer["data"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let name = match &row[field] {
            Value::Null if field == "tag" => "(untagged)".to_owned(),
            Value::Null if field == "owner_id" => "(no owner)".to_owned(),
            other => text(other),
        };
        let (count, spent) = (
            row["count"].as_u64().unwrap_or_default(),
            row["spent_credits"].as_u64().unwrap_or_default(),
        );
        match groups.iter_mut().find(|(group, _, _)| *group == name) {
            Some(group) => {
                group.1 += count;
                group.2 += spent;
            }
            None => groups.push((name, count, spent)),
        }
    }
    groups.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let max = groups.first().map_or(0, |group| group.1);
    let heading = match field {
        "key_id" => "KEY",
        "owner_id" => "OWNER",
        "tag" => "TAG",
        _ => "OUTCOME",
    };
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|(name, count, spent)| vec![name.clone(), count.to_string(), spent.to_string(), bar(*count, max, 30)])
        .collect();
    let mut out = table(&[heading, "VERIFICATIONS", "CREDITS", ""], &rows);
    let total: u64 = groups.iter().map(|group| group.1).sum();
    let shown = answer["data"].as_array().map_or(0, Vec::len);
    let which = if shown >= limit as usize {
        format!(" in the largest {limit} (--limit shows more)")
    } else {
        String::new()
    };
    out.push_str(&format!(
        "{total} verifications{which} from {} to {}\n",
        text(&answer["from"]),
        text(&answer["to"])
    ));
    out
}

/// Runs `keymint usage` and returns what to print on stdout.
pub async fn usage(connection: &Connection, args: UsageArgs) -> Result<String, Failure> {
    let client = Client::new(connection)?;
    if let Some(key) = &args.key {
        // A key id is a UUID; anything else would only ever be a 422.
        if segment(key) != *key {
            return Err(Failure {
                message: "--key: a key id (a UUID)".to_owned(),
                code: 2,
            });
        }
    }
    let path = format!("/api/v2/analytics/verifications?{}", query_of(&args, Utc::now())?);
    let answer = client.call(reqwest::Method::GET, &path, None, true).await?;
    let (field, limit) = (args.by.field(), args.limit);
    Ok(shown(connection.json, &answer, |answer| totals(answer, field, limit)))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    #[test]
    fn periods_are_minutes_hours_or_days() {
        assert_eq!(parse_period("30m"), Ok(Duration::minutes(30)));
        assert_eq!(parse_period("24h"), Ok(Duration::hours(24)));
        assert_eq!(parse_period("7d"), Ok(Duration::days(7)));
        for bad in ["", "h", "0h", "-1d", "5w", "1.5h"] {
            assert!(parse_period(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_query_names_every_filter_and_asks_for_the_largest_totals() {
        let now = Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap();
        let args = UsageArgs {
            key: Some("k".into()),
            owner: None,
            tags: vec!["path=/a".into(), "region=eu".into()],
            since: Duration::hours(24),
            by: UsageGroup::Tag,
            limit: 5,
        };
        assert_eq!(
            query_of(&args, now).unwrap(),
            "from=2026-12-03T12%3A00%3A00Z&to=2026-12-04T12%3A00%3A00Z&granularity=total&group_by=tag\
             &order_by=count&limit=5&key_id=k&tag=path%3D%2Fa&tag=region%3Deu"
        );
    }

    #[test]
    fn totals_are_largest_first_with_a_bar_scaled_to_the_largest() {
        let answer = json!({"from": "f", "to": "t", "data": [
            {"time": "a", "count": 5, "spent_credits": 5, "outcome": "VALID"},
            {"time": "b", "count": 15, "spent_credits": 15, "outcome": "VALID"},
            {"time": "b", "count": 10, "spent_credits": 0, "outcome": "REVOKED"},
        ]});
        let out = totals(&answer, "outcome", 50);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[1].starts_with("VALID") && lines[1].contains("20") && lines[1].ends_with(&"█".repeat(30)));
        assert!(lines[2].starts_with("REVOKED") && lines[2].ends_with(&"█".repeat(15)));
        assert_eq!(lines[3], "30 verifications from f to t");
        let cut = totals(&answer, "outcome", 3);
        assert!(
            cut.ends_with("30 verifications in the largest 3 (--limit shows more) from f to t\n"),
            "{cut}"
        );
    }
}
