//! The web console as people use it: headless Chromium, driven over WebDriver,
//! against a real `keymint` process on SQLite. Each page is also checked with
//! axe-core (no violation of serious or critical impact), at a desktop width and
//! at 360 px in the dark theme.
//!
//! These tests need Debian's `chromium` and `chromium-driver` and axe-core
//! (`npm ci` in `tests/browser`); `.ci/run` installs all three and runs them with
//! `--include-ignored`. `KEYMINT_CONSOLE_SCREENSHOTS=<dir>` saves a screenshot
//! of each page there (how `docs/console-*.png` are made).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use serde_json::{json, Value};
use support::browser::{
    click, fill, js, open_browser, screenshot, wait_for, wait_gone, wait_text, BrowserLog, Cdp, Screen, PATIENCE,
};
use uuid::Uuid;

const NEEDS_AXE: &str = "needs axe-core (npm ci in tests/browser); .ci/run installs it";

// ---------------------------------------------------------------- processes

type Keymint = support::process::KeymintProcess;

fn keymint(extra: &[(&str, &str)]) -> Keymint {
    support::process::spawn_keymint(extra)
}

// ---------------------------------------------------------------- page helpers

async fn path(c: &Client) -> String {
    c.current_url().await.unwrap().path().to_owned()
}

/// Presses one of the page's own actions (beside its heading) by its label.
async fn action(c: &Client, label: &str) {
    wait_text(c, ".page-head .actions button", label)
        .await
        .click()
        .await
        .unwrap();
}

/// Runs axe-core on the page as it is; fails on any violation of serious or
/// critical impact, naming the rule and the elements.
async fn accessible(c: &Client, what: &str) {
    let loaded = js(c, "return typeof window.axe !== 'undefined'").await;
    if loaded != json!(true) {
        let source = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/node_modules/axe-core/axe.min.js"
        ))
        .unwrap_or_else(|e| panic!("axe-core is missing ({e}): {NEEDS_AXE}"));
        c.execute(&format!("{source}\nreturn true;"), vec![]).await.unwrap();
    }
    let result = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { resultTypes: ['violations'] })
                .then((r) => done(r.violations.map((v) => ({
                    id: v.id, impact: v.impact, help: v.help,
                    nodes: v.nodes.map((n) => n.target.join(' ')) }))))
                .catch((e) => done([{ id: 'axe-error', impact: 'critical', help: String(e), nodes: [] }]));",
            vec![],
        )
        .await
        .unwrap();
    let grave: Vec<&Value> = result
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .collect();
    assert!(grave.is_empty(), "axe on {what}: {grave:#?}");
    // And no programming slip shows through as text.
    let slip = js(
        c,
        "const main = document.querySelector('main').cloneNode(true);
         main.querySelectorAll('pre, code, input, textarea').forEach((e) => e.remove());
         const text = main.textContent;
         return ['null', 'undefined', 'NaN', '[object Object]'].find((s) => text.includes(s)) || null;",
    )
    .await;
    assert_eq!(slip, Value::Null, "{what} shows a programming value as text");
}

/// The page's cumulative layout shift since it loaded, as Chromium scores it
/// (shifts right after input excluded).
async fn layout_shift(c: &Client) -> f64 {
    c.execute_async(
        "const done = arguments[0]; let total = 0;
         new PerformanceObserver((list) => {
            for (const e of list.getEntries()) if (!e.hadRecentInput) total += e.value;
         }).observe({ type: 'layout-shift', buffered: true });
         setTimeout(() => done(total), 300);",
        vec![],
    )
    .await
    .unwrap()
    .as_f64()
    .unwrap()
}

/// The page's text never wider than the window: nothing to scroll sideways.
async fn fits_the_width(c: &Client, what: &str) {
    let sizes = js(
        c,
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]",
    )
    .await;
    let (scroll, client) = (sizes[0].as_u64().unwrap(), sizes[1].as_u64().unwrap());
    assert!(scroll <= client, "{what} scrolls sideways: {scroll} px in {client} px");
}

/// The errors the browser logged since the last call: an exception the page's
/// modules threw, or a console asset (a module) that did not load. The API's
/// refusals a test provokes (a 422, say) are logged too, and are not errors.
async fn page_errors(c: &Client) -> Vec<String> {
    let log = c.issue_cmd(BrowserLog).await.unwrap();
    log.as_array()
        .unwrap_or_else(|| panic!("no browser log: {log}"))
        .iter()
        .filter(|entry| entry["level"] == "SEVERE")
        .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
        .filter(|message| !message.contains("Failed to load resource") || message.contains("/console/assets/"))
        .collect()
}

/// Makes the stored token one the API refuses (as when it expires at the
/// issuer) and reloads, so the page holds it without knowing yet.
async fn spoil_the_session(c: &Client) {
    js(
        c,
        "const s = JSON.parse(sessionStorage.getItem('keymint.console.session'));
         s.token = s.token.slice(0, -4) + 'AAAA';
         sessionStorage.setItem('keymint.console.session', JSON.stringify(s));
         return null;",
    )
    .await;
    c.refresh().await.unwrap();
}

async fn sign_in(c: &Client, keymint: &Keymint, org: Uuid) {
    c.goto(&format!("{}/console", keymint.url)).await.unwrap();
    wait_text(c, "h1", "Sign in to Keymint").await;
    fill(c, "#dev-org_id", &org.to_string()).await;
    fill(c, "#dev-name", "alice").await;
    click(c, "form.sign-in button[type=submit]").await;
    wait_text(c, "h1", "API keys").await;
}

// ---------------------------------------------------------------- the API, directly

