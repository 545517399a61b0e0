//! The web console at `/console`: a page and its assets, compiled into the binary,
//! that manage keys through the public REST API with the signed-in person's token.
//! The server only hands out the files, how to sign in, and (in the development
//! profile alone) a development token; everything else is the API's.

use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use keymint_domain::Subject;

use crate::extract::ValidatedJson;
use crate::routes::method_not_allowed;
use crate::server::get_or_head;
use crate::validation::{ObjectReader, Optional};
use crate::{ApiError, FieldError, FromJsonBody};

/// Signs a development token for an organisation and a subject: the token and
/// its expiry (seconds since the epoch).
pub type DevSigner = Arc<dyn Fn(Uuid, &str) -> Result<(String, u64), String> + Send + Sync>;

/// How people sign in to the console.
#[derive(Clone)]
pub enum ConsoleSignIn {
    /// The authorization-code flow with PKCE against an OIDC issuer.
    Oidc {
        /// The issuer, e.g. `https://tenant.eu.auth0.com/`.
        issuer: String,
        /// The console's client id at the issuer (a public client: no secret).
        client_id: String,
        /// The `audience` to ask for (Auth0 issues a JWT access token for it).
        audience: Option<String>,
        /// The scopes to ask for.
        scope: String,
        /// The claim holding the organisation id (shown as who is signed in).
        org_claim: String,
    },
    /// The development profile's sign-in: anyone who reaches the server picks
    /// an organisation and gets a token for it.
    Development(DevSigner),
    /// Neither is configured: the console says how to configure one.
    Unavailable,
}

impl std::fmt::Debug for ConsoleSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Oidc { issuer, client_id, .. } => f
                .debug_struct("Oidc")
                .field("issuer", issuer)
                .field("client_id", client_id)
                .finish_non_exhaustive(),
            Self::Development(_) => f.write_str("Development"),
            Self::Unavailable => f.write_str("Unavailable"),
        }
    }
}

/// One embedded file, with its strong validator.
struct Asset {
    body: &'static [u8],
    content_type: &'static str,
    etag: String,
}

impl Asset {
    fn new(body: &'static [u8], content_type: &'static str) -> Self {
        let digest = Sha256::digest(body);
        Self {
            body,
            content_type,
            etag: format!("\"{}\"", hex::encode(&digest[..12])),
        }
    }

    /// The file, or 304 when the browser holds this very version. `no-cache`
    /// makes browsers ask each time, so a new binary's console is never mixed
    /// with an old one's script.
    fn respond(&self, req: &HttpRequest) -> HttpResponse {
        let held = req
            .headers()
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|tag| tag.trim() == self.etag));
        let mut response = if held {
            HttpResponse::NotModified()
        } else {
            HttpResponse::Ok()
        };
        response
            .insert_header((header::ETAG, self.etag.clone()))
            .insert_header((header::CACHE_CONTROL, "no-cache"));
        if held {
            response.finish()
        } else {
            response.content_type(self.content_type).body(self.body)
        }
    }
}

/// Which embedded file a route serves.
type PickAsset = fn(&Assets) -> &Asset;

struct Assets {
    script: Asset,
    style: Asset,
    icon: Asset,
}

const PAGE: &str = include_str!("../console/index.html");

fn assets() -> &'static Assets {
    static ASSETS: std::sync::OnceLock<Assets> = std::sync::OnceLock::new();
    ASSETS.get_or_init(|| Assets {
        script: Asset::new(
            include_bytes!("../console/console.js"),
            "text/javascript; charset=utf-8",
        ),
        style: Asset::new(include_bytes!("../console/console.css"), "text/css; charset=utf-8"),
        icon: Asset::new(include_bytes!("../console/icon.svg"), "image/svg+xml"),
    })
}

/// The origin (`scheme://host[:port]`) of a URL, for the page's policy.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    let valid = matches!(scheme, "https" | "http")
        && !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    valid.then(|| format!("{scheme}://{host}"))
}

/// What the page may do: its own script and style only (nothing inline, so an
/// injected tag never runs and cannot read the session), talk to this server
/// and the issuer, never be framed.
fn content_security_policy(sign_in: &ConsoleSignIn) -> String {
    let issuer = match sign_in {
        ConsoleSignIn::Oidc { issuer, .. } => origin_of(issuer).map(|o| format!(" {o}")).unwrap_or_default(),
        _ => String::new(),
    };
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'{issuer}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
}

#[derive(Clone)]
struct Console {
    sign_in: ConsoleSignIn,
    policy: HeaderValue,
}

/// The console page, for every path under `/console` but its assets: the page
/// routes itself, so a reload or a shared link lands where it was.
async fn page(console: web::Data<Console>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_SECURITY_POLICY, console.policy.clone()))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .content_type("text/html; charset=utf-8")
        .body(PAGE)
}

#[derive(Serialize)]
#[serde(tag = "sign_in", rename_all = "snake_case")]
enum ConfigBody<'a> {
    Oidc {
        issuer: &'a str,
        client_id: &'a str,
        audience: Option<&'a str>,
        scope: &'a str,
        org_claim: &'a str,
    },
    Development,
    Unavailable,
}

/// `GET /console/config.json`: how to sign in.
async fn config(console: web::Data<Console>) -> HttpResponse {
    let body = match &console.sign_in {
        ConsoleSignIn::Oidc {
            issuer,
            client_id,
            audience,
            scope,
            org_claim,
        } => ConfigBody::Oidc {
            issuer,
            client_id,
            audience: audience.as_deref(),
            scope,
            org_claim,
        },
        ConsoleSignIn::Development(_) => ConfigBody::Development,
        ConsoleSignIn::Unavailable => ConfigBody::Unavailable,
    };
    HttpResponse::Ok().json(body)
}

