//! Leak response: the patterns secret scanners look for, GitHub's
//! secret-scanning alerts, and reports from whoever holds a leaked key.

use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use keymint_application::{Budget, LeakVerdict, ReportSignatureError, Reporter};
use keymint_domain::{LeakReport, LeakSource, LeakUrl, Subject};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::error::{ErrorBody, JsonBodyErrors, ValidationErrorBody};
use crate::extract::{parse_json, read_raw_body, request_id, ValidatedJson};
use crate::validation::{FromJsonBody, ObjectReader, Optional};
use crate::{ApiError, AppState, FieldError};

/// The patterns of this deployment's keys, in the form secret-scanning
/// providers ask their partners for.
#[derive(Serialize, ToSchema)]
pub(crate) struct SecretPatterns {
    /// The prefix new keys are issued under (`sk` means unbranded).
    prefix: String,
    /// Every prefix whose keys verify, the issuing one first.
    accepted_prefixes: Vec<String>,
    /// One pattern per kind of key.
    patterns: Vec<SecretPattern>,
}

/// One kind of key and the regular expression that finds it in text.
#[derive(Serialize, ToSchema)]
pub(crate) struct SecretPattern {
    /// The token type reported back by scanners (`keymint_private_key`,
    /// `keymint_public_key`).
    #[serde(rename = "type")]
    kind: &'static str,
    /// What the key is.
    description: &'static str,
    /// Whether the key is a credential (a leak of it is acted upon).
    secret: bool,
    /// A regular expression (RE2/PCRE syntax, word-bounded) matching exactly
    /// these keys.
    regex: String,
}

/// The token type of private keys in secret-scanning reports.
pub(crate) const PRIVATE_KEY_TYPE: &str = "keymint_private_key";
/// The token type of public keys in secret-scanning reports.
pub(crate) const PUBLIC_KEY_TYPE: &str = "keymint_public_key";

/// The regular expressions matching this deployment's private and public keys,
/// for enrolling with a secret-scanning provider. Public: the patterns say
/// nothing a key itself does not.
#[utoipa::path(get, path = "/.well-known/keymint/secret-patterns", tag = "leaks",
    operation_id = "secret_patterns",
    responses((status = 200, description = "This deployment's key patterns", body = SecretPatterns)))]
pub(crate) async fn secret_patterns(state: web::Data<AppState>) -> HttpResponse {
    let format = state.verify.key_format();
    HttpResponse::Ok().json(SecretPatterns {
        prefix: format.issuing().to_string(),
        accepted_prefixes: format.accepted().iter().map(ToString::to_string).collect(),
        patterns: vec![
            SecretPattern {
                kind: PRIVATE_KEY_TYPE,
                description: "Keymint private API key: a credential; leaked ones are revoked",
                secret: true,
                regex: format.private_key_pattern(),
            },
            SecretPattern {
                kind: PUBLIC_KEY_TYPE,
                description: "Keymint public key identifier: not a credential",
                secret: false,
                regex: format.public_key_pattern(),
            },
        ],
    })
}

// What the parser makes of a body is what OpenAPI shows of it.
/// A holder's report of its own leaked key.
#[derive(Debug, ToSchema)]
#[schema(as = RevokeLeakedRequest)]
pub(crate) struct RevokeLeakedBody {
    /// The leaked private key
    key: String,
    /// Where it was found, if known: an http(s) URL of at most 2 048 characters
    #[schema(value_type = Option<String>, max_length = 2048)]
    url: Option<LeakUrl>,
}

impl FromJsonBody for RevokeLeakedBody {
    fn from_json(value: Value) -> Result<Self, Vec<FieldError>> {
        let mut body = ObjectReader::new("body", value)?;
        let key = body.required_string("key");
        let url = match body.optional_string("url") {
            Some(Optional::Value(raw)) => body.check("url", LeakUrl::parse(&raw), |_| "value_error").map(Some),
            Some(Optional::Absent | Optional::Null) => Some(None),
            None => None,
        };
        let parsed = match (key, url) {
            (Some(key), Some(url)) => Some(Self { key, url }),
            _ => None,
        };
        body.finish(parsed)
    }
}

/// The answer to a holder's report: the same whatever the key was.
#[derive(Serialize, ToSchema)]
pub(crate) struct LeakReceived {
    /// Always `received`.
    status: &'static str,
}

