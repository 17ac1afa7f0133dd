//! The `gcp-secret-manager` vault type end to end, through the shim,
//! against `tests/py/gcp_standin.py`, a local stand-in for Secret Manager's
//! REST API and Google's token endpoint written from Google's public
//! documentation (the real service is on the internet only): a service
//! account's signed JWT traded for a token (the stand-in checks the RS256
//! signature), the metadata server for the daemon's own config, listing
//! under a prefix over several pages, fields of a JSON secret, writes that
//! add versions and create secrets, and refusals: a key Google does not
//! accept, a role that may list but not read, a rate limit.

use agent_vault_e2e::peers::{HttpStandIn, gcp_service_account};
use agent_vault_e2e::*;
use anyhow::Result;
use base64::Engine;
use serde_json::{Value, json};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn get(vault: &str, name: &str) -> Value {
    json!({"vault": vault, "name": name, "reason": "gcp test"})
}

#[tokio::test(flavor = "multi_thread")]
async fn secret_manager_through_the_shim_against_the_stand_in() -> Result<()> {
    let home = Home::new()?;
    let mut secrets = serde_json::Map::new();
    for (id, value) in [
        ("web-db", r#"{"user":"web","password":"gcp-pass-61"}"#),
        ("web-api-key", "gcp-key-7a7a"),
        ("other-x", "outside-1f1f"),
    ] {
        secrets.insert(id.into(), json!([B64.encode(value)]));
    }
    // Enough others for the listing to take several pages of 250.
    for i in 0..300 {
        secrets.insert(format!("filler-{i:03}"), json!([B64.encode("f")]));
    }
    let server = HttpStandIn::start_script(
        &home,
        "gcp_standin.py",
        &json!({"project": "demo-project", "number": 402917346551_u64, "accounts": {},
                "secrets": secrets, "tokens": {}, "mode": "",
                "metadata_account": "vm@demo-project.iam.gserviceaccount.com"}),
    )
    .await?;
    let token_uri = format!("{}/token", server.url);
    let (key, public) =
        gcp_service_account("web@demo-project.iam.gserviceaccount.com", &token_uri)?;
    let (limited, limited_public) =
        gcp_service_account("lister@demo-project.iam.gserviceaccount.com", &token_uri)?;
    // A key for a known account, signed by another private key.
    let (forged, _) = gcp_service_account("web@demo-project.iam.gserviceaccount.com", &token_uri)?;
    server.update(|db| {
        db["accounts"] = json!({
            "web@demo-project.iam.gserviceaccount.com": {"public": public},
            "lister@demo-project.iam.gserviceaccount.com": {"public": limited_public, "permissions": ["list"]},
            "vm@demo-project.iam.gserviceaccount.com": {"public": ""},
        });
    })?;

    let vault = |credentials: Option<&str>, extra: Value| {
        let mut v = json!({"type": "gcp-secret-manager", "project": "demo-project", "endpoint": server.url});
        if let Some(c) = credentials {
            v["credentials"] = c.into();
        }
        for (k, x) in extra.as_object().into_iter().flatten() {
            v[k] = x.clone();
        }
        v
    };
    let config = json!({
        "vaults": {
            "gcp": vault(Some("env:GCP_KEY"), json!({"prefix": "web-", "writable": true, "ttl": 60, "ttlScope": "vault"})),
            "meta": vault(None, json!({"prefix": "other-"})),
            "limited": vault(Some("env:GCP_LIMITED_KEY"), json!({"prefix": "web-"})),
            "forged": vault(Some("env:GCP_FORGED_KEY"), json!({})),
        },
        "port": 0,
        "approval": {"waitSeconds": 20}
    });
    std::fs::write(home.config_path(), config.to_string())?;
    let metadata_host = server.url.trim_start_matches("http://").to_string();
    let daemon = Daemon::start(&home, |c| {
        c.env("GCP_KEY", key.to_string())
            .env("GCP_LIMITED_KEY", limited.to_string())
            .env("GCP_FORGED_KEY", forged.to_string())
            .env("GCE_METADATA_HOST", &metadata_host);
    })?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    let agent = Agent::start(&home).await?;

    let text = agent.call("list_secrets", json!({})).await?.text();
    assert!(
        text.contains("[gcp] (writable)\n  - api-key\n  - db\n"),
        "{text}"
    );
    // The daemon's own config may use the machine's metadata server.
    assert!(text.contains("[meta]\n  - x\n"), "{text}");
    assert!(
        text.contains("vault \"forged\": the backend refused the vault's credentials")
            && text.contains("Invalid JWT Signature."),
        "{text}"
    );

    let (r, agent) = call_and_decide(
        &home,
        &approver,
        agent,
        "get_secret",
        get("gcp", "db#password"),
        "approve",
    )
    .await?;
    assert!(!r.is_error && r.text() == "gcp-pass-61", "{r:?}");
    let r = agent.call("get_secret", get("gcp", "api-key")).await?;
    assert!(!r.is_error && r.text() == "gcp-key-7a7a", "{r:?}");
    let r = agent.call("get_secret", get("gcp", "db")).await?;
    let whole: Value = serde_json::from_str(&r.text())?;
    assert_eq!(whole, json!({"user": "web", "password": "gcp-pass-61"}));
    let r = agent.call("get_secret", get("gcp", "a/b")).await?;
    assert!(
        r.is_error && r.text().contains("is not a secret id"),
        "{r:?}"
    );
    let r = agent.call("get_secret", get("gcp", "nope")).await?;
    assert!(
        r.is_error && r.text().contains("no secret named nope"),
        "{r:?}"
    );

    // Writes: a new version, a merged field, a new secret.
    let mut agent = agent;
    for (name, value) in [
        ("api-key", "gcp-key-rotated"),
        ("db#password", "gcp-pass-rotated"),
        ("new-token", "gcp-new-1"),
    ] {
        let (r, a) = call_and_decide(
            &home,
            &approver,
            agent,
            "set_secret",
            json!({"vault": "gcp", "name": name, "value": value, "reason": "write test"}),
            "approve",
        )
        .await?;
        assert!(!r.is_error, "{name}: {r:?}");
        agent = a;
    }
    let latest = |id: &str| -> Result<String> {
        let db = server.db()?;
        let versions = db["secrets"][id].as_array().cloned().unwrap_or_default();
        let last = versions.last().and_then(Value::as_str).unwrap_or_default();
        Ok(String::from_utf8(B64.decode(last)?)?)
    };
    assert_eq!(latest("web-api-key")?, "gcp-key-rotated");
    let db: Value = serde_json::from_str(&latest("web-db")?)?;
    assert_eq!(db, json!({"user": "web", "password": "gcp-pass-rotated"}));
    assert_eq!(latest("web-new-token")?, "gcp-new-1");
    assert_eq!(
        server.db()?["secrets"]["web-api-key"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    // A role that may list but not read: refused after the approval.
    let (r, agent) = call_and_decide(
        &home,
        &approver,
        agent,
        "get_secret",
        get("limited", "db"),
        "approve",
    )
    .await?;
    assert!(
        r.is_error
            && r.text().contains("its credentials may not do this")
            && r.text().contains("secretmanager.versions.access"),
        "{r:?}"
    );
    // Google's rate limit reaches the agent as such.
    server.update(|db| db["mode"] = "ratelimit".into())?;
    let r = agent.call("get_secret", get("gcp", "api-key")).await?;
    assert!(r.is_error && r.text().contains("rate-limited"), "{r:?}");
    agent.stop().await;

    let log = daemon.log();
    for s in [
        "gcp-pass-61",
        "gcp-key-7a7a",
        "gcp-key-rotated",
        "PRIVATE KEY",
    ] {
        assert!(!log.contains(s), "{s} in the daemon's log");
    }
    Ok(())
}
