//! Project vaults in the hardened set-up, attacked by the agent user that
//! writes the project config (SECURITY.md's trust boundary, issue 15):
//!
//! - a project vault whose file is a link to a file only the daemon can
//!   read lists nothing from it and releases nothing;
//! - a window is bound to the requesting uid, the vault's definition and
//!   the file it was approved for: swapping the file for a link, or for
//!   another file, is not covered; another agent user that names the same
//!   project config does not ride it; a project defined anew does not
//!   either;
//! - the daemon never opens a config path an agent names.
//!
//! Needs root (to run processes as other uids).

use std::os::unix::fs::symlink;
use std::time::Duration;

use agent_vault_e2e::hardened::{AGENT_UID, Hardened, Kind, OTHER_AGENT_UID, can_run};
use agent_vault_e2e::{Agent, ToolOutcome};
use anyhow::{Result, bail};
use serde_json::json;

const DAEMON_VAULTS: &str =
    r#"{"locked":{"type":"env","file":"secrets.env","approval":{"require":"passkey"}}}"#;
const LOCKED: &str = "LOCKED_KEY=locked-value-5e1f\n";
const LOCKED_VALUE: &str = "locked-value-5e1f";

fn project_config(ttl: u32) -> String {
    format!(
        r#"{{"vaults":{{"proj":{{"type":"env","file":".env.secrets","ttl":{ttl},"ttlScope":"vault"}}}},
           "approval":{{"waitSeconds":2}}}}"#
    )
}

fn get(name: &str) -> serde_json::Value {
    json!({"vault": "proj", "name": name, "reason": "trust boundary test"})
}

fn assert_no_value(r: &ToolOutcome, what: &str) {
    for v in [LOCKED_VALUE, "value-of-api-key-7f3a", "other-secret-91c2"] {
        assert!(
            !r.text().contains(v),
            "{what}: a value reached the agent: {r:?}"
        );
    }
}