#[derive(Serialize)]
struct SessionBody {
    access_token: String,
    token_type: &'static str,
    expires_at: u64,
}

/// The most characters of a development sign-in's name (the token's `sub`).
const MAX_DEV_NAME_CHARS: usize = 64;

/// A development sign-in: who, for which organisation.
struct DevSessionBody {
    org_id: Uuid,
    name: Subject,
}

impl FromJsonBody for DevSessionBody {
    fn from_json(value: serde_json::Value) -> Result<Self, Vec<FieldError>> {
        let mut body = ObjectReader::new("body", value)?;
        let org_id = body.required_string("org_id").and_then(|raw| {
            let parsed = Uuid::try_parse(&raw).ok().filter(|id| !id.is_nil());
            if parsed.is_none() {
                body.fail("org_id", "uuid_parsing", "org_id must be a UUID (not the nil UUID)");
            }
            parsed
        });
        // The name becomes the token's `sub`, so it follows a subject's rules
        // (the ones authentication judges it by), kept short and visible.
        let name = match body.optional_string("name") {
            Some(Optional::Value(name)) => match Subject::new(name) {
                Ok(subject)
                    if !subject.as_str().trim().is_empty()
                        && subject.as_str().chars().count() <= MAX_DEV_NAME_CHARS =>
                {
                    Some(subject)
                }
                _ => {
                    body.fail(
                        "name",
                        "value_error",
                        format!(
                            "name must have 1 to {MAX_DEV_NAME_CHARS} characters, a visible one, \
                             no control or bidirectional characters"
                        ),
                    );
                    None
                }
            },
            Some(_) => Subject::new("developer").ok(),
            None => None,
        };
        let parsed = org_id.zip(name).map(|(org_id, name)| Self { org_id, name });
        body.finish(parsed)
    }
}

/// `POST /console/dev-session` `{"org_id": "<uuid>", "name": "alice"}`: a
/// development token. Only the development sign-in has this route; elsewhere it
/// is unknown, like any path that does not exist.
async fn dev_session(
    console: web::Data<Console>,
    ValidatedJson(body): ValidatedJson<DevSessionBody>,
) -> Result<HttpResponse, ApiError> {
    let ConsoleSignIn::Development(sign) = &console.sign_in else {
        return Err(ApiError::NotFound);
    };
    let DevSessionBody { org_id, name } = body;
    match sign(org_id, name.as_str()) {
        Ok((token, expires_at)) => {
            tracing::info!(%org_id, "development console session started");
            Ok(HttpResponse::build(StatusCode::CREATED).json(SessionBody {
                access_token: token,
                token_type: "Bearer",
                expires_at,
            }))
        }
        Err(reason) => Err(ApiError::Internal(anyhow::anyhow!(
            "cannot sign a development token: {reason}"
        ))),
    }
}

/// Mounts the console on `cfg`.
pub fn console_routes(cfg: &mut web::ServiceConfig, sign_in: ConsoleSignIn) {
    let policy = HeaderValue::from_str(&content_security_policy(&sign_in))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
    let console = web::Data::new(Console { sign_in, policy });
    let mut scope = web::scope("/console").app_data(console);
    let files: [(&str, PickAsset); 3] = [
        ("/assets/console.js", |a| &a.script),
        ("/assets/console.css", |a| &a.style),
        ("/assets/icon.svg", |a| &a.icon),
    ];
    for (path, pick) in files {
        scope = scope.service(
            web::resource(path)
                .route(get_or_head().to(move |req: HttpRequest| {
                    let response = pick(assets()).respond(&req);
                    async move { response }
                }))
                .default_service(web::to(|| async { method_not_allowed("GET, HEAD") })),
        );
    }
    cfg.service(
        scope
            .service(
                web::resource("/config.json")
                    .route(get_or_head().to(config))
                    .default_service(web::to(|| async { method_not_allowed("GET, HEAD") })),
            )
            .service(
                web::resource("/dev-session")
                    .route(web::post().to(dev_session))
                    .default_service(web::to(|| async { method_not_allowed("POST") })),
            )
            .service(
                web::resource(["", "/{tail:.*}"])
                    .route(get_or_head().to(page))
                    .default_service(web::to(|| async { method_not_allowed("GET, HEAD") })),
            ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_only_the_issuers_origin() {
        let oidc = ConsoleSignIn::Oidc {
            issuer: "https://tenant.eu.auth0.com/".into(),
            client_id: "abc".into(),
            audience: None,
            scope: "openid".into(),
            org_claim: "org_id".into(),
        };
        let policy = content_security_policy(&oidc);
        assert!(
            policy.contains("connect-src 'self' https://tenant.eu.auth0.com;"),
            "{policy}"
        );
        assert!(policy.contains("script-src 'self';"));
        assert!(!policy.contains("unsafe"));
        assert_eq!(
            origin_of("https://a.example:8443/x?y"),
            Some("https://a.example:8443".into())
        );
        assert_eq!(
            origin_of("https://a.example; script-src *"),
            None,
            "no header injection"
        );
        assert_eq!(origin_of("javascript:alert(1)"), None);
        assert!(content_security_policy(&ConsoleSignIn::Unavailable).contains("connect-src 'self';"));
    }
}
