//! The key bodies' fields, each read into a domain value (so one 422 names
//! every failing field and no body skips a domain constructor). The nested
//! objects (a rate limit, credits, a refill) are read into the structs below,
//! which are also what OpenAPI shows of them.

use chrono::Utc;
use keymint_domain::{
    Credits, CreditsError, KeyDescription, KeyDescriptionError, KeyMeta, KeyName, KeyNameError, OwnerId, OwnerIdError,
    PermissionName, PermissionNameError, Permissions, RateLimit, RateLimitError, RateLimits, Refill, RefillInterval,
    MIN_WINDOW_MS,
};
use serde_json::Value;
use utoipa::ToSchema;

use crate::validation::{ObjectReader, Optional};

fn name_error_kind(err: &KeyNameError) -> &'static str {
    match err {
        KeyNameError::Empty => "string_too_short",
        KeyNameError::TooLong(_) => "string_too_long",
        KeyNameError::Text(_) => "value_error",
    }
}

fn description_error_kind(err: &KeyDescriptionError) -> &'static str {
    match err {
        KeyDescriptionError::TooLong(_) => "string_too_long",
        KeyDescriptionError::Nul | KeyDescriptionError::Text(_) => "value_error",
    }
}

pub(super) fn read_name(body: &mut ObjectReader, raw: String) -> Option<KeyName> {
    body.check("name", KeyName::new(raw), name_error_kind)
}

/// `Some(None)` for absent or null, `Some(Some(_))` for a valid value, `None` if invalid.
pub(super) fn read_description(body: &mut ObjectReader) -> Option<Option<KeyDescription>> {
    match body.optional_string("description")? {
        Optional::Value(raw) => body
            .check("description", KeyDescription::new(raw), description_error_kind)
            .map(Some),
        Optional::Absent | Optional::Null => Some(None),
    }
}

/// `permissions`: a list of names, each checked (an error names its index),
/// deduplicated, at most [`MAX_PERMISSIONS`]. `Some(None)` when absent or
/// `null`, `None` if invalid.
pub(super) fn read_permissions(body: &mut ObjectReader) -> Option<Option<Permissions>> {
    let items = match body.optional_array("permissions")? {
        Optional::Absent | Optional::Null => return Some(None),
        Optional::Value(items) => items,
    };
    let mut names = Vec::with_capacity(items.len());
    let mut valid = true;
    for (index, item) in items.into_iter().enumerate() {
        let Value::String(raw) = item else {
            body.fail_item("permissions", index, "string_type", "Input should be a valid string");
            valid = false;
            continue;
        };
        match PermissionName::new(raw) {
            Ok(name) => names.push(name),
            Err(err) => {
                let kind = match err {
                    PermissionNameError::Empty => "string_too_short",
                    PermissionNameError::TooLong(_) => "string_too_long",
                    PermissionNameError::InvalidCharacter(_) => "string_pattern_mismatch",
                    PermissionNameError::NotConcrete => "value_error",
                };
                body.fail_item("permissions", index, kind, err.to_string());
                valid = false;
            }
        }
    }
    if !valid {
        return None;
    }
    body.check("permissions", Permissions::new(names), |_| "too_long")
        .map(Some)
}

/// `owner_id`: `Some(None)` when absent or `null`, `None` if invalid.
pub(super) fn read_owner_id(body: &mut ObjectReader) -> Option<Option<OwnerId>> {
    match body.optional_string("owner_id")? {
        Optional::Value(raw) => body
            .check("owner_id", OwnerId::new(raw), |err| match err {
                OwnerIdError::Empty => "string_too_short",
                OwnerIdError::TooLong(_) => "string_too_long",
                OwnerIdError::Text(_) => "value_error",
            })
            .map(Some),
        Optional::Absent | Optional::Null => Some(None),
    }
}