/// Whoever holds a leaked private key can kill it, with no other credential:
/// the key in the body is its own proof. The answer is the same 202 whether
/// or not the key existed, so the route tells nobody anything; failed reports
/// spend the verify endpoint's failure budgets (429 beyond).
#[utoipa::path(
    post, path = "/api/v2/api-keys/revoke-leaked", tag = "leaks", operation_id = "revoke_leaked_api_key",
    summary = "Report a leaked private key (no JWT: the key is the credential)",
    request_body = RevokeLeakedBody,
    responses(
        (status = 202, description = "Received; a genuine key is revoked (or flagged)", body = LeakReceived),
        JsonBodyErrors,
        (status = 422, description = "The body is not a report", body = ValidationErrorBody),
        (status = 429, description = "Too many failed attempts from this client or for this key id", body = ErrorBody),
        (status = 503, description = "Storage unavailable", body = ErrorBody),
    ),
)]
pub(crate) async fn revoke_leaked(
    req: HttpRequest,
    state: web::Data<AppState>,
    ValidatedJson(body): ValidatedJson<RevokeLeakedBody>,
) -> Result<HttpResponse, ApiError> {
    let reporter = Reporter {
        subject: None,
        request_id: request_id(&req),
        budget: Budget::Client(crate::client_address(&req)),
    };
    let report = LeakReport {
        source: LeakSource::self_report(),
        url: body.url,
    };
    let verdict = state.leaks.report(&body.key, &report, &reporter).await?;
    state.metrics.leak_report("holder", verdict_name(&verdict));
    match verdict {
        LeakVerdict::RateLimited => Err(ApiError::RateLimited),
        verdict => {
            log_verdict(&verdict, &report);
            Ok(HttpResponse::Accepted().json(LeakReceived { status: "received" }))
        }
    }
}

fn verdict_name(verdict: &LeakVerdict) -> &'static str {
    match verdict {
        LeakVerdict::Genuine { .. } => "genuine",
        LeakVerdict::NotOurs => "not_ours",
        LeakVerdict::RateLimited => "rate_limited",
    }
}

fn log_verdict(verdict: &LeakVerdict, report: &LeakReport) {
    if let LeakVerdict::Genuine { key_id, changed } = verdict {
        tracing::warn!(
            %key_id,
            source = report.source.as_str(),
            changed,
            "a leaked private key was reported"
        );
    }
}

/// Keymint's verdict on one token, in GitHub's feedback format.
#[derive(Serialize, ToSchema)]
pub(crate) struct GithubFeedback {
    /// SHA-256 of the token, lowercase hex: the token itself is never echoed
    token_hash: String,
    /// The type GitHub sent
    token_type: String,
    /// `true_positive` (a private key Keymint issued) or `false_positive`
    label: &'static str,
}

// What the parser makes of an alert is what OpenAPI shows of it.
/// One token of a GitHub secret-scanning alert (GitHub's format: fields
/// Keymint does not read are ignored).
#[derive(ToSchema)]
#[schema(as = GithubAlert)]
pub(crate) struct Alert {
    /// The token found
    token: String,
    /// The token type it matched (`keymint_private_key`)
    #[schema(rename = "type")]
    kind: String,
    /// Where it was found
    #[schema(value_type = Option<String>)]
    url: Option<LeakUrl>,
    /// What it was found in (`content`, `commit`, `issue_comment`, …)
    #[schema(value_type = Option<String>, required = false)]
    source: LeakSource,
}

impl Alert {
    fn report(&self) -> LeakReport {
        LeakReport {
            source: self.source.clone(),
            url: self.url.clone(),
        }
    }
}

/// The subject GitHub's reports are audited under.
const GITHUB_REPORTER: &str = "github-secret-scanning";
/// How many tokens of one alert batch are checked at once (each genuine one
/// costs an argon2 verification, which the hashing pool bounds anyway).
const GITHUB_CONCURRENCY: usize = 16;

fn header_text<'a>(req: &'a HttpRequest, name: &str) -> Result<&'a str, ApiError> {
    let mut values = req.headers().get_all(name);
    match (values.next().and_then(|value| value.to_str().ok()), values.next()) {
        (Some(value), None) => Ok(value),
        _ => Err(ApiError::from(ReportSignatureError::Malformed)),
    }
}

