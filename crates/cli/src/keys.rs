//! `keymint keys …`: list, create, get, update, rotate, revoke, delete, the
//! audit trail and import.

use std::fmt::Write as _;

use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

pub use crate::args::EnvironmentArg;
use crate::args::{parse_meta, parse_ratelimit, parse_refill};
use crate::http::{segment, Client};
use crate::import::import_file;
use crate::output::{deleted, shown};
use crate::table::{table, text};
use crate::{Connection, Failure};

/// What to do with keys.
#[derive(Debug, Subcommand)]
// One command is parsed once per process: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum KeysCommand {
    /// List keys, newest first.
    List(ListArgs),
    /// Create a key; its private key is printed once.
    Create(CreateArgs),
    /// Show one key.
    Get {
        /// The key's id.
        id: String,
    },
    /// Change a key's fields; what is not given stays as it is.
    Update(UpdateArgs),
    /// Give a key a new private key, printed once.
    Rotate {
        /// The key's id.
        id: String,
        /// Seconds the old private key keeps working (0 to 604800).
        #[arg(long, default_value_t = 0)]
        grace_period: u32,
    },
    /// Revoke a key, for good.
    Revoke {
        /// The key's id.
        id: String,
    },
    /// Delete a key (its audit trail stays).
    Delete {
        /// The key's id.
        id: String,
    },
    /// Show a key's audit trail, newest first.
    Events {
        /// The key's id.
        id: String,
    },
    /// Bring in keys from another key system, keeping their private keys.
    ///
    /// FILE has one JSON object per line (`-` reads standard input): the
    /// create fields (name, environment, description, expires_at,
    /// permissions, owner_id, meta, credits, ratelimits) and exactly one of
    /// "key" (the private key) or "hash" ({"algorithm": "sha256", "value":
    /// "<hex or base64>"}). Sent 1 000 lines at a time; each line's result is
    /// printed by line number, keys never. Exits 1 if any line failed.
    Import {
        /// The JSON Lines file, or `-` for standard input.
        file: std::path::PathBuf,
    },
}

/// Which keys `keys list` shows.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only keys of this environment.
    #[arg(long)]
    environment: Option<EnvironmentArg>,
    /// Only revoked (true) or unrevoked (false) keys.
    #[arg(long)]
    revoked: Option<bool>,
    /// Only keys of this owner.
    #[arg(long)]
    owner: Option<String>,
    /// Only keys whose name contains this, ignoring case.
    #[arg(long)]
    name: Option<String>,
    /// At most this many keys (1 to 100).
    #[arg(long, default_value_t = 100)]
    limit: u32,
}

/// A new key's fields, for `keys create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The key's name.
    #[arg(long)]
    name: String,
    /// What it is for.
    #[arg(long)]
    description: Option<String>,
    /// live or test (the server's default when absent).
    #[arg(long)]
    environment: Option<EnvironmentArg>,
    /// When it stops working (RFC 3339, e.g. 2027-06-30T00:00:00Z).
    #[arg(long)]
    expires_at: Option<String>,
    /// A permission it grants (repeat for several).
    #[arg(long = "permission", value_name = "PERMISSION")]
    permissions: Vec<String>,
    /// Whom it belongs to, in your terms.
    #[arg(long)]
    owner: Option<String>,
    /// How many verifications it allows (unlimited when absent).
    #[arg(long, value_name = "N")]
    credits: Option<u64>,
    /// Set the credits back once a period: daily:AMOUNT or monthly:AMOUNT
    /// (UTC; monthly on the 1st).
    #[arg(long, value_name = "INTERVAL:AMOUNT", value_parser = parse_refill, requires = "credits")]
    refill: Option<Value>,
    /// A rate limit, NAME=LIMIT/WINDOW with a window in s, m, h or d, e.g.
    /// requests=100/1m (repeat for several).
    #[arg(long = "ratelimit", value_name = "NAME=LIMIT/WINDOW", value_parser = parse_ratelimit)]
    ratelimits: Vec<Value>,
    /// Your own data about the key: a JSON object, e.g. '{"plan": "pro"}'.
    #[arg(long, value_name = "JSON", value_parser = parse_meta)]
    meta: Option<Value>,
}