/// `meta`: a JSON object of at most [`MAX_META_BYTES`] compact bytes. `Some(None)`
/// when absent or `null`, `None` if invalid.
pub(super) fn read_meta(body: &mut ObjectReader) -> Option<Option<KeyMeta>> {
    match body.optional_object("meta")? {
        Optional::Value(object) => body.check("meta", KeyMeta::new(object), |_| "too_long").map(Some),
        Optional::Absent | Optional::Null => Some(None),
    }
}

/// `ratelimits`: up to five `{name, limit, duration_ms, auto_apply}` (an
/// error names the item and field). `Some(None)` when absent or `null`, `None`
/// if invalid.
pub(super) fn read_ratelimits(body: &mut ObjectReader) -> Option<Option<RateLimits>> {
    let items = match body.optional_array("ratelimits")? {
        Optional::Absent | Optional::Null => return Some(None),
        Optional::Value(items) => items,
    };
    let mut limits = Vec::with_capacity(items.len());
    let mut valid = true;
    for (index, item) in items.into_iter().enumerate() {
        let Some(mut limit) = body.nested(vec!["ratelimits".into(), index.to_string()], item) else {
            valid = false;
            continue;
        };
        let name = limit.string("name", true);
        let count = limit.number("limit", true);
        let duration = limit.number("duration_ms", true);
        let auto_apply = limit.boolean("auto_apply");
        // Each field against the domain's rule on its own (the others set to
        // values it accepts), so every failing field is named at once.
        let mut each = |field: &str, kind: &'static str, check: Result<RateLimit, RateLimitError>| match check {
            Ok(_) => Some(()),
            Err(err) => {
                limit.fail(field, kind, err.to_string());
                None
            }
        };
        let name = name.flatten().filter(|name| {
            each(
                "name",
                "string_pattern_mismatch",
                RateLimit::new(name.as_str(), 1, MIN_WINDOW_MS, true),
            )
            .is_some()
        });
        let count = count
            .flatten()
            .filter(|count| each("limit", "value_error", RateLimit::new("a", *count, MIN_WINDOW_MS, true)).is_some());
        let duration = duration
            .flatten()
            .filter(|duration| each("duration_ms", "value_error", RateLimit::new("a", 1, *duration, true)).is_some());
        let parsed = match (name, count, duration, auto_apply) {
            (Some(name), Some(limit), Some(duration_ms), Some(auto_apply)) => RateLimitInput {
                name,
                limit,
                duration_ms,
                auto_apply,
            }
            .checked()
            .ok(),
            _ => None,
        };
        let clean = limit.finish();
        match parsed {
            Some(parsed) if clean => limits.push(parsed),
            _ => valid = false,
        }
    }
    if !valid {
        return None;
    }
    match RateLimits::new(limits.clone()) {
        Ok(limits) => Some(Some(limits)),
        Err(RateLimitError::DuplicateName(name)) => {
            let index = limits.iter().rposition(|l| l.name() == name).unwrap_or(0).to_string();
            body.fail_at(
                &["ratelimits", &index, "name"],
                "value_error",
                RateLimitError::DuplicateName(name).to_string(),
            );
            None
        }
        Err(err) => {
            body.fail("ratelimits", "too_long", err.to_string());
            None
        }
    }
}

