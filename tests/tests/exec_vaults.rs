//! The `exec` vault type end to end, through the shim: your own commands
//! (here a small store script, as `pass` or `rbw` would be) listed, read
//! and written, a name passed as one argument and never through a shell,
//! and a project's config refused when it names one.

use std::os::unix::fs::PermissionsExt;

use agent_vault_e2e::*;
use anyhow::Result;
use serde_json::json;

/// A password store with a command line, as `pass` has: `ls`, `show NAME`,
/// `insert NAME` (the value on stdin). Every run is logged with its
/// arguments, one per line.
const STORE: &str = r#"#!/bin/sh
dir="$(dirname "$0")/store"
for a in "$@"; do printf '%s\n' "$a"; done >> "$(dirname "$0")/runs.log"
case "$1" in
  ls) ls "$dir" ;;
  show) [ -f "$dir/$2" ] || { echo "Error: $2 is not in the store." >&2; exit 1; }; cat "$dir/$2" ;;
  insert) cat > "$dir/$2" ;;
  *) echo "unknown command $1" >&2; exit 2 ;;
esac
"#;

fn config(store: &str) -> String {
    format!(
        r#"{{
  "vaults": {{
    "mine": {{
      "type": "exec",
      "list": ["{store}", "ls"],
      "get": ["{store}", "show", "{{name}}"],
      "set": ["{store}", "insert", "{{name}}"],
      "writable": true,
      "ttl": 60,
      "ttlScope": "vault"
    }}
  }},
  "port": 0,
  "approval": {{ "waitSeconds": 20 }}
}}"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn your_own_commands_list_read_and_write() -> Result<()> {
    let home = Home::new()?;
    let bin = home.dir.path().join("tool");
    std::fs::create_dir_all(bin.join("store"))?;
    let store = bin.join("store.sh");
    std::fs::write(&store, STORE)?;
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o755))?;
    let tricky = "db; touch pwned $(id)";
    std::fs::write(bin.join("store/db-password"), "exec-value-71ab\n")?;
    std::fs::write(bin.join("store").join(tricky), "tricky-value-2c2c")?;
    std::fs::write(home.config_path(), config(&store.display().to_string()))?;

    let daemon = home.start_daemon()?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    let agent = Agent::start(&home).await?;
    let listed = agent.call("list_secrets", json!({})).await?;
    assert!(
        listed.text().contains("db-password") && listed.text().contains(tricky),
        "{}",
        listed.text()
    );

    let get = |name: &str| json!({"vault": "mine", "name": name, "reason": "exec test"});
    let (r, agent) = call_and_decide(
        &home,
        &approver,
        agent,
        "get_secret",
        get("db-password"),
        "approve",
    )
    .await?;
    assert!(!r.is_error && r.text() == "exec-value-71ab", "{r:?}");
    // A name with shell syntax is one argument: nothing runs it.
    let r = agent.call("get_secret", get(tricky)).await?;
    assert!(!r.is_error && r.text() == "tricky-value-2c2c", "{r:?}");
    assert!(!bin.join("pwned").exists() && !home.project.join("pwned").exists());
    let runs = std::fs::read_to_string(bin.join("runs.log"))?;
    assert!(runs.lines().any(|l| l == tricky), "{runs}");

    // A write: the value on the command's stdin, never in its arguments.
    let (r, agent) = call_and_decide(
        &home,
        &approver,
        agent,
        "set_secret",
        json!({"vault": "mine", "name": "new-one", "value": "exec-new-9f9f", "reason": "store it"}),
        "approve",
    )
    .await?;
    assert!(!r.is_error, "{r:?}");
    assert_eq!(
        std::fs::read_to_string(bin.join("store/new-one"))?,
        "exec-new-9f9f\n"
    );
    let runs = std::fs::read_to_string(bin.join("runs.log"))?;
    assert!(!runs.contains("exec-new-9f9f"), "{runs}");
    agent.stop().await;

    // Another project's config may not make the daemon run a command.
    let project = home.dir.path().join("agent-project");
    std::fs::create_dir_all(&project)?;
    let marker = home.dir.path().join("ran");
    std::fs::write(
        project.join("agent-vault.config.json"),
        format!(
            r#"{{"vaults":{{"x":{{"type":"exec","list":["/usr/bin/touch","{}"],"get":["/bin/echo","{{name}}"]}}}}}}"#,
            marker.display()
        ),
    )?;
    let agent = Agent::start_in(&home, &project).await?;
    let r = agent.call("list_secrets", json!({})).await?;
    assert!(
        r.is_error
            && r.text().contains("vaults.x.type")
            && r.text()
                .contains("only agent-vaultd's own config may define one"),
        "{r:?}"
    );
    assert!(!marker.exists(), "the project's command ran");
    agent.stop().await;
    Ok(())
}
