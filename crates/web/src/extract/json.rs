use std::future::Future;
use std::pin::Pin;

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::validation::FromJsonBody;
use crate::ApiError;

/// The most bytes a route reads from a request body. Every route registers one
/// explicitly (actix's own default is 2 MiB, far beyond any Keymint request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyLimit(pub usize);

impl Default for BodyLimit {
    fn default() -> Self {
        Self(16 * 1024)
    }
}

/// How long a request body may take to arrive, whole. Without it a client
/// trickling one byte a second held a connection (and its buffer) forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyTimeout(pub std::time::Duration);

impl Default for BodyTimeout {
    fn default() -> Self {
        Self(std::time::Duration::from_secs(10))
    }
}

/// The memory that request bodies being received may hold together, in bytes,
/// shared by the routes it is registered on. Each chunk's bytes are reserved
/// as it arrives, before it is buffered, and given back when the body has
/// been read; a body that finds no room is answered 503 at once. So a crowd
/// of slow or abandoned uploads, authenticated or not, holds at most this
/// much, however many connections carry it, and a client must send the
/// bytes it holds.
#[derive(Clone, Debug)]
pub struct BodyBudget(Arc<Semaphore>);

impl BodyBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> Self {
        Self(Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS))))
    }

    /// Bytes free now.
    pub fn available(&self) -> usize {
        self.0.available_permits()
    }

    fn reserve(&self, bytes: usize) -> Result<OwnedSemaphorePermit, ApiError> {
        let bytes = u32::try_from(bytes).map_err(|_| busy())?;
        self.0.clone().try_acquire_many_owned(bytes).map_err(|_| busy())
    }
}

fn busy() -> ApiError {
    ApiError::Unavailable {
        code: "server_busy",
        detail: "Too many request bodies are being received at once; retry shortly",
        cause: None,
    }
}

/// A JSON body, size-limited, time-limited, parsed, and validated into `T` with
/// every failing field reported at once: 415 if not declared JSON, 413 if too
/// large, 408 if it does not arrive in time, 400 if not JSON, 422 if JSON of the
/// wrong shape.
#[derive(Debug)]
pub struct ValidatedJson<T>(pub T);

fn is_json(req: &HttpRequest) -> bool {
    match req.mime_type() {
        Ok(Some(mime)) => {
            mime.type_() == "application" && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json"))
        }
        _ => false,
    }
}

/// What a body extractor needs to know of the request before reading it.
struct BodyRead {
    limit: usize,
    timeout: std::time::Duration,
    declared: Option<usize>,
    json: bool,
    budget: Option<BodyBudget>,
    payload: actix_web::dev::Payload,
}

impl BodyRead {
    fn new(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self {
        Self {
            limit: req.app_data::<BodyLimit>().copied().unwrap_or_default().0,
            timeout: req.app_data::<BodyTimeout>().copied().unwrap_or_default().0,
            declared: req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<usize>().ok()),
            json: is_json(req),
            budget: req.app_data::<BodyBudget>().cloned(),
            payload: payload.take(),
        }
    }