/// `credits`: `{remaining, refill: {interval, amount, refill_day?}}`, or
/// `null` for unlimited use. `Some(None)` when absent or `null`, `None` if
/// invalid.
pub(super) fn read_credits(body: &mut ObjectReader) -> Option<Option<Credits>> {
    let object = match body.optional_object("credits")? {
        Optional::Absent | Optional::Null => return Some(None),
        Optional::Value(object) => object,
    };
    let mut credits = body.nested(vec!["credits".into()], Value::Object(object))?;
    let remaining = credits.number("remaining", true);
    let refill = match credits.object("refill") {
        Some(Some(object)) => {
            let path = credits.path_of("refill");
            let mut refill = credits.body().nested(path, Value::Object(object))?;
            let interval = refill.string("interval", true);
            let interval = match interval {
                Some(Some(raw)) => match raw.parse::<RefillInterval>() {
                    Ok(interval) => Some(interval),
                    Err(err) => {
                        refill.fail("interval", "literal_error", err.to_string());
                        None
                    }
                },
                _ => None,
            };
            let amount = refill.number("amount", true);
            let day = refill.number("refill_day", false);
            let parsed = match (interval, amount, day) {
                (Some(interval), Some(Some(amount)), Some(day)) => {
                    let input = RefillInput {
                        interval,
                        amount,
                        refill_day: day.map(|day| u32::try_from(day).unwrap_or(u32::MAX)),
                    };
                    match input.checked() {
                        Ok(parsed) => Some(parsed),
                        Err(err) => {
                            let field = match err {
                                CreditsError::DayOutOfRange | CreditsError::DayWithDaily => "refill_day",
                                _ => "amount",
                            };
                            refill.fail(field, "value_error", err.to_string());
                            None
                        }
                    }
                }
                _ => None,
            };
            let clean = refill.finish();
            parsed.filter(|_| clean).map(Some)
        }
        Some(None) => Some(None),
        None => None,
    };
    let parsed = match (remaining, refill) {
        (Some(Some(remaining)), Some(refill)) => match (CreditsInput { remaining, refill }).checked() {
            Ok(parsed) => Some(parsed),
            Err(err) => {
                credits.fail("remaining", "value_error", err.to_string());
                None
            }
        },
        _ => None,
    };
    let clean = credits.finish();
    parsed.filter(|_| clean).map(Some)
}

/// An update's field: `Some(None)` when the body does not name it (left as it
/// is), else `Some(Some(_))` with what `read` made of it (`null` included, which
/// clears), `None` if invalid.
pub(super) fn if_given<T>(
    body: &mut ObjectReader,
    field: &str,
    read: impl FnOnce(&mut ObjectReader) -> Option<T>,
) -> Option<Option<T>> {
    let given = body.has(field);
    read(body).map(|value| given.then_some(value))
}

/// A rate limit on a key.
#[derive(Debug, ToSchema)]
pub(crate) struct RateLimitInput {
    /// Unique on the key: letters, digits and _ . : -
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_.:-]+$")]
    name: String,
    /// Uses allowed per window
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    limit: u64,
    /// The window in milliseconds, 1 000 (a second) to 2 592 000 000 (30 days),
    /// aligned to the Unix epoch
    #[schema(minimum = 1000, maximum = 2_592_000_000_u64)]
    duration_ms: u64,
    /// Whether every verification takes 1 from it (default true); otherwise
    /// only verifications that name it
    auto_apply: Option<bool>,
}

impl RateLimitInput {
    fn checked(self) -> Result<RateLimit, RateLimitError> {
        RateLimit::new(self.name, self.limit, self.duration_ms, self.auto_apply.unwrap_or(true))
    }
}

/// A key's credits: `remaining` verifications (of cost 1), refilled by the
/// UTC calendar if `refill` is given.
#[derive(Debug, ToSchema)]
pub(crate) struct CreditsInput {
    #[schema(minimum = 0, maximum = 1_000_000_000_000_u64)]
    remaining: u64,
    #[schema(value_type = Option<RefillInput>)]
    refill: Option<Refill>,
}

impl CreditsInput {
    /// The credits, their refill counted from now.
    fn checked(self) -> Result<Credits, CreditsError> {
        Credits::new(self.remaining, self.refill, Utc::now())
    }
}

/// `remaining` is set to `amount` at 00:00 UTC every day, or on `refill_day`
/// (default 1; the month's last day when shorter) of every month.
#[derive(Debug, ToSchema)]
pub(crate) struct RefillInput {
    #[schema(value_type = String, pattern = "^(daily|monthly)$")]
    interval: RefillInterval,
    #[schema(minimum = 1, maximum = 1_000_000_000_000_u64)]
    amount: u64,
    /// Monthly refills only
    #[schema(minimum = 1, maximum = 31)]
    refill_day: Option<u32>,
}

impl RefillInput {
    fn checked(self) -> Result<Refill, CreditsError> {
        Refill::new(self.interval, self.amount, self.refill_day)
    }
}
