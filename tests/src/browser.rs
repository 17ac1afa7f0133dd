//! A real headless Chromium, driven over the DevTools protocol, for what
//! only a browser can test: the approval pages' script under their CSP, and
//! WebAuthn through Chromium's virtual authenticator.
//!
//! `AGENT_VAULT_TEST_CHROMIUM` names the binary (default `chromium`). The
//! browser listens on a loopback debugging port in a fresh profile and is
//! killed when the [`Browser`] is dropped.

use std::io::ErrorKind;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

pub struct Browser {
    child: Child,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// Console messages and exceptions seen so far, for failure messages.
    pub console: Vec<String>,
    _profile: tempfile::TempDir,
}

/// One tab, attached with a flat session.
pub struct Tab {
    pub session: String,
}

fn chromium() -> String {
    std::env::var("AGENT_VAULT_TEST_CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

impl Browser {
    pub fn launch() -> Result<Self> {
        let profile = tempfile::Builder::new().prefix("av-chromium-").tempdir()?;
        let log = crate::log_path("chromium");
        let child = Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {:?}: install Chromium (Debian: apt-get install chromium) or set AGENT_VAULT_TEST_CHROMIUM",
                    chromium()
                )
            })?;
        let port_file: PathBuf = profile.path().join("DevToolsActivePort");
        let endpoint = crate::poll(Duration::from_secs(30), || {
            let text = std::fs::read_to_string(&port_file).ok()?;
            let mut lines = text.lines();
            let port = lines.next()?.trim().to_string();
            let path = lines.next()?.trim().to_string();
            Some(format!("ws://127.0.0.1:{port}{path}"))
        })
        .context("Chromium did not open its debugging port")?;
        let (ws, _) = tungstenite::connect(endpoint.as_str())
            .map_err(|e| anyhow!("DevTools connection: {e}"))?;
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_millis(200)))?;
        }
        Ok(Self {
            child,
            ws,
            next_id: 0,
            console: Vec::new(),
            _profile: profile,
        })
    }

    /// Sends one command (to the browser, or to a tab's session) and waits
    /// for its answer, keeping console events on the way.
    pub fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .map_err(|e| anyhow!("DevTools send: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if Instant::now() > deadline {
                bail!("DevTools: no answer to {method}");
            }
            let frame = match self.ws.read() {
                Ok(Message::Text(t)) => t,
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    continue;
                }
                Err(e) => bail!("DevTools read: {e}"),
            };
            let v: Value = serde_json::from_str(frame.as_str())?;
            if v["id"] == json!(id) {
                if let Some(err) = v.get("error") {
                    bail!("DevTools {method}: {err}");
                }
                return Ok(v["result"].clone());
            }
            self.keep_event(&v);
        }
    }

    fn keep_event(&mut self, v: &Value) {
        match v["method"].as_str() {
            Some("Runtime.consoleAPICalled") => {
                let args: Vec<String> = v["params"]["args"]
                    .as_array()
                    .map(|a| a.iter().map(|x| x["value"].to_string()).collect::<Vec<_>>())
                    .unwrap_or_default();
                self.console.push(format!(
                    "console.{}: {}",
                    v["params"]["type"].as_str().unwrap_or("?"),
                    args.join(" ")
                ));
            }
            Some("Runtime.exceptionThrown") => self
                .console
                .push(format!("exception: {}", v["params"]["exceptionDetails"])),
            Some("Log.entryAdded") => self
                .console
                .push(format!("log: {}", v["params"]["entry"]["text"])),
            _ => {}
        }
    }

    /// A new tab with console capture on.
    pub fn tab(&mut self) -> Result<Tab> {
        let target = self.call(None, "Target.createTarget", json!({"url": "about:blank"}))?;
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        )?;
        let session = attached["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("no session id"))?
            .to_string();
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            self.call(Some(&session), domain, json!({}))?;
        }
        Ok(Tab { session })
    }

    /// Evaluates `expression` in the tab and returns its value.
    pub fn eval(&mut self, tab: &Tab, expression: &str) -> Result<Value> {
        let r = self.call(
            Some(&tab.session),
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        )?;
        if let Some(e) = r.get("exceptionDetails") {
            bail!("{expression}: {e}");
        }
        Ok(r["result"]["value"].clone())
    }

    /// Opens `url` in the tab and waits until the document has loaded.
    pub fn open(&mut self, tab: &Tab, url: &str) -> Result<()> {
        self.call(Some(&tab.session), "Page.navigate", json!({"url": url}))?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let href = self.eval(tab, "location.href")?;
            let ready = self.eval(tab, "document.readyState")?;
            if href == json!(url) && ready == json!("complete") {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{url} did not load (at {href}, {ready})");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Opens a pairing link and claims it as a device called `label`,
    /// with the proof the page's script makes; the caller waits for what
    /// follows (the dashboard, or the wait for another device's approval).
    pub fn claim_pairing(&mut self, tab: &Tab, link: &str, label: &str) -> Result<()> {
        self.open(tab, link)?;
        self.wait_for(
            tab,
            "document.querySelector('input[name=proof]').value.length === 43",
            Duration::from_secs(20),
        )?;
        self.eval(
            tab,
            &format!(
                "document.querySelector('input[name=label]').value = {}; document.querySelector('form').submit()",
                json!(label)
            ),
        )?;
        Ok(())
    }

    /// Polls `expression` until it is truthy; returns its value.
    pub fn wait_for(&mut self, tab: &Tab, expression: &str, timeout: Duration) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            // A navigation in progress makes evaluation fail for a moment.
            if let Ok(v) = self.eval(tab, expression)
                && !matches!(&v, Value::Null | Value::Bool(false))
                && v != json!("")
            {
                return Ok(v);
            }
            if Instant::now() > deadline {
                bail!(
                    "waited {timeout:?} for {expression}; console: {:?}",
                    self.console
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
