//! A co-located agent trying to approve its own request: every way in
//! without the paired device's credential is refused and changes nothing.

use std::time::Duration;

use agent_vault_e2e::*;
use anyhow::Result;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn self_approval_without_the_device_credential_is_refused() -> Result<()> {
    let home = Home::new()?;
    let daemon = home.start_daemon()?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    let agent = Agent::start(&home).await?;
    let call = agent.call_with_progress_in_background(
        "get_secret",
        json!({"vault": "dev", "name": "API_KEY", "reason": "totally legit"}),
    );
    let pending = one_pending(&home).await?;
    let id = pending["id"].as_str().unwrap_or_default().to_string();
    let url = format!("{}/approve/{id}", daemon.base_url);
    let attacker = http();

    // The link itself carries no authority.
    let r = attacker.get(&url).send().await?;
    assert_eq!(r.status(), 401);
    assert!(!r.text().await?.contains("csrf"));
    // The dashboard lists nothing to an unpaired caller.
    let r = attacker.get(format!("{}/", daemon.base_url)).send().await?;
    assert_eq!(r.status(), 401);
    assert!(!r.text().await?.contains(&id));
    // POSTs without a cookie, with a forged one, or with a stolen form token.
    let csrf_for_device =
        form_value(&approver.page(&format!("/approve/{id}")).await?.1, "csrf").unwrap_or_default();
    for cookie in [
        "",
        "av_device=forged.value",
        "av_device=",
        &format!("{}x", approver.cookie),
    ] {
        let mut req = attacker
            .post(&url)
            .form(&[("decision", "approve"), ("csrf", csrf_for_device.as_str())]);
        if !cookie.is_empty() {
            req = req.header("cookie", cookie);
        }
        assert_eq!(req.send().await?.status(), 401, "cookie {cookie:?}");
    }
    // A GET cannot approve.
    let r = attacker
        .get(format!("{url}?decision=approve&csrf={csrf_for_device}"))
        .header("cookie", &approver.cookie)
        .send()
        .await?;
    assert_eq!(r.status(), 200, "a GET only shows the page");
    // The device cookie without the right form token: 403.
    for csrf in [
        "",
        "wrong",
        &form_value(&approver.page("/").await?.1, "csrf").unwrap_or_default(),
    ] {
        let r = attacker
            .post(&url)
            .header("cookie", &approver.cookie)
            .form(&[("decision", "approve"), ("csrf", csrf)])
            .send()
            .await?;
        assert_eq!(r.status(), 403, "csrf {csrf:?}");
    }
    // A used pairing link cannot mint a second credential.
    let pair = home.cli_json(&["pair"])?["url"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let first = attacker
        .post(&pair)
        .form(&[("label", "attacker"), ("proof", new_proof().as_str())])
        .send()
        .await?;
    assert_eq!(first.status(), 303);
    assert!(
        set_cookie(&first, "av_device").is_none(),
        "a second device needs approval on the first"
    );
    let replay = attacker
        .post(&pair)
        .form(&[("label", "again")])
        .send()
        .await?;
    assert_eq!(replay.status(), 410);

    // Nothing changed: still pending, the agent is still waiting.
    let still = one_pending(&home).await?;
    assert_eq!(still["id"], json!(id));
    assert!(!call.is_finished());
    assert!(!audit_actions(&home)?.iter().any(|(a, _)| a == "approved"));

    // The human's real approval still works.
    approver.decide(&id, "deny", None).await?;
    let (r, agent) = call.finish_within(Duration::from_secs(10)).await?;
    assert!(r.is_error && r.text().contains("denied"), "{r:?}");
    agent.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_device_pairs_only_with_approval_from_the_first() -> Result<()> {
    let home = Home::new()?;
    let daemon = home.start_daemon()?;
    let phone = Approver::pair(&home, &daemon.base_url).await?;
    let laptop = http();
    let url = home.cli_json(&["pair"])?["url"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let claimed = laptop
        .post(&url)
        .form(&[("label", "laptop <b>"), ("proof", new_proof().as_str())])
        .send()
        .await?;
    let claim = set_cookie(&claimed, "av_claim").unwrap_or_default();
    assert!(!claim.is_empty());
    let wait = format!("{}/pair-wait", daemon.base_url);
    let r = laptop.get(&wait).header("cookie", &claim).send().await?;
    assert_eq!(r.status(), 200);
    assert!(set_cookie(&r, "av_device").is_none());

    let (_, dash) = phone.page("/").await?;
    assert!(dash.contains("laptop &lt;b&gt;"), "the label is escaped");
    let at = dash.find("action=\"/pairings/").unwrap_or(0) + "action=\"".len();
    let action = dash[at..].split('"').next().unwrap_or_default().to_string();
    let csrf = form_value(&dash, "csrf").unwrap_or_default();
    let r = phone
        .http
        .post(format!("{}{action}", daemon.base_url))
        .header("cookie", &phone.cookie)
        .form(&[("decision", "approve"), ("csrf", csrf.as_str())])
        .send()
        .await?;
    assert_eq!(r.status(), 303);

    let r = laptop.get(&wait).header("cookie", &claim).send().await?;
    let device = set_cookie(&r, "av_device").unwrap_or_default();
    assert!(!device.is_empty());
    let r = laptop
        .get(format!("{}/", daemon.base_url))
        .header("cookie", &device)
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    let rows = audit_actions(&home)?;
    assert_eq!(
        rows.iter().filter(|(a, _)| a == "paired").count(),
        2,
        "{rows:?}"
    );
    assert!(rows.iter().any(|(a, _)| a == "pair_approved"));
    let status = home.cli_json(&["status"])?;
    assert_eq!(status["devices"].as_array().map_or(0, Vec::len), 2);

    // Unpairing takes effect at once and is audited.
    let devices = home.cli_json(&["devices"])?;
    let laptop_id = devices
        .as_array()
        .and_then(|d| d.iter().find(|x| x["label"] == json!("laptop <b>")))
        .and_then(|x| x["id"].as_str())
        .unwrap_or_default()
        .to_string();
    home.cli_json(&["devices", "revoke", &laptop_id])?;
    let r = laptop
        .get(format!("{}/", daemon.base_url))
        .header("cookie", &device)
        .send()
        .await?;
    assert_eq!(r.status(), 401);
    assert_eq!(
        phone.page("/").await?.0,
        200,
        "the other device still works"
    );
    assert!(
        audit_actions(&home)?
            .iter()
            .any(|(a, _)| a == "device_revoked")
    );
    assert!(
        !home
            .cli(&["devices", "revoke", "no-such-device"])?
            .status
            .success()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn guessing_credentials_is_throttled() -> Result<()> {
    let home = Home::new()?;
    let daemon = home.start_daemon()?;
    let attacker = http();
    let mut statuses = Vec::new();
    for i in 0..25 {
        let r = attacker
            .get(format!("{}/", daemon.base_url))
            .header("cookie", format!("av_device=guess{i}.secret"))
            .send()
            .await?;
        statuses.push(r.status().as_u16());
    }
    assert_eq!(&statuses[..20], &[401; 20]);
    assert!(statuses[20..].iter().all(|s| *s == 429), "{statuses:?}");
    // Once throttled, pairing links are not even looked at.
    let url = Approver::link(&home)?;
    assert_eq!(attacker.get(&url).send().await?.status(), 429);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quorum_of_two_is_not_satisfied_by_one_device() -> Result<()> {
    let home = Home::with_config(&TEST_CONFIG.replace(
        "\"rw\":",
        "\"two\": { \"type\": \"env\", \"file\": \".env.secrets\", \"approval\": { \"approvers\": 2 } },\n    \"rw\":",
    ))?;
    let daemon = home.start_daemon()?;
    let phone = Approver::pair(&home, &daemon.base_url).await?;
    let laptop = Approver::pair_another(&home, &phone, "laptop").await?;
    let agent = Agent::start(&home).await?;
    let call = agent.call_in_background(
        "get_secret",
        json!({"vault": "two", "name": "API_KEY", "reason": "two keys"}),
    );
    let id = one_pending(&home).await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (status, page) = phone.decide(&id, "approve", None).await?;
    assert_eq!(status, 200);
    assert!(
        page.contains("1 of 2 devices") && page.contains("Another paired device must approve"),
        "{page}"
    );
    assert_eq!(
        one_pending(&home).await?["id"],
        json!(id),
        "still pending after one device"
    );
    assert!(!call.is_finished());
    // The same device cannot count twice.
    let (_, html) = phone.page(&format!("/approve/{id}")).await?;
    let csrf = form_value(&html, "csrf").unwrap_or_default();
    let again = phone
        .http
        .post(format!("{}/approve/{id}", daemon.base_url))
        .header("cookie", &phone.cookie)
        .form(&[("csrf", csrf.as_str()), ("decision", "approve")])
        .send()
        .await?;
    assert_eq!(again.status(), 409);
    assert!(!call.is_finished());

    let (status, _) = laptop.decide(&id, "approve", None).await?;
    assert_eq!(status, 200);
    let (r, agent) = call.finish().await?;
    assert_eq!(r.texts, ["value-of-api-key-7f3a"], "{r:?}");
    let rows = audit_actions(&home)?;
    assert!(
        rows.contains(&("partial_approval".into(), "API_KEY".into())),
        "{rows:?}"
    );
    let devices: String = rusqlite::Connection::open(home.db())?.query_row(
        "SELECT device_id FROM audit WHERE action = 'approved'",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(
        devices.split(',').count(),
        2,
        "both devices are recorded: {devices}"
    );
    agent.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_totp_vault_needs_a_fresh_code_and_refuses_a_replayed_one() -> Result<()> {
    let home = Home::with_config(&TEST_CONFIG.replace(
        "\"rw\":",
        "\"otp\": { \"type\": \"env\", \"file\": \".env.secrets\", \"approval\": { \"require\": \"totp\" } },\n    \"rw\":",
    ))?;
    let daemon = home.start_daemon()?;
    let phone = Approver::pair(&home, &daemon.base_url).await?;
    // The CLI's user is an agent user too: the secret is shown on the
    // daemon's terminal only.
    let reply = home.cli_json(&["pair", "--totp"])?;
    assert_eq!(reply["url"], json!(""), "{reply}");
    assert_eq!(reply["shownOnDaemonTerminal"], json!(true), "{reply}");
    let url = daemon.shown_on_terminal("otpauth://")?;
    let app = totp_rs::Totp::from_url(&url).map_err(|e| anyhow::anyhow!("{e}"))?;
    // A second enrollment (say, by an agent with the admin uid) is refused.
    assert!(!home.cli(&["pair", "--totp"])?.status.success());

    let agent = Agent::start(&home).await?;
    let approve_with = |id: String, code: Option<String>| {
        let phone = &phone;
        async move {
            let (_, html) = phone.page(&format!("/approve/{id}")).await?;
            assert!(
                html.contains("authenticator app"),
                "the card asks for a code"
            );
            let csrf = form_value(&html, "csrf").unwrap_or_default();
            let mut form = vec![("csrf", csrf), ("decision", "approve".to_string())];
            if let Some(c) = code {
                form.push(("code", c));
            }
            let r = phone
                .http
                .post(format!("{}/approve/{id}", phone.base))
                .header("cookie", &phone.cookie)
                .form(&form)
                .send()
                .await?;
            anyhow::Ok(r.status().as_u16())
        }
    };
    let ask = |agent: Agent, reason: &'static str| {
        agent.call_in_background(
            "get_secret",
            json!({"vault": "otp", "name": "OTHER", "reason": reason}),
        )
    };
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    // Stay clear of a step boundary so the replay really is in the same step.
    if now() % 30 > 25 {
        tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    }
    let call = ask(agent, "first");
    let id = one_pending(&home).await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(approve_with(id.clone(), None).await?, 403, "no code");
    assert_eq!(
        approve_with(id.clone(), Some("000000".into())).await?,
        403,
        "wrong code"
    );
    let code = app.generate(now()).to_string();
    // Taken: answered with a redirect to the request's page.
    assert_eq!(approve_with(id.clone(), Some(code.clone())).await?, 303);
    let (r, agent) = call.finish().await?;
    assert_eq!(r.texts, ["other-secret-91c2"], "{r:?}");

    // The same code again, on a new request: refused, and nothing changes.
    let call = ask(agent, "second");
    let id = one_pending(&home).await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        approve_with(id.clone(), Some(code)).await?,
        403,
        "a replayed code"
    );
    assert_eq!(one_pending(&home).await?["id"], json!(id));
    phone.decide(&id, "deny", None).await?;
    let (r, agent) = call.finish().await?;
    assert!(r.is_error && r.text().contains("denied"));
    let rows = audit_actions(&home)?;
    assert!(rows.iter().any(|(a, _)| a == "totp_enrolled"));
    agent.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn terminal_approval_is_refused_when_admins_are_agents_unless_allowed() -> Result<()> {
    let home = Home::with_config(&TEST_CONFIG.replace(
        "\"rw\":",
        "\"term\": { \"type\": \"env\", \"file\": \".env.secrets\", \"approval\": { \"allowTerminal\": true } },\n    \"rw\":",
    ))?;
    let _daemon = home.start_daemon()?;
    let agent = Agent::start(&home).await?;
    let ask = |agent: Agent, vault: &'static str| {
        agent.call_in_background(
            "get_secret",
            json!({"vault": vault, "name": "OTHER", "reason": "terminal"}),
        )
    };
    // Single-user mode: the admin uid is an agent uid, so an agent could
    // run `agent-vault approve` itself. Refused, and nothing changes.
    let call = ask(agent, "dev");
    let id = one_pending(&home).await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let out = home.cli(&["approve", &id])?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    // It says what to do, and not how an agent could switch it on.
    assert!(
        err.contains("terminal approval is off") && err.contains("Approve on a paired device"),
        "{err}"
    );
    assert!(!err.contains("allowTerminal"), "{err}");
    assert_eq!(one_pending(&home).await?["id"], json!(id));
    assert!(audit_actions(&home)?.iter().any(|(a, _)| a == "refused"));
    assert!(!home.cli(&["approve", &id, "--deny"])?.status.success());
    let (r, agent) = call.finish().await?;
    assert!(
        r.text().starts_with("Still waiting"),
        "denying from the terminal is refused too: {r:?}"
    );
    // This agent goes away; its request is cancelled with it.
    agent.stop().await;
    poll(std::time::Duration::from_secs(5), || {
        home.cli_json(&["pending"])
            .ok()?
            .as_array()?
            .is_empty()
            .then_some(())
    })?;
    let agent = Agent::start(&home).await?;

    // A vault that explicitly allows it: the interactive prompt approves.
    let call = ask(agent, "term");
    one_pending(&home).await?;
    let mut cli = home
        .command(&bin("agent-vault"))
        .arg("approve")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = cli.stdin.take() {
        use std::io::Write;
        stdin.write_all(b"y\n")?;
    }
    let out = cli.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("reason (the agent's words): terminal") && text.contains("approved"),
        "{text}"
    );
    let (r, agent) = call.finish().await?;
    assert_eq!(r.texts, ["other-secret-91c2"], "{r:?}");
    let device: String = rusqlite::Connection::open(home.db())?.query_row(
        "SELECT device_id FROM audit WHERE action = 'approved' AND vault = 'term'",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(device, format!("terminal:uid {}", nix::unistd::geteuid()));
    agent.stop().await;
    Ok(())
}

/// A project config is a file the agent may have written: it may ask for
/// more than agent-vaultd's own config, never for less. Its allowTerminal
/// is not honoured (so the agent cannot approve its own request with the
/// CLI), its window is capped, and the floor's factor and quorum apply.
#[tokio::test(flavor = "multi_thread")]
async fn a_project_config_cannot_relax_approval() -> Result<()> {
    let home = Home::with_config(&TEST_CONFIG.replace(
        "\"rw\":",
        "\"term\": { \"type\": \"env\", \"file\": \".env.secrets\", \"ttl\": 600, \"approval\": { \"allowTerminal\": true } },\n    \"rw\":",
    ))?;
    // The daemon's own config, apart from the project.
    let own = home.state.join("daemon.config.json");
    std::fs::write(
        &own,
        r#"{"vaults":{},"port":0,"approval":{"projects":{"maxTtl":5,"approvers":2}}}"#,
    )?;
    let _daemon = Daemon::start(&home, |c| {
        c.arg("--config").arg(&own);
    })?;
    let agent = Agent::start(&home).await?;
    let call = agent.call_in_background(
        "get_secret",
        json!({"vault": "term", "name": "OTHER", "reason": "relax"}),
    );
    let id = one_pending(&home).await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let out = home.cli(&["approve", &id])?;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("terminal approval is off"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(one_pending(&home).await?["id"], json!(id));
    let status = home.cli_json(&["status"])?;
    let term = status["vaults"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == "term"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(term["ttl"], json!(5), "{status}");
    assert_eq!(term["approvers"], json!(2), "{status}");
    let (r, agent) = call.finish().await?;
    assert!(r.text().starts_with("Still waiting"), "{r:?}");
    assert!(!r.text().contains("other-secret-91c2"));
    agent.stop().await;

    // A project config that tries to set the floor itself is refused.
    std::fs::write(
        home.config_path(),
        r#"{"vaults":{},"approval":{"projects":{"allowTerminal":true}}}"#,
    )?;
    let agent = Agent::start(&home).await?;
    let r = agent.call("list_secrets", json!({})).await?;
    assert!(r.is_error, "{r:?}");
    assert!(
        r.text()
            .contains("approval.projects: only agent-vaultd's own config"),
        "{r:?}"
    );
    agent.stop().await;
    Ok(())
}

/// The self-pairing path of issue 15, as an agent with a shell as the same
/// user would try it: get a first pairing link from the admin CLI, or
/// unpair the person's phone and pair a browser of its own.
#[tokio::test(flavor = "multi_thread")]
async fn the_agent_cannot_pair_itself_with_the_admin_cli() -> Result<()> {
    // A daemon in the background (its stderr a log file, no terminal):
    // before the first pairing, the CLI of an agent user gets no link, and
    // none is written anywhere.
    let home = Home::new()?;
    let log = log_path("daemon-background");
    let background = Daemon::start(&home, |c| {
        if let Ok(f) = std::fs::File::create(&log) {
            c.stderr(f);
        }
    })?;
    let out = home.cli(&["pair"])?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the first pairing link is not given here"),
        "{err}"
    );
    assert!(pairing_links(&std::fs::read_to_string(&log)?).is_empty());
    drop(background);

    // On a terminal, the link is shown there, never to the CLI.
    let home = Home::new()?;
    let daemon = home.start_daemon()?;
    let reply = home.cli_json(&["pair"])?;
    assert_eq!(reply["url"], json!(""), "{reply}");
    assert_eq!(reply["shownOnDaemonTerminal"], json!(true), "{reply}");
    let phone = Approver::pair(&home, &daemon.base_url).await?;
    let devices = home.cli_json(&["devices"])?;
    let phone_id = devices[0]["id"].as_str().unwrap_or_default().to_string();

    // The agent cannot unpair the person's only device...
    let out = home.cli(&["devices", "revoke", &phone_id])?;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is the last paired device"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(phone.page("/").await?.0, 200, "the phone still works");
    // ... and a link it gets now only asks the phone.
    let url = Approver::link(&home)?;
    let browser = http();
    let claimed = browser
        .post(&url)
        .form(&[
            ("label", "agent's browser"),
            ("proof", new_proof().as_str()),
        ])
        .send()
        .await?;
    assert!(set_cookie(&claimed, "av_device").is_none());
    let (_, dash) = phone.page("/").await?;
    assert!(
        dash.contains("agent&#39;s browser") || dash.contains("agent's browser"),
        "{dash}"
    );
    assert_eq!(
        home.cli_json(&["devices"])?.as_array().map(Vec::len),
        Some(1)
    );
    let refused = audit_actions(&home)?;
    assert!(refused.iter().any(|(a, _)| a == "refused"), "{refused:?}");
    Ok(())
}

/// Limits that protect the person, not the attacker: a flood of bad
/// requests from any loopback address (where local browsers and the tunnel
/// also arrive) does not lock out the paired phone, and guessing
/// authenticator codes with a device's credential locks that device's
/// second factor after five failures, even when the right code follows.
#[tokio::test(flavor = "multi_thread")]
async fn floods_spare_the_phone_and_code_guessing_locks_per_device() -> Result<()> {
    let home = Home::with_config(&TEST_CONFIG.replace(
        "\"rw\":",
        "\"otp\": { \"type\": \"env\", \"file\": \".env.secrets\", \"approval\": { \"require\": \"totp\" } },\n    \"rw\":",
    ))?;
    let daemon = home.start_daemon()?;
    let phone = Approver::pair(&home, &daemon.base_url).await?;

    // The flood comes from 127.0.0.2: a separate allowance no more.
    let attacker = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()?;
    let mut last = 0;
    for i in 0..25 {
        last = attacker
            .get(format!("{}/", daemon.base_url))
            .header("cookie", format!("av_device=guess{i}.secret"))
            .send()
            .await?
            .status()
            .as_u16();
    }
    assert_eq!(last, 429);
    let unpaired = http().get(format!("{}/", daemon.base_url)).send().await?;
    assert_eq!(unpaired.status(), 429, "127.0.0.1 without a credential too");
    assert_eq!(phone.page("/").await?.0, 200, "the phone is not locked out");

    // Authenticator codes: five wrong ones lock this device's factor.
    home.cli_json(&["pair", "--totp"])?;
    let url = daemon.shown_on_terminal("otpauth://")?;
    let app = totp_rs::Totp::from_url(&url).map_err(|e| anyhow::anyhow!("{e}"))?;
    let agent = Agent::start(&home).await?;
    let call = agent.call_in_background(
        "get_secret",
        json!({"vault": "otp", "name": "OTHER", "reason": "guess"}),
    );
    let id = one_pending(&home).await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let post_code = |code: String| {
        let (phone, id) = (&phone, id.clone());
        async move {
            let (_, html) = phone.page(&format!("/approve/{id}")).await?;
            let csrf = form_value(&html, "csrf").unwrap_or_default();
            let r = phone
                .http
                .post(format!("{}/approve/{id}", phone.base))
                .header("cookie", &phone.cookie)
                .form(&[
                    ("csrf", csrf),
                    ("decision", "approve".to_string()),
                    ("code", code),
                ])
                .send()
                .await?;
            anyhow::Ok((r.status().as_u16(), r.text().await?))
        }
    };
    for guess in ["000001", "000002", "000003", "000004", "000005"] {
        assert_eq!(post_code(guess.into()).await?.0, 403);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (status, page) = post_code(app.generate(now).to_string()).await?;
    assert_eq!(status, 429, "the right code after five wrong ones: {page}");
    assert!(page.contains("too many failed attempts"), "{page}");
    assert_eq!(one_pending(&home).await?["id"], json!(id), "still pending");
    assert!(
        audit_actions(&home)?
            .iter()
            .any(|(a, _)| a == "factor_locked")
    );
    // Denying needs no factor, and still works.
    phone.decide(&id, "deny", None).await?;
    let (r, agent) = call.finish().await?;
    assert!(r.is_error && r.text().contains("denied"), "{r:?}");
    assert!(!r.text().contains("other-secret-91c2"));
    agent.stop().await;
    Ok(())
}
