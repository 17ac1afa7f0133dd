//! The port-theft attack of issue 15, end to end with a real Chromium.
//!
//! Without a tunnel the approver is a browser on this machine, and cookies
//! ignore ports: a page that the agent serves on another `localhost` port,
//! opened once by the person, receives the device cookie of the approval
//! page. The agent then has the cookie and can read the approval page's
//! form token with it. What it cannot get is the device proof that the
//! pages' script keeps in that origin's localStorage (see
//! daemon/src/devices.rs): so its approval is refused, while the person's
//! own click in the same browser goes through.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_vault_e2e::browser::Browser;
use agent_vault_e2e::*;
use anyhow::{Result, anyhow};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::block_in_place;

/// The agent's own little web server: answers every request and keeps the
/// Cookie headers it receives.
async fn agent_server() -> Result<(u16, Arc<Mutex<Vec<String>>>, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut buf = vec![0u8; 16 * 1024];
            let mut len = 0;
            while len < buf.len() {
                match conn.read(&mut buf[len..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => len += n,
                }
                if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let head = String::from_utf8_lossy(&buf[..len]).to_string();
            for line in head.lines() {
                if let Some(v) = line
                    .strip_prefix("cookie: ")
                    .or(line.strip_prefix("Cookie: "))
                    && let Ok(mut s) = keep.lock()
                {
                    s.push(v.to_string());
                }
            }
            let body = "<html><body>build finished</body></html>";
            let _ = conn
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )
                .await;
        }
    });
    Ok((port, seen, task))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cookie_stolen_through_another_local_port_approves_nothing() -> Result<()> {
    let home = Home::new()?;
    let daemon = home.start_daemon()?;
    let base = daemon.base_url.clone();
    let host = url::Url::parse(&base)?
        .host_str()
        .ok_or_else(|| anyhow!("no host in {base}"))?
        .to_string();
    let wait = Duration::from_secs(20);

    // The person pairs this browser through the real pairing page.
    let link = Approver::link(&home)?;
    let (mut browser, tab) = block_in_place(|| -> Result<_> {
        let mut browser = Browser::launch()?;
        let tab = browser.tab()?;
        browser.claim_pairing(&tab, &link, "browser")?;
        browser.wait_for(
            &tab,
            "document.body.textContent.includes('Paired devices')",
            wait,
        )?;
        Ok((browser, tab))
    })?;
    let stored = block_in_place(|| browser.eval(&tab, "localStorage.getItem('av-proof')"))?;
    assert_eq!(stored.as_str().map(str::len), Some(43), "{stored}");

    // The agent asks, and gets the person to open a page of its own.
    let (port, seen, server) = agent_server().await?;
    let agent = Agent::start(&home).await?;
    let call = agent.call_in_background(
        "get_secret",
        json!({"vault": "dev", "name": "API_KEY", "reason": "see my build page"}),
    );
    let id = one_pending_id(&home).await?;
    block_in_place(|| browser.open(&tab, &format!("http://{host}:{port}/")))?;
    let stolen = poll(Duration::from_secs(10), || {
        seen.lock().ok()?.iter().find_map(|c| {
            c.split("; ")
                .find(|kv| kv.starts_with("av_device="))
                .map(str::to_string)
        })
    })?;

    // The cookie works for reading the page and its form token ...
    let thief = http();
    let page = thief
        .get(format!("{base}/approve/{id}"))
        .header("cookie", &stolen)
        .send()
        .await?;
    assert_eq!(page.status(), 200, "the stolen cookie is a real credential");
    let html = page.text().await?;
    let csrf = form_value(&html, "csrf").ok_or_else(|| anyhow!("no form token"))?;
    // ... but approving needs the proof it never saw.
    for token in [csrf.clone(), format!("{csrf}~{}", new_proof())] {
        let r = thief
            .post(format!("{base}/approve/{id}"))
            .header("cookie", &stolen)
            .form(&[("csrf", token.as_str()), ("decision", "approve")])
            .send()
            .await?;
        assert_eq!(r.status(), 403, "{token}");
    }
    // Nor can it approve a pairing of its own browser with that cookie.
    let link = Approver::link(&home)?;
    let own = http();
    own.post(&link)
        .form(&[("label", "agent"), ("proof", new_proof().as_str())])
        .send()
        .await?;
    let dash = thief
        .get(format!("{base}/"))
        .header("cookie", &stolen)
        .send()
        .await?
        .text()
        .await?;
    let at = dash
        .find("action=\"/pairings/")
        .ok_or_else(|| anyhow!("no pairing request on the dashboard"))?
        + "action=\"".len();
    let action = dash[at..].split('"').next().unwrap_or_default().to_string();
    let r = thief
        .post(format!("{base}{action}"))
        .header("cookie", &stolen)
        .form(&[
            ("decision", "approve"),
            (
                "csrf",
                form_value(&dash, "csrf").unwrap_or_default().as_str(),
            ),
        ])
        .send()
        .await?;
    assert_eq!(r.status(), 403);
    assert_eq!(
        home.cli_json(&["devices"])?.as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(one_pending_id(&home).await?, id, "still pending");
    assert!(!call.is_finished());

    // The person's own click, in the same browser, goes through.
    block_in_place(|| -> Result<()> {
        browser.open(&tab, &format!("{base}/approve/{id}"))?;
        browser.eval(
            &tab,
            "document.querySelector('button[name=decision][value=approve]').click()",
        )?;
        browser.wait_for(&tab, "document.body.textContent.includes('Approved')", wait)?;
        Ok(())
    })?;
    let (r, agent) = call.finish_within(wait).await?;
    assert_eq!(r.texts, ["value-of-api-key-7f3a"], "{r:?}");
    agent.stop().await;
    server.abort();
    Ok(())
}
