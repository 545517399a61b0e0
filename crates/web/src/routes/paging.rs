//! Query-string parsing, cursors and RFC 8288 `Link` headers for lists.

use chrono::{DateTime, Utc};
use keymint_application::{EventCursor, KeyCursor};
use keymint_domain::{Environment, KeyId, NameSearch, OwnerId};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::IntoParams;
use uuid::Uuid;

use super::environment_schema;
use crate::FieldError;

/// The most items one page may hold, and the default.
pub(crate) const MAX_PAGE: usize = 100;

/// Query parameters, read one by one so each failure names its parameter.
pub(crate) struct QueryReader {
    pairs: Vec<(String, String)>,
    errors: Vec<FieldError>,
}

impl QueryReader {
    pub(crate) fn new(query_string: &str) -> Result<Self, Vec<FieldError>> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(query_string)
            .map(|pairs| Self {
                pairs,
                errors: Vec::new(),
            })
            .map_err(|_| {
                vec![FieldError::new(
                    &["query"],
                    "value_error",
                    "The query string is not URL-encoded",
                )]
            })
    }

    fn take(&mut self, name: &str) -> Option<String> {
        // The last occurrence wins, as in most frameworks.
        let value = self.pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        self.pairs.retain(|(k, _)| k != name);
        value
    }

    /// Every value of a repeatable parameter, in order (`?tag=a&tag=b`).
    pub(crate) fn take_all(&mut self, name: &str) -> Vec<String> {
        let values = self
            .pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect();
        self.pairs.retain(|(k, _)| k != name);
        values
    }

    /// A parameter's one value (the last wins), for readers outside this module.
    pub(crate) fn take_one(&mut self, name: &str) -> Option<String> {
        self.take(name)
    }

    /// Records that parameter `name` is invalid.
    pub(crate) fn fail(&mut self, name: &str, kind: &str, msg: impl Into<String>) {
        self.errors.push(FieldError::new(&["query", name], kind, msg));
    }

    /// `limit`: an integer from 1 to [`MAX_PAGE`], default [`MAX_PAGE`].
    pub(crate) fn limit(&mut self) -> usize {
        let Some(raw) = self.take("limit") else { return MAX_PAGE };
        match raw.parse::<i64>() {
            Err(_) => self.fail("limit", "int_parsing", "Input should be a valid integer"),
            Ok(n) if n < 1 => self.fail(
                "limit",
                "greater_than_equal",
                "Input should be greater than or equal to 1",
            ),
            Ok(n) if n > MAX_PAGE as i64 => self.fail(
                "limit",
                "less_than_equal",
                format!("Input should be less than or equal to {MAX_PAGE}"),
            ),
            Ok(n) => return usize::try_from(n).unwrap_or(MAX_PAGE),
        }
        MAX_PAGE
    }

    /// `cursor` as a sequence number (a page of deliveries), as a previous
    /// page's `Link` header gives it.
    pub(crate) fn sequence_cursor(&mut self) -> Option<i64> {
        let raw = self.take("cursor")?;
        let parsed = raw
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0 && raw.bytes().all(|b| b.is_ascii_digit()));
        if parsed.is_none() {
            self.fail(
                "cursor",
                "value_error",
                "Invalid cursor: pass the value from a Link header unchanged (a positive integer)",
            );
        }
        parsed
    }

    /// `cursor`: a position, as a previous page's `Link` header gives it.
    pub(crate) fn cursor(&mut self) -> Option<(DateTime<Utc>, Uuid)> {
        let raw = self.take("cursor")?;
        let decoded = decode_cursor(&raw);
        if decoded.is_none() {
            self.fail(
                "cursor",
                "value_error",
                "Invalid cursor: pass the value from a Link header unchanged (<microseconds>.<32 hex digits>)",
            );
        }
        decoded
    }

    /// `environment`: `live` or `test`.
    pub(crate) fn environment(&mut self) -> Option<Environment> {
        let raw = self.take("environment")?;
        match raw.parse() {
            Ok(environment) => Some(environment),
            Err(_) => {
                self.fail("environment", "literal_error", "Input should be 'live' or 'test'");
                None
            }
        }
    }

    /// `owner_id`: an owner id, matched exactly.
    pub(crate) fn owner_id(&mut self) -> Option<OwnerId> {
        let raw = self.take("owner_id")?;
        match OwnerId::new(raw) {
            Ok(owner) => Some(owner),
            Err(err) => {
                self.fail("owner_id", "value_error", err.to_string());
                None
            }
        }
    }

    /// `name`: text a key's name contains, ignoring case.
    pub(crate) fn name_search(&mut self) -> Option<NameSearch> {
        let raw = self.take("name")?;
        match NameSearch::new(&raw) {
            Ok(search) => Some(search),
            Err(err) => {
                self.fail("name", "value_error", err.to_string());
                None
            }
        }
    }

    /// A boolean parameter: `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
    pub(crate) fn boolean(&mut self, name: &str) -> Option<bool> {
        let raw = self.take(name)?;
        match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(true),
            "false" | "0" | "no" | "off" => Some(false),
            _ => {
                self.fail(name, "bool_parsing", "Input should be a valid boolean");
                None
            }
        }
    }

    /// Ends reading. Unknown parameters are ignored, as HTTP APIs customarily do.
    pub(crate) fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }
}

/// A cursor: the creation time (microseconds since the Unix epoch) and id of
/// the last item seen. Any such position is a valid query (the page after it),
/// so the pattern describes every cursor the service accepts.
const CURSOR_PATTERN: &str = "^[0-9]{1,16}\\.[0-9a-f]{32}$";

