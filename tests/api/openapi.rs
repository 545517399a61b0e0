//! The OpenAPI document lists exactly the routes Keymint serves, and real
//! responses match the schemas it declares.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{spawn_app, Backend, TestApp};

/// Every route the application serves, as `(method, path template)`.
fn served_routes() -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for version in ["v1", "v2"] {
        let base = format!("/api/{version}/api-keys");
        for (method, path) in [
            ("post", base.clone()),
            ("get", base.clone()),
            ("post", format!("{base}/verify")),
            ("post", format!("{base}/import")),
            ("get", format!("{base}/{{key_id}}")),
            ("patch", format!("{base}/{{key_id}}")),
            ("delete", format!("{base}/{{key_id}}")),
            ("put", format!("{base}/{{key_id}}/revoke")),
            ("post", format!("{base}/{{key_id}}/rotate")),
            ("post", format!("{base}/{{key_id}}/credits")),
            ("get", format!("{base}/{{key_id}}/events")),
            ("get", format!("{base}/{{key_id}}/usage")),
            ("get", format!("/api/{version}/analytics/verifications")),
            ("post", format!("{base}/revoke-leaked")),
            ("post", format!("/api/{version}/secret-scanning/github")),
            ("post", format!("/api/{version}/webhooks")),
            ("get", format!("/api/{version}/webhooks")),
            ("get", format!("/api/{version}/webhooks/{{webhook_id}}")),
            ("patch", format!("/api/{version}/webhooks/{{webhook_id}}")),
            ("delete", format!("/api/{version}/webhooks/{{webhook_id}}")),
            ("post", format!("/api/{version}/webhooks/{{webhook_id}}/rotate-secret")),
            ("get", format!("/api/{version}/webhooks/{{webhook_id}}/deliveries")),
            (
                "post",
                format!("/api/{version}/webhooks/{{webhook_id}}/deliveries/{{delivery_id}}/retry"),
            ),
        ] {
            routes.insert((method.to_owned(), path));
        }
    }
    routes.insert(("get".into(), "/.well-known/keymint/secret-patterns".into()));
    routes.insert(("get".into(), "/healthz".into()));
    routes.insert(("get".into(), "/readyz".into()));
    routes
}

async fn document(app: &TestApp) -> Value {
    let response = app.client.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.unwrap()
}

fn documented_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                routes.insert((method.clone(), path.clone()));
            }
        }
    }
    routes
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_names_exactly_the_served_routes() {
    let app = spawn_app(Backend::Memory).await;
    let doc = document(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert_eq!(documented_routes(&doc), served_routes());

    // And each documented route really is routed: neither a 405 nor the unknown-path 404.
    for (method, path) in documented_routes(&doc) {
        let concrete = path
            .replace("{key_id}", &Uuid::new_v4().to_string())
            .replace("{webhook_id}", &Uuid::new_v4().to_string())
            .replace("{delivery_id}", &Uuid::new_v4().to_string());
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let body = (method == Method::POST || method == Method::PATCH).then(|| json!({"name": "probe"}));
        let response = app.call(method.clone(), &concrete, body.as_ref()).await;
        let status = response.status().as_u16();
        let detail = response
            .json::<Value>()
            .await
            .map(|b| b["detail"].clone())
            .unwrap_or(Value::Null);
        assert!(
            status != 405 && detail != "Not Found",
            "{method} {path}: {status} {detail}"
        );
    }
}

/// A small JSON Schema check, enough for the shapes Keymint declares: `$ref`,
/// `oneOf`, `type` (one or several), `properties` with no undeclared extras,
/// `required`, `items`, and the `uuid` and `date-time` formats.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().unwrap();
        return check(doc, &doc["components"]["schemas"][name], value, at);
    }
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        return if options.iter().any(|option| check(doc, option, value, at).is_ok()) {
            Ok(())
        } else {
            Err(format!("{at}: {value} matches no oneOf option"))
        };
    }
    let actual = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let allowed: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return Err(format!("{at}: schema without a type: {schema}")),
    };
    let integer_as_number = actual == "integer" && allowed.contains(&"number");
    if !(allowed.contains(&actual) || integer_as_number) {
        return Err(format!("{at}: {actual} where the schema allows {allowed:?}"));
    }
    match value {
        Value::String(s) => match schema.get("format").and_then(Value::as_str) {
            Some("uuid") => Uuid::parse_str(s)
                .map(|_| ())
                .map_err(|_| format!("{at}: {s} is not a uuid")),
            Some("date-time") => chrono::DateTime::parse_from_rfc3339(s)
                .map(|_| ())
                .map_err(|_| format!("{at}: {s} is not a date-time")),
            _ => Ok(()),
        },
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| check(doc, &schema["items"], item, &format!("{at}[{i}]"))),
        Value::Object(fields) => {
            let properties = schema["properties"]
                .as_object()
                .ok_or(format!("{at}: no properties declared"))?;
            for required in schema["required"].as_array().into_iter().flatten() {
                let name = required.as_str().unwrap();
                if !fields.contains_key(name) {
                    return Err(format!("{at}: required field {name} is missing"));
                }
            }
            for (name, field) in fields {
                let declared = properties
                    .get(name)
                    .ok_or(format!("{at}: field {name} is not in the schema"))?;
                check(doc, declared, field, &format!("{at}.{name}"))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The schema the document declares for `method path` answering `status`.
fn response_schema<'a>(doc: &'a Value, method: &str, path: &str, status: u16) -> &'a Value {
    let schema = &doc["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]["schema"];
    assert!(!schema.is_null(), "no schema for {method} {path} {status}");
    schema
}

async fn assert_matches(doc: &Value, response: reqwest::Response, method: &str, path: &str) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    let schema = response_schema(doc, method, path, status);
    if let Err(problem) = check(doc, schema, &body, "$") {
        panic!("{method} {path} {status} does not match its schema: {problem}\n{body}");
    }
}

