//! Headless Chromium over WebDriver, for the tests that use the console as
//! people do (`tests/console.rs`, `tests/oidc_provider.rs`): starting
//! chromedriver and a session, and waiting on the page the way a reader does.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use super::process::Reaped;

/// What a browser test needs that `cargo test` alone does not bring.
pub const NEEDS_BROWSER: &str = "needs chromium and chromium-driver (Debian); .ci/run installs them";

/// How long a page may take to show what a test waits for.
pub const PATIENCE: Duration = Duration::from_secs(15);

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running chromedriver, stopped when dropped; it must outlive its sessions.
pub struct Driver {
    _child: Reaped,
    url: String,
}

fn chromedriver() -> Driver {
    let port = free_port();
    let child = Command::new(std::env::var("KEYMINT_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into()))
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start chromedriver ({e}): {NEEDS_BROWSER}"));
    let child = Reaped(child);
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver {
        _child: child,
        url: format!("http://127.0.0.1:{port}/"),
    }
}

/// A Chrome DevTools command, through chromedriver's `goog/cdp/execute`.
#[derive(Debug)]
pub struct Cdp(pub &'static str, pub Value);

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/goog/cdp/execute", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"cmd": self.0, "params": self.1}).to_string()),
        )
    }
}

/// The browser's console messages since the last read, through chromedriver's
/// log endpoint (`goog:loggingPrefs` asks it to keep them).
#[derive(Debug)]
pub struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({"type": "browser"}).to_string()))
    }
}

/// How the page is shown.
#[derive(Clone, Copy)]
pub enum Screen {
    Desktop,
    /// 360 px wide, in the dark theme.
    NarrowDark,
}

/// A chromedriver and a browser session through it; the driver must outlive
/// the session, so both are handed back.
pub async fn open_browser(screen: Screen) -> (Driver, Client) {
    let driver = chromedriver();
    let client = browser(&driver, screen).await;
    (driver, client)
}

/// Another session through `driver` (a second person, a second tab).
pub async fn browser(driver: &Driver, screen: Screen) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": std::env::var("KEYMINT_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
            // No first-run pages or background fetches: nothing but the
            // test's own pages goes over the network.
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,900", "--lang=en-GB", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        }),
    );
    // The browser's console, for `BrowserLog`.
    caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| panic!("cannot start Chromium ({e}): {NEEDS_BROWSER}"));
    if let Screen::NarrowDark = screen {
        client
            .issue_cmd(Cdp(
                "Emulation.setDeviceMetricsOverride",
                json!({"width": 360, "height": 740, "deviceScaleFactor": 1, "mobile": true}),
            ))
            .await
            .unwrap();
        client
            .issue_cmd(Cdp(
                "Emulation.setEmulatedMedia",
                json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}),
            ))
            .await
            .unwrap();
    }
    client
}

pub async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap()
}

/// Waits until `css` matches an element whose text contains `text`; failing,
/// says what the page showed instead.
pub async fn wait_text(c: &Client, css: &str, text: &str) -> fantoccini::elements::Element {
    let started = Instant::now();
    let mut last = String::new();
    loop {
        if let Ok(elements) = c.find_all(Locator::Css(css)).await {
            for element in elements {
                if let Ok(Some(seen)) = element.prop("textContent").await {
                    if seen.contains(text) {
                        return element;
                    }
                    last = seen;
                }
            }
        }
        if started.elapsed() > PATIENCE {
            let body = js(c, "return document.body ? document.body.innerText : ''").await;
            panic!(
                "no {css} with text {text:?} (last seen: {last:?}) on {}; the page says: {body}",
                c.current_url().await.map(|u| u.to_string()).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn wait_for(c: &Client, css: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
}

pub async fn wait_gone(c: &Client, css: &str) {
    let started = Instant::now();
    while !c.find_all(Locator::Css(css)).await.unwrap().is_empty() {
        assert!(started.elapsed() < PATIENCE, "{css} is still there");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn click(c: &Client, css: &str) {
    wait_for(c, css).await.click().await.unwrap();
}

pub async fn fill(c: &Client, css: &str, text: &str) {
    let input = wait_for(c, css).await;
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

/// With `KEYMINT_CONSOLE_SCREENSHOTS=<dir>`, saves the page as
/// `<dir>/console-<name>.png` (how `docs/console-*.png` are made).
pub async fn screenshot(c: &Client, name: &str) {
    if let Ok(dir) = std::env::var("KEYMINT_CONSOLE_SCREENSHOTS") {
        // Let fonts and the toast settle so the picture shows the page at rest.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let png = c.screenshot().await.unwrap();
        std::fs::write(format!("{dir}/console-{name}.png"), png).unwrap();
    }
}
