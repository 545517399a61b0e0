//! The ceiling for the verify benchmark: the most trivial actix-web JSON endpoint,
//! built with the same actix-web, profile and worker count as Keymint. It parses
//! `{"key": "..."}` and answers a fixed JSON object, so the difference to
//! `POST /api/v2/api-keys/verify` is exactly Keymint's own work.
//!
//! `cargo run --release --example ceiling -- 127.0.0.1:18090`

use actix_web::{web, App, HttpResponse, HttpServer};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct Body {
    key: String,
}

async fn answer(body: web::Json<Body>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"valid": !body.key.is_empty(), "code": "VALID"}))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listen = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18090".to_owned());
    HttpServer::new(|| App::new().route("/verify", web::post().to(answer)))
        .bind(listen)?
        .run()
        .await
}
