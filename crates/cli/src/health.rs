//! `keymint health`: whether a server answers its liveness or readiness check.

use anyhow::Context;

use crate::http::causes;
use crate::{Failure, Output};

/// Runs `keymint health`: whether the server at `url` answers its liveness
/// (or, with `ready`, readiness) check with 200. Says which on stdout; exit
/// code 1 when it does not.
pub async fn health(url: &str, ready: bool) -> Result<Output, Failure> {
    let path = if ready { "/readyz" } else { "/healthz" };
    let base = url.trim_end_matches('/');
    let http = reqwest::Client::builder()
        .user_agent(concat!("keymint-cli/", env!("CARGO_PKG_VERSION")))
        // A health check that hangs is a failed health check.
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .context("cannot build the HTTP client")?;
    let response = http
        .get(format!("{base}{path}"))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach {base}: {}", causes(&e.without_url())))?;
    let status = response.status();
    let healthy = status == reqwest::StatusCode::OK;
    Ok(Output {
        text: format!(
            "{base}{path}: {}\n",
            if healthy {
                "ok".to_owned()
            } else {
                format!("HTTP {}", status.as_u16())
            }
        ),
        code: u8::from(!healthy),
    })
}
