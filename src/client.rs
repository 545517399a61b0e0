//! `keymint keys …` and `keymint verify`: a client of a running Keymint's REST
//! API, for people at a terminal (tables) and scripts (`--json`, exit codes).
//! It does nothing the API does not: every command is one or a few requests
//! with the caller's token.

use std::fmt::Write as _;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Map, Value};

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

/// What to do with keys.
#[derive(Debug, Subcommand)]
// One command is parsed once per process: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum KeysCommand {
    /// List keys, newest first.
    List {
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
    },
    /// Create a key; its private key is printed once.
    Create {
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
    },
    /// Show one key.
    Get {
        /// The key's id.
        id: String,
    },
    /// Change a key's fields; what is not given stays as it is.
    Update {
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
        /// Set the credits anew to N (`keymint credits` changes them by an amount).
        #[arg(long, value_name = "N", conflicts_with = "unlimited")]
        credits: Option<u64>,
        /// With --credits: set them back once a period, daily:AMOUNT or monthly:AMOUNT.
        #[arg(long, value_name = "INTERVAL:AMOUNT", value_parser = parse_refill, requires = "credits")]
        refill: Option<Value>,
        /// Remove the credits: the key verifies without limit.
        #[arg(long)]
        unlimited: bool,
    },
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

/// Lines sent in one import request: the API's most.
const IMPORT_BATCH: usize = 1000;

/// What became of one line of an import file.
enum LineResult {
    Imported(String),
    Failed(Vec<Value>),
}

/// A line's number and its item, or why it is none.
type ReadLine = (usize, Result<Value, String>);

