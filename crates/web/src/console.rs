//! The web console at `/console`: a page and its assets, compiled into the binary,
//! that manage keys through the public REST API with the signed-in person's token.
//! The server only hands out the files, how to sign in, and (in the development
//! profile alone) a development token; everything else is the API's.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use keymint_domain::Subject;

use crate::extract::ValidatedJson;
use crate::routes::{get_or_head, method_not_allowed};
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

/// Every file under `crates/web/console/` as `(path relative to it, bytes)`,
/// listed by `build.rs`: a new file is served without editing this list.
const FILES: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/console_files.rs"));

/// The page itself: served at every console path with its policy, never as an
/// asset (an asset has no policy of its own).
const PAGE_FILE: &str = "index.html";

const PAGE: &str = include_str!("../console/index.html");

/// What an asset is, by its extension; `None` for a kind the console does not
/// serve (so a file of it would be left out, which a test forbids).
fn content_type(path: &str) -> Option<&'static str> {
    let (_, extension) = path.rsplit_once('.')?;
    match extension {
        "js" => Some("text/javascript; charset=utf-8"),
        "css" => Some("text/css; charset=utf-8"),
        "svg" => Some("image/svg+xml"),
        "png" => Some("image/png"),
        _ => None,
    }
}

/// The assets by their path under `/console/assets/`.
fn assets() -> &'static HashMap<&'static str, Asset> {
    static ASSETS: OnceLock<HashMap<&'static str, Asset>> = OnceLock::new();
    ASSETS.get_or_init(|| {
        FILES
            .iter()
            .filter(|(path, _)| *path != PAGE_FILE)
            .filter_map(|&(path, body)| Some((path, Asset::new(body, content_type(path)?))))
            .collect()
    })
}

/// `GET /console/assets/{path}`: a file of the folder, or 404. The path is only
/// ever a key in the embedded map, never a file-system path, so `..` (plain or
/// encoded) names no file.
async fn asset(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let path = req.match_info().get("path").unwrap_or_default();
    let found = assets().get(path).ok_or(ApiError::NotFound)?;
    Ok(found.respond(&req))
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
    /// The page, with the development banner shown from the start when it
    /// applies: shown by the script after loading, it pushed every page down
    /// (a layout shift of 0.05 on its own).
    page: web::Bytes,
}

const HIDDEN_BANNER: &str = r#"<p id="dev-banner" class="banner" hidden>"#;

/// The console page, for every path under `/console` but its assets: the page
/// routes itself, so a reload or a shared link lands where it was.
async fn page(console: web::Data<Console>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_SECURITY_POLICY, console.policy.clone()))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .content_type("text/html; charset=utf-8")
        .body(console.page.clone())
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
    let html = match &sign_in {
        ConsoleSignIn::Development(_) => PAGE.replacen(HIDDEN_BANNER, r#"<p id="dev-banner" class="banner">"#, 1),
        _ => PAGE.to_owned(),
    };
    let console = web::Data::new(Console {
        sign_in,
        policy,
        page: web::Bytes::from(html),
    });
    let scope = web::scope("/console").app_data(console);
    cfg.service(
        scope
            .service(
                web::resource("/assets/{path:.*}")
                    .route(get_or_head().to(asset))
                    .default_service(web::to(|| async { method_not_allowed("GET, HEAD") })),
            )
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
    use std::path::Path;

    use actix_web::{test as actix_test, App};

    use super::*;

    /// Every file under `dir`, by its path relative to `root` (hidden ones
    /// aside, as the build script leaves them out).
    fn files_under(root: &Path, dir: &Path) -> Vec<String> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap();
            if name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                found.extend(files_under(root, &path));
            } else {
                let relative = path.strip_prefix(root).unwrap();
                let parts: Vec<&str> = relative.components().map(|c| c.as_os_str().to_str().unwrap()).collect();
                found.push(parts.join("/"));
            }
        }
        found
    }

    /// A console and nothing else, as the server mounts it.
    macro_rules! console_app {
        () => {
            actix_test::init_service(App::new().configure(|cfg| console_routes(cfg, ConsoleSignIn::Unavailable))).await
        };
    }

    #[actix_web::test]
    async fn every_file_of_the_folder_is_served_with_its_content_type() {
        let app = console_app!();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
        let files = files_under(&root, &root);
        assert!(files.iter().any(|f| f == "js/main.js"), "{files:?}");
        for file in files.iter().filter(|f| *f != PAGE_FILE) {
            let expected = match file.rsplit_once('.').map(|(_, ext)| ext) {
                Some("js") => "text/javascript; charset=utf-8",
                Some("css") => "text/css; charset=utf-8",
                Some("svg") => "image/svg+xml",
                Some("png") => "image/png",
                other => panic!("{file}: no content type for {other:?}; add one to content_type()"),
            };
            let request = actix_test::TestRequest::get()
                .uri(&format!("/console/assets/{file}"))
                .to_request();
            let response = actix_test::call_service(&app, request).await;
            assert_eq!(response.status(), StatusCode::OK, "{file}");
            let headers = response.headers().clone();
            assert_eq!(headers.get(header::CONTENT_TYPE).unwrap(), expected, "{file}");
            assert_eq!(headers.get(header::CACHE_CONTROL).unwrap(), "no-cache", "{file}");
            assert!(headers.contains_key(header::ETAG), "{file}");
            let body = actix_test::read_body(response).await;
            assert_eq!(
                body,
                std::fs::read(root.join(file)).unwrap(),
                "{file} is the file as it is"
            );
        }
    }

    #[actix_web::test]
    async fn a_path_out_of_the_folder_or_not_in_it_is_404() {
        let app = console_app!();
        for path in [
            "/console/assets/../Cargo.toml",
            "/console/assets/js/../../build.rs",
            "/console/assets/%2e%2e/Cargo.toml",
            "/console/assets/..%2fCargo.toml",
            "/console/assets/%2E%2E%2F%2E%2E%2Fsrc%2Fconsole.rs",
            "/console/assets/js/%2e%2e/%2e%2e/build.rs",
            "/console/assets/%2fetc%2fpasswd",
            "/console/assets//etc/passwd",
            "/console/assets/index.html",
            "/console/assets/other.js",
            "/console/assets/",
            "/console/assets/js",
        ] {
            let response = actix_test::call_service(&app, actix_test::TestRequest::get().uri(path).to_request()).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        }
        let post = actix_test::TestRequest::post()
            .uri("/console/assets/console.css")
            .to_request();
        let response = actix_test::call_service(&app, post).await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

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
