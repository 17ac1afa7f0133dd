//! The `1password-connect` vault type end to end, through the shim,
//! against a Connect server stand-in (tests/py/connect_standin.py: a local
//! stand-in written from 1Password's public Connect API reference; a real
//! Connect server needs a 1Password account on the internet): titles and
//! references, a field inside a section, writes that update or create an
//! item, a refused token, and a token that may not use a vault.

use agent_vault_e2e::peers::ConnectStandIn;
use agent_vault_e2e::*;
use anyhow::Result;
use serde_json::{Value, json};

const TOKEN: &str = "connect-token-7e7e";

fn db() -> Value {
    json!({
        "vaults": [
            {"id": "vltapp", "name": "App"},
            {"id": "vltsecret", "name": "Secret"}
        ],
        "items": [
            {"id": "itmdb", "title": "Postgres", "category": "DATABASE", "vault": {"id": "vltapp"},
             "sections": [{"id": "sec1", "label": "Admin"}],
             "fields": [
                {"id": "username", "label": "username", "type": "STRING", "value": "app"},
                {"id": "password", "label": "password", "type": "CONCEALED", "value": "pg-connect-11aa"},
                {"id": "f3", "label": "password", "type": "CONCEALED", "value": "pg-admin-22bb", "section": {"id": "sec1"}}
             ]},
            {"id": "itmx", "title": "Hidden", "vault": {"id": "vltsecret"},
             "fields": [{"id": "password", "label": "password", "type": "CONCEALED", "value": "hidden-33cc"}]}
        ],
        "tokens": {TOKEN: {"read": ["vltapp"], "write": ["vltapp"]}},
        "mode": ""
    })
}

fn config(url: &str) -> String {
    format!(
        r#"{{
  "vaults": {{
    "app": {{
      "type": "1password-connect",
      "host": "{url}",
      "token": "env:CONNECT_TOKEN",
      "writable": true,
      "write": {{ "vaultId": "vltapp", "category": "password" }},
      "ttl": 30,
      "ttlScope": "vault"
    }},
    "all": {{ "type": "1password-connect", "host": "{url}", "token": "env:CONNECT_TOKEN", "vaultIds": ["vltsecret"] }},
    "wrong": {{ "type": "1password-connect", "host": "{url}", "token": "env:WRONG_TOKEN" }}
  }},
  "port": 0,
  "approval": {{ "waitSeconds": 20 }}
}}"#
    )
}

fn get(vault: &str, name: &str) -> Value {
    json!({"vault": vault, "name": name, "reason": "connect test"})
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_through_the_shim() -> Result<()> {
    let home = Home::new()?;
    let server = ConnectStandIn::start(&home, &db()).await?;
    std::fs::write(home.config_path(), config(&server.url))?;
    let daemon = Daemon::start(&home, |c| {
        c.env("CONNECT_TOKEN", TOKEN).env("WRONG_TOKEN", "nope");
    })?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    let agent = Agent::start(&home).await?;

    let listed = agent.call("list_secrets", json!({})).await?;
    let text = listed.text();
    assert!(text.contains("Postgres (vltapp)"), "{text}");
    assert!(
        !text.contains("Hidden"),
        "a vault the token may not read: {text}"
    );
    assert!(
        text.contains("vault \"all\": its credentials may not do this (the server has no vault vltsecret that this token may read)"),
        "{text}"
    );
    assert!(
        text.contains("vault \"wrong\": the backend refused the vault's credentials (Invalid bearer token (HTTP 401))"),
        "{text}"
    );

    let (r, mut agent) = call_and_decide(
        &home,
        &approver,
        agent,
        "get_secret",
        get("app", "Postgres"),
        "approve",
    )
    .await?;
    let fields: Value = serde_json::from_str(&r.text())?;
    assert_eq!(fields["username"], "app", "{fields}");
    // By reference: a field, and the same label inside a section.
    let r = agent
        .call("get_secret", get("app", "op://App/Postgres/password"))
        .await?;
    assert!(!r.is_error && r.text() == "pg-connect-11aa", "{r:?}");
    let r = agent
        .call("get_secret", get("app", "op://vltapp/itmdb/Admin/password"))
        .await?;
    assert!(!r.is_error && r.text() == "pg-admin-22bb", "{r:?}");
    // A field the item does not have: not found, no value.
    let r = agent
        .call("get_secret", get("app", "op://App/Postgres/nope"))
        .await?;
    assert!(r.is_error && r.text().contains("no secret named"), "{r:?}");

    // Writes: update the concealed field, and create an item.
    for (name, value) in [
        ("Postgres", "pg-rotated-44dd"),
        ("Stripe", "sk-connect-55ee"),
    ] {
        let (r, a) = call_and_decide(
            &home,
            &approver,
            agent,
            "set_secret",
            json!({"vault": "app", "name": name, "value": value, "reason": "write"}),
            "approve",
        )
        .await?;
        assert!(!r.is_error, "{r:?}");
        agent = a;
    }
    let pg = server.item("Postgres")?;
    assert_eq!(pg["fields"][1]["value"], "pg-rotated-44dd");
    assert_eq!(
        pg["fields"][2]["value"], "pg-admin-22bb",
        "the other fields kept"
    );
    let stripe = server.item("Stripe")?;
    assert_eq!(stripe["category"], "PASSWORD");
    assert_eq!(stripe["fields"][0]["value"], "sk-connect-55ee");

    // A vault the token may not read lists nothing from it.
    let listed = agent.call("list_secrets", json!({})).await?;
    assert!(!listed.text().contains("Hidden"), "{}", listed.text());
    agent.stop().await;
    Ok(())
}