/// What `keys update` changes: what is not given stays as it is.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The key's id.
    id: String,
    /// A new name.
    #[arg(long)]
    name: Option<String>,
    /// A new description.
    #[arg(long, conflicts_with = "clear_description")]
    description: Option<String>,
    /// Remove the description.
    #[arg(long)]
    clear_description: bool,
    /// A permission, replacing all the key's permissions (repeat for several).
    #[arg(long = "permission", value_name = "PERMISSION", conflicts_with = "clear_permissions")]
    permissions: Vec<String>,
    /// Remove every permission.
    #[arg(long)]
    clear_permissions: bool,
    /// A new owner.
    #[arg(long, conflicts_with = "clear_owner")]
    owner: Option<String>,
    /// Remove the owner.
    #[arg(long)]
    clear_owner: bool,
    /// New data about the key, replacing the old: a JSON object.
    #[arg(long, value_name = "JSON", value_parser = parse_meta, conflicts_with = "clear_meta")]
    meta: Option<Value>,
    /// Remove the meta data.
    #[arg(long)]
    clear_meta: bool,
    /// A rate limit, NAME=LIMIT/WINDOW, replacing all the key's rate limits
    /// (repeat for several).
    #[arg(long = "ratelimit", value_name = "NAME=LIMIT/WINDOW", value_parser = parse_ratelimit,
        conflicts_with = "clear_ratelimits")]
    ratelimits: Vec<Value>,
    /// Remove every rate limit.
    #[arg(long)]
    clear_ratelimits: bool,
    /// Set the credits anew to N, with the refill given by --refill or none
    /// (a key's refill is replaced, not kept; `keymint credits` changes the
    /// balance alone).
    #[arg(long, value_name = "N", conflicts_with = "unlimited")]
    credits: Option<u64>,
    /// With --credits: set them back once a period, daily:AMOUNT or monthly:AMOUNT.
    #[arg(long, value_name = "INTERVAL:AMOUNT", value_parser = parse_refill, requires = "credits")]
    refill: Option<Value>,
    /// Remove the credits: the key verifies without limit.
    #[arg(long)]
    unlimited: bool,
}

pub(crate) fn key_rows(keys: &[Value]) -> String {
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|key| {
            vec![
                text(&key["id"]),
                text(&key["name"]),
                text(&key["environment"]),
                text(&key["status"]),
                text(&key["private_key_display"]),
                text(&key["created_at"]),
                text(&key["last_used_at"]),
            ]
        })
        .collect();
    table(&["ID", "NAME", "ENV", "STATUS", "KEY", "CREATED", "LAST USED"], &rows)
}

pub(crate) fn key_detail(key: &Value) -> String {
    let fields = [
        "id",
        "name",
        "description",
        "environment",
        "public_key",
        "private_key_display",
        "permissions",
        "owner_id",
        "meta",
        "ratelimits",
        "credits",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "leaked_at",
        "previous_key_valid_until",
        "status",
    ];
    let rows: Vec<Vec<String>> = fields
        .iter()
        .map(|field| vec![(*field).to_owned(), text(&key[*field])])
        .collect();
    table(&["FIELD", "VALUE"], &rows)
}

/// Prints a new private key: to stdout, once, with the warning on stderr so
/// that `… | tee` or `$(…)` capture the key alone.
pub(crate) fn reveal(created: &Value, json: bool) -> String {
    eprintln!("keymint: this private key is shown once and never again; store it now (Keymint keeps only a hash)");
    if json {
        return format!("{created}\n");
    }
    let mut out = key_detail(created);
    let _ = writeln!(out, "\nprivate_key  {}", text(&created["private_key"]));
    out
}

pub(crate) fn path_of(id: &str) -> String {
    format!("/api/v2/api-keys/{}", segment(id))
}

/// The list's query string: the filters given, and the page size.
fn list_query(args: ListArgs) -> Result<String, Failure> {
    let mut query = vec![("limit", args.limit.to_string())];
    if let Some(environment) = args.environment {
        query.push(("environment", environment.as_str().to_owned()));
    }
    if let Some(revoked) = args.revoked {
        query.push(("is_revoked", revoked.to_string()));
    }
    if let Some(owner) = args.owner {
        query.push(("owner_id", owner));
    }
    if let Some(name) = args.name {
        query.push(("name", name));
    }
    Ok(serde_urlencoded::to_string(&query).map_err(anyhow::Error::from)?)
}

/// The create request's body: the fields given, nothing else (the server's
/// defaults apply to the rest).
fn create_body(args: CreateArgs) -> Value {
    let mut body = Map::new();
    body.insert("name".into(), json!(args.name));
    let mut put = |field: &str, value: Option<Value>| {
        if let Some(value) = value {
            body.insert(field.into(), value);
        }
    };
    put("description", args.description.map(Value::from));
    put("environment", args.environment.map(|e| json!(e.as_str())));
    put("expires_at", args.expires_at.map(Value::from));
    put(
        "permissions",
        (!args.permissions.is_empty()).then(|| json!(args.permissions)),
    );
    put("owner_id", args.owner.map(Value::from));
    put(
        "credits",
        args.credits
            .map(|remaining| json!({"remaining": remaining, "refill": args.refill})),
    );
    put(
        "ratelimits",
        (!args.ratelimits.is_empty()).then_some(Value::Array(args.ratelimits)),
    );
    put("meta", args.meta);
    Value::Object(body)
}

