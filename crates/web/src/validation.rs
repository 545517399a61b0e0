//! Reading JSON objects field by field, collecting every failure instead of
//! stopping at the first, in pydantic's vocabulary so FastAPI clients understand.

use serde_json::{Map, Value};

use crate::FieldError;

/// A request body (or part of one) being validated.
pub(crate) struct ObjectReader {
    location: &'static str,
    fields: Map<String, Value>,
    errors: Vec<FieldError>,
}

/// A field that may be absent, `null`, or a value.
pub(crate) enum Optional<T> {
    Absent,
    Null,
    Value(T),
}

impl ObjectReader {
    /// Starts reading `value`, which must be a JSON object.
    pub(crate) fn new(location: &'static str, value: Value) -> Result<Self, Vec<FieldError>> {
        match value {
            Value::Object(fields) => Ok(Self {
                location,
                fields,
                errors: Vec::new(),
            }),
            _ => Err(vec![FieldError::new(
                &[location],
                "model_attributes_type",
                "Input should be a valid dictionary or object to extract fields from",
            )]),
        }
    }

    fn error(&mut self, field: &str, kind: &str, msg: impl Into<String>) {
        let loc: &[&str] = if field.is_empty() {
            &[self.location]
        } else {
            &[self.location, field]
        };
        self.errors.push(FieldError::new(loc, kind, msg));
    }

    /// Whether no field has failed so far and every field given has been read
    /// (anything left is unknown and will be refused by [`ObjectReader::finish`]).
    pub(crate) fn ok(&self) -> bool {
        self.errors.is_empty() && self.fields.is_empty()
    }

    fn string(&mut self, field: &str, value: Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s),
            _ => {
                self.error(field, "string_type", "Input should be a valid string");
                None
            }
        }
    }

    /// A required string field.
    pub(crate) fn required_string(&mut self, field: &str) -> Option<String> {
        match self.fields.remove(field) {
            None => {
                self.error(field, "missing", "Field required");
                None
            }
            Some(value) => self.string(field, value),
        }
    }

    /// A string field that may be absent or `null`. `None` means it was invalid.
    pub(crate) fn optional_string(&mut self, field: &str) -> Option<Optional<String>> {
        match self.fields.remove(field) {
            None => Some(Optional::Absent),
            Some(Value::Null) => Some(Optional::Null),
            Some(value) => self.string(field, value).map(Optional::Value),
        }
    }

    /// An optional integer field; `None` means it was not an integer. Integers
    /// beyond `i64` read as its bounds: whatever range the caller accepts, they
    /// are outside it, and the caller's own check says so.
    pub(crate) fn optional_integer(&mut self, field: &str) -> Option<Optional<i64>> {
        match self.fields.remove(field) {
            None => Some(Optional::Absent),
            Some(Value::Null) => Some(Optional::Null),
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(Optional::Value(n.as_i64().unwrap_or(i64::MAX))),
            // JSON Schema's `integer` is any number without a fraction, `60.0`
            // included (as pydantic accepts it); out-of-range values saturate and
            // are refused by the field's bounds.
            Some(Value::Number(n)) if n.as_f64().is_some_and(|f| f.is_finite() && f.fract() == 0.0) => {
                Some(Optional::Value(n.as_f64().map_or(i64::MAX, |f| f as i64)))
            }
            Some(Value::Number(_)) => {
                self.error(
                    field,
                    "int_from_float",
                    "Input should be a valid integer with no fractional part",
                );
                None
            }
            Some(_) => {
                self.error(field, "int_type", "Input should be a valid integer");
                None
            }
        }
    }

    /// An object field that may be absent or `null`. `None` means it was not
    /// an object.
    pub(crate) fn optional_object(&mut self, field: &str) -> Option<Optional<Map<String, Value>>> {
        match self.fields.remove(field) {
            None => Some(Optional::Absent),
            Some(Value::Null) => Some(Optional::Null),
            Some(Value::Object(object)) => Some(Optional::Value(object)),
            Some(_) => {
                self.error(field, "dict_type", "Input should be a valid dictionary");
                None
            }
        }
    }

    /// Whether the body names `field` (read or not yet).
    pub(crate) fn has(&self, field: &str) -> bool {
        self.fields.contains_key(field)
    }

    /// An array field that may be absent or `null`. `None` means it was not an
    /// array.
    pub(crate) fn optional_array(&mut self, field: &str) -> Option<Optional<Vec<Value>>> {
        match self.fields.remove(field) {
            None => Some(Optional::Absent),
            Some(Value::Null) => Some(Optional::Null),
            Some(Value::Array(items)) => Some(Optional::Value(items)),
            Some(_) => {
                self.error(field, "list_type", "Input should be a valid list");
                None
            }
        }
    }

    /// Records an error on item `index` of the array `field`.
    pub(crate) fn fail_item(&mut self, field: &str, index: usize, kind: &str, msg: impl Into<String>) {
        let index = index.to_string();
        self.errors
            .push(FieldError::new(&[self.location, field, index.as_str()], kind, msg));
    }

    /// Records an error on `field` found by the caller's own check.
    pub(crate) fn fail(&mut self, field: &str, kind: &str, msg: impl Into<String>) {
        self.error(field, kind, msg);
    }

    /// Runs a domain constructor on a field's value, recording its refusal as the
    /// error `kind(err)` with the constructor's own message.
    pub(crate) fn check<T, E: std::fmt::Display>(
        &mut self,
        field: &str,
        result: Result<T, E>,
        kind: impl Fn(&E) -> &'static str,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(err) => {
                let kind = kind(&err);
                self.error(field, kind, err.to_string());
                None
            }
        }
    }

    /// Ends reading: any field not read is unknown and refused, so a typo such as
    /// `"descripton"` is reported instead of silently dropped.
    pub(crate) fn finish<T>(mut self, value: Option<T>) -> Result<T, Vec<FieldError>> {
        let mut unknown: Vec<String> = self.fields.keys().cloned().collect();
        unknown.sort();
        for field in unknown {
            self.error(&field, "extra_forbidden", "Extra inputs are not permitted");
        }
        match value {
            Some(value) if self.errors.is_empty() => Ok(value),
            _ => Err(self.errors),
        }
    }
}

/// A type that can be read from a JSON request body.
pub trait FromJsonBody: Sized {
    /// Validates `value`, returning every failing field.
    fn from_json(value: Value) -> Result<Self, Vec<FieldError>>;
}

/// Parses an RFC 3339 timestamp field value (with an offset; stored as UTC).
pub(crate) fn parse_timestamp(raw: &str) -> Result<chrono::DateTime<chrono::Utc>, TimestampError> {
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| TimestampError)
}

/// The text is not an RFC 3339 timestamp.
#[derive(Debug)]
pub(crate) struct TimestampError;

impl std::fmt::Display for TimestampError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Input should be an RFC 3339 date-time with a time zone, e.g. 2030-01-01T00:00:00Z")
    }
}
