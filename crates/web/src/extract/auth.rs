use std::future::Future;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use keymint_application::{InvalidToken, Principal};

use crate::{ApiError, AppState};

/// Tokens longer than this are refused before any parsing: real JWTs are far
/// smaller, and parsing attacker-sized input is work we need not do.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The caller of a management route, authenticated by a bearer token.
///
/// Put it first in a handler's arguments so that unauthenticated callers learn
/// nothing about a request's validity.
#[derive(Clone, Debug)]
pub struct Authenticated(pub Principal);

fn bearer_token(req: &HttpRequest) -> Result<String, ApiError> {
    let mut values = req.headers().get_all(header::AUTHORIZATION);
    let value = values.next().ok_or(ApiError::NotAuthenticated)?;
    // Proxies and frameworks disagree on which of two headers counts: refuse both.
    if values.next().is_some() {
        return Err(ApiError::InvalidToken("send exactly one Authorization header".into()));
    }
    let value = value
        .to_str()
        .map_err(|_| ApiError::InvalidToken("the token is malformed".into()))?;
    let (scheme, token) = value.split_once(' ').ok_or(ApiError::NotAuthenticated)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::NotAuthenticated);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(ApiError::NotAuthenticated);
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(ApiError::InvalidToken(InvalidToken::TooLarge.to_string()));
    }
    Ok(token.to_owned())
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let token = bearer_token(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let token = token?;
            let state = state.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("AppState is not registered")))?;
            Ok(Authenticated(state.authenticate.execute(&token).await?))
        })
    }
}
