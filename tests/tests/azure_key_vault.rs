//! The `azure-key-vault` vault type end to end, through the shim, against
//! `tests/py/azure_standin.py`, a local stand-in for Key Vault's REST API
//! and Entra ID's token endpoint written from Microsoft's public
//! documentation (the real services are on the internet only): a service
//! principal's client secret traded for a token, a managed identity for the
//! daemon's own config, listing under a prefix across nextLink pages,
//! fields of a JSON secret, writes that add versions, and refusals: a wrong
//! client secret, a role that may list but not read, a rate limit.

use agent_vault_e2e::peers::HttpStandIn;
use agent_vault_e2e::*;
use anyhow::Result;
use serde_json::{Value, json};

fn get(vault: &str, name: &str) -> Value {
    json!({"vault": vault, "name": name, "reason": "azure test"})
}

#[tokio::test(flavor = "multi_thread")]
async fn key_vault_through_the_shim_against_the_stand_in() -> Result<()> {
    let home = Home::new()?;
    let mut secrets = serde_json::Map::new();
    for (name, value) in [
        ("web-db", r#"{"user":"web","password":"akv-pass-52"}"#),
        ("web-api-key", "akv-key-6c6c"),
        ("other-x", "outside-2a2a"),
    ] {
        secrets.insert(name.into(), json!({"versions": [value], "enabled": true}));
    }
    secrets.insert(
        "web-old".into(),
        json!({"versions": ["old-3b3b"], "enabled": false}),
    );
    // Enough others for the listing to take several pages of 25.
    for i in 0..40 {
        secrets.insert(
            format!("filler-{i:02}"),
            json!({"versions": ["f"], "enabled": true}),
        );
    }
    let server = HttpStandIn::start_script(
        &home,
        "azure_standin.py",
        &json!({"tenant": "contoso-tenant",
                "clients": {
                    "app-web": {"secret": "akv-client-secret-4d4d"},
                    "app-lister": {"secret": "lister-secret-5e5e", "permissions": ["list"]},
                    "mi-vm": {"secret": "-"}
                },
                "identity_header": "identity-header-8f8f", "identity_client": "mi-vm",
                "secrets": secrets, "tokens": {}, "mode": ""}),
    )
    .await?;
    let vault = |client: Option<(&str, &str)>, extra: Value| {
        let mut v =
            json!({"type": "azure-key-vault", "vaultUrl": server.url, "authorityHost": server.url});
        if let Some((id, secret)) = client {
            v["tenantId"] = "contoso-tenant".into();
            v["clientId"] = id.into();
            v["clientSecret"] = secret.into();
        }
        for (k, x) in extra.as_object().into_iter().flatten() {
            v[k] = x.clone();
        }
        v
    };
    let config = json!({
        "vaults": {
            "akv": vault(Some(("app-web", "env:AZ_WEB_SECRET")), json!({"prefix": "web-", "writable": true, "ttl": 60, "ttlScope": "vault"})),
            "mi": vault(None, json!({"prefix": "other-"})),
            "lister": vault(Some(("app-lister", "env:AZ_LISTER_SECRET")), json!({"prefix": "web-"})),
            "wrong": vault(Some(("app-web", "env:AZ_WRONG_SECRET")), json!({})),
        },
        "port": 0,
        "approval": {"waitSeconds": 20}
    });
    std::fs::write(home.config_path(), config.to_string())?;
    let daemon = Daemon::start(&home, |c| {
        c.env("AZ_WEB_SECRET", "akv-client-secret-4d4d")
            .env("AZ_LISTER_SECRET", "lister-secret-5e5e")
            .env("AZ_WRONG_SECRET", "not-the-secret-6f6f")
            .env("IDENTITY_ENDPOINT", format!("{}/msi/token", server.url))
            .env("IDENTITY_HEADER", "identity-header-8f8f");
    })?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    let agent = Agent::start(&home).await?;

    let text = agent.call("list_secrets", json!({})).await?.text();
    // Under the prefix, across pages; a disabled secret is not listed.
    assert!(
        text.contains("[akv] (writable)\n  - api-key\n  - db\n\n"),
        "{text}"
    );
    // The daemon's own config may use a managed identity.
    assert!(text.contains("[mi]\n  - x\n"), "{text}");
    assert!(
        text.contains("vault \"wrong\": the backend refused the vault's credentials")
            && text.contains("AADSTS7000215"),
        "{text}"
    );

    let (r, agent) = call_and_decide(
        &home,
        &approver,
        agent,
        "get_secret",
        get("akv", "db#password"),
        "approve",
    )
    .await?;
    assert!(!r.is_error && r.text() == "akv-pass-52", "{r:?}");
    let r = agent.call("get_secret", get("akv", "api-key")).await?;
    assert!(!r.is_error && r.text() == "akv-key-6c6c", "{r:?}");
    let r = agent.call("get_secret", get("akv", "db")).await?;
    let whole: Value = serde_json::from_str(&r.text())?;
    assert_eq!(whole, json!({"user": "web", "password": "akv-pass-52"}));
    let r = agent.call("get_secret", get("akv", "a_b")).await?;
    assert!(
        r.is_error && r.text().contains("is not a Key Vault secret name"),
        "{r:?}"
    );
    // A disabled secret is not listed; asked for in the open window, Key
    // Vault's refusal says why, without its value.
    let r = agent.call("get_secret", get("akv", "old")).await?;
    assert!(
        r.is_error && r.text().contains("disabled secret") && !r.text().contains("old-3b3b"),
        "{r:?}"
    );

    // Writes: a new version, a merged field, a new secret.
    let mut agent = agent;
    for (name, value) in [
        ("api-key", "akv-key-rotated"),
        ("db#password", "akv-pass-rotated"),
        ("new-token", "akv-new-1"),
    ] {
        let (r, a) = call_and_decide(
            &home,
            &approver,
            agent,
            "set_secret",
            json!({"vault": "akv", "name": name, "value": value, "reason": "write test"}),
            "approve",
        )
        .await?;
        assert!(!r.is_error, "{name}: {r:?}");
        agent = a;
    }
    let latest = |name: &str| -> Result<String> {
        let db = server.db()?;
        Ok(db["secrets"][name]["versions"]
            .as_array()
            .and_then(|v| v.last())
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string())
    };
    assert_eq!(latest("web-api-key")?, "akv-key-rotated");
    let db: Value = serde_json::from_str(&latest("web-db")?)?;
    assert_eq!(db, json!({"user": "web", "password": "akv-pass-rotated"}));
    assert_eq!(latest("web-new-token")?, "akv-new-1");

    // A role that may list but not read: refused after the approval.
    let (r, agent) = call_and_decide(
        &home,
        &approver,
        agent,
        "get_secret",
        get("lister", "db"),
        "approve",
    )
    .await?;
    assert!(
        r.is_error
            && r.text().contains("its credentials may not do this")
            && r.text().contains("getSecret/action"),
        "{r:?}"
    );
    // Key Vault's throttling reaches the agent as such.
    server.update(|db| db["mode"] = "ratelimit".into())?;
    let r = agent.call("get_secret", get("akv", "api-key")).await?;
    assert!(r.is_error && r.text().contains("rate-limited"), "{r:?}");
    agent.stop().await;

    let log = daemon.log();
    for s in [
        "akv-pass-52",
        "akv-key-6c6c",
        "akv-key-rotated",
        "akv-client-secret-4d4d",
        "identity-header-8f8f",
    ] {
        assert!(!log.contains(s), "{s} in the daemon's log");
    }
    Ok(())
}