/// The update's body: each field given, or `null` for each cleared; a usage
/// error when it would change nothing.
fn update_body(args: UpdateArgs) -> Result<Value, Failure> {
    let mut body = Map::new();
    let mut set = |field: &str, given: Option<Value>, clear: bool| {
        if let Some(value) = given {
            body.insert(field.into(), value);
        } else if clear {
            body.insert(field.into(), Value::Null);
        }
    };
    set("name", args.name.map(Value::from), false);
    set("description", args.description.map(Value::from), args.clear_description);
    set(
        "permissions",
        (!args.permissions.is_empty()).then(|| json!(args.permissions)),
        args.clear_permissions,
    );
    set("owner_id", args.owner.map(Value::from), args.clear_owner);
    set("meta", args.meta, args.clear_meta);
    set(
        "ratelimits",
        (!args.ratelimits.is_empty()).then_some(Value::Array(args.ratelimits)),
        args.clear_ratelimits,
    );
    set(
        "credits",
        args.credits
            .map(|remaining| json!({"remaining": remaining, "refill": args.refill})),
        args.unlimited,
    );
    if body.is_empty() {
        return Err(Failure {
            message: "nothing to change: give at least one option (see keymint keys update --help)".to_owned(),
            code: 2,
        });
    }
    Ok(Value::Object(body))
}

/// A key's audit trail as a table, newest first.
fn events_table(events: &Value) -> String {
    let rows: Vec<Vec<String>> = events
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|event| {
            let mut detail = event["fields"]
                .as_array()
                .map(|f| f.iter().map(text).collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            if let Some(source) = event["leak"]["source"].as_str() {
                detail = format!("source {source} {}", text(&event["leak"]["url"]));
            }
            vec![
                text(&event["occurred_at"]),
                text(&event["action"]),
                text(&event["actor"]),
                if detail.is_empty() { "-".to_owned() } else { detail },
            ]
        })
        .collect();
    table(&["WHEN", "ACTION", "ACTOR", "DETAIL"], &rows)
}

/// Runs a `keys` command and returns what to print on stdout.
pub async fn keys(connection: &Connection, command: KeysCommand) -> Result<String, Failure> {
    use reqwest::Method;
    let client = Client::new(connection)?;
    let json = connection.json;
    let show = |value: Value, human: fn(&Value) -> String| shown(json, &value, human);
    Ok(match command {
        KeysCommand::List(args) => {
            let path = format!("/api/v2/api-keys?{}", list_query(args)?);
            let keys = client.call(Method::GET, &path, None, true).await?;
            show(keys, |keys| {
                key_rows(keys.as_array().map(Vec::as_slice).unwrap_or_default())
            })
        }
        KeysCommand::Create(args) => {
            let created = client
                .call(Method::POST, "/api/v2/api-keys", Some(create_body(args)), true)
                .await?;
            reveal(&created, json)
        }
        KeysCommand::Import { file } => import_file(&client, &file, json).await?,
        KeysCommand::Get { id } => show(client.call(Method::GET, &path_of(&id), None, true).await?, key_detail),
        KeysCommand::Update(args) => {
            let path = path_of(&args.id);
            let body = update_body(args)?;
            show(client.call(Method::PATCH, &path, Some(body), true).await?, key_detail)
        }
        KeysCommand::Rotate { id, grace_period } => {
            let body = json!({"grace_period_seconds": grace_period});
            let path = format!("{}/rotate", path_of(&id));
            reveal(&client.call(Method::POST, &path, Some(body), true).await?, json)
        }
        KeysCommand::Revoke { id } => {
            let path = format!("{}/revoke", path_of(&id));
            show(client.call(Method::PUT, &path, None, true).await?, |revoked| {
                format!("revoked {} at {}\n", text(&revoked["id"]), text(&revoked["revoked_at"]))
            })
        }
        KeysCommand::Delete { id } => {
            client.call(Method::DELETE, &path_of(&id), None, true).await?;
            deleted(json, &id)
        }
        KeysCommand::Events { id } => {
            let path = format!("{}/events?limit=100", path_of(&id));
            show(client.call(Method::GET, &path, None, true).await?, events_table)
        }
    })
}