fn alerts(body: &[u8]) -> Result<Vec<Alert>, ApiError> {
    let value = parse_json(body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    let Value::Array(items) = value else {
        return Err(ApiError::Validation(vec![FieldError::new(
            &["body"],
            "list_type",
            "Input should be a valid list",
        )]));
    };
    let mut errors = Vec::new();
    let mut alerts = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let at = index.to_string();
        let text = |field: &str| item.get(field).and_then(Value::as_str);
        let Some(token) = text("token") else {
            errors.push(FieldError::new(
                &["body", &at, "token"],
                "string_type",
                "Input should be a valid string",
            ));
            continue;
        };
        // GitHub's own words about where it looked: kept when they are plain,
        // never a reason to drop the report of a live leak.
        let source = text("source")
            .and_then(|source| LeakSource::parse(source).ok())
            .unwrap_or_else(LeakSource::unknown);
        let url = text("url").and_then(|url| LeakUrl::parse(url).ok());
        alerts.push(Alert {
            token: token.to_owned(),
            kind: text("type").unwrap_or_default().to_owned(),
            url,
            source,
        });
    }
    if errors.is_empty() {
        Ok(alerts)
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// GitHub's secret-scanning partner endpoint. GitHub posts the tokens it found
/// that match this deployment's patterns, signed with ECDSA P-256 over the raw
/// body; each token that is a private key Keymint issued is revoked (or
/// flagged, per `leaks.action`) and audited as `leaked`, and the answer labels
/// every token. A missing, unknown or wrong signature is a 401 that changes
/// nothing.
#[utoipa::path(
    post, path = "/api/v2/secret-scanning/github", tag = "leaks", operation_id = "github_secret_scanning",
    summary = "GitHub secret-scanning alerts (signed by GitHub)",
    params(
        ("Github-Public-Key-Identifier" = String, Header, description = "The id of GitHub's signing key"),
        ("Github-Public-Key-Signature" = String, Header, description = "Base64 ASN.1 ECDSA P-256 SHA-256 signature of the body"),
    ),
    request_body = Vec<Alert>,
    responses(
        (status = 200, description = "One verdict per token, in order", body = Vec<GithubFeedback>),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "The signature is missing, unknown or wrong", body = ErrorBody),
        (status = 408, description = "The body did not arrive in time", body = ErrorBody),
        (status = 413, description = "The body is larger than leaks.github_body_limit_bytes", body = ErrorBody),
        (status = 422, description = "An entry has no token", body = ValidationErrorBody),
        (status = 503, description = "GitHub's keys or storage unavailable", body = ErrorBody),
    ),
)]
pub(crate) async fn github(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // Everything the headers can tell is checked before a byte of the body is
    // buffered: a flood of unsigned or unknown-key alerts costs no memory for
    // their bodies. A well-formed signature by a key GitHub publishes can only
    // be judged against the body, so those bodies are read, within the
    // alerts' own budget.
    let key_id = header_text(&req, "github-public-key-identifier")?;
    let signature = header_text(&req, "github-public-key-signature")?;
    state.report_signatures.precheck(key_id, signature).await?;
    let body = read_raw_body(&req, payload).await?;
    state.report_signatures.check(key_id, signature, &body).await?;
    let alerts = alerts(&body)?;
    let reporter = Reporter {
        subject: Subject::new(GITHUB_REPORTER).ok(),
        request_id: request_id(&req),
        budget: Budget::Exempt,
    };
    // A batch may repeat a token (found in several places): it is checked once,
    // with the first place it was seen.
    let mut unique: Vec<&Alert> = Vec::new();
    for alert in &alerts {
        if !unique.iter().any(|seen| seen.token == alert.token) {
            unique.push(alert);
        }
    }
    let (leaks, metrics) = (&state.leaks, &state.metrics);
    let reporter = &reporter;
    let verdicts: Vec<(&str, LeakVerdict)> = futures_util::stream::iter(unique)
        .map(|alert| async move {
            let report = alert.report();
            let verdict = leaks.report(&alert.token, &report, reporter).await?;
            metrics.leak_report("github", verdict_name(&verdict));
            log_verdict(&verdict, &report);
            Ok::<_, ApiError>((alert.token.as_str(), verdict))
        })
        .buffer_unordered(GITHUB_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let feedback: Vec<GithubFeedback> = alerts
        .iter()
        .map(|alert| {
            let genuine = verdicts
                .iter()
                .any(|(token, verdict)| *token == alert.token && matches!(verdict, LeakVerdict::Genuine { .. }));
            GithubFeedback {
                token_hash: hex::encode(Sha256::digest(alert.token.as_bytes())),
                token_type: alert.kind.clone(),
                label: if genuine { "true_positive" } else { "false_positive" },
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(feedback))
}