/// Reads an import file's lines: each non-blank line is a JSON object, or a
/// failure that never repeats the line (it may hold a private key).
fn import_lines(reader: impl std::io::BufRead) -> Result<Vec<ReadLine>, Failure> {
    let mut lines = Vec::new();
    for (number, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| Failure {
            message: format!("cannot read the import file: {e}"),
            code: 2,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = match serde_json::from_str::<Value>(&line) {
            Ok(item @ Value::Object(_)) => Ok(item),
            Ok(_) => Err("not a JSON object".to_owned()),
            Err(e) => Err(format!("not JSON (column {})", e.column())),
        };
        lines.push((number + 1, parsed));
    }
    Ok(lines)
}

/// One line's failure in a word: each reason's field and message.
fn failure_text(detail: &[Value]) -> String {
    detail
        .iter()
        .map(|reason| {
            let field: Vec<String> = reason["loc"]
                .as_array()
                .map(|loc| loc.iter().skip(3).map(text).collect())
                .unwrap_or_default();
            if field.is_empty() {
                text(&reason["msg"])
            } else {
                format!("{}: {}", field.join("."), text(&reason["msg"]))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

async fn import_file(client: &Client, file: &std::path::Path, json: bool) -> Result<String, Failure> {
    let lines = if file.as_os_str() == "-" {
        import_lines(std::io::stdin().lock())?
    } else {
        let opened = std::fs::File::open(file).map_err(|e| Failure {
            message: format!("cannot open {}: {e}", file.display()),
            code: 2,
        })?;
        import_lines(std::io::BufReader::new(opened))?
    };
    let mut results: Vec<(usize, LineResult)> = Vec::with_capacity(lines.len());
    let mut batch: Vec<(usize, Value)> = Vec::new();
    let mut lines = lines.into_iter().peekable();
    while let Some((number, parsed)) = lines.next() {
        match parsed {
            Ok(item) => batch.push((number, item)),
            Err(why) => results.push((number, LineResult::Failed(vec![json!({"loc": [], "msg": why})]))),
        }
        if batch.len() == IMPORT_BATCH || (lines.peek().is_none() && !batch.is_empty()) {
            let numbers: Vec<usize> = batch.iter().map(|(number, _)| *number).collect();
            let items: Vec<Value> = batch.drain(..).map(|(_, item)| item).collect();
            let answer = client
                .call(
                    reqwest::Method::POST,
                    "/api/v2/api-keys/import",
                    Some(json!({"keys": items})),
                    true,
                )
                .await?;
            for imported in answer["imported"].as_array().map(Vec::as_slice).unwrap_or_default() {
                if let Some(&number) = imported["index"]
                    .as_u64()
                    .and_then(|i| numbers.get(usize::try_from(i).ok()?))
                {
                    results.push((number, LineResult::Imported(text(&imported["id"]))));
                }
            }
            for failed in answer["failed"].as_array().map(Vec::as_slice).unwrap_or_default() {
                if let Some(&number) = failed["index"]
                    .as_u64()
                    .and_then(|i| numbers.get(usize::try_from(i).ok()?))
                {
                    let detail = failed["detail"].as_array().cloned().unwrap_or_default();
                    results.push((number, LineResult::Failed(detail)));
                }
            }
        }
    }
    results.sort_by_key(|(number, _)| *number);
    let imported = results
        .iter()
        .filter(|(_, r)| matches!(r, LineResult::Imported(_)))
        .count();
    let failed = results.len() - imported;
    let mut out = String::new();
    for (number, result) in &results {
        let _ = match (result, json) {
            (LineResult::Imported(id), true) => writeln!(out, "{}", json!({"line": number, "id": id})),
            (LineResult::Failed(detail), true) => writeln!(out, "{}", json!({"line": number, "detail": detail})),
            (LineResult::Imported(id), false) => writeln!(out, "line {number}: imported {id}"),
            (LineResult::Failed(detail), false) => writeln!(out, "line {number}: failed: {}", failure_text(detail)),
        };
    }
    let _ = if json {
        writeln!(out, "{}", json!({"imported": imported, "failed": failed}))
    } else {
        writeln!(out, "imported {imported}, failed {failed} (of {} lines)", results.len())
    };
    if failed > 0 {
        // Scripts branch on the exit code; every line's result still goes to stdout.
        print!("{out}");
        return Err(Failure {
            message: format!("{failed} of {} lines were not imported", results.len()),
            code: 1,
        });
    }
    Ok(out)
}

/// `daily:AMOUNT` or `monthly:AMOUNT`, as the API's `credits.refill`. Only the
/// shape is checked here; the server checks the values and names what it refuses.
fn parse_refill(raw: &str) -> Result<Value, String> {
    let (interval, amount) = raw
        .split_once(':')
        .ok_or("expected daily:AMOUNT or monthly:AMOUNT, e.g. daily:1000")?;
    if !matches!(interval, "daily" | "monthly") {
        return Err(format!("{interval:?} is not daily or monthly"));
    }
    let amount: u64 = amount
        .parse()
        .map_err(|_| format!("{amount:?} is not a whole number"))?;
    Ok(json!({"interval": interval, "amount": amount}))
}

/// `NAME=LIMIT/WINDOW`, the window a number with `s`, `m`, `h` or `d`.
fn parse_ratelimit(raw: &str) -> Result<Value, String> {
    const SHAPE: &str = "expected NAME=LIMIT/WINDOW, e.g. requests=100/1m";
    let (name, rest) = raw.split_once('=').ok_or(SHAPE)?;
    let (limit, window) = rest.split_once('/').ok_or(SHAPE)?;
    let limit: u64 = limit.parse().map_err(|_| format!("{limit:?} is not a whole number"))?;
    let split = window.find(|c: char| !c.is_ascii_digit()).unwrap_or(window.len());
    let (count, unit) = window.split_at(split);
    let count: u64 = count
        .parse()
        .map_err(|_| format!("{window:?} is not a window such as 1s, 10m, 1h or 1d"))?;
    let unit_ms: u64 = match unit {
        "s" | "" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{window:?} is not a window such as 1s, 10m, 1h or 1d")),
    };
    let duration_ms = count.checked_mul(unit_ms).ok_or(format!("{window:?} is too long"))?;
    Ok(json!({"name": name, "limit": limit, "duration_ms": duration_ms}))
}

/// A JSON value; the server says whether it is an acceptable `meta`.
fn parse_meta(raw: &str) -> Result<Value, String> {
    serde_json::from_str(raw).map_err(|e| format!("not JSON: {e}"))
}

/// A key's environment.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum EnvironmentArg {
    /// Production traffic.
    Live,
    /// Test and staging traffic.
    Test,
}

impl EnvironmentArg {
    fn as_str(self) -> &'static str {
        match self {
            EnvironmentArg::Live => "live",
            EnvironmentArg::Test => "test",
        }
    }
}

/// A failed command: what to print, and the exit code.
#[derive(Debug)]
pub struct Failure {
    /// The message for stderr.
    pub message: String,
    /// 1 for a refusal by the server or an unreachable server.
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

struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    fn new(connection: &Connection) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("keymint-cli/", env!("CARGO_PKG_VERSION")))
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            http,
            base: connection.url.trim_end_matches('/').to_owned(),
            token: connection.token.clone().filter(|token| !token.trim().is_empty()),
        })
    }

    /// Sends a request and returns the JSON body of a 2xx answer (`Null` for
    /// none), or the API's message as a failure.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        auth: bool,
    ) -> Result<Value, Failure> {
        self.call_with(method, path, body, auth, &[]).await
    }

    /// [`Client::call`] with extra request headers.
    async fn call_with(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        auth: bool,
        headers: &[(&str, &str)],
    ) -> Result<Value, Failure> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if auth {
            let token = self.token.as_deref().ok_or_else(|| Failure {
                message: "no token: pass --token or set KEYMINT_TOKEN".to_owned(),
                code: 1,
            })?;
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach {}: {}", self.base, causes(&e.without_url())))?;
        let status = response.status();
        let request_id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response
            .text()
            .await
            .map_err(|e| anyhow::anyhow!("reading the answer: {e}"))?;
        let body: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            return Ok(body);
        }
        Err(Failure {
            message: api_message(status.as_u16(), &body, request_id.as_deref()),
            code: 1,
        })
    }
}

