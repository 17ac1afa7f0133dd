//! Passkey approvals, driven with webauthn-authenticator-rs's software
//! authenticator against the real daemon's JSON endpoints (the same calls
//! `/static/passkey.js` makes in a browser): registration, an approval whose
//! signature covers the request's digest, a bad signature, an assertion made
//! for another request, and an authenticator that does not verify its user.

use agent_vault_e2e::*;
use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

fn config() -> String {
    TEST_CONFIG
        .replace(
            "\"rw\":",
            "\"pk\": { \"type\": \"env\", \"file\": \".env.secrets\", \"ttl\": 30, \"approval\": { \"require\": \"passkey\" } },\n    \"rw\":",
        )
        .replace("\"waitSeconds\": 3", "\"waitSeconds\": 60")
}

/// The value of an HTML attribute (first occurrence).
fn attr(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("{name}=\""))? + name.len() + 2;
    let end = html[at..].find('"')?;
    Some(html[at..at + end].to_string())
}

async fn post_json(approver: &Approver, path: &str, body: &Value) -> Result<(u16, Value)> {
    let res = approver
        .http
        .post(format!("{}{path}", approver.base))
        .header("cookie", &approver.cookie)
        .json(body)
        .send()
        .await?;
    let status = res.status().as_u16();
    let text = res.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

/// A 403 whose error names `why`.
fn refused_because(status: u16, body: &Value, why: &str) {
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap_or("").contains(why), "{body}");
}

fn origin(approver: &Approver) -> Result<url::Url> {
    Ok(url::Url::parse(&approver.base)?)
}

/// Registers `key` for `approver`'s device through the passkeys page.
async fn register(approver: &Approver, key: &mut SoftPasskey) -> Result<(u16, Value)> {
    register_with(approver, key, |_| {}).await
}

/// As [`register`], with the options changed on their way to the
/// authenticator (as a compromised page or browser could).
async fn register_with(
    approver: &Approver,
    key: &mut SoftPasskey,
    tweak: impl FnOnce(&mut Value),
) -> Result<(u16, Value)> {
    let (status, html) = approver.page("/passkeys").await?;
    if status != 200 {
        bail!("passkeys page: {status}");
    }
    let csrf = attr(&html, "data-csrf").context("no data-csrf on the passkeys page")?;
    let (status, options) =
        post_json(approver, "/passkeys/register/start", &json!({"csrf": csrf})).await?;
    if status != 200 {
        bail!("register/start: {status} {options}");
    }
    let mut options = options;
    tweak(&mut options);
    let credential = key
        .do_registration(origin(approver)?, serde_json::from_value(options)?)
        .map_err(|e| anyhow!("software authenticator: {e:?}"))?;
    post_json(
        approver,
        "/passkeys/register/finish",
        &json!({"csrf": csrf, "credential": credential}),
    )
    .await
}

/// Starts the passkey ceremony for request `id` with `window` minutes:
/// the form token and the options for `navigator.credentials.get()`.
async fn start(approver: &Approver, id: &str, window: f64) -> Result<(String, Value)> {
    let (status, html) = approver.page(&format!("/approve/{id}")).await?;
    if status != 200 {
        bail!("approval page: {status}");
    }
    if !html.contains("Approve with passkey") {
        bail!("the approval page offers no passkey button:\n{html}");
    }
    let csrf = form_value(&html, "csrf").context("no csrf")?;
    let (status, options) = post_json(
        approver,
        &format!("/approve/{id}/passkey/start"),
        &json!({"csrf": csrf, "window": window}),
    )
    .await?;
    if status != 200 {
        bail!("passkey/start: {status} {options}");
    }
    Ok((csrf, options))
}

fn sign(approver: &Approver, key: &mut SoftPasskey, options: &Value) -> Result<Value> {
    let assertion = key
        .do_authentication(origin(approver)?, serde_json::from_value(options.clone())?)
        .map_err(|e| anyhow!("software authenticator: {e:?}"))?;
    Ok(serde_json::to_value(assertion)?)
}

async fn finish(
    approver: &Approver,
    id: &str,
    csrf: &str,
    credential: &Value,
) -> Result<(u16, Value)> {
    post_json(
        approver,
        &format!("/approve/{id}/passkey/finish"),
        &json!({"csrf": csrf, "credential": credential}),
    )
    .await
}

fn ask(agent: Agent, name: &'static str, reason: &'static str) -> InFlight {
    agent.call_in_background(
        "get_secret",
        json!({"vault": "pk", "name": name, "reason": reason}),
    )
}