/// A get that must not be answered from a window: it opens a request,
/// which is denied here, and nothing is released.
async fn not_covered(h: &Hardened, agent: Agent, name: &'static str) -> Result<Agent> {
    let call = agent.call_in_background("get_secret", get(name));
    let pending = h.one_pending()?;
    let id = pending["id"].as_str().unwrap_or_default().to_string();
    let out = h.admin(&["approve", "--deny", &id])?;
    if !out.status.success() {
        bail!("deny: {}", String::from_utf8_lossy(&out.stderr));
    }
    let (r, agent) = call.finish_within(Duration::from_secs(20)).await?;
    assert_no_value(&r, "a request that no window covers");
    Ok(agent)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_project_vault_cannot_read_the_daemons_files_through_a_link() -> Result<()> {
    if !can_run() {
        return Ok(());
    }
    let h = Hardened::start(Kind::StaticUser, DAEMON_VAULTS, LOCKED)?;
    let project = h.agent_home(AGENT_UID)?;
    h.write_as(
        AGENT_UID,
        &project.join("agent-vault.config.json"),
        &project_config(60),
        0o644,
    )?;
    // The agent points its harmless-looking vault at the daemon's own file.
    symlink(
        h.config_dir.join("secrets.env"),
        project.join(".env.secrets"),
    )?;
    let agent = h.agent(AGENT_UID, |_| {}).await?;
    let list = agent.call("list_secrets", json!({})).await?;
    assert!(!list.text().contains("LOCKED_KEY"), "{list:?}");
    assert!(
        list.text().contains("is not a file that uid 4242 owns"),
        "{list:?}"
    );
    let r = agent.call("get_secret", get("LOCKED_KEY")).await?;
    assert!(r.is_error, "{r:?}");
    assert_no_value(&r, "a link to the daemon's file");
    assert!(
        r.text().contains("is not a file that uid 4242 owns"),
        "{r:?}"
    );
    // Nobody was even asked.
    assert_eq!(h.admin_json(&["pending"])?, json!([]));
    // A link to a file that does not exist reads the same: the answer does
    // not tell which files only the daemon can read.
    std::fs::remove_file(project.join(".env.secrets"))?;
    symlink(
        h.config_dir.join("no-such.env"),
        project.join(".env.secrets"),
    )?;
    let missing = agent.call("get_secret", get("LOCKED_KEY")).await?;
    assert_eq!(missing.text(), r.text(), "the two answers differ");
    agent.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_window_covers_only_the_user_the_file_and_the_definition_it_was_approved_for()
-> Result<()> {
    if !can_run() {
        return Ok(());
    }
    let h = Hardened::start(Kind::StaticUser, DAEMON_VAULTS, LOCKED)?;
    let project = h.agent_home(AGENT_UID)?;
    let config = project.join("agent-vault.config.json");
    h.write_as(AGENT_UID, &config, &project_config(60), 0o644)?;
    let file = project.join(".env.secrets");
    h.write_as(
        AGENT_UID,
        &file,
        "API_KEY=value-of-api-key-7f3a\nLOCKED_KEY=decoy\n",
        0o644,
    )?;

    // One real approval opens a vault-wide window of an hour.
    let agent = h.agent(AGENT_UID, |_| {}).await?;
    let call = agent.call_in_background("get_secret", get("API_KEY"));
    let pending = h.one_pending()?;
    // The page and the card show the file actually read.
    assert_eq!(
        pending["location"].as_str().unwrap_or_default(),
        file.display().to_string(),
        "{pending}"
    );
    let id = pending["id"].as_str().unwrap_or_default().to_string();
    let out = h.admin(&["approve", &id])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (r, agent) = call.finish_within(Duration::from_secs(20)).await?;
    assert_eq!(r.texts, ["value-of-api-key-7f3a"], "{r:?}");
    // The window covers the next read of the same file.
    let r = agent.call("get_secret", get("API_KEY")).await?;
    assert_eq!(r.texts, ["value-of-api-key-7f3a"], "{r:?}");

    // Swapped for a link to the daemon's own file: nothing, no tap needed
    // to refuse it.
    std::fs::rename(&file, project.join(".env.approved"))?;
    symlink(h.config_dir.join("secrets.env"), &file)?;
    let r = agent.call("get_secret", get("LOCKED_KEY")).await?;
    assert!(r.is_error, "{r:?}");
    assert_no_value(&r, "the approved file swapped for a link");
    assert_eq!(h.admin_json(&["pending"])?, json!([]));

    // Swapped for another file of the agent's own: the window is for the
    // approved file, so a human is asked again.
    std::fs::remove_file(&file)?;
    h.write_as(AGENT_UID, &file, "API_KEY=other-secret-91c2\n", 0o644)?;
    let agent = not_covered(&h, agent, "API_KEY").await?;

    // The approved file back in place: covered again.
    std::fs::rename(project.join(".env.approved"), &file)?;
    let r = agent.call("get_secret", get("API_KEY")).await?;
    assert_eq!(r.texts, ["value-of-api-key-7f3a"], "{r:?}");
    agent.stop().await;

    // Another agent user that names the first one's project config does
    // not ride its window: the file is not its own.
    let other = h
        .agent(OTHER_AGENT_UID, |c| {
            c.env("AGENT_VAULT_CONFIG", &config);
        })
        .await?;
    let r = other.call("get_secret", get("API_KEY")).await?;
    assert!(r.is_error, "{r:?}");
    assert_no_value(&r, "another agent user");
    assert!(r.text().contains("uid 4243"), "{r:?}");
    other.stop().await;

    // The project defined anew (a shorter window): the old window does not
    // cover the new definition.
    h.write_as(AGENT_UID, &config, &project_config(30), 0o644)?;
    let agent = h.agent(AGENT_UID, |_| {}).await?;
    let agent = not_covered(&h, agent, "API_KEY").await?;
    agent.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_never_opens_a_config_path_the_agent_names() -> Result<()> {
    if !can_run() {
        return Ok(());
    }
    let h = Hardened::start(Kind::StaticUser, DAEMON_VAULTS, LOCKED)?;
    // The daemon's own config, and a file only the daemon can read, named
    // as the project config: the shim cannot read them, so it says so, and
    // the daemon is never asked to.
    for path in [
        h.config_dir.join("agent-vault.config.json"),
        h.config_dir.join("secrets.env"),
    ] {
        let agent = h
            .agent(AGENT_UID, |c| {
                c.env("AGENT_VAULT_CONFIG", &path);
            })
            .await?;
        let r = agent.call("list_secrets", json!({})).await?;
        assert!(r.is_error, "{r:?}");
        assert!(r.text().contains("cannot read the project config"), "{r:?}");
        assert!(!r.text().contains(LOCKED_VALUE) && !r.text().contains("LOCKED_KEY"));
        agent.stop().await;
    }
    Ok(())
}