/// An error and its causes, innermost last ("connection refused" is a cause).
fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

/// The API's error body in a line: its detail (each failing field for a
/// validation error), code and request id.
fn api_message(status: u16, body: &Value, request_id: Option<&str>) -> String {
    let detail = match &body["detail"] {
        Value::String(detail) => detail.clone(),
        Value::Array(fields) => fields
            .iter()
            .map(|field| {
                let loc: Vec<String> = field["loc"]
                    .as_array()
                    .map(|parts| {
                        parts
                            .iter()
                            .skip(1)
                            .map(|p| p.as_str().map(str::to_owned).unwrap_or_else(|| p.to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                format!("{}: {}", loc.join("."), field["msg"].as_str().unwrap_or_default())
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => format!("HTTP {status}"),
    };
    let mut message = format!("{detail} ({status}");
    if let Some(code) = body["code"].as_str() {
        let _ = write!(message, " {code}");
    }
    if let Some(id) = request_id {
        let _ = write!(message, ", request {id}");
    }
    message.push(')');
    message
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Columns padded to their widest cell; the last is not padded.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<String>| {
        let last = cells.len().saturating_sub(1);
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                let _ = write!(out, "{cell:<width$}  ");
            }
        }
        out.push('\n');
    };
    line(header.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        line(row.clone());
    }
    out
}

fn key_rows(keys: &[Value]) -> String {
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

fn key_detail(key: &Value) -> String {
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
fn reveal(created: &Value, json: bool) -> String {
    eprintln!("keymint: this private key is shown once and never again; store it now (Keymint keeps only a hash)");
    if json {
        return format!("{created}\n");
    }
    let mut out = key_detail(created);
    let _ = writeln!(out, "\nprivate_key  {}", text(&created["private_key"]));
    out
}

/// One path segment: ids are UUIDs; anything else is sent escaped so it
/// cannot change the path.
fn segment(id: &str) -> String {
    let mut escaped = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' {
            escaped.push(char::from(byte));
        } else {
            let _ = write!(escaped, "%{byte:02X}");
        }
    }
    escaped
}

fn path_of(id: &str) -> String {
    format!("/api/v2/api-keys/{}", segment(id))
}

/// Runs a `keys` command and returns what to print on stdout.
pub async fn keys(connection: &Connection, command: KeysCommand) -> Result<String, Failure> {
    let client = Client::new(connection)?;
    let json = connection.json;
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    Ok(match command {
        KeysCommand::List {
            environment,
            revoked,
            owner,
            name,
            limit,
        } => {
            let mut query = vec![("limit", limit.to_string())];
            if let Some(environment) = environment {
                query.push(("environment", environment.as_str().to_owned()));
            }
            if let Some(revoked) = revoked {
                query.push(("is_revoked", revoked.to_string()));
            }
            if let Some(owner) = owner {
                query.push(("owner_id", owner));
            }
            if let Some(name) = name {
                query.push(("name", name));
            }
            let encoded = serde_urlencoded::to_string(&query).map_err(anyhow::Error::from)?;
            let keys = client
                .call(get, &format!("/api/v2/api-keys?{encoded}"), None, true)
                .await?;
            if json {
                format!("{keys}\n")
            } else {
                key_rows(keys.as_array().map(Vec::as_slice).unwrap_or_default())
            }
        }
        KeysCommand::Create {
            name,
            description,
            environment,
            expires_at,
            permissions,
            owner,
            credits,
            refill,
            ratelimits,
            meta,
        } => {
            let mut body = Map::new();
            body.insert("name".into(), json!(name));
            if let Some(description) = description {
                body.insert("description".into(), json!(description));
            }
            if let Some(environment) = environment {
                body.insert("environment".into(), json!(environment.as_str()));
            }
            if let Some(expires_at) = expires_at {
                body.insert("expires_at".into(), json!(expires_at));
            }
            if !permissions.is_empty() {
                body.insert("permissions".into(), json!(permissions));
            }
            if let Some(owner) = owner {
                body.insert("owner_id".into(), json!(owner));
            }
            if let Some(remaining) = credits {
                body.insert("credits".into(), json!({"remaining": remaining, "refill": refill}));
            }
            if !ratelimits.is_empty() {
                body.insert("ratelimits".into(), Value::Array(ratelimits));
            }
            if let Some(meta) = meta {
                body.insert("meta".into(), meta);
            }
            let created = client
                .call(post, "/api/v2/api-keys", Some(Value::Object(body)), true)
                .await?;
            reveal(&created, json)
        }
        KeysCommand::Import { file } => import_file(&client, &file, json).await?,
        KeysCommand::Get { id } => {
            let key = client.call(get, &path_of(&id), None, true).await?;
            if json {
                format!("{key}\n")
            } else {
                key_detail(&key)
            }
        }
        KeysCommand::Update {
            id,
            name,
            description,
            clear_description,
            permissions,
            clear_permissions,
            owner,
            clear_owner,
            meta,
            clear_meta,
            ratelimits,
            clear_ratelimits,
            credits,
            refill,
            unlimited,
        } => {
            let mut body = Map::new();
            let mut set = |field: &str, given: Option<Value>, clear: bool| {
                if let Some(value) = given {
                    body.insert(field.into(), value);
                } else if clear {
                    body.insert(field.into(), Value::Null);
                }
            };
            set("name", name.map(Value::from), false);
            set("description", description.map(Value::from), clear_description);
            set(
                "permissions",
                (!permissions.is_empty()).then(|| json!(permissions)),
                clear_permissions,
            );
            set("owner_id", owner.map(Value::from), clear_owner);
            set("meta", meta, clear_meta);
            set(
                "ratelimits",
                (!ratelimits.is_empty()).then_some(Value::Array(ratelimits)),
                clear_ratelimits,
            );
            set(
                "credits",
                credits.map(|remaining| json!({"remaining": remaining, "refill": refill})),
                unlimited,
            );
            if body.is_empty() {
                return Err(Failure {
                    message: "nothing to change: give at least one option (see keymint keys update --help)".to_owned(),
                    code: 2,
                });
            }
            let key = client
                .call(reqwest::Method::PATCH, &path_of(&id), Some(Value::Object(body)), true)
                .await?;
            if json {
                format!("{key}\n")
            } else {
                key_detail(&key)
            }
        }
        KeysCommand::Rotate { id, grace_period } => {
            let body = json!({"grace_period_seconds": grace_period});
            let rotated = client
                .call(post, &format!("{}/rotate", path_of(&id)), Some(body), true)
                .await?;
            reveal(&rotated, json)
        }
        KeysCommand::Revoke { id } => {
            let revoked = client
                .call(reqwest::Method::PUT, &format!("{}/revoke", path_of(&id)), None, true)
                .await?;
            if json {
                format!("{revoked}\n")
            } else {
                format!("revoked {} at {}\n", text(&revoked["id"]), text(&revoked["revoked_at"]))
            }
        }
        KeysCommand::Delete { id } => {
            client.call(reqwest::Method::DELETE, &path_of(&id), None, true).await?;
            if json {
                format!("{}\n", json!({"deleted": id}))
            } else {
                format!("deleted {id}\n")
            }
        }
        KeysCommand::Events { id } => {
            let events = client
                .call(get, &format!("{}/events?limit=100", path_of(&id)), None, true)
                .await?;
            if json {
                format!("{events}\n")
            } else {
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
        }
    })
}

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

fn credits_text(credits: &Value) -> String {
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
            return Ok(if connection.json {
                format!("{}\n", key["credits"])
            } else {
                credits_text(&key["credits"])
            });
        }
        CreditsCommand::Set(change) => ("set", change),
        CreditsCommand::Increment(change) => ("increment", change),
        CreditsCommand::Decrement(change) => ("decrement", change),
    };
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
    Ok(if connection.json {
        format!("{credits}\n")
    } else {
        credits_text(&credits)
    })
}

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

fn webhook_path(id: &str) -> String {
    format!("/api/v2/webhooks/{}", segment(id))
}

fn event_types(webhook: &Value) -> String {
    webhook["event_types"]
        .as_array()
        .map(|types| types.iter().map(text).collect::<Vec<_>>().join(","))
        .unwrap_or_else(|| "-".to_owned())
}

fn webhook_rows(webhooks: &[Value]) -> String {
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

fn webhook_detail(webhook: &Value) -> String {
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
fn reveal_secret(webhook: &Value, json: bool) -> String {
    eprintln!("keymint: this signing secret is shown once and never again; give it to the receiving endpoint now");
    if json {
        return format!("{webhook}\n");
    }
    let mut out = webhook_detail(webhook);
    let _ = writeln!(out, "\nsecret  {}", text(&webhook["secret"]));
    out
}

fn delivery_rows(deliveries: &[Value]) -> String {
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
    let one = |webhook: Value| {
        if json {
            format!("{webhook}\n")
        } else {
            webhook_detail(&webhook)
        }
    };
    Ok(match command {
        WebhooksCommand::List => {
            let webhooks = client
                .call(reqwest::Method::GET, "/api/v2/webhooks", None, true)
                .await?;
            if json {
                format!("{webhooks}\n")
            } else {
                webhook_rows(webhooks.as_array().map(Vec::as_slice).unwrap_or_default())
            }
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
            if json {
                format!("{}\n", json!({"deleted": id}))
            } else {
                format!("deleted {id}\n")
            }
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
            if json {
                format!("{deliveries}\n")
            } else {
                delivery_rows(deliveries.as_array().map(Vec::as_slice).unwrap_or_default())
            }
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
            if json {
                format!("{queued}\n")
            } else {
                format!("queued {} again ({})\n", text(&queued["id"]), text(&queued["status"]))
            }
        }
    })
}

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
