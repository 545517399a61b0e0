//! `keymint credits …`: read a key's credits, or change them by an amount.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::http::Client;
use crate::keys::path_of;
use crate::output::shown;
use crate::table::{table, text};
use crate::{Connection, Failure};

/// What to do with a key's credits.
#[derive(Debug, Subcommand)]
pub enum CreditsCommand {
    /// Show a key's credits (`-` when it has unlimited use).
    Get {
        /// The key's id.
        id: String,
    },
    /// Set the remaining credits to VALUE.
    Set(CreditChange),
    /// Add VALUE to the remaining credits (a top-up).
    Increment(CreditChange),
    /// Take VALUE from the remaining credits (refused below 0).
    Decrement(CreditChange),
}

/// A change of a key's credits.
#[derive(Debug, Args)]
pub struct CreditChange {
    /// The key's id.
    id: String,
    /// How many credits.
    value: u64,
    /// Applies the change once however often the command is retried with the
    /// same value (within 24 hours), e.g. an invoice number.
    #[arg(long, value_name = "KEY")]
    idempotency_key: Option<String>,
}

pub(crate) fn credits_text(credits: &Value) -> String {
    if credits.is_null() {
        return "unlimited\n".to_owned();
    }
    let refill = &credits["refill"];
    let refill = if refill.is_null() {
        "-".to_owned()
    } else {
        format!(
            "{} {} (day {})",
            text(&refill["amount"]),
            text(&refill["interval"]),
            text(&refill["refill_day"])
        )
    };
    table(&["REMAINING", "REFILL"], &[vec![text(&credits["remaining"]), refill]])
}

/// Runs a `credits` command and returns what to print on stdout.
pub async fn credits(connection: &Connection, command: CreditsCommand) -> Result<String, Failure> {
    let client = Client::new(connection)?;
    let (op, change) = match command {
        CreditsCommand::Get { id } => {
            let key = client.call(reqwest::Method::GET, &path_of(&id), None, true).await?;
            return Ok(shown(connection.json, &key["credits"], credits_text));
        }
        CreditsCommand::Set(change) => ("set", change),
        CreditsCommand::Increment(change) => ("increment", change),
        CreditsCommand::Decrement(change) => ("decrement", change),
    };
    // Checked here: a value HTTP cannot carry would otherwise fail inside the
    // client as an unexplained "builder error".
    if let Some(key) = change.idempotency_key.as_deref() {
        if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Failure {
                message: "--idempotency-key: 1 to 255 visible ASCII characters".to_owned(),
                code: 2,
            });
        }
    }
    let headers: Vec<(&str, &str)> = change
        .idempotency_key
        .as_deref()
        .map(|key| ("Idempotency-Key", key))
        .into_iter()
        .collect();
    let credits = client
        .call_with(
            reqwest::Method::POST,
            &format!("{}/credits", path_of(&change.id)),
            Some(json!({"op": op, "value": change.value})),
            true,
            &headers,
        )
        .await?;
    Ok(shown(connection.json, &credits, credits_text))
}
