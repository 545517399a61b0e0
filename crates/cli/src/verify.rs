//! `keymint verify`: one verdict, once, on stdout; the exit code says whether
//! the key is valid.

use serde_json::json;

use crate::http::Client;
use crate::table::text;
use crate::{Connection, Failure, Output, VerifyConnection};

/// Runs `keymint verify` and returns what to print; a key that is not valid
/// is a failure (exit code 1) whose message is the verdict.
pub async fn verify(connection: &VerifyConnection, key: &str, permissions: Option<String>) -> Result<Output, Failure> {
    let client = Client::new(&Connection {
        url: connection.url.clone(),
        token: None,
        json: connection.json,
    })?;
    let mut body = json!({"key": key});
    if let Some(query) = &permissions {
        body["permissions"] = json!(query);
    }
    let verdict = client
        .call(reqwest::Method::POST, "/api/v2/api-keys/verify", Some(body), false)
        .await?;
    let code = text(&verdict["code"]);
    let valid = verdict["valid"] == true;
    let text = if connection.json {
        format!("{verdict}\n")
    } else if valid {
        format!(
            "{code}: {} ({}, {})\n",
            text(&verdict["name"]),
            text(&verdict["key_id"]),
            text(&verdict["environment"])
        )
    } else {
        match (verdict["permissions"].as_array(), &permissions) {
            // What the key has beside what was asked: the difference is the
            // fix, whichever way the query is written.
            (Some(held), Some(query)) if code == "INSUFFICIENT_PERMISSIONS" => {
                let held: Vec<String> = held.iter().map(text).collect();
                let held = if held.is_empty() {
                    "none".to_owned()
                } else {
                    held.join(", ")
                };
                format!("{code}: the key has {held}; asked {query}\n")
            }
            _ => format!("{code}\n"),
        }
    };
    // The verdict is the output, on stdout alone; scripts branch on the code.
    Ok(Output {
        text,
        code: u8::from(!valid),
    })
}
