//! Sends webhook deliveries over HTTP, safe to point anywhere: no redirects, a
//! timeout per attempt, at most 64 KiB of an answer read, and private,
//! loopback and link-local addresses refused after DNS resolution (a public
//! name may point inside the network) unless the deployment allows them.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use keymint_application::{Attempt, Clock, WebhookSender};
use keymint_domain::{is_public_address, WebhookUrl};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The most bytes of an endpoint's answer read: enough to see it answered,
/// never a way to make Keymint buffer a large body.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Resolves names with the system resolver and keeps only the addresses the
/// deployment may call.
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|addr| allow_private || is_public_address(addr.ip()))
                .collect();
            if allowed.is_empty() {
                return Err("the host resolves only to private, loopback or link-local addresses".into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// The HTTP adapter of the webhook-sender port.
pub struct HttpWebhookSender {
    client: reqwest::Client,
    allow_private: bool,
    timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for HttpWebhookSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpWebhookSender")
            .field("allow_private", &self.allow_private)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpWebhookSender {
    /// A sender whose attempts end after `timeout`, calling private addresses
    /// only when `allow_private`.
    pub fn new(timeout: Duration, allow_private: bool, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .user_agent(concat!("Keymint-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the webhook HTTP client")?;
        Ok(Self {
            client,
            allow_private,
            timeout,
            clock,
        })
    }

    /// Why `url` may not be called, for a host given as an address (those are
    /// not resolved, so the resolver cannot judge them).
    fn refused(&self, url: &reqwest::Url) -> Option<&'static str> {
        let ip = match url.host()? {
            url::Host::Ipv4(ip) => IpAddr::V4(ip),
            url::Host::Ipv6(ip) => IpAddr::V6(ip),
            url::Host::Domain(_) => return None,
        };
        (!self.allow_private && !is_public_address(ip)).then_some("the address is private, loopback or link-local")
    }

    async fn attempt(&self, url: &WebhookUrl, headers: &[(&'static str, String)], body: &str) -> Result<u16, String> {
        let url = reqwest::Url::parse(url.as_str()).map_err(|_| "the URL cannot be parsed".to_owned())?;
        if let Some(reason) = self.refused(&url) {
            return Err(reason.to_owned());
        }
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let mut response = request.send().await.map_err(describe)?;
        let status = response.status().as_u16();
        let mut read = 0;
        // Read (and drop) at most MAX_RESPONSE_BYTES, so a well-behaved endpoint's
        // connection can be reused and a hostile one cannot make us buffer.
        while read < MAX_RESPONSE_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                Ok(None) | Err(_) => break,
            }
        }
        Ok(status)
    }
}

/// A failure in words that never include the URL (its query may hold a
/// customer's token).
fn describe(err: reqwest::Error) -> String {
    let err = err.without_url();
    if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        let mut reason = String::from("connection failed");
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            reason = format!("connection failed: {cause}");
            source = cause.source();
        }
        reason
    } else {
        format!("request failed: {err}")
    }
}

#[async_trait]
impl WebhookSender for HttpWebhookSender {
    async fn send(&self, url: &WebhookUrl, headers: &[(&'static str, String)], body: &str) -> Attempt {
        let attempted_at = self.clock.now();
        let started = Instant::now();
        let result = self.attempt(url, headers, body).await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match result {
            Ok(status) => Attempt {
                attempted_at,
                latency_ms,
                status_code: Some(status),
                error: None,
            },
            Err(error) => Attempt {
                attempted_at,
                latency_ms,
                status_code: None,
                error: Some(error),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_never_names_the_url() {
        let text = describe_text("https://hooks.example.com/x?token=s3cret");
        assert!(!text.contains("s3cret"), "{text}");
    }

    fn describe_text(url: &str) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let client = reqwest::Client::builder()
                .dns_resolver(Arc::new(GuardedResolver { allow_private: false }))
                .build()
                .unwrap();
            let err = client
                .post(url.replace("hooks.example.com", "localhost"))
                .send()
                .await
                .unwrap_err();
            describe(err)
        })
    }
}
