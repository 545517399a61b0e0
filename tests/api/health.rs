use serde_json::{json, Value};

use crate::for_each_backend;
use crate::support::{spawn_app, Backend};

async fn liveness_and_readiness_answer_ok_with_storage_up(backend: Backend) {
    let app = spawn_app(backend).await;
    for (path, status) in [("/healthz", "ok"), ("/readyz", "ready"), ("/healthz/", "ok")] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        assert_eq!(response.json::<Value>().await.unwrap(), json!({"status": status}));
    }
}

for_each_backend!(liveness_and_readiness_answer_ok_with_storage_up);