    /// The whole body, within the size limit and the deadline.
    async fn bytes(mut self) -> Result<web::BytesMut, ApiError> {
        let (limit, timeout) = (self.limit, self.timeout);
        if self.declared.is_some_and(|len| len > limit) {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        // Grown as bytes arrive, not allocated for what a header promises.
        let capacity = self.declared.unwrap_or(0).min(limit).min(16 * 1024);
        let budget = self.budget.take();
        // Held until the body is read, then given back. Only bytes that
        // arrived are reserved: a client promising a large body and sending
        // nothing holds nothing.
        let mut reserved = Vec::new();
        let read = async {
            let mut body = web::BytesMut::with_capacity(capacity);
            while let Some(chunk) = self.payload.next().await {
                let chunk = chunk.map_err(|e| ApiError::MalformedJson(format!("the body could not be read ({e})")))?;
                if body.len() + chunk.len() > limit {
                    return Err(ApiError::PayloadTooLarge { limit });
                }
                if let Some(budget) = &budget {
                    reserved.push(budget.reserve(chunk.len())?);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        };
        actix_web::rt::time::timeout(timeout, read)
            .await
            .map_err(|_| ApiError::BodyTimeout { timeout })?
    }
}

/// Parses and validates a read body.
fn validated<T: FromJsonBody>(body: &[u8]) -> Result<T, ApiError> {
    // serde_json's syntax messages give a position, never the input.
    let value = parse_json(body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    T::from_json(value).map_err(ApiError::Validation)
}

impl<T: FromJsonBody + 'static> FromRequest for ValidatedJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let read = BodyRead::new(req, payload);
        Box::pin(async move {
            if !read.json {
                return Err(ApiError::UnsupportedMediaType);
            }
            let body = read.bytes().await?;
            validated(&body).map(ValidatedJson)
        })
    }
}

/// Reads a body exactly as received, size-, time- and budget-limited like
/// every other, from a handler that first checked what the headers can tell:
/// for routes that check a signature over the raw bytes, where refusing a
/// request must not cost its body's memory.
pub(crate) async fn read_raw_body(req: &HttpRequest, payload: web::Payload) -> Result<web::BytesMut, ApiError> {
    let mut payload = payload.into_inner();
    BodyRead::new(req, &mut payload).bytes().await
}

/// Reads a JSON body (`415` for any other type) exactly as received, limited
/// like every other, from a handler whose other extractors (authentication)
/// have completed: actix polls a handler's extractors together, so a body
/// taken by an extractor can be read while authentication still waits.
pub(crate) async fn read_json_body(req: &HttpRequest, payload: web::Payload) -> Result<web::BytesMut, ApiError> {
    if !is_json(req) {
        return Err(ApiError::UnsupportedMediaType);
    }
    read_raw_body_unchecked(req, payload).await
}

async fn read_raw_body_unchecked(req: &HttpRequest, payload: web::Payload) -> Result<web::BytesMut, ApiError> {
    let mut payload = payload.into_inner();
    BodyRead::new(req, &mut payload).bytes().await
}

/// Like [`ValidatedJson`], for routes whose body is optional: a request with no
/// body (none declared, or one that turns out empty) yields `None`, whatever its
/// `Content-Type` says, so `curl -X POST -H 'Content-Type: application/json'`
/// with no data means "no body". A JSON `null` body means the same: the
/// document declares these bodies nullable, as an optional body is.
#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

impl<T: FromJsonBody + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let streamed = req.headers().contains_key(header::TRANSFER_ENCODING);
        let read = BodyRead::new(req, payload);
        if read.declared == Some(0) || (read.declared.is_none() && !streamed) {
            return Box::pin(async { Ok(OptionalJson(None)) });
        }
        Box::pin(async move {
            let json = read.json;
            let body = read.bytes().await?;
            if body.is_empty() {
                return Ok(OptionalJson(None));
            }
            if !json {
                return Err(ApiError::UnsupportedMediaType);
            }
            let value = parse_json(&body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
            if value.is_null() {
                return Ok(OptionalJson(None));
            }
            T::from_json(value)
                .map(|value| OptionalJson(Some(value)))
                .map_err(ApiError::Validation)
        })
    }
}

/// Parses JSON, refusing an object that names a key twice: parsers disagree on
/// which of the two wins (serde_json keeps the last, others the first), so a
/// body that means different things to a proxy and to Keymint is refused.
pub(crate) fn parse_json(body: &[u8]) -> Result<serde_json::Value, serde_json::Error> {
    serde_json::from_slice::<StrictValue>(body).map(|StrictValue(value)| value)
}

struct StrictValue(serde_json::Value);

impl<'de> serde::Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(items.into())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            let StrictValue(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(object.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_reads_as_serde_json_reads_it_but_a_key_named_twice_is_refused() {
        let body = br#"{"a": [1, -2, 3.5, 18446744073709551615, true, null, "x"], "b": {"c": {}}}"#;
        assert_eq!(
            parse_json(body).unwrap(),
            serde_json::from_slice::<serde_json::Value>(body).unwrap()
        );
        let top = parse_json(br#"{"environment": "test", "environment": "live"}"#).unwrap_err();
        assert!(top.to_string().starts_with("duplicate key \"environment\""), "{top}");
        let nested = parse_json(br#"{"meta": {"k": 1, "k": 2}}"#).unwrap_err();
        assert!(nested.to_string().contains("duplicate key \"k\""), "{nested}");
        assert_eq!(
            parse_json(br#"[{"k": 1}, {"k": 2}]"#).unwrap(),
            json!([{"k": 1}, {"k": 2}])
        );
    }
}
