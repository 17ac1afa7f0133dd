//! The hardened set-up: the daemon as its own user, agents reaching it only
//! through a group-shared socket directory, and unable to read what the
//! daemon holds. Needs root (to run processes as other uids). The set-up
//! is SECURITY.md's recipe, in `agent_vault_e2e::hardened`.

use std::time::Duration;

use agent_vault_e2e::hardened::{AGENT_UID, GROUP, Hardened, Kind, OTHER_AGENT_UID, can_run};
use anyhow::Result;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn agents_reach_the_socket_but_not_the_daemons_files() -> Result<()> {
    hardened(Kind::StaticUser).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_holds_for_a_dynamic_user_with_credentials() -> Result<()> {
    hardened(Kind::DynamicUser).await
}

async fn hardened(kind: Kind) -> Result<()> {
    if !can_run() {
        return Ok(());
    }
    let h = Hardened::start(
        kind,
        r#"{"locked":{"type":"env","file":"secrets.env"}}"#,
        "LOCKED_KEY=locked-value-5e1f\n",
    )?;
    let status = h.admin_json(&["status"])?;
    assert_eq!(status["agentUids"], json!([AGENT_UID, OTHER_AGENT_UID]));
    assert_eq!(status["adminUids"], json!([0]));
    let text = String::from_utf8_lossy(&h.admin(&["status"])?.stdout).to_string();
    assert!(
        !text.contains("Agents and admins are the same user"),
        "{text}"
    );
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(&h.socket)?;
        assert_eq!((meta.mode() & 0o777, meta.gid()), (0o660, GROUP));
    }

    // As the agent user: its files are out of reach, and so is the admin side.
    for file in [
        h.config_dir.join("secrets.env"),
        h.home.state.join("agent-vault.db"),
        h.config_dir.join("agent-vault.config.json"),
    ] {
        let out = h
            .as_agent(AGENT_UID, std::path::Path::new("/bin/cat"))?
            .arg(&file)
            .output()?;
        assert!(!out.status.success(), "the agent user can read {file:?}");
    }
    let out = h.as_agent(AGENT_UID, &h.cli)?.arg("status").output()?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!(
        "uid {AGENT_UID} may not use agent-vaultd's admin interface"
    )));

    // ... but it can ask, through the group-shared socket.
    let agent = h.agent(AGENT_UID, |_| {}).await?;
    let list = agent.call("list_secrets", json!({})).await?;
    assert!(list.text().contains("[locked]\n  - LOCKED_KEY"), "{list:?}");
    let call = agent.call_in_background(
        "get_secret",
        json!({"vault": "locked", "name": "LOCKED_KEY", "reason": "hardened"}),
    );
    let pending = h.one_pending()?;
    let id = pending["id"].as_str().unwrap_or_default().to_string();
    // Who asks, as far as another user may see: the uid, the command line
    // and the parent chain; the exe link is the kernel's to refuse, so the
    // card says argv[0] and that it is unverified.
    let who = &pending["requester"];
    assert_eq!(who["uid"], json!(AGENT_UID), "{pending}");
    assert!(
        who["cmdline"]
            .as_str()
            .unwrap_or("")
            .contains("agent-vault-mcp"),
        "{pending}"
    );
    assert!(
        who["exe"]
            .as_str()
            .unwrap_or("")
            .ends_with("agent-vault-mcp (unverified: argv[0])"),
        "{pending}"
    );
    assert!(!who["agent"].as_str().unwrap_or("").is_empty(), "{pending}");
    // With separate users, the admin may approve from the terminal.
    let out = h.admin(&["approve", &id])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (r, agent) = call.finish_within(Duration::from_secs(20)).await?;
    assert_eq!(r.texts, ["locked-value-5e1f"], "{r:?}");
    agent.stop().await;
    Ok(())
}
