//! The first hour, as a newcomer meets it: a config written the way the
//! prototype's README shows it (with comments) loads, as the daemon's own
//! (the daemon here starts in the project); a mistyped setting
//! is named with the one meant; a vault's file that is missing or that
//! others can read is said plainly, with the fix.

use std::os::unix::fs::PermissionsExt;

use agent_vault_e2e::*;
use anyhow::Result;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_config_with_comments_loads_and_a_typo_is_named() -> Result<()> {
    let home = Home::with_config(
        r#"{
  // As the prototype's README writes it.
  "vaults": {
    "dev": { "type": "env", "file": ".env.secrets", "ttl": 0 }, /* always ask */
  },
  "port": 0,
}"#,
    )?;
    let _daemon = home.start_daemon()?;
    let agent = Agent::start(&home).await?;
    let listed = agent.call("list_secrets", json!({})).await?;
    assert!(!listed.is_error, "{}", listed.text());
    assert!(listed.text().contains("- API_KEY"), "{}", listed.text());
    agent.stop().await;

    // Another project, registered by its shim, with a typo.
    let other = home.project.join("other");
    std::fs::create_dir(&other)?;
    std::fs::write(
        other.join("agent-vault.config.json"),
        r#"{ "vaults": { "dev": { "type": "env", "file": ".env.secrets", "tll": 5 } } }"#,
    )?;
    let agent = Agent::start_in(&home, &other).await?;
    let listed = agent.call("list_secrets", json!({})).await?;
    assert!(listed.is_error, "{}", listed.text());
    assert!(
        listed.text().contains(
            "vaults.dev.tll: unknown setting for a vault of type \"env\"; did you mean \"ttl\"?"
        ),
        "{}",
        listed.text()
    );
    assert!(!listed.text().contains("unreachable"), "{}", listed.text());
    agent.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_or_readable_env_file_is_said_with_the_fix() -> Result<()> {
    let home = Home::with_config(
        r#"{ "vaults": {
    "dev": { "type": "env", "file": ".env.secrets" },
    "fresh": { "type": "env", "file": ".env.fresh", "writable": true }
  }, "port": 0 }"#,
    )?;
    let secrets = home.project.join(".env.secrets");
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o644))?;
    let _daemon = home.start_daemon()?;
    let agent = Agent::start(&home).await?;
    let text = agent.call("list_secrets", json!({})).await?.text();
    let fresh = home.project.join(".env.fresh");
    assert!(
        text.contains(&format!(
            "[fresh] (writable)\n  note for the user: its file {} does not exist yet: add a secret with `agent-vault set fresh/NAME`",
            fresh.display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "its file {} can be read by other users (mode 0644): run `chmod 600 {}`",
            secrets.display(),
            secrets.display()
        )),
        "{text}"
    );
    // Fixed, the notes go.
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600))?;
    std::fs::write(&fresh, "")?;
    std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(0o600))?;
    let text = agent.call("list_secrets", json!({})).await?.text();
    assert!(!text.contains("note for the user"), "{text}");
    assert!(
        text.contains("[fresh] (writable)\n  (no secrets)"),
        "{text}"
    );
    agent.stop().await;
    Ok(())
}
