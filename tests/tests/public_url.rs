//! `publicUrl`: the approval pages reached through something other than
//! ngrok (tailscale serve, a reverse proxy). Here the proxy is a TCP
//! forwarder on another loopback port, as `tailscale serve` forwards to
//! the daemon's own listener. Every link uses the public address, a phone
//! pairs and approves through it, `doctor` tells whether it leads to this
//! daemon, and a project's config cannot move the links elsewhere.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::time::Duration;

use agent_vault_e2e::*;
use anyhow::Result;
use serde_json::{Value, json};

/// A forwarding proxy on 127.0.0.1: to `target` once it is set, and until
/// then answering 502 as a proxy with nothing behind it does.
struct Proxy {
    port: u16,
    target: Arc<AtomicU16>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let target = Arc::new(AtomicU16::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (to, stopped) = (target.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        let port = to.load(Ordering::Relaxed);
                        std::thread::spawn(move || forward(client, port));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            // The listener is dropped here: the address stops answering.
        });
        Ok(Self { port, target, stop })
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn forward(mut client: TcpStream, port: u16) {
    if port == 0 {
        let mut buf = [0u8; 4096];
        let _ = client.read(&mut buf);
        let _ = client.write_all(
            b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        );
        return;
    }
    let Ok(upstream) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let (Ok(mut c2), Ok(mut u2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let mut upstream = upstream;
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut upstream);
        let _ = upstream.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut u2, &mut client);
    let _ = client.shutdown(std::net::Shutdown::Write);
}

fn phone_check(home: &Home) -> Result<(String, String)> {
    let out = home.cli(&["doctor", "--json"])?;
    let report: Value = serde_json::from_slice(&out.stdout)?;
    let phone = report["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["area"] == "phone")
        .cloned()
        .unwrap_or_default();
    Ok((
        phone["level"].as_str().unwrap_or_default().to_string(),
        format!("{} / fix: {}", phone["what"], phone["fix"]),
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn approval_links_use_the_public_url_and_doctor_checks_where_it_leads() -> Result<()> {
    let proxy = Proxy::start()?;
    let public = format!("http://127.0.0.1:{}", proxy.port);
    let home = Home::with_config(&TEST_CONFIG.replace(
        "\"port\": 0,",
        &format!("\"port\": 0, \"publicUrl\": \"{public}/\","),
    ))?;
    let daemon = home.start_daemon()?;
    let status = home.cli_json(&["status"])?;
    assert_eq!(status["approvalUrl"], json!(public), "{status:#}");
    assert_eq!(status["tunnel"], json!("publicUrl"));
    let local = status["localUrl"].as_str().unwrap_or_default().to_string();
    assert!(local.starts_with("http://localhost:"), "{status:#}");
    assert_eq!(daemon.base_url, public);
    let said = String::from_utf8_lossy(&home.cli(&["status"])?.stdout).into_owned();
    assert!(
        said.contains(&format!("tunnel:    publicUrl, forwarding to {local}")),
        "{said}"
    );

    // Nothing behind the proxy yet: it answers, but not as this daemon.
    let (level, what) = phone_check(&home)?;
    assert_eq!(level, "fail", "{what}");
    assert!(
        what.contains("does not lead to this agent-vaultd (it answered 502")
            && what.contains(&format!("tailscale serve --bg {local}")),
        "{what}"
    );

    // Forwarding to the daemon: doctor sees this run's own id there.
    let port: u16 = local.rsplit(':').next().unwrap_or_default().parse()?;
    proxy.target.store(port, Ordering::Relaxed);
    let (level, what) = phone_check(&home)?;
    assert_eq!(level, "ok", "{what}");
    assert!(what.contains("leads to this agent-vaultd"), "{what}");

    // A phone pairs and approves through the public address only.
    let approver = Approver::pair(&home, &public).await?;
    let links = pairing_links(&daemon.log());
    assert!(
        !links.is_empty()
            && links
                .iter()
                .all(|l| l.starts_with(&format!("{public}/pair/"))),
        "{links:?}"
    );
    let agent = Agent::start(&home).await?;
    let call = agent.call_in_background(
        "get_secret",
        json!({"vault": "dev", "name": "API_KEY", "reason": "through the proxy"}),
    );
    let pending = one_pending(&home).await?;
    let url = pending["url"].as_str().unwrap_or_default();
    assert!(
        url.starts_with(&format!("{public}/approve/")),
        "{pending:#}"
    );
    let id = pending["id"].as_str().unwrap_or_default();
    let (code, _) = approver.decide(id, "approve", None).await?;
    assert_eq!(code, 200);
    let (r, agent) = call.finish().await?;
    assert_eq!(r.text(), "value-of-api-key-7f3a", "{r:?}");
    agent.stop().await;

    // A project's config (an agent may have written it) cannot send the
    // approval links to a page of its own.
    let project = home.project.join("elsewhere");
    std::fs::create_dir(&project)?;
    std::fs::write(
        project.join("agent-vault.config.json"),
        r#"{"vaults": {"dev": {"type": "env"}}, "publicUrl": "https://attacker.example"}"#,
    )?;
    let agent = Agent::start_in(&home, &project).await?;
    let r = agent
        .call(
            "get_secret",
            json!({"vault": "dev", "name": "API_KEY", "reason": "redirect"}),
        )
        .await?;
    assert!(
        r.is_error
            && r.text()
                .contains("publicUrl: only agent-vaultd's own config"),
        "{r:?}"
    );
    agent.stop().await;
    assert!(
        home.cli_json(&["pending"])?
            .as_array()
            .is_some_and(|p| p.is_empty())
    );

    // The proxy gone: this machine gets no answer, which a phone on the
    // tailnet might still get, so it warns rather than fails.
    drop(proxy);
    let (level, what) = poll(Duration::from_secs(5), || {
        phone_check(&home).ok().filter(|(l, _)| l == "warn")
    })?;
    assert_eq!(level, "warn");
    assert!(what.contains("did not answer here"), "{what}");
    Ok(())
}