fn pending_ids(home: &Home) -> Result<Vec<String>> {
    Ok(home
        .cli_json(&["pending"])?
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

fn digests(home: &Home, action: &str) -> Result<Vec<String>> {
    let _ = home.cli(&["audit", "--limit", "1"]);
    let conn = rusqlite::Connection::open(home.db())?;
    let mut stmt =
        conn.prepare("SELECT approval_digest FROM audit WHERE action = ?1 ORDER BY id")?;
    let rows = stmt
        .query_map([action], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(rows)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_passkey_approval_signs_the_request_digest_and_releases_the_value() -> Result<()> {
    let home = Home::with_config(&config())?;
    let daemon = home.start_daemon()?;
    assert!(
        daemon.base_url.starts_with("http://localhost:"),
        "{}",
        daemon.base_url
    );
    let status = home.cli_json(&["status"])?;
    assert_eq!(status["passkeys"], json!("for localhost"), "{status}");
    let phone = Approver::pair(&home, &daemon.base_url).await?;
    let mut key = SoftPasskey::new(true);

    // Without a passkey the card says so and offers no approve button.
    let call = ask(
        Agent::start(&home).await?,
        "API_KEY",
        "deploy the staging app",
    );
    let id = one_pending_id(&home).await?;
    let (_, html) = phone.page(&format!("/approve/{id}")).await?;
    assert!(html.contains("this device has none"), "{html}");
    assert!(!html.contains("passkey-approve"));
    assert!(html.contains("<script src=\"/static/passkey.js\""));

    let (status, body) = register(&phone, &mut key).await?;
    assert_eq!(status, 200, "{body}");
    let (_, page) = phone.page("/passkeys").await?;
    assert!(!page.contains("no passkey yet"), "{page}");

    // The plain form cannot approve a passkey vault.
    let (status, _) = phone.decide(&id, "approve", Some("0")).await?;
    assert_eq!(status, 403);
    assert_eq!(pending_ids(&home)?, vec![id.clone()]);

    // The ceremony: a challenge that commits to the request, signed with
    // user verification, approves with the 5-minute window it named.
    let (csrf, options) = start(&phone, &id, 5.0).await?;
    let assertion = sign(&phone, &mut key, &options)?;
    let (status, body) = finish(&phone, &id, &csrf, &assertion).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], json!("approved"));
    let digest = body["digest"].as_str().unwrap_or_default().to_string();
    assert_eq!(digest.len(), 64);
    let (r, agent) = call.finish().await?;
    assert_eq!(r.texts, ["value-of-api-key-7f3a"], "{r:?}");

    // The audit row keeps the digest; the window is the one signed for.
    assert_eq!(digests(&home, "approved")?, [digest]);
    let grants = home.cli_json(&["grants"])?;
    let left = grants[0]["expiresAtMs"].as_i64().unwrap_or(0) - chrono_now_ms();
    assert!(
        (4 * 60_000..=5 * 60_000 + 5_000).contains(&left),
        "{grants}"
    );

    // A replay of the same assertion is refused: its ceremony is used up.
    let (status, _) = finish(&phone, &id, &csrf, &assertion).await?;
    assert!(status == 403 || status == 409, "{status}");
    let verify = home.cli(&["audit", "verify"])?;
    assert!(verify.status.success());
    agent.stop().await;
    Ok(())
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_signature_and_an_assertion_for_another_request_are_refused() -> Result<()> {
    let home = Home::with_config(&config())?;
    let daemon = home.start_daemon()?;
    let phone = Approver::pair(&home, &daemon.base_url).await?;
    let mut key = SoftPasskey::new(true);
    let (status, body) = register(&phone, &mut key).await?;
    assert_eq!(status, 200, "{body}");

    let first = ask(Agent::start(&home).await?, "API_KEY", "request A");
    let a = one_pending_id(&home).await?;
    let second = ask(Agent::start(&home).await?, "OTHER", "request B");
    let b = poll(std::time::Duration::from_secs(15), || {
        pending_ids(&home).ok()?.into_iter().find(|id| *id != a)
    })?;

    // A: signed properly, then the signature broken before it is sent.
    let (csrf_a, options_a) = start(&phone, &a, 0.0).await?;
    let mut tampered = sign(&phone, &mut key, &options_a)?;
    let sig = tampered["response"]["signature"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut chars: Vec<char> = sig.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    tampered["response"]["signature"] = json!(chars.into_iter().collect::<String>());
    let (status, body) = finish(&phone, &a, &csrf_a, &tampered).await?;
    refused_because(status, &body, "failed");

    // A again, signed properly; the assertion is then offered for B, whose
    // own ceremony is under way (its challenge is B's, not A's).
    let (csrf_a, options_a) = start(&phone, &a, 0.0).await?;
    let for_a = sign(&phone, &mut key, &options_a)?;
    let (csrf_b, _options_b) = start(&phone, &b, 0.0).await?;
    let (status, body) = finish(&phone, &b, &csrf_b, &for_a).await?;
    refused_because(status, &body, "challenge differs");
    // And for B with no ceremony at all (B's was used up by that attempt).
    let (status, _) = finish(&phone, &b, &csrf_b, &for_a).await?;
    assert_eq!(status, 403);
    // A's token does not carry over to B either.
    let (status, _) = finish(&phone, &b, &csrf_a, &for_a).await?;
    assert_eq!(status, 403);
    let mut still = pending_ids(&home)?;
    still.sort();
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(still, both, "nothing was approved");

    // The assertion made for A still approves A (its ceremony is intact).
    let (status, body) = finish(&phone, &a, &csrf_a, &for_a).await?;
    assert_eq!(status, 200, "{body}");
    let (r, agent_a) = first.finish().await?;
    assert_eq!(r.texts, ["value-of-api-key-7f3a"], "{r:?}");
    assert_eq!(pending_ids(&home)?, vec![b.clone()]);
    phone.decide(&b, "deny", None).await?;
    let (r, agent_b) = second.finish().await?;
    assert!(r.is_error && r.text().contains("denied"), "{r:?}");

    let refused: Vec<String> = audit_actions(&home)?
        .into_iter()
        .filter(|(a, _)| a == "refused")
        .map(|(a, _)| a)
        .collect();
    assert_eq!(refused.len(), 3, "every refused assertion is audited");
    agent_a.stop().await;
    agent_b.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_passkey_without_user_verification_is_refused_and_another_device_cannot_use_mine()
-> Result<()> {
    let home = Home::with_config(&config())?;
    let daemon = home.start_daemon()?;
    let phone = Approver::pair(&home, &daemon.base_url).await?;
    let laptop = Approver::pair_another(&home, &phone, "laptop").await?;

    // An authenticator that does not verify its user cannot register, even
    // when the page asks it not to (the daemon checks the flag it signed).
    let mut presence_only = SoftPasskey::new(false);
    let (status, body) = register_with(&phone, &mut presence_only, |o| {
        o["publicKey"]["authenticatorSelection"]["userVerification"] = json!("discouraged");
    })
    .await?;
    refused_because(status, &body, "user verified bit");

    let mut key = SoftPasskey::new(true);
    let (status, body) = register(&phone, &mut key).await?;
    assert_eq!(status, 200, "{body}");

    let call = ask(Agent::start(&home).await?, "API_KEY", "deploy");
    let id = one_pending_id(&home).await?;
    // The laptop has no passkey of its own: it cannot start a ceremony...
    let (_, html) = laptop.page(&format!("/approve/{id}")).await?;
    let csrf_laptop = form_value(&html, "csrf").unwrap_or_default();
    let (status, _) = post_json(
        &laptop,
        &format!("/approve/{id}/passkey/start"),
        &json!({"csrf": csrf_laptop}),
    )
    .await?;
    assert_eq!(status, 409);
    // ...nor use an assertion made on the phone.
    let (csrf_phone, options) = start(&phone, &id, 0.0).await?;
    let assertion = sign(&phone, &mut key, &options)?;
    let (status, _) = finish(&laptop, &id, &csrf_laptop, &assertion).await?;
    assert_eq!(status, 403);
    // An assertion without user verification (the page told the
    // authenticator not to ask) is refused although its signature is good.
    let (_, mut options) = start(&phone, &id, 0.0).await?;
    options["publicKey"]["userVerification"] = json!("discouraged");
    let unverified = sign(&phone, &mut key, &options)?;
    let (status, body) = finish(&phone, &id, &csrf_phone, &unverified).await?;
    refused_because(status, &body, "user verified bit");
    assert_eq!(pending_ids(&home)?, vec![id.clone()]);

    // Revoking the phone removes its passkeys; the request stays pending
    // and the laptop can still deny it without any passkey.
    let phone_id = phone
        .cookie
        .trim_start_matches("av_device=")
        .split('.')
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(
        home.cli(&["devices", "revoke", &phone_id])?
            .status
            .success()
    );
    let conn = rusqlite::Connection::open(home.db())?;
    let left: i64 = conn.query_row("SELECT COUNT(*) FROM passkeys", [], |r| r.get(0))?;
    assert_eq!(left, 0);
    laptop.decide(&id, "deny", None).await?;
    let (r, agent) = call.finish().await?;
    assert!(r.is_error && r.text().contains("denied"), "{r:?}");
    agent.stop().await;
    Ok(())
}

/// The page script itself, in a real Chromium with its virtual
/// authenticator (user verification on): add a passkey from the passkeys
/// page, then approve from the approval page, under the pages' CSP.
#[tokio::test(flavor = "multi_thread")]
async fn chromium_adds_a_passkey_and_approves_with_it_through_the_page_script() -> Result<()> {
    use agent_vault_e2e::browser::Browser;
    use tokio::task::block_in_place;
    let home = Home::with_config(&config())?;
    let daemon = home.start_daemon()?;
    let phone = Approver::pair(&home, &daemon.base_url).await?;
    let base = daemon.base_url.clone();
    let cookie = phone.cookie.trim_start_matches("av_device=").to_string();
    let wait = std::time::Duration::from_secs(20);

    let (mut browser, tab) = block_in_place(|| -> Result<_> {
        let mut browser = Browser::launch()?;
        let tab = browser.tab()?;
        let s = Some(tab.session.as_str());
        browser.call(s, "WebAuthn.enable", json!({}))?;
        browser.call(
            s,
            "WebAuthn.addVirtualAuthenticator",
            json!({"options": {
                "protocol": "ctap2", "transport": "internal", "hasResidentKey": true,
                "hasUserVerification": true, "isUserVerified": true,
                "automaticPresenceSimulation": true
            }}),
        )?;
        browser.call(
            s,
            "Network.setCookie",
            json!({"name": "av_device", "value": cookie, "url": base,
                   "httpOnly": true, "sameSite": "Strict"}),
        )?;
        // The device proof the pages' script keeps for this origin.
        browser.open(&tab, &format!("{base}/"))?;
        browser.eval(
            &tab,
            &format!("localStorage.setItem('av-proof', '{}')", phone.proof),
        )?;
        browser.open(&tab, &format!("{base}/passkeys"))?;
        browser.eval(&tab, "document.getElementById('passkey-register').click()")?;
        browser.wait_for(&tab, "document.body.innerText.includes('added ')", wait)?;
        Ok((browser, tab))
    })?;
    let conn = rusqlite::Connection::open(home.db())?;
    let stored: i64 = conn.query_row("SELECT COUNT(*) FROM passkeys", [], |r| r.get(0))?;
    assert_eq!(stored, 1, "console: {:?}", browser.console);

    let call = ask(
        Agent::start(&home).await?,
        "API_KEY",
        "<img src=x onerror=alert(1)> deploy",
    );
    let id = one_pending_id(&home).await?;
    let escaped = block_in_place(|| -> Result<Value> {
        browser.open(&tab, &format!("{base}/approve/{id}"))?;
        let escaped = browser.eval(
            &tab,
            "document.querySelector('.reason').innerText.includes('<img src=x') && !document.querySelector('.reason img')",
        )?;
        browser.eval(&tab, "document.getElementById('window').value = '5'")?;
        browser.eval(&tab, "document.getElementById('passkey-approve').click()")?;
        browser.wait_for(&tab, "document.body.innerText.includes('Approved.')", wait)?;
        Ok(escaped)
    })?;
    assert_eq!(
        escaped,
        json!(true),
        "the agent's reason is text, not markup"
    );
    let (r, agent) = call.finish().await?;
    assert_eq!(r.texts, ["value-of-api-key-7f3a"], "{r:?}");
    let signed = digests(&home, "approved")?;
    assert!(signed.len() == 1 && signed[0].len() == 64, "{signed:?}");
    let grants = home.cli_json(&["grants"])?;
    let left = grants[0]["expiresAtMs"].as_i64().unwrap_or(0) - chrono_now_ms();
    assert!(
        (4 * 60_000..=5 * 60_000 + 5_000).contains(&left),
        "the chosen window: {grants}"
    );
    assert!(
        !browser
            .console
            .iter()
            .any(|l| l.contains("Content Security Policy")),
        "{:?}",
        browser.console
    );
    agent.stop().await;
    Ok(())
}
