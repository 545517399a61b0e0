use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpMessage, HttpRequest};
use keymint_application::Actor;
use keymint_domain::KeyId;
use tracing_actix_web::RequestId;
use uuid::Uuid;

use super::Authenticated;
use crate::{ApiError, FieldError};

/// Who is calling a management route, as the use cases take it: the
/// authenticated principal and the request id (for the audit trail).
#[derive(Clone, Debug)]
pub(crate) struct Acting(pub(crate) Actor);

/// The id the request logger gave this request (the `x-request-id` header).
pub(crate) fn request_id(req: &HttpRequest) -> Option<String> {
    req.extensions().get::<RequestId>().map(ToString::to_string)
}

fn actor_of(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> impl Future<Output = Result<Actor, ApiError>> {
    let authenticated = Authenticated::from_request(req, payload);
    let request_id = request_id(req);
    async move {
        let Authenticated(principal) = authenticated.await?;
        Ok(Actor::new(&principal, request_id))
    }
}

impl FromRequest for Acting {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let actor = actor_of(req, payload);
        Box::pin(async move { actor.await.map(Acting) })
    }
}

/// A management request about one key: who is calling, and the `{key_id}` of
/// the path.
///
/// The path is judged only once the caller is authenticated (a 422 for a
/// `key_id` that is not a UUID), so an unauthenticated caller learns nothing
/// about its request but that it needs a token.
#[derive(Clone, Debug)]
pub(crate) struct ActingOnKey {
    /// Who is calling.
    pub(crate) actor: Actor,
    /// The key the path names.
    pub(crate) key_id: KeyId,
}

/// The UUID in the path segment `name`, or a 422 naming it. Callers judge
/// the path only once the caller is authenticated.
pub(crate) fn path_uuid(req: &HttpRequest, name: &str) -> Result<Uuid, ApiError> {
    let raw = req.match_info().get(name).unwrap_or_default();
    Uuid::try_parse(raw).map_err(|_| {
        ApiError::Validation(vec![FieldError::new(
            &["path", name],
            "uuid_parsing",
            "Input should be a valid UUID",
        )])
    })
}

fn key_id_of(req: &HttpRequest) -> Result<KeyId, ApiError> {
    path_uuid(req, "key_id").map(KeyId::from_uuid)
}

impl FromRequest for ActingOnKey {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let actor = actor_of(req, payload);
        let key_id = key_id_of(req);
        Box::pin(async move {
            let actor = actor.await?;
            Ok(ActingOnKey { actor, key_id: key_id? })
        })
    }
}
