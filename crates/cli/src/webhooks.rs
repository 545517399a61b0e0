//! `keymint webhooks …`: endpoints, their signing secrets (shown once) and
//! their deliveries.

use std::fmt::Write as _;

use clap::Subcommand;
use serde_json::{json, Map, Value};

use crate::http::{segment, Client};
use crate::output::{deleted, shown};
use crate::table::{table, text};
use crate::{Connection, Failure};

/// What to do with webhooks.
#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// List webhooks, oldest first.
    List,
    /// Add a webhook; its signing secret is printed once.
    Create {
        /// Where deliveries go (https). Not `--url`: that names the Keymint
        /// server, for every command.
        #[arg(long, value_name = "URL")]
        endpoint: String,
        /// An event type it receives, e.g. key.revoked (repeat for several;
        /// every type when absent).
        #[arg(long = "event-type", value_name = "TYPE")]
        event_types: Vec<String>,
        /// Create it disabled: it receives nothing until enabled.
        #[arg(long)]
        disabled: bool,
    },
    /// Show one webhook.
    Get {
        /// The webhook's id.
        id: String,
    },
    /// Change a webhook; what is not given stays as it is.
    Update {
        /// The webhook's id.
        id: String,
        /// A new URL for its deliveries.
        #[arg(long, value_name = "URL")]
        endpoint: Option<String>,
        /// An event type, replacing all it receives (repeat for several).
        #[arg(long = "event-type", value_name = "TYPE")]
        event_types: Vec<String>,
        /// Whether it receives events.
        #[arg(long, value_name = "BOOL")]
        enabled: Option<bool>,
    },
    /// Delete a webhook and its deliveries.
    Delete {
        /// The webhook's id.
        id: String,
    },
    /// Give a webhook a new signing secret, printed once (the old one also
    /// signs for 24 hours).
    RotateSecret {
        /// The webhook's id.
        id: String,
    },
    /// A webhook's deliveries, newest first.
    Deliveries {
        /// The webhook's id.
        id: String,
        /// At most this many (1 to 100).
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Send a delivery again now, whatever became of it.
    Retry {
        /// The webhook's id.
        id: String,
        /// The delivery's id.
        delivery: String,
    },
}

pub(crate) fn webhook_path(id: &str) -> String {
    format!("/api/v2/webhooks/{}", segment(id))
}

pub(crate) fn event_types(webhook: &Value) -> String {
    webhook["event_types"]
        .as_array()
        .map(|types| types.iter().map(text).collect::<Vec<_>>().join(","))
        .unwrap_or_else(|| "-".to_owned())
}

pub(crate) fn webhook_rows(webhooks: &[Value]) -> String {
    let rows: Vec<Vec<String>> = webhooks
        .iter()
        .map(|webhook| {
            vec![
                text(&webhook["id"]),
                if webhook["enabled"] == true { "yes" } else { "no" }.to_owned(),
                text(&webhook["health"]["state"]),
                event_types(webhook),
                text(&webhook["url"]),
            ]
        })
        .collect();
    table(&["ID", "ENABLED", "HEALTH", "EVENTS", "URL"], &rows)
}

pub(crate) fn webhook_detail(webhook: &Value) -> String {
    let health = &webhook["health"];
    let rows = vec![
        vec!["id".to_owned(), text(&webhook["id"])],
        vec!["url".to_owned(), text(&webhook["url"])],
        vec!["event_types".to_owned(), event_types(webhook)],
        vec!["enabled".to_owned(), text(&webhook["enabled"])],
        vec!["health".to_owned(), text(&health["state"])],
        vec!["consecutive_failures".to_owned(), text(&health["consecutive_failures"])],
        vec!["paused_until".to_owned(), text(&health["paused_until"])],
        vec!["created_at".to_owned(), text(&webhook["created_at"])],
        vec!["updated_at".to_owned(), text(&webhook["updated_at"])],
    ];
    table(&["FIELD", "VALUE"], &rows)
}

/// Prints a webhook's new signing secret, once, with the warning on stderr.
pub(crate) fn reveal_secret(webhook: &Value, json: bool) -> String {
    eprintln!("keymint: this signing secret is shown once and never again; give it to the receiving endpoint now");
    if json {
        return format!("{webhook}\n");
    }
    let mut out = webhook_detail(webhook);
    let _ = writeln!(out, "\nsecret  {}", text(&webhook["secret"]));
    out
}

