//! The approver: a browser stand-in that pairs through the real pairing
//! link and submits the real forms, as the pages' script leaves them.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

use crate::daemon::{pairing_links, poll};
use crate::home::Home;

/// A paired browser: holds the device cookie and its device proof, and
/// submits the real forms as the pages' script leaves them.
pub struct Approver {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: String,
    /// The device proof kept in the browser's localStorage.
    pub proof: String,
}

/// A device proof, as `/static/device.js` makes one: 32 random bytes,
/// URL-safe base64.
pub fn new_proof() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).unwrap_or_else(|e| panic!("{e}"));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A page as the browser holds it once `/static/device.js` ran: every form
/// token followed by `~` and the device proof.
pub fn with_proof(html: &str, proof: &str) -> String {
    let mut out = html.to_string();
    for marker in ["name=\"csrf\" value=\"", "data-csrf=\""] {
        let mut at = 0;
        while let Some(i) = out[at..].find(marker) {
            let start = at + i + marker.len();
            let Some(end) = out[start..].find('"') else {
                break;
            };
            out.insert_str(start + end, &format!("~{proof}"));
            at = start + end + proof.len() + 1;
        }
    }
    out
}

/// The value of a `name="..." value="..."` input in a page.
pub fn form_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let rest = &html[at..];
    let v = rest.find("value=\"")? + 7;
    let end = rest[v..].find('"')?;
    Some(rest[v..v + end].to_string())
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

/// The cookie set by a response, as `name=value`.
pub fn set_cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
}

impl Approver {
    /// Pairs through `agent-vault pair --json` and the pairing page. With
    /// no device paired, and the CLI's user an agent user too (these tests
    /// run everything as one user), the link is taken from the daemon's
    /// terminal, where a person would read it.
    pub async fn pair(home: &Home, base: &str) -> Result<Self> {
        let url = Self::link(home)?;
        let http = http();
        let page = http.get(&url).send().await?;
        if page.status() != 200 {
            bail!("pairing page: {}", page.status());
        }
        let proof = new_proof();
        let res = http
            .post(&url)
            .form(&[("label", "test phone"), ("proof", proof.as_str())])
            .send()
            .await?;
        let cookie = set_cookie(&res, "av_device")
            .ok_or_else(|| anyhow!("no device cookie after pairing ({})", res.status()))?;
        Ok(Self {
            http,
            base: base.to_string(),
            cookie,
            proof,
        })
    }

    pub async fn page(&self, path: &str) -> Result<(u16, String)> {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await?;
        let status = res.status().as_u16();
        Ok((status, with_proof(&res.text().await?, &self.proof)))
    }

    /// Opens the approval page and submits Approve or Deny (with a window).
    pub async fn decide(
        &self,
        id: &str,
        decision: &str,
        window: Option<&str>,
    ) -> Result<(u16, String)> {
        let (status, html) = self.page(&format!("/approve/{id}")).await?;
        if status != 200 {
            bail!("approval page: {status}");
        }
        let csrf = form_value(&html, "csrf").ok_or_else(|| anyhow!("no csrf field"))?;
        let mut form = vec![("csrf", csrf), ("decision", decision.to_string())];
        if let Some(w) = window {
            form.push(("window", w.to_string()));
        }
        let res = self
            .http
            .post(format!("{}/approve/{id}", self.base))
            .header("cookie", &self.cookie)
            .form(&form)
            .send()
            .await?;
        // A decision taken is answered with a redirect to the request's
        // page (so a reload does not send it again): follow it.
        if res.status() == 303 {
            let to = res
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .unwrap_or_default()
                .to_string();
            return self.page(&to).await;
        }
        Ok((res.status().as_u16(), res.text().await?))
    }
}

impl Approver {
    /// A pairing link from `agent-vault pair`, or from the daemon's terminal
    /// when the CLI says it was shown there.
    pub fn link(home: &Home) -> Result<String> {
        let log = home
            .daemon_log
            .lock()
            .ok()
            .and_then(|l| l.clone())
            .unwrap_or_default();
        let before = pairing_links(&std::fs::read_to_string(&log).unwrap_or_default()).len();
        let reply = home.cli_json(&["pair"])?;
        if reply["shownOnDaemonTerminal"] != Value::Bool(true) {
            return Ok(reply["url"].as_str().unwrap_or_default().to_string());
        }
        poll(Duration::from_secs(10), || {
            let links = pairing_links(&std::fs::read_to_string(&log).ok()?);
            (links.len() > before)
                .then(|| links.last().cloned())
                .flatten()
        })
        .context("the first pairing link on the daemon's terminal")
    }

    /// Pairs another browser, approved on the dashboard of `first`.
    pub async fn pair_another(home: &Home, first: &Approver, label: &str) -> Result<Approver> {
        let url = home.cli_json(&["pair"])?["url"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let http = http();
        let proof = new_proof();
        let claimed = http
            .post(&url)
            .form(&[("label", label), ("proof", proof.as_str())])
            .send()
            .await?;
        let claim = set_cookie(&claimed, "av_claim").ok_or_else(|| anyhow!("no claim cookie"))?;
        let (_, dash) = first.page("/").await?;
        let at = dash
            .find("action=\"/pairings/")
            .ok_or_else(|| anyhow!("no pairing request on the dashboard"))?
            + "action=\"".len();
        let action = dash[at..].split('"').next().unwrap_or_default().to_string();
        let csrf = form_value(&dash, "csrf").unwrap_or_default();
        first
            .http
            .post(format!("{}{action}", first.base))
            .header("cookie", &first.cookie)
            .form(&[("decision", "approve"), ("csrf", csrf.as_str())])
            .send()
            .await?;
        let done = http
            .get(format!("{}/pair-wait", first.base))
            .header("cookie", &claim)
            .send()
            .await?;
        let cookie = set_cookie(&done, "av_device").ok_or_else(|| anyhow!("not paired"))?;
        Ok(Approver {
            http,
            base: first.base.clone(),
            cookie,
            proof,
        })
    }
}