#[tokio::test]
async fn real_responses_match_the_declared_schemas() {
    let app = spawn_app(Backend::Sqlite).await;
    let doc = document(&app).await;
    let base = "/api/v2/api-keys";
    let item = "/api/v2/api-keys/{key_id}";

    let expires_at = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let created = app
        .create_key(&json!({"name": "documented", "description": "d", "expires_at": expires_at}))
        .await;
    assert_eq!(created.status().as_u16(), 201);
    let body: Value = created.json().await.unwrap();
    let id = body["id"].as_str().unwrap().to_owned();
    assert!(check(&doc, response_schema(&doc, "post", base, 201), &body, "$").is_ok());
    let at = |rest: &str| format!("/api/v2/api-keys/{id}{rest}");

    assert_matches(&doc, app.create_key(&json!({"name": ""})).await, "post", base).await;
    assert_matches(&doc, app.client.post(app.url(base)).send().await.unwrap(), "post", base).await;
    assert_matches(&doc, app.call(Method::GET, base, None).await, "get", base).await;
    assert_matches(&doc, app.call(Method::GET, &at(""), None).await, "get", item).await;
    assert_matches(
        &doc,
        app.call(Method::GET, "/api/v2/api-keys/nope", None).await,
        "get",
        item,
    )
    .await;
    assert_matches(
        &doc,
        app.call(Method::PATCH, &at(""), Some(&json!({"description": null})))
            .await,
        "patch",
        item,
    )
    .await;
    assert_matches(
        &doc,
        app.call(Method::POST, &at("/rotate"), None).await,
        "post",
        &format!("{item}/rotate"),
    )
    .await;
    assert_matches(
        &doc,
        app.call(Method::PUT, &at("/revoke"), None).await,
        "put",
        &format!("{item}/revoke"),
    )
    .await;
    assert_matches(
        &doc,
        app.call(Method::POST, &at("/rotate"), None).await,
        "post",
        &format!("{item}/rotate"),
    )
    .await;
    assert_matches(
        &doc,
        app.call(Method::GET, &at("/events"), None).await,
        "get",
        &format!("{item}/events"),
    )
    .await;
    assert_matches(
        &doc,
        app.call(Method::GET, &format!("/api/v2/api-keys/{}", Uuid::new_v4()), None)
            .await,
        "get",
        item,
    )
    .await;
    // A metered key: its fields, every verdict that carries usage, and the credits route.
    let metered = app
        .create_key(&json!({
            "name": "metered",
            "ratelimits": [{"name": "burst", "limit": 1, "duration_ms": 2_592_000_000_u64}],
            "credits": {"remaining": 2, "refill": {"interval": "monthly", "amount": 5, "refill_day": 31}},
        }))
        .await;
    assert_eq!(metered.status().as_u16(), 201);
    let metered: Value = metered.json().await.unwrap();
    check(&doc, response_schema(&doc, "post", base, 201), &metered, "$").unwrap();
    let verify_path = "/api/v2/api-keys/verify";
    let verify = |body: Value| app.client.post(app.url(verify_path)).json(&body).send();
    let key = metered["private_key"].as_str().unwrap();
    for (body, code) in [
        (json!({"key": key, "credits": {"cost": 3}}), "USAGE_EXCEEDED"),
        (json!({"key": key}), "VALID"),
        (json!({"key": key}), "RATE_LIMITED"),
    ] {
        let response = verify(body).await.unwrap();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["code"], code);
        check(&doc, response_schema(&doc, "post", verify_path, 200), &answer, "$").unwrap();
    }
    let credits = format!("{item}/credits");
    let metered_at = format!("/api/v2/api-keys/{}/credits", metered["id"].as_str().unwrap());
    for change in [
        json!({"op": "increment", "value": 1}),
        json!({"op": "decrement", "value": 9}),
    ] {
        assert_matches(
            &doc,
            app.call(Method::POST, &metered_at, Some(&change)).await,
            "post",
            &credits,
        )
        .await;
    }
    assert_matches(
        &doc,
        app.call(Method::POST, &metered_at, Some(&json!({"op": "halve"}))).await,
        "post",
        &credits,
    )
    .await;
    assert_matches(
        &doc,
        app.client.get(app.url("/healthz")).send().await.unwrap(),
        "get",
        "/healthz",
    )
    .await;
    assert_matches(
        &doc,
        app.client.get(app.url("/readyz")).send().await.unwrap(),
        "get",
        "/readyz",
    )
    .await;
}