async fn token_for(keymint: &Keymint, org: Uuid) -> String {
    let session: Value = reqwest::Client::new()
        .post(format!("{}/console/dev-session", keymint.url))
        .json(&json!({"org_id": org.to_string(), "name": "setup"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    session["access_token"].as_str().unwrap().to_owned()
}

async fn create(keymint: &Keymint, token: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v2/api-keys", keymint.url))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

async fn verify(keymint: &Keymint, key: &str) -> Value {
    reqwest::Client::new()
        .post(format!("{}/api/v2/api-keys/verify", keymint.url))
        .json(&json!({"key": key}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn timeline(c: &Client) -> Vec<String> {
    let items = c.find_all(Locator::Css("ol.timeline li")).await.unwrap();
    let mut actions = Vec::new();
    for item in items {
        actions.push(item.attr("data-action").await.unwrap().unwrap_or_default());
    }
    actions
}

// ---------------------------------------------------------------- tests

#[tokio::test]
#[ignore = "needs chromium, chromium-driver and axe-core; .ci/run installs them"]
async fn a_person_manages_a_key_from_sign_in_to_deletion() {
    let keymint = keymint(&[]);
    let (_driver, c) = open_browser(Screen::Desktop).await;
    let org = Uuid::new_v4();

    // Signing in: the development sign-in says plainly what it is.
    c.goto(&format!("{}/console", keymint.url)).await.unwrap();
    wait_text(&c, "h1", "Sign in to Keymint").await;
    assert_eq!(path(&c).await, "/console/sign-in");
    wait_text(
        &c,
        "#dev-banner",
        "anyone who can reach it can act for any organisation",
    )
    .await;
    accessible(&c, "sign-in").await;
    screenshot(&c, "sign-in").await;
    // The console is ES modules, served one file each with no build step: the
    // page names only the entry module, and the browser fetched the rest.
    let modules = js(
        &c,
        "return [[...document.scripts].map((s) => `${s.type} ${new URL(s.src).pathname}`),
                 performance.getEntriesByType('resource').map((r) => new URL(r.name).pathname)
                    .filter((p) => p.endsWith('.js'))]",
    )
    .await;
    assert_eq!(modules[0], json!(["module /console/assets/js/main.js"]));
    for module in ["/console/assets/js/router.js", "/console/assets/js/pages/sign-in.js"] {
        assert!(
            modules[1].as_array().unwrap().contains(&json!(module)),
            "{module}: {modules}"
        );
    }
    fill(&c, "#dev-org_id", "not-a-uuid").await;
    click(&c, "form.sign-in button[type=submit]").await;
    wait_text(&c, "#dev-org_id-error", "org_id must be a UUID").await;
    fill(&c, "#dev-org_id", &org.to_string()).await;
    fill(&c, "#dev-name", "alice").await;
    click(&c, "form.sign-in button[type=submit]").await;
    wait_text(&c, "h1", "API keys").await;
    wait_text(&c, ".empty", "No keys yet").await;
    wait_text(&c, "#who-text", &org.to_string()).await;
    accessible(&c, "empty key list").await;

    // Creating: the API's 422 is shown beside the field it names.
    click(&c, "a.button[href='/console/keys/new']").await;
    wait_text(&c, "h1", "Create an API key").await;
    fill(&c, "#create-name", "   ").await;
    fill(&c, "#create-credits", "-1").await;
    click(&c, "form button[type=submit]").await;
    wait_text(&c, "#create-name-error", "name must have a visible character").await;
    wait_text(&c, "#create-credits-error", "greater than or equal to 0").await;
    let name = c.find(Locator::Css("#create-name")).await.unwrap();
    assert_eq!(name.attr("aria-invalid").await.unwrap().as_deref(), Some("true"));
    let summary = wait_text(&c, "form .alert", "2 fields need attention").await;
    assert!(summary
        .prop("textContent")
        .await
        .unwrap()
        .unwrap()
        .contains("Request id"));
    assert_eq!(
        js(&c, "return document.activeElement.id").await,
        json!("create-name"),
        "focus goes to the first field to mend"
    );
    accessible(&c, "create form with errors").await;
    screenshot(&c, "create-errors").await;

    // A rule the use case checks after the fields: shown the same way.
    fill(&c, "#create-name", "billing-service").await;
    wait_for(&c, "#create-credits").await.clear().await.unwrap();
    js(
        &c,
        "document.querySelector('#create-expires_at').value = '2020-01-01T12:00'; return null",
    )
    .await;
    click(&c, "form button[type=submit]").await;
    wait_text(&c, "#create-expires_at-error", "expires_at must be in the future").await;
    assert!(c
        .find_all(Locator::Css("#create-name[aria-invalid]"))
        .await
        .unwrap()
        .is_empty());
    js(
        &c,
        "document.querySelector('#create-expires_at').value = ''; return null",
    )
    .await;
    fill(&c, "#create-description", "Charges cards").await;
    fill(&c, "#create-permissions", "billing.read, billing.write").await;
    click(&c, "form button[type=submit]").await;

    // The one-time reveal: hidden until asked, copied, and real.
    wait_for(&c, "#reveal").await;
    let key_path = path(&c).await;
    assert!(key_path.starts_with("/console/keys/"), "{key_path}");
    let secret = wait_for(&c, "#reveal-secret").await;
    let masked = secret.text().await.unwrap();
    assert!(masked.starts_with("sk_live_") && masked.contains('•'), "{masked}");
    wait_text(&c, "#reveal .warning", "only time Keymint shows this key").await;
    accessible(&c, "reveal").await;
    screenshot(&c, "reveal").await;
    click(&c, "#reveal button[aria-controls=reveal-secret]").await;
    let private_key = secret.text().await.unwrap();
    assert!(private_key.starts_with("sk_live_") && !private_key.contains('•'));
    assert_eq!(verify(&keymint, &private_key).await["code"], "VALID");

    let origin = keymint.url.clone();
    c.issue_cmd(Cdp(
        "Browser.grantPermissions",
        json!({"origin": origin, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]}),
    ))
    .await
    .unwrap();
    click(&c, "#reveal .actions .button:not(.secondary):not(.quiet)").await;
    wait_text(&c, "#reveal [role=status]", "Copied to the clipboard.").await;
    let copied = c
        .execute_async(
            "navigator.clipboard.readText().then(arguments[0], (e) => arguments[0]('refused: ' + e))",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(copied, json!(private_key), "the clipboard holds the key");
    wait_for(&c, "ol.timeline li[data-action=created]").await;

    // Never again: not after a reload, not in storage.
    c.refresh().await.unwrap();
    wait_text(&c, "h1", "billing-service").await;
    wait_for(&c, "ol.timeline li[data-action=created]").await;
    assert!(c.find_all(Locator::Css("#reveal")).await.unwrap().is_empty());
    let source = c.source().await.unwrap();
    assert!(
        !source.contains(&private_key),
        "the key is not on the page after a reload"
    );
    let stored = js(
        &c,
        "return JSON.stringify([Object.entries(sessionStorage), Object.entries(localStorage)])",
    )
    .await;
    assert!(!stored.as_str().unwrap().contains(&private_key), "{stored}");
    let local = js(&c, "return JSON.stringify(Object.entries(localStorage))").await;
    let session = js(&c, "return sessionStorage.getItem('keymint.console.session')").await;
    let token: Value = serde_json::from_str(session.as_str().unwrap()).unwrap();
    let token = token["token"].as_str().unwrap();
    assert!(!local.as_str().unwrap().contains(token), "no token in localStorage");
    assert!(!c.current_url().await.unwrap().as_str().contains(token));
    wait_text(&c, "dl.details", "billing.read, billing.write").await;
    wait_text(&c, "dl.details", "Charges cards").await;
    accessible(&c, "key detail").await;
    screenshot(&c, "key").await;

    // The verify playground.
    click(&c, "nav a[href='/console/verify']").await;
    wait_text(&c, "h1", "Verify a key").await;
    fill(&c, "#verify-key", &private_key).await;
    fill(&c, "#verify-permissions", "billing.read").await;
    click(&c, "form button[type=submit]").await;
    wait_text(&c, "#verdict.good", "Valid").await;
    accessible(&c, "verify result").await;
    screenshot(&c, "verify").await;
    // A refusal looks different and, for permissions, says what was missing.
    fill(&c, "#verify-permissions", "billing.read AND admin").await;
    click(&c, "form button[type=submit]").await;
    wait_text(&c, "#verdict.bad", "Not valid: INSUFFICIENT_PERMISSIONS").await;
    let why = wait_for(&c, ".verdict-why").await.text().await.unwrap();
    assert!(
        why.contains("billing.read, billing.write") && why.contains("billing.read AND admin"),
        "{why}"
    );
    let colour = js(&c, "return getComputedStyle(document.querySelector('#verdict')).color").await;
    assert_eq!(
        colour,
        json!("rgb(138, 28, 28)"),
        "the refusal is in the refusal colour"
    );
    accessible(&c, "verify refusal").await;

    // Rotating, with a grace period: both private keys verify for its length.
    click(&c, "section.card a[href^='/console/keys/']").await;
    wait_text(&c, "h1", "billing-service").await;
    action(&c, "Rotate").await;
    wait_text(&c, "dialog h2", "Rotate “billing-service”?").await;
    accessible(&c, "rotate dialog").await;
    screenshot(&c, "rotate").await;
    let grace = wait_for(&c, "#rotate-grace").await;
    assert_eq!(
        grace.prop("value").await.unwrap().as_deref(),
        Some("3600"),
        "an hour's grace unless chosen otherwise"
    );
    grace.select_by_value("3600").await.unwrap();
    click(&c, "dialog button[type=submit]").await;
    wait_text(&c, "#reveal h2", "Copy the new private key now").await;
    click(&c, "#reveal button[aria-controls=reveal-secret]").await;
    let rotated = wait_for(&c, "#reveal-secret").await.text().await.unwrap();
    assert!(rotated.starts_with("sk_live_") && rotated != private_key);
    wait_for(&c, "ol.timeline li[data-action=rotated]").await;
    assert_eq!(verify(&keymint, &rotated).await["code"], "VALID");
    assert_eq!(
        verify(&keymint, &private_key).await["code"],
        "VALID",
        "in its grace period"
    );
    click(&c, "#reveal .actions .quiet").await;
    wait_gone(&c, "#reveal").await;
    // The key's page says until when the replaced private key keeps working.
    wait_text(&c, "dl.details .previous-key", "works until").await;

    // Revoking, behind a confirmation that names the key.
    action(&c, "Revoke").await;
    wait_text(&c, "dialog h2", "Revoke “billing-service”?").await;
    wait_text(&c, "dialog p", "stops verifying at once").await;
    click(&c, "dialog button[type=submit]").await;
    wait_text(&c, ".page-head .badge", "Revoked").await;
    wait_for(&c, "ol.timeline li[data-action=revoked]").await;
    wait_text(&c, "#toast", "Revoked “billing-service”.").await;
    assert_eq!(timeline(&c).await, ["revoked", "rotated", "created"], "newest first");
    assert_eq!(verify(&keymint, &rotated).await["valid"], false);
    screenshot(&c, "key-revoked").await;

    click(&c, "nav a[href='/console/verify']").await;
    fill(&c, "#verify-key", &rotated).await;
    click(&c, "form button[type=submit]").await;
    wait_text(&c, "#verdict", "Not valid").await;
    c.back().await.unwrap();
    wait_text(&c, "h1", "billing-service").await;

    // Deleting asks for the key's name.
    action(&c, "Delete").await;
    wait_text(&c, "dialog h2", "Delete “billing-service”?").await;
    let confirm = wait_for(&c, "dialog button[type=submit]").await;
    assert_eq!(confirm.prop("disabled").await.unwrap().as_deref(), Some("true"));
    fill(&c, "#delete-confirm", "billing").await;
    assert_eq!(confirm.prop("disabled").await.unwrap().as_deref(), Some("true"));
    fill(&c, "#delete-confirm", "billing-service").await;
    assert_eq!(confirm.prop("disabled").await.unwrap().as_deref(), Some("false"));
    confirm.click().await.unwrap();
    wait_text(&c, "h1", "API keys").await;
    wait_text(&c, "#toast", "Deleted “billing-service”.").await;
    wait_text(&c, ".empty", "No keys yet").await;
    assert_eq!(
        page_errors(&c).await,
        Vec::<String>::new(),
        "errors in the browser's console"
    );

    c.close().await.unwrap();
}

#[tokio::test]
#[ignore = "needs chromium, chromium-driver and axe-core; .ci/run installs them"]
async fn the_list_searches_filters_and_pages_without_moving_under_the_reader() {
    let keymint = keymint(&[]);
    let org = Uuid::new_v4();
    let token = token_for(&keymint, org).await;
    for i in 0..22 {
        let (name, environment) = if i % 2 == 0 {
            (format!("Alpha worker {i}"), "live")
        } else {
            (format!("beta-job-{i}"), "test")
        };
        create(
            &keymint,
            &token,
            json!({"name": name, "environment": environment, "owner_id": if i % 3 == 0 { "team-a" } else { "team-b" }}),
        )
        .await;
    }
    let (_driver, c) = open_browser(Screen::Desktop).await;
    sign_in(&c, &keymint, org).await;

    let rows = |c: &Client| {
        let c = c.clone();
        async move {
            c.find_all(Locator::Css("tbody tr:not([aria-hidden])"))
                .await
                .unwrap()
                .len()
        }
    };
    wait_text(&c, "tbody td.name a", "beta-job-21").await;
    assert_eq!(rows(&c).await, 20, "a page of 20, newest first");
    accessible(&c, "key list").await;
    screenshot(&c, "keys").await;
    click(&c, ".pager button:last-child").await;
    wait_text(&c, "tbody td.name a", "Alpha worker 0").await;
    assert_eq!(rows(&c).await, 2);
    let second_page = c.current_url().await.unwrap();
    click(&c, ".pager button:first-child").await;
    wait_text(&c, "tbody td.name a", "beta-job-21").await;
    // A page opened from a link was not reached from the one before it: it
    // offers the first page instead.
    c.goto(second_page.as_str()).await.unwrap();
    wait_text(&c, "tbody td.name a", "Alpha worker 0").await;
    click(&c, ".pager button:first-child").await;
    wait_text(&c, "[role=status]", "20 keys shown").await;
    assert!(!c.current_url().await.unwrap().as_str().contains("cursor"));

    // Search ignores case; filters combine; all of it lives in the URL.
    fill(&c, "#filter-name", "ALPHA").await;
    click(&c, "form.filters button[type=submit]").await;
    wait_text(&c, "[role=status]", "11 keys shown").await;
    assert_eq!(rows(&c).await, 11);
    wait_for(&c, "#filter-owner").await.send_keys("team-a").await.unwrap();
    click(&c, "form.filters button[type=submit]").await;
    wait_text(&c, "[role=status]", "4 keys shown").await;
    assert!(c
        .current_url()
        .await
        .unwrap()
        .query()
        .unwrap()
        .contains("owner_id=team-a"));
    wait_for(&c, "#filter-environment")
        .await
        .select_by_value("test")
        .await
        .unwrap();
    click(&c, "form.filters button[type=submit]").await;
    wait_text(&c, ".empty", "No keys match these filters.").await;
    click(&c, "form.filters a.button").await;
    wait_text(&c, "[role=status]", "20 keys shown").await;

    // A fresh load of a full list: the skeleton holds the place of the rows, so
    // nothing moves when they arrive (cumulative layout shift, as Chromium
    // measures it, below the 0.1 that counts as good).
    c.refresh().await.unwrap();
    wait_text(&c, "[role=status]", "20 keys shown").await;
    let shift = layout_shift(&c).await;
    assert!(shift < 0.1, "layout shift {shift}");
    c.close().await.unwrap();
}

#[tokio::test]
#[ignore = "needs chromium, chromium-driver and axe-core; .ci/run installs them"]
async fn editing_a_key_shows_field_errors_in_the_dialog_and_records_the_change() {
    let keymint = keymint(&[]);
    let org = Uuid::new_v4();
    let token = token_for(&keymint, org).await;
    let created = create(
        &keymint,
        &token,
        json!({"name": "before", "description": "old words", "owner_id": "team-a"}),
    )
    .await;
    let (_driver, c) = open_browser(Screen::Desktop).await;
    sign_in(&c, &keymint, org).await;
    c.goto(&format!(
        "{}/console/keys/{}",
        keymint.url,
        created["id"].as_str().unwrap()
    ))
    .await
    .unwrap();
    wait_for(&c, "ol.timeline li[data-action=created]").await;
    action(&c, "Edit").await;
    wait_text(&c, "dialog h2", "Edit “before”").await;
    fill(&c, "#edit-name", "\u{3000}").await;
    click(&c, "dialog button[type=submit]").await;
    wait_text(&c, "#edit-name-error", "name must have a visible character").await;
    wait_text(&c, "dialog .alert", "Request id").await;
    accessible(&c, "edit dialog with an error").await;
    fill(&c, "#edit-name", "after").await;
    wait_for(&c, "#edit-description").await.clear().await.unwrap();
    click(&c, "dialog button[type=submit]").await;
    wait_gone(&c, "dialog").await;
    wait_text(&c, "h1", "after").await;
    wait_text(&c, "#toast", "Saved “after”.").await;
    let updated = wait_for(&c, "ol.timeline li[data-action=updated]").await;
    assert!(updated
        .prop("textContent")
        .await
        .unwrap()
        .unwrap()
        .contains("name, description"));
    let key: Value = reqwest::Client::new()
        .get(format!(
            "{}/api/v2/api-keys/{}",
            keymint.url,
            created["id"].as_str().unwrap()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&key["name"], &key["description"], &key["owner_id"]),
        (&json!("after"), &Value::Null, &json!("team-a"))
    );

    // A leak its holder reported reads as words in the trail, not a code.
    let reported = reqwest::Client::new()
        .post(format!("{}/api/v2/api-keys/revoke-leaked", keymint.url))
        .json(&json!({"key": created["private_key"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(reported.status().as_u16(), 202);
    c.refresh().await.unwrap();
    let leaked = wait_for(&c, "ol.timeline li[data-action=leaked]").await;
    let said = leaked.prop("textContent").await.unwrap().unwrap();
    assert!(
        said.contains("Reported leaked by its holder") && !said.contains("self_report"),
        "{said}"
    );

    // Whatever a name holds is shown as text, never run as markup.
    let markup = r#"<img src=x onerror="window.pwned=1">"#;
    action(&c, "Edit").await;
    fill(&c, "#edit-name", markup).await;
    click(&c, "dialog button[type=submit]").await;
    wait_gone(&c, "dialog").await;
    wait_text(&c, "h1", markup).await;
    click(&c, "nav a[href='/console']").await;
    wait_text(&c, "tbody td.name a", markup).await;
    assert_eq!(
        js(
            &c,
            "return [typeof window.pwned, document.querySelectorAll('main img').length]"
        )
        .await,
        json!(["undefined", 0])
    );
    c.close().await.unwrap();
}

#[tokio::test]
#[ignore = "needs chromium, chromium-driver and axe-core; .ci/run installs them"]
async fn credits_a_rate_limit_and_metadata_are_set_when_creating() {
    let keymint = keymint(&[]);
    let (_driver, c) = open_browser(Screen::Desktop).await;
    sign_in(&c, &keymint, Uuid::new_v4()).await;
    click(&c, "nav a[href='/console/keys/new']").await;
    fill(&c, "#create-name", "metered").await;
    fill(&c, "#create-credits", "100").await;
    click(&c, "details.advanced summary").await;
    wait_for(&c, "#create-credits_refill_interval")
        .await
        .select_by_value("daily")
        .await
        .unwrap();
    fill(&c, "#create-ratelimit-limit", "0").await;
    click(&c, "form button[type=submit]").await;
    // The API names credits.refill.amount and ratelimits.0.limit; each is
    // shown where it was typed.
    wait_text(&c, "#create-credits_refill_amount-error", "amount must be from 1").await;
    wait_text(&c, "#create-ratelimits-error", "limit must be from 1").await;
    wait_text(&c, "form .alert", "2 fields need attention").await;
    accessible(&c, "create form with usage limits and errors").await;

    fill(&c, "#create-credits_refill_amount", "100").await;
    fill(&c, "#create-ratelimit-limit", "10").await;
    wait_for(&c, "#create-ratelimit-window")
        .await
        .select_by_value("60000")
        .await
        .unwrap();
    fill(&c, "#create-meta", "{not json").await;
    click(&c, "form button[type=submit]").await;
    wait_text(&c, "#create-meta-error", "Metadata must be JSON").await;
    fill(&c, "#create-meta", r#"{"plan": "pro"}"#).await;
    click(&c, "form button[type=submit]").await;
    wait_for(&c, "#reveal").await;
    click(&c, "#reveal button[aria-controls=reveal-secret]").await;
    let private_key = wait_for(&c, "#reveal-secret").await.text().await.unwrap();
    wait_text(&c, "dl.details", "requests: 10 per 60 s").await;
    wait_text(&c, "dl.details", "100 remaining, refilled daily to 100").await;
    wait_text(&c, "dl.details pre", "\"plan\": \"pro\"").await;

    click(&c, "nav a[href='/console/verify']").await;
    fill(&c, "#verify-key", &private_key).await;
    click(&c, "form button[type=submit]").await;
    wait_text(&c, "#verdict", "Valid").await;
    wait_text(&c, "section.card dl", "99").await;

    // Credits are changed from the key's page; a change the API refuses
    // (below zero) is said in the dialog, and nothing moves.
    click(&c, "section.card a[href^='/console/keys/']").await;
    action(&c, "Credits").await;
    wait_text(&c, "dialog h2", "Change the credits of “metered”").await;
    wait_for(&c, "#credits-op")
        .await
        .select_by_value("decrement")
        .await
        .unwrap();
    fill(&c, "#credits-value", "500").await;
    click(&c, "dialog button[type=submit]").await;
    wait_text(&c, "dialog .alert", "The credits were not changed").await;
    wait_text(&c, "dialog .alert", "Request id").await;
    accessible(&c, "credits dialog with a refusal").await;
    wait_for(&c, "#credits-op")
        .await
        .select_by_value("increment")
        .await
        .unwrap();
    fill(&c, "#credits-value", "1").await;
    click(&c, "dialog button[type=submit]").await;
    wait_gone(&c, "dialog").await;
    wait_text(&c, "#toast", "100 credits remaining.").await;
    wait_text(&c, "dl.details", "100 remaining").await;
    let changed = wait_for(&c, "ol.timeline li[data-action=updated]").await;
    assert!(changed.prop("textContent").await.unwrap().unwrap().contains("credits"));
    c.close().await.unwrap();
}

#[tokio::test]
#[ignore = "needs chromium, chromium-driver and axe-core; .ci/run installs them"]
async fn a_long_trail_pages_and_missing_things_say_so() {
    let keymint = keymint(&[]);
    let org = Uuid::new_v4();
    let token = token_for(&keymint, org).await;
    let created = create(&keymint, &token, json!({"name": "busy"})).await;
    let id = created["id"].as_str().unwrap();
    let http = reqwest::Client::new();
    for i in 0..55 {
        let renamed = http
            .patch(format!("{}/api/v2/api-keys/{id}", keymint.url))
            .bearer_auth(&token)
            .json(&json!({"name": format!("busy-{i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(renamed.status(), 200);
    }
    let (_driver, c) = open_browser(Screen::Desktop).await;
    sign_in(&c, &keymint, org).await;
    c.goto(&format!("{}/console/keys/{id}", keymint.url)).await.unwrap();
    wait_text(&c, "h1", "busy-54").await;
    wait_for(&c, "ol.timeline li[data-action=updated]").await;
    assert_eq!(timeline(&c).await.len(), 50, "the newest 50 first");
    wait_text(
        &c,
        "section[aria-labelledby=timeline-title] button",
        "Show older events",
    )
    .await
    .click()
    .await
    .unwrap();
    wait_for(&c, "ol.timeline li[data-action=created]").await;
    assert_eq!(timeline(&c).await.len(), 56);
    assert!(
        c.find_all(Locator::Css("section[aria-labelledby=timeline-title] button"))
            .await
            .unwrap()
            .is_empty(),
        "nothing older"
    );

    c.goto(&format!("{}/console/keys/{}", keymint.url, Uuid::new_v4()))
        .await
        .unwrap();
    wait_text(&c, "h1", "Key not found").await;
    wait_text(&c, "main .alert", "Request id").await;
    wait_text(&c, ".missing", "it may have been deleted").await;
    assert_eq!(
        js(
            &c,
            "return document.querySelectorAll('main .skeleton-bar, main [aria-busy]').length"
        )
        .await,
        0,
        "no placeholder is left waiting for data that will not come"
    );
    accessible(&c, "a key that does not exist").await;
    c.goto(&format!("{}/console/webhooks/{}", keymint.url, Uuid::new_v4()))
        .await
        .unwrap();
    wait_text(&c, "h1", "Endpoint not found").await;
    wait_text(&c, ".missing a[href='/console/webhooks']", "All endpoints").await;
    assert_eq!(
        js(
            &c,
            "return document.querySelectorAll('main .skeleton-bar, main [aria-busy]').length"
        )
        .await,
        0
    );
    c.goto(&format!("{}/console/no-such-page", keymint.url)).await.unwrap();
    wait_text(&c, "h1", "Page not found").await;
    accessible(&c, "a console page that does not exist").await;
    c.close().await.unwrap();
}

#[tokio::test]
#[ignore = "needs chromium, chromium-driver and axe-core; .ci/run installs them"]
async fn an_ended_session_signs_in_again_without_losing_the_form_and_sign_out_ends_it() {
    let keymint = keymint(&[]);
    let (_driver, c) = open_browser(Screen::Desktop).await;
    let org = Uuid::new_v4();
    sign_in(&c, &keymint, org).await;
    click(&c, "nav a[href='/console/keys/new']").await;
    spoil_the_session(&c).await;
    wait_text(&c, "h1", "Create an API key").await;
    fill(&c, "#create-name", "half-written").await;
    fill(&c, "#create-description", "typed before the session ended").await;
    click(&c, "form button[type=submit]").await;
    wait_text(&c, "dialog h2", "Your session has ended").await;
    accessible(&c, "session ended").await;
    let org_field = wait_for(&c, "dialog #dev-org_id").await;
    assert_eq!(org_field.prop("value").await.unwrap(), Some(org.to_string()));
    click(&c, "dialog button[type=submit]").await;
    wait_gone(&c, "dialog").await;
    let kept = wait_for(&c, "#create-description").await.prop("value").await.unwrap();
    assert_eq!(kept.as_deref(), Some("typed before the session ended"));
    click(&c, "form button[type=submit]").await;
    wait_for(&c, "#reveal").await;

    click(&c, "#sign-out").await;
    wait_text(&c, "h1", "Sign in to Keymint").await;
    assert_eq!(
        js(&c, "return sessionStorage.getItem('keymint.console.session')").await,
        Value::Null
    );
    c.goto(&format!("{}/console/verify", keymint.url)).await.unwrap();
    wait_text(&c, "h1", "Sign in to Keymint").await;
    assert_eq!(path(&c).await, "/console/sign-in");
    c.close().await.unwrap();
}

#[tokio::test]
#[ignore = "needs chromium, chromium-driver and axe-core; .ci/run installs them"]
async fn every_page_reads_at_360_pixels_in_the_dark_theme() {
    let keymint = keymint(&[]);
    let org = Uuid::new_v4();
    let token = token_for(&keymint, org).await;
    let created = create(
        &keymint,
        &token,
        json!({"name": "a rather long key name that has to wrap somewhere on a phone", "owner_id": "team-mobile",
               "permissions": ["documents.read"], "credits": {"remaining": 1000}}),
    )
    .await;
    let (_driver, c) = open_browser(Screen::NarrowDark).await;
    sign_in(&c, &keymint, org).await;

    let background = js(&c, "return getComputedStyle(document.body).backgroundColor").await;
    assert_eq!(
        background,
        json!("rgb(15, 19, 24)"),
        "the dark theme follows the system's"
    );

    wait_for(&c, "tbody td.name a").await;
    // On a phone the filters are folded, so the keys come first.
    assert_eq!(
        js(&c, "return document.querySelector('details.filter-box').open").await,
        json!(false)
    );
    fits_the_width(&c, "the key list").await;
    accessible(&c, "key list, narrow and dark").await;
    screenshot(&c, "mobile-dark-keys").await;
    click(&c, "details.filter-box summary").await;
    assert!(wait_for(&c, "#filter-name").await.is_displayed().await.unwrap());
    accessible(&c, "key list with its filters open, narrow and dark").await;

    let id = created["id"].as_str().unwrap();
    c.goto(&format!("{}/console/keys/{id}", keymint.url)).await.unwrap();
    wait_for(&c, "ol.timeline li[data-action=created]").await;
    let shift = layout_shift(&c).await;
    assert!(shift < 0.1, "layout shift of a key's page on a phone: {shift}");
    fits_the_width(&c, "a key").await;
    accessible(&c, "key detail, narrow and dark").await;
    screenshot(&c, "mobile-dark-key").await;

    for (page, heading) in [
        ("/console/keys/new", "Create an API key"),
        ("/console/verify", "Verify a key"),
        ("/console/webhooks", "Webhooks"),
    ] {
        c.goto(&format!("{}{page}", keymint.url)).await.unwrap();
        wait_text(&c, "h1", heading).await;
        fits_the_width(&c, page).await;
        accessible(&c, page).await;
    }
    c.close().await.unwrap();
}

#[tokio::test]
#[ignore = "needs chromium, chromium-driver and axe-core; .ci/run installs them"]
async fn usage_shows_as_a_chart_with_words_and_a_table_on_the_key_and_the_overview() {
    let keymint = keymint(&[
        ("KEYMINT_VERIFY__USAGE_FLUSH_SECONDS", "1"),
        ("KEYMINT_ANALYTICS__FLUSH_SECONDS", "1"),
    ]);
    let org = Uuid::new_v4();
    let token = token_for(&keymint, org).await;
    let busy = create(&keymint, &token, json!({"name": "busy", "permissions": ["read"]})).await;
    let quiet = create(&keymint, &token, json!({"name": "quiet"})).await;
    let key = busy["private_key"].as_str().unwrap();
    for _ in 0..5 {
        assert_eq!(verify(&keymint, key).await["code"], "VALID");
    }
    let refused = reqwest::Client::new()
        .post(format!("{}/api/v2/api-keys/verify", keymint.url))
        .json(&json!({"key": key, "permissions": "write"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(refused["code"], "INSUFFICIENT_PERMISSIONS");
    verify(&keymint, quiet["private_key"].as_str().unwrap()).await;
    // The counts are written by the usage flusher, every second here.
    let analytics = format!("{}/api/v2/analytics/verifications", keymint.url);
    for _ in 0..50 {
        let answer: Value = reqwest::Client::new()
            .get(&analytics)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let total: u64 = answer["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["count"].as_u64().unwrap())
            .sum();
        if total == 7 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    for screen in [Screen::Desktop, Screen::NarrowDark] {
        let (_driver, c) = open_browser(screen).await;
        sign_in(&c, &keymint, org).await;
        c.goto(&format!(
            "{}/console/keys/{}",
            keymint.url,
            busy["id"].as_str().unwrap()
        ))
        .await
        .unwrap();
        let words = wait_text(&c, "figure.usage-chart figcaption", "6 verifications").await;
        assert_eq!(
            words.text().await.unwrap(),
            "6 verifications: 5 valid, 1 insufficient permissions."
        );
        let label = js(
            &c,
            "return document.querySelector('figure.usage-chart').getAttribute('aria-label')",
        )
        .await;
        assert!(label.as_str().unwrap().contains("6 verifications"), "{label}");
        assert_eq!(
            js(
                &c,
                "return document.querySelectorAll('figure.usage-chart svg rect').length"
            )
            .await,
            json!(2),
            "one bar of two parts: this hour's valid and refused"
        );
        click(&c, "figure.usage-chart details summary").await;
        let cells = js(
            &c,
            "return [...document.querySelectorAll('figure.usage-chart tbody td')].map((td) => td.textContent)",
        )
        .await;
        assert_eq!(cells, json!(["5", "1"]));
        let shift = layout_shift(&c).await;
        assert!(
            shift < 0.1,
            "the chart takes its place without moving the page: {shift}"
        );
        fits_the_width(&c, "a key's usage").await;
        accessible(&c, "a key's usage").await;
        click(&c, ".periods button:nth-child(3)").await;
        wait_text(&c, "figure.usage-chart figcaption", "6 verifications").await;

        c.goto(&format!("{}/console/usage", keymint.url)).await.unwrap();
        wait_text(&c, "#stat-total", "7").await;
        assert_eq!(
            c.find(Locator::Css("#stat-refused"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
            "1"
        );
        let top = js(
            &c,
            "return [...document.querySelectorAll('table tbody tr td:first-child')].map((td) => td.textContent)",
        )
        .await;
        assert_eq!(top, json!(["busy", "quiet"]), "most used first, by name");
        let counts = js(
            &c,
            "return [...document.querySelectorAll('section[aria-labelledby=top-title] tbody tr')].map((tr) => [...tr.querySelectorAll('td')].slice(1).map((td) => td.textContent))",
        )
        .await;
        assert_eq!(
            counts,
            json!([["6", "1"], ["1", "0"]]),
            "verifications and refusals per key"
        );
        wait_text(
            &c,
            "section[aria-labelledby=refusals-title]",
            "Insufficient permissions: 1",
        )
        .await;
        wait_text(
            &c,
            "section[aria-labelledby=unused-title]",
            "Every key older than 30 days was used.",
        )
        .await;
        fits_the_width(&c, "the usage overview").await;
        accessible(&c, "the usage overview").await;
        screenshot(
            &c,
            if matches!(screen, Screen::Desktop) {
                "usage"
            } else {
                "mobile-dark-usage"
            },
        )
        .await;
        assert!(page_errors(&c).await.is_empty());
        c.close().await.unwrap();
    }
}

#[tokio::test]
#[ignore = "needs chromium, chromium-driver and axe-core; .ci/run installs them"]
async fn the_console_works_from_the_keyboard_alone() {
    let keymint = keymint(&[]);
    let (_driver, c) = open_browser(Screen::Desktop).await;
    let org = Uuid::new_v4();
    sign_in(&c, &keymint, org).await;
    let active = |c: &Client| {
        let c = c.clone();
        async move {
            js(
                &c,
                "const a = document.activeElement; return (a.id || a.textContent || a.tagName).trim()",
            )
            .await
        }
    };
    let press = |c: &Client, keys: String| {
        let c = c.clone();
        async move { c.active_element().await.unwrap().send_keys(&keys).await.unwrap() }
    };

    // The first Tab reaches the skip link, which leads to the content.
    c.goto(&format!("{}/console/keys/new", keymint.url)).await.unwrap();
    wait_text(&c, "h1", "Create an API key").await;
    js(&c, "document.activeElement.blur(); return null").await;
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys(&Key::Tab.to_string())
        .await
        .unwrap();
    assert_eq!(active(&c).await, json!("Skip to content"));
    press(&c, Key::Enter.to_string()).await;
    assert_eq!(active(&c).await, json!("main"), "the skip link leads to the content");

    // Into the name field, type, and submit with Enter.
    press(&c, Key::Tab.to_string()).await;
    assert_eq!(active(&c).await, json!("create-name"));
    press(&c, format!("keyboard-key{}", Key::Enter)).await;
    let reveal = wait_for(&c, "#reveal").await;
    let _ = reveal;
    wait_text(&c, "h1", "keyboard-key").await;

    // Show the key with the keyboard: focus is in the reveal.
    let started = Instant::now();
    while active(&c).await != json!("reveal") {
        assert!(started.elapsed() < PATIENCE, "the reveal takes focus");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    press(&c, Key::Tab.to_string()).await;
    assert_eq!(active(&c).await, json!("Show key"));
    press(&c, " ".into()).await;
    let shown = wait_for(&c, "#reveal-secret").await.text().await.unwrap();
    assert!(!shown.contains('•'), "{shown}");

    // A confirmation opens with focus inside it and Escape leaves it.
    js(
        &c,
        "[...document.querySelectorAll('.page-head .actions button')].find((b) => b.textContent === 'Revoke').focus(); return null",
    )
    .await;
    press(&c, Key::Enter.to_string()).await;
    wait_text(&c, "dialog h2", "Revoke “keyboard-key”?").await;
    assert_eq!(
        js(
            &c,
            "return document.querySelector('dialog').contains(document.activeElement)"
        )
        .await,
        json!(true)
    );
    press(&c, Key::Escape.to_string()).await;
    wait_gone(&c, "dialog").await;
    wait_text(&c, ".page-head .badge", "Active").await;
    c.close().await.unwrap();
}

#[tokio::test]
#[ignore = "needs chromium, chromium-driver and axe-core; .ci/run installs them"]
async fn webhooks_are_added_watched_and_sent_again_from_the_console() {
    let receiver = support::receiver::Receiver::start().await;
    receiver.answer(&[500]);
    let keymint = keymint(&[
        ("KEYMINT_WEBHOOKS__ALLOW_HTTP", "true"),
        ("KEYMINT_WEBHOOKS__ALLOW_PRIVATE_TARGETS", "true"),
        ("KEYMINT_WEBHOOKS__POLL_INTERVAL_MS", "50"),
        ("KEYMINT_WEBHOOKS__MAX_ATTEMPTS", "1"),
        // One failure pauses the endpoint for an hour: its breaker shows.
        ("KEYMINT_WEBHOOKS__BREAKER_FAILURES", "1"),
        ("KEYMINT_WEBHOOKS__BREAKER_PAUSE_SECONDS", "3600"),
    ]);
    let org = Uuid::new_v4();
    let token = token_for(&keymint, org).await;
    let (_driver, c) = open_browser(Screen::Desktop).await;
    sign_in(&c, &keymint, org).await;
    click(&c, "nav a[href='/console/webhooks']").await;
    wait_text(&c, "h1", "Webhooks").await;
    wait_text(&c, ".empty", "No endpoints yet").await;

    fill(&c, "#hook-url", "ftp://files.example/hooks").await;
    click(&c, "form button[type=submit]").await;
    wait_text(&c, "#hook-url-error", "http").await;
    fill(&c, "#hook-url", &receiver.url).await;
    click(&c, "#hook-event-key-leaked").await;
    click(&c, "form button[type=submit]").await;
    wait_text(&c, "#reveal h2", "signing secret").await;
    let secret_field = wait_for(&c, "#reveal-secret").await;
    assert!(secret_field.text().await.unwrap().starts_with("whsec_•"));
    wait_text(&c, "tbody td.name a", &receiver.url).await;
    screenshot(&c, "webhooks").await;
    click(&c, "#reveal button[aria-controls=reveal-secret]").await;
    let secret = secret_field.text().await.unwrap();
    assert!(secret.starts_with("whsec_") && !secret.contains('•'));
    wait_text(&c, "tbody td.name a", &receiver.url).await;
    wait_text(&c, "tbody td", "key.created, key.updated").await;
    // The form follows the short list at once, with no space kept for rows
    // that are not there.
    let gap = js(
        &c,
        "return document.querySelector('form[aria-labelledby=add-hook-title]').getBoundingClientRect().top \
           - document.querySelector('.hook-list table').getBoundingClientRect().bottom",
    )
    .await;
    assert!(gap.as_f64().unwrap() < 40.0, "{gap} px between the list and the form");
    accessible(&c, "webhooks").await;

    // A delivery that fails (the receiver answers 500, one attempt allowed)
    // is shown with its attempt and sent again by hand.
    click(&c, "tbody td.name a").await;
    wait_text(&c, "h1", &receiver.url).await;
    create(&keymint, &token, json!({"name": "announced"})).await;
    let started = Instant::now();
    while c
        .find_all(Locator::Css("tr[data-status=failed]"))
        .await
        .unwrap()
        .is_empty()
    {
        assert!(started.elapsed() < PATIENCE, "the failed delivery is listed");
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.refresh().await.unwrap();
        wait_text(&c, "h1", &receiver.url).await;
    }
    wait_text(&c, "tr[data-status=failed]", "HTTP 500").await;
    // Each delivery names its key, and an event name stays on one line.
    let announced = js(
        &c,
        "return document.querySelector('tr[data-status=failed] a.key-id').getAttribute('href')",
    )
    .await;
    let keys = reqwest::Client::new()
        .get(format!("{}/api/v2/api-keys", keymint.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        announced,
        json!(format!("/console/keys/{}", keys[0]["id"].as_str().unwrap()))
    );
    let lines = js(
        &c,
        // An inline element has one box per line it spans.
        "return document.querySelector('tr[data-status=failed] code.event').getClientRects().length",
    )
    .await;
    assert_eq!(lines, json!(1), "the event name is on one line");
    // The failure paused the endpoint: the page says so, and until when.
    wait_text(&c, "dl.details .badge", "Paused").await;
    wait_text(&c, "dl.details", "Nothing is sent until").await;
    accessible(&c, "a webhook with a failed delivery").await;
    screenshot(&c, "webhook").await;
    // Sending it again probes the paused endpoint at once; its 200 resumes it.
    click(&c, "tr[data-status=failed] button").await;
    wait_for(&c, "tr[data-status=delivered]").await;
    c.refresh().await.unwrap();
    wait_text(&c, "dl.details .badge", "Enabled").await;
    let received = receiver.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].id, received[1].id, "the same delivery, sent again");
    assert!(support::receiver::signature_is_valid(&secret, &received[1]));

    action(&c, "Disable").await;
    wait_text(&c, "dl.details .badge", "Disabled").await;
    action(&c, "Delete").await;
    wait_text(&c, "dialog h2", &format!("Delete {}?", receiver.url)).await;
    click(&c, "dialog button[type=submit]").await;
    wait_text(&c, "h1", "Webhooks").await;
    wait_text(&c, ".empty", "No endpoints yet").await;
    c.close().await.unwrap();
}

// ---------------------------------------------------------------- OIDC

/// A stand-in for Auth0: discovery, an authorization endpoint that signs the
/// person in at once, a token endpoint that checks PKCE, and a JWKS.
struct Issuer {
    url: String,
    asked: Arc<Mutex<Vec<String>>>,
    handle: actix_web::dev::ServerHandle,
}

async fn issuer(org: Uuid) -> Issuer {
    use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
    use aws_lc_rs::signature::KeyPair;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine;

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let der: aws_lc_rs::encoding::Pkcs8V1Der = pair.as_der().unwrap();
    let body = STANDARD.encode(der.as_ref());
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        body.as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let encoding = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    let public = pair.public_key();
    let jwks = json!({"keys": [{
        "kty": "RSA", "kid": "console-test", "use": "sig", "alg": "RS256",
        "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
        "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
    }]});
    let asked = Arc::new(Mutex::new(Vec::new()));
    // The challenge of each code handed out, checked against the verifier.
    let challenges: Arc<Mutex<Vec<(String, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let (issuer_url, seen, codes) = (url.clone(), asked.clone(), challenges.clone());
    let server = HttpServer::new(move || {
        let (issuer_url, seen, codes, jwks, encoding) = (
            issuer_url.clone(),
            seen.clone(),
            codes.clone(),
            jwks.clone(),
            encoding.clone(),
        );
        let discovery = json!({
            "issuer": issuer_url,
            "authorization_endpoint": format!("{issuer_url}authorize"),
            "token_endpoint": format!("{issuer_url}oauth/token"),
            "jwks_uri": format!("{issuer_url}jwks"),
            "end_session_endpoint": format!("{issuer_url}logout"),
        });
        App::new()
            .wrap(actix_web::middleware::DefaultHeaders::new().add(("Access-Control-Allow-Origin", "*")))
            .route(
                "/.well-known/openid-configuration",
                web::get().to(move || {
                    let discovery = discovery.clone();
                    async move { HttpResponse::Ok().json(discovery) }
                }),
            )
            .route(
                "/jwks",
                web::get().to(move || {
                    let jwks = jwks.clone();
                    async move { HttpResponse::Ok().json(jwks) }
                }),
            )
            .route("/logout", {
                let seen = seen.clone();
                web::get().to(move |req: HttpRequest| {
                    let seen = seen.clone();
                    async move {
                        seen.lock().unwrap().push(req.uri().to_string());
                        let query: std::collections::HashMap<String, String> =
                            serde_urlencoded::from_str(req.query_string()).unwrap();
                        HttpResponse::Found()
                            .insert_header(("Location", query["post_logout_redirect_uri"].clone()))
                            .finish()
                    }
                })
            })
            .route("/authorize", {
                let (seen, codes) = (seen.clone(), codes.clone());
                web::get().to(move |req: HttpRequest| {
                    let (seen, codes) = (seen.clone(), codes.clone());
                    async move {
                        seen.lock().unwrap().push(req.uri().to_string());
                        let query: std::collections::HashMap<String, String> =
                            serde_urlencoded::from_str(req.query_string()).unwrap();
                        let code = Uuid::new_v4().simple().to_string();
                        codes
                            .lock()
                            .unwrap()
                            .push((code.clone(), query["code_challenge"].clone()));
                        let back = format!("{}#code={code}&state={}", query["redirect_uri"], query["state"]);
                        HttpResponse::Found().insert_header(("Location", back)).finish()
                    }
                })
            })
            .route("/oauth/token", {
                let (issuer_url, codes, encoding) = (issuer_url.clone(), codes.clone(), encoding.clone());
                web::post().to(move |form: web::Form<std::collections::HashMap<String, String>>| {
                    let (issuer_url, codes, encoding) = (issuer_url.clone(), codes.clone(), encoding.clone());
                    async move {
                        let held = codes.lock().unwrap().iter().find(|(c, _)| *c == form["code"]).cloned();
                        let digest =
                            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, form["code_verifier"].as_bytes());
                        let proven =
                            held.is_some_and(|(_, challenge)| challenge == URL_SAFE_NO_PAD.encode(digest.as_ref()));
                        if !proven || form["grant_type"] != "authorization_code" || form["client_id"] != "console-test"
                        {
                            return HttpResponse::BadRequest().json(json!({"error": "invalid_grant"}));
                        }
                        let now = support::unix_now();
                        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
                        header.kid = Some("console-test".into());
                        let token = jsonwebtoken::encode(
                            &header,
                            &json!({"iss": issuer_url, "aud": "https://keymint.test", "sub": "auth0|carol",
                                    "name": "Carol", "org_id": org.to_string(), "iat": now, "exp": now + 600}),
                            &encoding,
                        )
                        .unwrap();
                        HttpResponse::Ok()
                            .json(json!({"access_token": token, "token_type": "Bearer", "expires_in": 600}))
                    }
                })
            })
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Issuer { url, asked, handle }
}

#[tokio::test]
#[ignore = "needs chromium, chromium-driver and axe-core; .ci/run installs them"]
async fn signing_in_at_an_oidc_issuer_uses_pkce_and_keeps_the_code_out_of_urls() {
    let org = Uuid::new_v4();
    let issuer = issuer(org).await;
    let keymint = keymint(&[
        ("KEYMINT_AUTH__ISSUER", issuer.url.as_str()),
        ("KEYMINT_AUTH__AUDIENCE", "https://keymint.test"),
        ("KEYMINT_CONSOLE__CLIENT_ID", "console-test"),
    ]);
    let (_driver, c) = open_browser(Screen::Desktop).await;
    c.goto(&format!("{}/console/verify", keymint.url)).await.unwrap();
    let host = issuer.url.trim_start_matches("http://").trim_end_matches('/');
    wait_text(&c, "main button", &format!("Sign in with {host}")).await;
    assert!(
        c.find_all(Locator::Css("#dev-org_id")).await.unwrap().is_empty(),
        "no development sign-in"
    );
    accessible(&c, "OIDC sign-in").await;
    click(&c, "main button").await;

    // Back from the issuer, signed in, on the page first asked for.
    wait_text(&c, "h1", "Verify a key").await;
    wait_text(&c, "#who-text", "Carol").await;
    let url = c.current_url().await.unwrap();
    assert_eq!(url.path(), "/console/verify");
    assert_eq!(url.fragment(), None, "the code is gone from the address bar");
    let asked = issuer.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1);
    assert!(asked[0].starts_with("/authorize?"));
    let query: std::collections::HashMap<String, String> =
        serde_urlencoded::from_str(asked[0].split_once('?').unwrap().1).unwrap();
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["response_mode"], "fragment");
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], "console-test");
    assert_eq!(query["audience"], "https://keymint.test");
    assert_eq!(query["redirect_uri"], format!("{}/console", keymint.url));

    // The issuer's token works against the API: the console lists keys with it.
    click(&c, "nav a[href='/console']").await;
    wait_text(&c, ".empty", "No keys yet").await;

    // A session that ends mid-form goes through the issuer and back to the
    // same form, filled in as it was left.
    click(&c, "nav a[href='/console/keys/new']").await;
    spoil_the_session(&c).await;
    wait_text(&c, "h1", "Create an API key").await;
    fill(&c, "#create-name", "typed-before-expiry").await;
    fill(&c, "#create-description", "kept across the issuer's redirect").await;
    click(&c, "form button[type=submit]").await;
    wait_text(&c, "dialog h2", "Your session has ended").await;
    click(&c, "dialog button").await;
    wait_text(&c, "h1", "Create an API key").await;
    let started = Instant::now();
    while wait_for(&c, "#create-description")
        .await
        .prop("value")
        .await
        .unwrap()
        .as_deref()
        != Some("kept across the issuer's redirect")
    {
        assert!(started.elapsed() < PATIENCE, "the form is restored after the redirect");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(issuer.asked.lock().unwrap().len(), 2, "signed in at the issuer again");
    // The page can be drawn a moment before the address leaves the callback's.
    let started = Instant::now();
    while path(&c).await != "/console/keys/new" {
        assert!(
            started.elapsed() < PATIENCE,
            "back at the form's address: {}",
            path(&c).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    click(&c, "form button[type=submit]").await;
    wait_for(&c, "#reveal").await;
    wait_text(&c, "h1", "typed-before-expiry").await;

    // Signing out ends the issuer's session too, and comes back signed out.
    click(&c, "#sign-out").await;
    wait_text(&c, "main button", "Sign in with").await;
    let asked = issuer.asked.lock().unwrap().clone();
    assert!(asked.last().unwrap().starts_with("/logout?"), "{asked:?}");
    assert!(asked.last().unwrap().contains("client_id=console-test"));
    assert_eq!(
        js(&c, "return sessionStorage.getItem('keymint.console.session')").await,
        Value::Null
    );
    issuer.handle.stop(false).await;
    c.close().await.unwrap();
}
