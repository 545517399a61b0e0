//! The one HTTP client every command uses, and the API's error bodies in a line.

use std::fmt::Write as _;

use anyhow::Context;
use serde_json::Value;

use crate::{Connection, Failure};

pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    /// The base as messages show it: without credentials a URL may carry.
    shown_base: String,
    token: Option<String>,
}

/// `url` without its `user:password@`, if it has one.
fn without_credentials(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.as_str().trim_end_matches('/').to_owned()
        }
        _ => url.to_owned(),
    }
}

impl Client {
    pub(crate) fn new(connection: &Connection) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("keymint-cli/", env!("CARGO_PKG_VERSION")))
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .context("cannot build the HTTP client")?;
        let base = connection.url.trim_end_matches('/').to_owned();
        Ok(Self {
            http,
            shown_base: without_credentials(&base),
            base,
            token: connection.token.clone().filter(|token| !token.trim().is_empty()),
        })
    }

    /// Sends a request and returns the JSON body of a 2xx answer (`Null` for
    /// none), or the API's message as a failure.
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        auth: bool,
    ) -> Result<Value, Failure> {
        self.call_with(method, path, body, auth, &[]).await
    }

    /// [`Client::call`] with extra request headers.
    pub(crate) async fn call_with(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        auth: bool,
        headers: &[(&str, &str)],
    ) -> Result<Value, Failure> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if auth {
            let token = self.token.as_deref().ok_or_else(|| Failure {
                message: "no token: set KEYMINT_TOKEN or pass --token (`keymint dev-token` makes one in development)"
                    .to_owned(),
                code: 2,
            })?;
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach {}: {}", self.shown_base, causes(&e.without_url())))?;
        let status = response.status();
        let request_id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response
            .text()
            .await
            .map_err(|e| anyhow::anyhow!("reading the answer: {e}"))?;
        let body: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            return Ok(body);
        }
        Err(Failure {
            message: api_message(status.as_u16(), &body, request_id.as_deref()),
            code: 1,
        })
    }
}

/// An error and its causes, innermost last ("connection refused" is a cause).
pub(crate) fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

/// The API's error body in a line: its detail (each failing field for a
/// validation error), code and request id.
pub(crate) fn api_message(status: u16, body: &Value, request_id: Option<&str>) -> String {
    let detail = match &body["detail"] {
        Value::String(detail) => detail.clone(),
        Value::Array(fields) => fields
            .iter()
            .map(|field| {
                let loc: Vec<String> = field["loc"]
                    .as_array()
                    .map(|parts| {
                        parts
                            .iter()
                            .skip(1)
                            .map(|p| p.as_str().map(str::to_owned).unwrap_or_else(|| p.to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                format!("{}: {}", loc.join("."), field["msg"].as_str().unwrap_or_default())
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => format!("HTTP {status}"),
    };
    let mut message = format!("{detail} ({status}");
    if let Some(code) = body["code"].as_str() {
        let _ = write!(message, " {code}");
    }
    if let Some(id) = request_id {
        let _ = write!(message, ", request {id}");
    }
    message.push(')');
    message
}

/// One path segment: ids are UUIDs; anything else is sent escaped so it
/// cannot change the path.
pub(crate) fn segment(id: &str) -> String {
    let mut escaped = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' {
            escaped.push(char::from(byte));
        } else {
            let _ = write!(escaped, "%{byte:02X}");
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_never_show_a_url_s_credentials() {
        assert_eq!(
            without_credentials("https://ops:s3cret@keys.example.com:8443/base"),
            "https://keys.example.com:8443/base"
        );
        assert_eq!(without_credentials("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(without_credentials("not a url"), "not a url");
    }

    #[test]
    fn a_segment_cannot_leave_its_place_in_the_path() {
        assert_eq!(segment("01a2-b3"), "01a2-b3");
        assert_eq!(segment("../admin?x=1"), "%2E%2E%2Fadmin%3Fx%3D1");
        assert_eq!(segment("é"), "%C3%A9", "each UTF-8 byte escaped");
    }

    #[test]
    fn an_api_error_is_one_line_naming_each_field_code_and_request() {
        let body = serde_json::json!({"detail": [
            {"loc": ["body", "name"], "msg": "name must have at least 1 character"},
            {"loc": ["body", "ratelimits", 0, "limit"], "msg": "limit must be from 1"}],
            "code": "validation_error"});
        assert_eq!(
            api_message(422, &body, Some("r-1")),
            "name: name must have at least 1 character; ratelimits.0.limit: limit must be from 1 \
             (422 validation_error, request r-1)"
        );
        assert_eq!(api_message(502, &Value::Null, None), "HTTP 502 (502)");
    }
}
