//! The `bitwarden` vault type (Bitwarden Secrets Manager) end to end,
//! through the shim, against the `bws` stand-in (tests/py/bws_standin.py: a
//! local stand-in written from Bitwarden's public CLI documentation; the
//! real `bws` needs a Bitwarden organization on the internet): keys listed
//! per project, a get by key and by id, the token only in `bws`'s
//! environment, a refused token, and no writes (a `writable` bitwarden
//! vault is a config error: see the config unit test).

use agent_vault_e2e::peers::BwsStandIn;
use agent_vault_e2e::*;
use anyhow::Result;
use serde_json::{Value, json};

const TOKEN: &str = "0.48c78342-1635-48a6-accd-afbe01336365.standin:token==";
const PROJECT_A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const PROJECT_B: &str = "bbbbbbbb-0000-4000-8000-000000000002";
const SECRET_ID: &str = "5ec2e7a1-0000-4000-8000-00000000000a";

fn db() -> Value {
    json!({
        "secrets": [
            {"id": SECRET_ID, "organizationId": "org", "projectId": PROJECT_A, "key": "STRIPE_KEY",
             "value": "sk-bws-66ff", "note": "", "creationDate": "2026-01-01T00:00:00Z", "revisionDate": "2026-01-01T00:00:00Z"},
            {"id": "5ec2e7a1-0000-4000-8000-00000000000b", "organizationId": "org", "projectId": PROJECT_B, "key": "OTHER_KEY",
             "value": "other-bws-77aa", "note": "", "creationDate": "2026-01-01T00:00:00Z", "revisionDate": "2026-01-01T00:00:00Z"}
        ],
        "tokens": {TOKEN: [PROJECT_A, PROJECT_B]},
        "mode": ""
    })
}

fn config() -> String {
    format!(
        r#"{{
  "vaults": {{
    "bw": {{ "type": "bitwarden", "accessToken": "env:BWS_TOKEN", "projectIds": ["{PROJECT_A}"],
             "ttl": 30, "ttlScope": "vault" }},
    "bad": {{ "type": "bitwarden", "accessToken": "env:WRONG_BWS_TOKEN" }}
  }},
  "port": 0,
  "approval": {{ "waitSeconds": 20 }}
}}"#
    )
}

fn get(name: &str) -> Value {
    json!({"vault": "bw", "name": name, "reason": "bitwarden test"})
}

#[tokio::test(flavor = "multi_thread")]
async fn bitwarden_secrets_manager_through_the_shim() -> Result<()> {
    let home = Home::with_config(&config())?;
    let bws = BwsStandIn::install(&home, &db())?;
    let path = bws.path();
    let daemon = Daemon::start(&home, |c| {
        c.env("PATH", &path)
            .env("BWS_TOKEN", TOKEN)
            .env("WRONG_BWS_TOKEN", "0.bad.token");
    })?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    let agent = Agent::start(&home).await?;

    let listed = agent.call("list_secrets", json!({})).await?;
    let text = listed.text();
    assert!(
        text.contains(&format!("STRIPE_KEY ({PROJECT_A})")),
        "{text}"
    );
    assert!(!text.contains("OTHER_KEY"), "outside projectIds: {text}");
    assert!(
        text.contains("vault \"bad\": the backend refused the vault's credentials (Received error message from server: [401 Unauthorized]"),
        "{text}"
    );

    let (r, agent) = call_and_decide(
        &home,
        &approver,
        agent,
        "get_secret",
        get("STRIPE_KEY"),
        "approve",
    )
    .await?;
    assert!(!r.is_error && r.text() == "sk-bws-66ff", "{r:?}");
    // By the secret's id, inside the window.
    let r = agent.call("get_secret", get(SECRET_ID)).await?;
    assert!(!r.is_error && r.text() == "sk-bws-66ff", "{r:?}");
    // Outside the configured projects: not found, nobody asked.
    let r = agent.call("get_secret", get("OTHER_KEY")).await?;
    assert!(
        r.is_error && r.text().contains("no secret named OTHER_KEY"),
        "{r:?}"
    );

    // Not writable: a write is refused before anyone is asked.
    let r = agent
        .call(
            "set_secret",
            json!({"vault": "bw", "name": "NEW", "value": "never-in-argv-88bb", "reason": "write"}),
        )
        .await?;
    assert!(r.is_error && r.text().contains("is not writable"), "{r:?}");
    agent.stop().await;

    for call in bws.calls()? {
        let argv = call["argv"].to_string();
        assert!(
            !argv.contains(TOKEN) && !argv.contains("never-in-argv-88bb"),
            "{argv}"
        );
        assert!(
            call["env"].to_string().contains("BWS_ACCESS_TOKEN"),
            "{call}"
        );
    }
    let log = daemon.log();
    assert!(!log.contains("sk-bws-66ff") && !log.contains(TOKEN));
    Ok(())
}
