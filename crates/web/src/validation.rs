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
        self.errors
            .push(FieldError::new(&[self.location, field], kind, msg));
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
