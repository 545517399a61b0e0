//! A real local HTTP endpoint receiving webhook deliveries: it records every
//! request (headers and exact body) and answers with the statuses it is told,
//! optionally after a delay.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

/// What the receiver records when a redirect it answered was followed.
pub const FOLLOWED_REDIRECT: &str = "a redirect was followed";

#[derive(Clone, Debug)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("deliveries are JSON")
    }
}

#[derive(Default)]
struct Script {
    /// Statuses to answer, in order; 200 once they run out.
    statuses: VecDeque<u16>,
    /// How long to wait before answering each request.
    delay: Duration,
    /// Answer 200 with a body that never ends.
    endless: bool,
}

pub struct Receiver {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<Script>>,
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hooks", listener.local_addr().expect("address"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(Script::default()));
        let (log, plan) = (received.clone(), script.clone());
        let server = HttpServer::new(move || {
            let (log, plan, followed) = (log.clone(), plan.clone(), log.clone());
            App::new()
                .route(
                    "/hooks",
                    web::post().to(move |req: HttpRequest, body: web::Bytes| {
                        let (log, plan) = (log.clone(), plan.clone());
                        async move {
                            let header = |name: &str| {
                                req.headers()
                                    .get(name)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or_default()
                                    .to_owned()
                            };
                            log.lock().unwrap().push(Received {
                                id: header("webhook-id"),
                                timestamp: header("webhook-timestamp"),
                                signature: header("webhook-signature"),
                                body: String::from_utf8_lossy(&body).into_owned(),
                                at: Instant::now(),
                            });
                            let (status, delay, endless) = {
                                let mut plan = plan.lock().unwrap();
                                (plan.statuses.pop_front().unwrap_or(200), plan.delay, plan.endless)
                            };
                            tokio::time::sleep(delay).await;
                            if endless {
                                let chunk = web::Bytes::from(vec![b'x'; 64 * 1024]);
                                let body = futures_util::stream::repeat_with(move || {
                                    Ok::<_, std::convert::Infallible>(chunk.clone())
                                });
                                return HttpResponse::Ok().streaming(body);
                            }
                            if status == 302 {
                                return HttpResponse::Found().insert_header(("location", "/elsewhere")).finish();
                            }
                            HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
                        }
                    }),
                )
                .route("/elsewhere", {
                    web::route().to(move || {
                        let log = followed.clone();
                        async move {
                            log.lock().unwrap().push(Received {
                                id: String::new(),
                                timestamp: String::new(),
                                signature: String::new(),
                                body: FOLLOWED_REDIRECT.to_owned(),
                                at: Instant::now(),
                            });
                            HttpResponse::Ok().finish()
                        }
                    })
                })
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        tokio::spawn(server);
        Self { url, received, script }
    }

    /// Answer the next requests with these statuses (then 200).
    pub fn answer(&self, statuses: &[u16]) {
        self.script.lock().unwrap().statuses.extend(statuses);
    }

    /// Answer every request from now on with a body that never ends.
    pub fn endless(&self) {
        self.script.lock().unwrap().endless = true;
    }

    /// Wait this long before answering every request from now on.
    pub fn delay(&self, delay: Duration) {
        self.script.lock().unwrap().delay = delay;
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until at least `count` requests arrived (or panics after `within`).
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "expected {count} deliveries, got {}: {:?}",
                received.len(),
                received.iter().map(|r| r.json()["type"].clone()).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Checks a Standard Webhooks signature with an implementation of our own
/// (aws-lc-rs HMAC), independent of the one that signed: `v1,<base64>` of
/// HMAC-SHA256 over `{id}.{timestamp}.{body}` keyed with the secret's bytes.
pub fn signature_is_valid(secret: &str, received: &Received) -> bool {
    use base64::Engine;
    let key_bytes = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
        .expect("base64");
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key_bytes);
    let signed = format!("{}.{}.{}", received.id, received.timestamp, received.body);
    received.signature.split(' ').any(|candidate| {
        let Some(encoded) = candidate.strip_prefix("v1,") else {
            return false;
        };
        let Ok(tag) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
            return false;
        };
        aws_lc_rs::hmac::verify(&key, signed.as_bytes(), &tag).is_ok()
    })
}
