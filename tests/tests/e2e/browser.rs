//! Headless Chromium driven over WebDriver (`chromedriver` + fantoccini), for
//! tests and benchmarks of the status page.
//!
//! Debian's `chromium` and `chromium-driver` packages are used
//! (`deploy/local/stack.sh up` installs them). A missing `chromedriver` fails
//! the test with what to install: a browser test that silently skips proves
//! nothing.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use tests::eventually;

/// Where Debian installs the driver and the browser; `CHROMEDRIVER` and
/// `CHROMIUM` override them.
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// How long chromedriver may take to answer after it was started.
const DRIVER_START: Duration = Duration::from_secs(30);

/// How long a click may keep finding its element replaced (or missing).
const CLICK_TIMEOUT: Duration = Duration::from_secs(10);

/// A chromedriver process and one headless browser session. The driver is
/// killed on drop (the browser goes with it).
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
}

fn program(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(default))
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium
    /// window of `width`×`height`.
    pub async fn start(width: u32, height: u32) -> Browser {
        let driver_bin = program("CHROMEDRIVER", CHROMEDRIVER);
        let chromium = program("CHROMIUM", CHROMIUM);
        assert!(
            driver_bin.is_file(),
            "{} not found: the status page tests need Chromium's WebDriver. Install it with \
             `apt-get install chromium chromium-driver` (deploy/local/stack.sh up does), or set CHROMEDRIVER.",
            driver_bin.display()
        );
        assert!(
            chromium.is_file(),
            "{} not found: install it with `apt-get install chromium` (deploy/local/stack.sh up does), or set CHROMIUM.",
            chromium.display()
        );
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver_bin.display()));
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder().no_proxy().build().expect("an HTTP client");
        let status = format!("{url}/status");
        eventually("chromedriver to answer /status", DRIVER_START, async || match http.get(&status).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("status {}", r.status())),
            Err(e) => Err(e.to_string()),
        })
        .await;
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    "--no-first-run", "--disable-extensions", "--hide-scrollbars",
                    format!("--window-size={width},{height}"),
                ],
            }),
        );
        let client = ClientBuilder::rustls()
            .expect("a TLS configuration for the WebDriver client")
            .capabilities(caps)
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot open a Chromium session through chromedriver: {e}"));
        Browser { client, driver }
    }

    /// Runs `script` in the page and returns its value.
    pub async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap_or_else(|e| panic!("running {script:?} in the page: {e}"))
    }

    /// The text of the first element matching `css`, if any.
    pub async fn text(&self, css: &str) -> Option<String> {
        let v = self
            .js(&format!("const e = document.querySelector({}); return e ? e.textContent : null;", json!(css)))
            .await;
        v.as_str().map(str::to_string)
    }

    /// Types `text` into the element matching `css`.
    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no element {css}: {e}"));
        e.send_keys(text).await.unwrap_or_else(|e| panic!("typing into {css}: {e}"));
    }

    /// Clicks the element matching `css`, looking it up again if a live
    /// update replaced it between the lookup and the click.
    pub async fn click(&self, css: &str) {
        eventually(&format!("clicking {css}"), CLICK_TIMEOUT, async || {
            let e = self.client.find(Locator::Css(css)).await.map_err(|e| format!("no element: {e}"))?;
            e.click().await.map_err(|e| e.to_string())
        })
        .await;
    }

    /// Saves a PNG screenshot of the window at `path` (parents created).
    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.unwrap_or_else(|e| panic!("taking a screenshot: {e}"));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// Ends the browser session.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
