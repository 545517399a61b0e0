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

    /// A boolean field that may be absent or `null`. `None` means it was not a
    /// boolean.
    pub(crate) fn optional_bool(&mut self, field: &str) -> Option<Optional<bool>> {
        match self.fields.remove(field) {
            None => Some(Optional::Absent),
            Some(Value::Null) => Some(Optional::Null),
            Some(Value::Bool(flag)) => Some(Optional::Value(flag)),
            Some(_) => {
                self.error(field, "bool_type", "Input should be a valid boolean");
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

impl ObjectReader {
    /// Records an error at `path` below this reader's location.
    pub(crate) fn fail_at(&mut self, path: &[&str], kind: &str, msg: impl Into<String>) {
        let mut loc = vec![self.location];
        loc.extend_from_slice(path);
        self.errors.push(FieldError::new(&loc, kind, msg));
    }

    /// An optional field holding an object, read with its own [`Nested`] reader
    /// whose errors land under this body's location.
    pub(crate) fn nested(&mut self, path: Vec<String>, value: Value) -> Option<Nested<'_>> {
        match value {
            Value::Object(fields) => Some(Nested {
                body: self,
                path,
                fields,
            }),
            _ => {
                let path: Vec<&str> = path.iter().map(String::as_str).collect();
                self.fail_at(&path, "dict_type", "Input should be a valid dictionary");
                None
            }
        }
    }
}

/// An object inside a body (a rate limit, the credits), read field by field.
pub(crate) struct Nested<'a> {
    body: &'a mut ObjectReader,
    path: Vec<String>,
    fields: Map<String, Value>,
}

impl Nested<'_> {
    /// Records an error on `field` of this object (`""`: the object itself).
    pub(crate) fn fail(&mut self, field: &str, kind: &str, msg: impl Into<String>) {
        let mut path: Vec<&str> = self.path.iter().map(String::as_str).collect();
        if !field.is_empty() {
            path.push(field);
        }
        self.body.fail_at(&path, kind, msg);
    }

    fn take(&mut self, field: &str, required: bool) -> Option<Option<Value>> {
        match self.fields.remove(field) {
            Some(Value::Null) | None if required => {
                self.fail(field, "missing", "Field required");
                None
            }
            Some(Value::Null) | None => Some(None),
            Some(value) => Some(Some(value)),
        }
    }

    /// A whole number ≥ 0 (`60.0` counts; larger than `u64` saturates for the
    /// caller's bound to refuse). `Some(None)` when optional and absent.
    pub(crate) fn number(&mut self, field: &str, required: bool) -> Option<Option<u64>> {
        let Some(value) = self.take(field, required)? else {
            return Some(None);
        };
        let Value::Number(n) = value else {
            self.fail(field, "int_type", "Input should be a valid integer");
            return None;
        };
        if let Some(n) = n.as_u64() {
            return Some(Some(n));
        }
        match n.as_f64() {
            Some(f) if n.is_i64() || (f.is_finite() && f.fract() == 0.0 && f < 0.0) => {
                self.fail(
                    field,
                    "greater_than_equal",
                    "Input should be greater than or equal to 0",
                );
                None
            }
            // Saturates: every bound the caller checks is below u64::MAX.
            Some(f) if f.is_finite() && f.fract() == 0.0 => Some(Some(f as u64)),
            _ => {
                self.fail(
                    field,
                    "int_from_float",
                    "Input should be a valid integer with no fractional part",
                );
                None
            }
        }
    }

    /// A string. `Some(None)` when optional and absent.
    pub(crate) fn string(&mut self, field: &str, required: bool) -> Option<Option<String>> {
        match self.take(field, required)? {
            None => Some(None),
            Some(Value::String(s)) => Some(Some(s)),
            Some(_) => {
                self.fail(field, "string_type", "Input should be a valid string");
                None
            }
        }
    }

    /// A boolean. `Some(None)` when absent.
    pub(crate) fn boolean(&mut self, field: &str) -> Option<Option<bool>> {
        match self.take(field, false)? {
            None => Some(None),
            Some(Value::Bool(b)) => Some(Some(b)),
            Some(_) => {
                self.fail(field, "bool_type", "Input should be a valid boolean");
                None
            }
        }
    }

    /// A nested object in this one. `Some(None)` when absent or `null`.
    pub(crate) fn object(&mut self, field: &str) -> Option<Option<Map<String, Value>>> {
        match self.take(field, false)? {
            None => Some(None),
            Some(Value::Object(object)) => Some(Some(object)),
            Some(_) => {
                self.fail(field, "dict_type", "Input should be a valid dictionary");
                None
            }
        }
    }

    /// The path of `field` in this object, for a reader of something inside it.
    pub(crate) fn path_of(&self, field: &str) -> Vec<String> {
        let mut path = self.path.clone();
        path.push(field.to_owned());
        path
    }

    /// The reader this object belongs to (for an object inside this one).
    pub(crate) fn body(&mut self) -> &mut ObjectReader {
        self.body
    }

    /// Ends reading: fields not read are refused. Returns whether the object
    /// had no unknown field.
    pub(crate) fn finish(mut self) -> bool {
        let mut unknown: Vec<String> = self.fields.keys().cloned().collect();
        unknown.sort();
        let clean = unknown.is_empty();
        for field in unknown {
            self.fail(&field, "extra_forbidden", "Extra inputs are not permitted");
        }
        clean
    }
}
