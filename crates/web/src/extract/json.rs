use std::future::Future;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures_util::StreamExt;

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

/// A JSON body, size-limited, parsed, and validated into `T` with every failing
/// field reported at once: 415 if not declared JSON, 413 if too large, 400 if not
/// JSON, 422 if JSON of the wrong shape.
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

impl<T: FromJsonBody + 'static> FromRequest for ValidatedJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let limit = req.app_data::<BodyLimit>().copied().unwrap_or_default().0;
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let json = is_json(req);
        let mut payload = payload.take();
        Box::pin(async move {
            if !json {
                return Err(ApiError::UnsupportedMediaType);
            }
            if declared.is_some_and(|len| len > limit) {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| ApiError::MalformedJson(format!("the body could not be read ({e})")))?;
                if body.len() + chunk.len() > limit {
                    return Err(ApiError::PayloadTooLarge { limit });
                }
                body.extend_from_slice(&chunk);
            }
            // serde_json's syntax messages give a position, never the input.
            let value = serde_json::from_slice(&body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
            T::from_json(value).map(ValidatedJson).map_err(ApiError::Validation)
        })
    }
}

/// Like [`ValidatedJson`], for routes whose body is optional: a request with no
/// body at all (no `Content-Length` or zero, no `Content-Type`) yields `None`.
#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

impl<T: FromJsonBody + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let headers = req.headers();
        let length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok());
        let empty = match length {
            Some(length) => length.trim() == "0",
            None => !headers.contains_key(header::TRANSFER_ENCODING),
        };
        if empty && !headers.contains_key(header::CONTENT_TYPE) {
            return Box::pin(async { Ok(OptionalJson(None)) });
        }
        let body = ValidatedJson::<T>::from_request(req, payload);
        Box::pin(async move { body.await.map(|ValidatedJson(value)| OptionalJson(Some(value))) })
    }
}
