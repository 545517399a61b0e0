//! `keymint keys …`, `keymint credits …`, `keymint webhooks …`, `keymint
//! usage`, `keymint verify` and `keymint health`: a client of a running Keymint's REST API, for
//! people at a terminal (tables) and scripts (`--json`, exit codes). It does
//! nothing the API does not: every command is one or a few requests with the
//! caller's token, and it links no Keymint crate.
//!
//! Each command family is a module: its clap arguments, the requests it
//! sends and how it prints the answers. `http` is the one HTTP client and the
//! API's error bodies in a line; `output` what `--json` changes; `table` the
//! plain-text tables.

#![forbid(unsafe_code)]

use clap::Args;

mod args;
mod credits;
mod health;
mod http;
mod import;
mod keys;
mod output;
mod table;
mod usage;
mod verify;
mod webhooks;

pub use credits::{credits, CreditChange, CreditsCommand};
pub use health::health;
pub use keys::{keys, EnvironmentArg, KeysCommand};
pub use usage::{usage, UsageArgs, UsageGroup};
pub use verify::verify;
pub use webhooks::{webhooks, WebhooksCommand};

/// Where the server is and who is asking. Listed under their own heading in
/// every subcommand's help, apart from the subcommand's own options.
#[derive(Debug, Args)]
#[command(next_help_heading = "Connection")]
pub struct Connection {
    /// The Keymint server's base URL.
    #[arg(long, env = "KEYMINT_URL", default_value = "http://127.0.0.1:8080", global = true)]
    pub url: String,
    /// A bearer token for the organisation (`keymint dev-token` makes one in
    /// development). Prefer the environment variable: arguments show in `ps`.
    #[arg(long, env = "KEYMINT_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Where the server is, for verification: it needs no token (a key proves
/// itself).
#[derive(Debug, Args)]
#[command(next_help_heading = "Connection")]
pub struct VerifyConnection {
    /// The Keymint server's base URL.
    #[arg(long, env = "KEYMINT_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Print the API's JSON verdict instead of a line.
    #[arg(long)]
    pub json: bool,
}

/// What a command printed and the exit code it ends with.
#[derive(Debug)]
pub struct Output {
    /// For stdout.
    pub text: String,
    /// 0, or 1 for a verdict that the key is not valid.
    pub code: u8,
}

/// A failed command: what to print, and the exit code.
#[derive(Debug)]
pub struct Failure {
    /// The message for stderr.
    pub message: String,
    /// 1 for a refusal by the server or an unreachable server, 2 for a
    /// command that cannot be sent as given (as clap's own usage errors).
    pub code: u8,
}

impl From<anyhow::Error> for Failure {
    fn from(err: anyhow::Error) -> Self {
        Self {
            message: format!("{err:#}"),
            code: 1,
        }
    }
}