fn cursor_schema() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(
            "Where the previous page ended, from its `Link` header: `<microseconds since the epoch>.<id as 32 hex digits>`",
        ))
        .pattern(Some(CURSOR_PATTERN))
}

/// `owner_id`'s schema in a query: the rules of a stored owner id.
pub(crate) fn owner_id_query_schema() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("Only keys of this owner (exact match)"))
        .min_length(Some(1))
        .max_length(Some(keymint_domain::MAX_OWNER_ID_CHARS))
        .pattern(Some(crate::routes::api_keys::visible_text_pattern()))
}

/// `name`'s schema in a query: what a name may hold (`NameSearch` follows a
/// name's rules).
fn name_query_schema() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("Only keys whose name contains this text, ignoring case"))
        .min_length(Some(1))
        .max_length(Some(keymint_domain::MAX_NAME_CHARS))
        .pattern(Some(crate::routes::api_keys::visible_text_pattern()))
}

/// `limit`'s schema, with [`MAX_PAGE`].
fn limit_schema() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .description(Some("Page size"))
        .minimum(Some(1))
        .maximum(Some(MAX_PAGE))
        .default(Some(MAX_PAGE.into()))
}

/// The paging parameters every list reads ([`QueryReader::limit`], [`QueryReader::cursor`]).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct PageQuery {
    /// Page size
    #[param(schema_with = limit_schema)]
    limit: Option<u32>,
    /// Where the previous page ended, from its `Link` header
    #[param(schema_with = cursor_schema)]
    cursor: Option<String>,
}

/// The paging parameters of a list ordered by sequence (deliveries).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct SequencePageQuery {
    /// Page size
    #[param(schema_with = limit_schema)]
    limit: Option<u32>,
    /// Where the previous page ended, from its `Link` header
    #[param(minimum = 1)]
    cursor: Option<i64>,
}

/// The filters of the key list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct KeyListQuery {
    /// Only keys of this environment
    #[param(schema_with = environment_schema)]
    environment: Option<String>,
    /// Only revoked (`true`) or only unrevoked (`false`) keys
    is_revoked: Option<bool>,
    /// Only keys of this owner (exact match)
    #[param(schema_with = owner_id_query_schema)]
    owner_id: Option<String>,
    /// Only keys whose name contains this text, ignoring case
    #[param(schema_with = name_query_schema)]
    name: Option<String>,
}

/// `<micros since epoch>.<id, simple form>`: a plain position, so the OpenAPI
/// pattern can say exactly which cursors are valid. Positions reveal nothing a
/// page does not show already (each item has its `created_at` and `id`).
pub(crate) fn encode_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    format!("{}.{}", at.timestamp_micros(), id.simple())
}

/// The inverse of [`encode_cursor`], exactly [`CURSOR_PATTERN`]: no sign, no
/// hyphens, no upper case, so every position has one spelling.
fn decode_cursor(raw: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let (micros, id) = raw.split_once('.')?;
    let digits = (1..=16).contains(&micros.len()) && micros.bytes().all(|b| b.is_ascii_digit());
    let hex = id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !(digits && hex) {
        return None;
    }
    Some((
        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        Uuid::try_parse(id).ok()?,
    ))
}

pub(crate) fn key_cursor((created_at, id): (DateTime<Utc>, Uuid)) -> KeyCursor {
    KeyCursor {
        created_at,
        id: KeyId::from_uuid(id),
    }
}

pub(crate) fn event_cursor((occurred_at, id): (DateTime<Utc>, Uuid)) -> EventCursor {
    EventCursor { occurred_at, id }
}

/// `Link: <path?params&cursor=…>; rel="next"` (RFC 8288), keeping the filters.
pub(crate) fn next_link(path: &str, params: &[(&str, String)], cursor: String) -> String {
    let mut query: Vec<(&str, String)> = params.iter().filter(|(_, v)| !v.is_empty()).cloned().collect();
    query.push(("cursor", cursor));
    let encoded = serde_urlencoded::to_string(&query).unwrap_or_default();
    format!("<{path}?{encoded}>; rel=\"next\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let at = DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap();
        let id = Uuid::new_v4();
        assert_eq!(decode_cursor(&encode_cursor(at, id)), Some((at, id)));
        let pattern = regex::Regex::new(CURSOR_PATTERN).unwrap();
        assert!(pattern.is_match(&encode_cursor(at, id)));
        let upper = format!("1.{}", id.simple()).to_uppercase();
        let hyphenated = format!("1.{id}");
        let too_long = format!("12345678901234567.{}", id.simple());
        let signed = format!("+1.{}", id.simple());
        for bad in [
            "",
            "!!",
            "bm90LWEtY3Vyc29y",
            "12.not-a-uuid",
            &upper,
            &hyphenated,
            &too_long,
            &signed,
        ] {
            assert!(!pattern.is_match(bad), "{bad}");
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn query_failures_name_their_parameter() {
        let mut query = QueryReader::new("limit=0&environment=prod&is_revoked=maybe&cursor=zz&other=ignored").unwrap();
        query.limit();
        query.environment();
        query.boolean("is_revoked");
        query.cursor();
        let names: Vec<String> = query
            .finish()
            .unwrap_err()
            .into_iter()
            .map(|e| e.loc[1].clone())
            .collect();
        assert_eq!(names, ["limit", "environment", "is_revoked", "cursor"]);
    }

    #[test]
    fn the_next_link_keeps_filters_and_adds_the_cursor() {
        let link = next_link(
            "/api/v2/api-keys",
            &[("limit", "2".into()), ("environment", String::new())],
            "abc".into(),
        );
        assert_eq!(link, "</api/v2/api-keys?limit=2&cursor=abc>; rel=\"next\"");
    }
}