#[tokio::test]
async fn the_docs_page_is_served_by_keymint_itself_without_a_cdn() {
    let app = spawn_app(Backend::Memory).await;
    let page = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("https://") && !html.contains("http://"),
        "the page loads nothing from elsewhere"
    );
    let script = html
        .split("src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a script tag");
    let asset = app
        .client
        .get(app.url(&format!("/docs/{}", script.trim_start_matches("./"))))
        .send()
        .await
        .unwrap();
    assert_eq!(asset.status().as_u16(), 200, "{script} is served locally");
}

#[tokio::test]
async fn declared_bounds_are_the_domains_and_key_ids_are_uuids() {
    use keymint_domain::{Environment, MAX_DESCRIPTION_CHARS, MAX_GRACE_PERIOD_SECONDS, MAX_NAME_CHARS};

    let app = spawn_app(Backend::Memory).await;
    let doc = document(&app).await;
    let schemas = &doc["components"]["schemas"];
    for request in ["CreateApiKeyRequest", "UpdateApiKeyRequest"] {
        let fields = &schemas[request]["properties"];
        assert_eq!(fields["name"]["maxLength"], MAX_NAME_CHARS, "{request}");
        assert_eq!(fields["name"]["minLength"], 1, "{request}");
        assert_eq!(fields["description"]["maxLength"], MAX_DESCRIPTION_CHARS, "{request}");
    }
    let environments: Vec<Value> = Environment::ALL.iter().map(|e| json!(e.as_str())).collect();
    let create = &schemas["CreateApiKeyRequest"]["properties"]["environment"]["enum"];
    assert_eq!(create.as_array().unwrap()[..2], environments[..]);
    let grace = &schemas["RotateApiKeyRequest"]["properties"]["grace_period_seconds"];
    assert_eq!(
        (&grace["minimum"], &grace["maximum"]),
        (&json!(0), &json!(MAX_GRACE_PERIOD_SECONDS))
    );

    let list = &doc["paths"]["/api/v2/api-keys"]["get"]["parameters"];
    let parameter = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(parameter("environment")["schema"]["enum"], json!(environments));
    assert_eq!(parameter("limit")["schema"]["maximum"], 100);

    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.contains("{key_id}") {
            continue;
        }
        for (method, operation) in item.as_object().unwrap() {
            let key_id = operation["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "key_id")
                .unwrap_or_else(|| panic!("{method} {path} declares key_id"));
            assert_eq!(key_id["in"], "path");
            assert_eq!(key_id["required"], true);
            assert_eq!(key_id["schema"]["format"], "uuid", "{method} {path}");
            for status in ["401", "403", "404", "422", "503"] {
                assert!(
                    operation["responses"].get(status).is_some(),
                    "{method} {path} documents {status}"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_document_answers_with_and_without_a_trailing_slash() {
    let app = spawn_app(Backend::Memory).await;
    let plain = document(&app).await;
    let slashed = app.client.get(app.url("/openapi.json/")).send().await.unwrap();
    assert_eq!(slashed.status().as_u16(), 200);
    assert_eq!(slashed.headers()["content-type"], "application/json");
    assert_eq!(slashed.json::<Value>().await.unwrap(), plain);
}