pub(crate) fn delivery_rows(deliveries: &[Value]) -> String {
    let rows: Vec<Vec<String>> = deliveries
        .iter()
        .map(|delivery| {
            let attempts = delivery["attempts"].as_array().map(Vec::as_slice).unwrap_or_default();
            // The newest attempt says why a delivery is not delivered yet.
            let last = attempts.last().map_or_else(
                || "-".to_owned(),
                |attempt| match (&attempt["status_code"], &attempt["error"]) {
                    (Value::Number(code), _) => format!("HTTP {code}"),
                    (_, Value::String(error)) => error.clone(),
                    _ => "-".to_owned(),
                },
            );
            vec![
                text(&delivery["id"]),
                text(&delivery["event_type"]),
                text(&delivery["key_id"]),
                text(&delivery["status"]),
                attempts.len().to_string(),
                text(&delivery["created_at"]),
                text(&delivery["next_attempt_at"]),
                last,
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "EVENT",
            "KEY",
            "STATUS",
            "ATTEMPTS",
            "CREATED",
            "NEXT ATTEMPT",
            "LAST ANSWER",
        ],
        &rows,
    )
}

/// Runs a `webhooks` command and returns what to print on stdout.
pub async fn webhooks(connection: &Connection, command: WebhooksCommand) -> Result<String, Failure> {
    let client = Client::new(connection)?;
    let json = connection.json;
    let one = |webhook: Value| shown(json, &webhook, webhook_detail);
    Ok(match command {
        WebhooksCommand::List => {
            let webhooks = client
                .call(reqwest::Method::GET, "/api/v2/webhooks", None, true)
                .await?;
            shown(json, &webhooks, |webhooks| {
                webhook_rows(webhooks.as_array().map(Vec::as_slice).unwrap_or_default())
            })
        }
        WebhooksCommand::Create {
            endpoint,
            event_types,
            disabled,
        } => {
            let mut body = json!({"url": endpoint, "enabled": !disabled});
            if !event_types.is_empty() {
                body["event_types"] = json!(event_types);
            }
            let created = client
                .call(reqwest::Method::POST, "/api/v2/webhooks", Some(body), true)
                .await?;
            reveal_secret(&created, json)
        }
        WebhooksCommand::Get { id } => one(client
            .call(reqwest::Method::GET, &webhook_path(&id), None, true)
            .await?),
        WebhooksCommand::Update {
            id,
            endpoint,
            event_types,
            enabled,
        } => {
            let mut body = Map::new();
            if let Some(endpoint) = endpoint {
                body.insert("url".into(), json!(endpoint));
            }
            if !event_types.is_empty() {
                body.insert("event_types".into(), json!(event_types));
            }
            if let Some(enabled) = enabled {
                body.insert("enabled".into(), json!(enabled));
            }
            if body.is_empty() {
                return Err(Failure {
                    message: "nothing to change: give --endpoint, --event-type or --enabled".to_owned(),
                    code: 2,
                });
            }
            one(client
                .call(
                    reqwest::Method::PATCH,
                    &webhook_path(&id),
                    Some(Value::Object(body)),
                    true,
                )
                .await?)
        }
        WebhooksCommand::Delete { id } => {
            client
                .call(reqwest::Method::DELETE, &webhook_path(&id), None, true)
                .await?;
            deleted(json, &id)
        }
        WebhooksCommand::RotateSecret { id } => {
            let rotated = client
                .call(
                    reqwest::Method::POST,
                    &format!("{}/rotate-secret", webhook_path(&id)),
                    None,
                    true,
                )
                .await?;
            reveal_secret(&rotated, json)
        }
        WebhooksCommand::Deliveries { id, limit } => {
            let deliveries = client
                .call(
                    reqwest::Method::GET,
                    &format!("{}/deliveries?limit={limit}", webhook_path(&id)),
                    None,
                    true,
                )
                .await?;
            shown(json, &deliveries, |deliveries| {
                delivery_rows(deliveries.as_array().map(Vec::as_slice).unwrap_or_default())
            })
        }
        WebhooksCommand::Retry { id, delivery } => {
            let queued = client
                .call(
                    reqwest::Method::POST,
                    &format!("{}/deliveries/{}/retry", webhook_path(&id), segment(&delivery)),
                    None,
                    true,
                )
                .await?;
            shown(json, &queued, |queued| {
                format!("queued {} again ({})\n", text(&queued["id"]), text(&queued["status"]))
            })
        }
    })
}
