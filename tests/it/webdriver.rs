//! A small blocking WebDriver client (the W3C protocol over HTTP/JSON) driving Debian's
//! `chromium` through `chromedriver`, for the playground's browser test.
//!
//! The driver and the browser are real: `chromedriver` is started on a free loopback port and
//! launches headless Chromium with a fresh profile and the flags it needs as root on a closed
//! network. Both are installed by `scripts/setup`; when either is missing the test fails and
//! says so.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tempfile::TempDir;

/// The W3C name of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long a wait for the page may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(30);

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in names {
        for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// A `chromedriver` process and one browser session, both ended when dropped.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    _profile: TempDir,
}

impl Browser {
    /// Starts `chromedriver` and a headless Chromium session with a `width`×`height` window.
    pub fn start(width: u32, height: u32) -> Browser {
        let chromium = find_program(&["chromium", "chromium-browser"]).unwrap_or_else(|| {
            panic!("no `chromium` on this machine: run scripts/setup (it installs Debian's chromium and chromium-driver)")
        });
        let chromedriver = find_program(&["chromedriver"]).unwrap_or_else(|| {
            panic!("no `chromedriver` on this machine: run scripts/setup (it installs Debian's chromium-driver)")
        });
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            let ready = agent
                .get(&format!("{base}/status"))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == json!(true));
            if ready {
                break;
            }
            assert!(
                started.elapsed() < WAIT,
                "chromedriver did not become ready on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
            agent,
            _profile: profile,
        };
        let answer = browser.send(
            "POST",
            "/session",
            &json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium.to_string_lossy(),
                    "args": [
                        "--headless",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--disable-quic",
                        "--no-first-run",
                        "--disable-background-networking",
                        "--disable-component-update",
                        "--disable-sync",
                        "--disable-dev-shm-usage",
                        format!("--user-data-dir={}", browser._profile.path().display()),
                        format!("--window-size={width},{height}"),
                    ],
                },
            }}}),
        );
        browser.session = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session from chromedriver: {answer}"))
            .to_string();
        browser
    }

    /// One WebDriver command; the answer's `value`, or a panic naming the failed command.
    fn send(&self, method: &str, path: &str, body: &Value) -> Value {
        let url = format!("{}{path}", self.base);
        let response = match method {
            "GET" => self.agent.get(&url).call(),
            "DELETE" => self.agent.delete(&url).call(),
            _ => self.agent.post(&url).send_json(body),
        };
        let mut response = response.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let answer: Value = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_json()
            .unwrap_or_else(|e| panic!("{method} {path}: answer is not JSON: {e}"));
        assert!(
            status < 400,
            "{method} {path} failed ({status}): {}",
            answer["value"]
        );
        answer["value"].clone()
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        self.send("POST", &self.session_path("/url"), &json!({ "url": url }));
    }

    /// The element matching the CSS selector (waiting for it to exist).
    pub fn find(&self, selector: &str) -> Element<'_> {
        let started = Instant::now();
        loop {
            let url = format!("{}{}", self.base, self.session_path("/element"));
            let mut response = self
                .agent
                .post(&url)
                .send_json(json!({"using": "css selector", "value": selector}))
                .unwrap();
            let ok = response.status().as_u16() < 400;
            let answer: Value = response.body_mut().read_json().unwrap();
            if ok {
                let id = answer["value"][ELEMENT].as_str().unwrap().to_string();
                return Element { browser: self, id };
            }
            assert!(started.elapsed() < WAIT, "no element matches `{selector}`");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub fn run(&self, script: &str, args: &[Value]) -> Value {
        self.send(
            "POST",
            &self.session_path("/execute/sync"),
            &json!({"script": script, "args": args}),
        )
    }

    /// Waits until `script` returns something truthy, and returns it; fails with `what`.
    pub fn wait_for(&self, what: &str, script: &str) -> Value {
        let started = Instant::now();
        loop {
            let value = self.run(script, &[]);
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return value;
            }
            assert!(started.elapsed() < WAIT, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The text content of the element `selector` (by script, so hidden text counts too).
    pub fn text(&self, selector: &str) -> String {
        self.run(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
            &[json!(selector)],
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Presses `keys` (WebDriver key codes allowed) with the modifier `modifier` held, as a
    /// person at the keyboard would.
    pub fn press_with(&self, modifier: &str, key: &str) {
        self.send(
            "POST",
            &self.session_path("/actions"),
            &json!({"actions": [{
                "type": "key",
                "id": "keyboard",
                "actions": [
                    {"type": "keyDown", "value": modifier},
                    {"type": "keyDown", "value": key},
                    {"type": "keyUp", "value": key},
                    {"type": "keyUp", "value": modifier},
                ],
            }]}),
        );
        self.send("DELETE", &self.session_path("/actions"), &json!({}));
    }

    /// A PNG screenshot of the window, written to `path`.
    pub fn screenshot(&self, path: &Path) {
        let data = self.send("GET", &self.session_path("/screenshot"), &json!({}));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap())
            .unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let url = format!("{}/session/{}", self.base, self.session);
            let _ = self.agent.delete(&url).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// An element of the page.
pub struct Element<'b> {
    browser: &'b Browser,
    id: String,
}

impl Element<'_> {
    fn path(&self, rest: &str) -> String {
        self.browser
            .session_path(&format!("/element/{}{rest}", self.id))
    }

    /// Clicks it.
    pub fn click(&self) {
        self.browser.send("POST", &self.path("/click"), &json!({}));
    }

    /// Empties an input or text area.
    pub fn clear(&self) {
        self.browser.send("POST", &self.path("/clear"), &json!({}));
    }

    /// Types `text` into it (WebDriver key codes such as `\u{E007}`, Enter, allowed).
    pub fn type_text(&self, text: &str) {
        self.browser
            .send("POST", &self.path("/value"), &json!({ "text": text }));
    }
}
