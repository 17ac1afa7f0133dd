//! The `1password` vault type end to end, through the shim, against the
//! `op` stand-in (tests/py/op_standin.py: a local stand-in for the
//! 1Password CLI written from its public documentation; the real `op`
//! needs a 1Password account on the internet):
//!
//! - a prototype config with a 1Password vault, unchanged, lists, gets by
//!   title and by `op://` reference, and writes (a new item, and the
//!   concealed field of an existing one), with the token only in `op`'s
//!   environment and values only on its stdin;
//! - a backend that never answers gives a clear error within its time-out
//!   while another vault keeps serving, and leaves no process behind;
//! - a project's config may not borrow agent-vaultd's own 1Password
//!   sign-in.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use agent_vault_e2e::peers::OpStandIn;
use agent_vault_e2e::*;
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

const TOKEN: &str = "ops_standin_token_dev_5d2e";
const GITHUB_PASSWORD: &str = "ghp-standin-4b1d";
const DB_PASSWORD: &str = "db-pass-77aa";
const OPS_PASSWORD: &str = "ops-root-0c0c";

/// The prototype README's config for a writable 1Password vault, as a
/// prototype user has it (only `port` set to 0 for the test), with an env
/// vault beside it.
const PROTOTYPE_CONFIG: &str = r#"{
  "vaults": {
    "dev": {
      "type": "1password",
      "serviceAccountToken": "env:OP_DEV_TOKEN",
      "vaultIds": ["vlt-dev-1"],
      "writable": true,
      "write": {
        "vaultId": "vlt-dev-1",
        "category": "login"
      },
      "ttl": 15,
      "ttlScope": "vault"
    },
    "local": { "type": "env", "file": ".env.secrets", "ttl": 0 }
  },
  "port": 0,
  "approval": { "waitSeconds": 20 }
}"#;

/// Two vaults and three items, one token that reads both and writes one.
fn op_db() -> Value {
    json!({
        "vaults": [
            {"id": "vlt-dev-1", "name": "Development"},
            {"id": "vlt-ops-2", "name": "Operations"}
        ],
        "items": [
            {"id": "itm-gh", "title": "GitHub Token", "category": "API_CREDENTIAL",
             "vault": {"id": "vlt-dev-1"},
             "fields": [
                {"id": "username", "type": "STRING", "label": "username", "value": "octocat"},
                {"id": "credential", "type": "CONCEALED", "label": "credential", "value": GITHUB_PASSWORD},
                {"id": "notesPlain", "type": "STRING", "label": "notesPlain", "value": ""}
             ]},
            {"id": "itm-db", "title": "Database", "category": "DATABASE",
             "vault": {"id": "vlt-dev-1"},
             "fields": [
                {"id": "username", "type": "STRING", "label": "username", "value": "app"},
                {"id": "password", "type": "CONCEALED", "label": "password", "value": DB_PASSWORD}
             ]},
            {"id": "itm-ops", "title": "Prod Root", "category": "LOGIN",
             "vault": {"id": "vlt-ops-2"},
             "fields": [{"id": "password", "type": "CONCEALED", "label": "password", "value": OPS_PASSWORD}]}
        ],
        "tokens": {TOKEN: {"read": ["vlt-dev-1", "vlt-ops-2"], "write": ["vlt-dev-1"]}},
        "mode": ""
    })
}

fn get(vault: &str, name: &str) -> Value {
    json!({"vault": vault, "name": name, "reason": "1password test"})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prototype_1password_config_works_through_the_shim() -> Result<()> {
    let home = Home::with_config(PROTOTYPE_CONFIG)?;
    let op = OpStandIn::install(&home, &op_db())?;
    let path = op.path();
    let daemon = Daemon::start(&home, |c| {
        c.env("PATH", &path).env("OP_DEV_TOKEN", TOKEN);
    })?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    let agent = Agent::start(&home).await?;

    // Titles, grouped by the vault's id; only the vaults in vaultIds.
    let listed = agent.call("list_secrets", json!({})).await?;
    let text = listed.text();
    assert!(!listed.is_error, "{text}");
    for shown in ["GitHub Token", "Database", "vlt-dev-1", "API_KEY"] {
        assert!(text.contains(shown), "{shown} missing from:\n{text}");
    }
    assert!(!text.contains("Prod Root"), "outside vaultIds:\n{text}");

    // A get by title: the item's fields as JSON, after an approval.
    let (r, agent) = call_and_decide(
        &home,
        &approver,
        agent,
        "get_secret",
        get("dev", "GitHub Token"),
        "approve",
    )
    .await?;
    assert!(!r.is_error, "{r:?}");
    let fields: Value = serde_json::from_str(&r.text())?;
    assert_eq!(
        fields,
        json!({"username": "octocat", "credential": GITHUB_PASSWORD})
    );

    // A reference, by the vault's name, inside the window just opened.
    let r = agent
        .call(
            "get_secret",
            get("dev", "op://Development/Database/password"),
        )
        .await?;
    assert!(!r.is_error && r.text() == DB_PASSWORD, "{r:?}");

    // A reference to a vault outside vaultIds is not found, and nobody is
    // asked.
    let r = agent
        .call(
            "get_secret",
            get("dev", "op://Operations/Prod Root/password"),
        )
        .await?;
    assert!(r.is_error && r.text().contains("no secret named"), "{r:?}");
    assert!(!r.text().contains(OPS_PASSWORD));

    // Writes: a new item in write.vaultId, then the concealed field of an
    // existing one (its other fields kept).
    let (r, agent) = call_and_decide(
        &home,
        &approver,
        agent,
        "set_secret",
        json!({"vault": "dev", "name": "Stripe Key", "value": "sk-new-value-1234", "reason": "store the new key"}),
        "approve",
    )
    .await?;
    assert!(
        !r.is_error && r.text().contains("Saved Stripe Key"),
        "{r:?}"
    );
    let created = op.item("Stripe Key")?;
    assert_eq!(created["category"], "LOGIN");
    assert_eq!(created["vault"]["id"], "vlt-dev-1");
    assert_eq!(created["fields"][0]["type"], "CONCEALED");
    assert_eq!(created["fields"][0]["value"], "sk-new-value-1234");

    let (r, agent) = call_and_decide(
        &home,
        &approver,
        agent,
        "set_secret",
        json!({"vault": "dev", "name": "Database", "value": "db-pass-rotated-9", "reason": "rotate"}),
        "approve",
    )
    .await?;
    assert!(!r.is_error, "{r:?}");
    let db_item = op.item("Database")?;
    assert_eq!(db_item["fields"][0]["value"], "app");
    assert_eq!(db_item["fields"][1]["value"], "db-pass-rotated-9");
    // The write ended the list cache: the new item is listed at once.
    let listed = agent.call("list_secrets", json!({})).await?;
    assert!(listed.text().contains("Stripe Key"), "{}", listed.text());
    agent.stop().await;

    // `agent-vault status` shows the vault's type and health.
    let status = home.cli_json(&["status"])?;
    let dev = status["vaults"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == "dev"))
        .context("no dev vault in status")?;
    assert_eq!(dev["type"], "1password");
    assert!(dev["health"]["lastOkMs"].as_i64().is_some(), "{dev}");
    assert!(dev["health"]["lastError"].is_null(), "{dev}");
    assert_eq!(dev["health"]["cachedEntries"], 3, "{dev}");
    assert!(
        dev["location"].as_str().is_some_and(
            |l| l.contains("1Password service account (env:OP_DEV_TOKEN), vaults vlt-dev-1")
        ),
        "{dev}"
    );
    let human = home.cli(&["status"])?;
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(human.contains("3 names cached"), "{human}");

    // The token only in op's environment, values never in its arguments.
    let calls = op.calls()?;
    assert!(!calls.is_empty());
    for call in &calls {
        let argv = call["argv"].to_string();
        for secret in [
            TOKEN,
            GITHUB_PASSWORD,
            DB_PASSWORD,
            "sk-new-value-1234",
            "db-pass-rotated-9",
        ] {
            assert!(!argv.contains(secret), "{secret} in op's arguments: {argv}");
        }
        let env: Vec<&str> = call["env"]
            .as_array()
            .map(|e| e.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert!(env.contains(&"OP_SERVICE_ACCOUNT_TOKEN"), "{env:?}");
        assert!(
            !env.contains(&"OP_DEV_TOKEN"),
            "the daemon's environment is not passed on: {env:?}"
        );
    }
    let log = daemon.log();
    for secret in [TOKEN, GITHUB_PASSWORD, DB_PASSWORD, "sk-new-value-1234"] {
        assert!(!log.contains(secret), "{secret} in the daemon's log");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backend_that_never_answers_times_out_while_other_vaults_serve() -> Result<()> {
    let config = PROTOTYPE_CONFIG.replace(
        "\"ttlScope\": \"vault\"\n    },",
        "\"ttlScope\": \"vault\",\n      \"timeoutSeconds\": 3\n    },",
    );
    if config == PROTOTYPE_CONFIG {
        bail!("the config was not changed");
    }
    let home = Home::with_config(&config)?;
    let op = OpStandIn::install(&home, &op_db())?;
    op.set_mode("hang")?;
    let path = op.path();
    let daemon = Daemon::start(&home, |c| {
        c.env("PATH", &path).env("OP_DEV_TOKEN", TOKEN);
    })?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;

    let started = Instant::now();
    let stuck = Agent::start(&home)
        .await?
        .call_in_background("get_secret", get("dev", "GitHub Token"));
    // Meanwhile another vault answers, through its approval.
    let other = Agent::start(&home).await?;
    let (r, other) = call_and_decide(
        &home,
        &approver,
        other,
        "get_secret",
        get("local", "API_KEY"),
        "approve",
    )
    .await?;
    assert!(!r.is_error && r.text() == "value-of-api-key-7f3a", "{r:?}");
    assert!(!stuck.is_finished(), "the stuck vault answered early");

    let (r, stuck) = stuck.finish_within(Duration::from_secs(15)).await?;
    let took = started.elapsed();
    assert!(r.is_error, "{r:?}");
    assert!(
        r.text().contains("vault \"dev\" did not answer within 3 s"),
        "{}",
        r.text()
    );
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(12),
        "{took:?}"
    );
    stuck.stop().await;

    // list_secrets shows the stuck vault's error beside the other's names.
    let listed = other.call("list_secrets", json!({})).await?;
    assert!(listed.text().contains("API_KEY"), "{}", listed.text());
    assert!(
        listed.text().contains("did not answer within 3 s"),
        "{}",
        listed.text()
    );
    other.stop().await;

    let status = home.cli_json(&["status"])?;
    let dev = status["vaults"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == "dev"))
        .context("no dev vault in status")?;
    assert!(
        dev["health"]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("did not answer within 3 s")),
        "{dev}"
    );

    // A call stuck in the backend does not hold up the daemon's shutdown.
    let mut daemon = daemon;
    let before = op.calls()?.len();
    let stuck = Agent::start(&home)
        .await?
        .call_in_background("get_secret", get("dev", "Database"));
    poll(Duration::from_secs(5), || {
        op.calls().ok().filter(|c| c.len() > before).map(|_| ())
    })?;
    let stopping = Instant::now();
    let status = daemon.terminate()?;
    let took = stopping.elapsed();
    assert!(
        status.success() && took < Duration::from_secs(2),
        "{status:?} after {took:?}"
    );
    drop(stuck);

    // Every `op` the daemon started was killed with its process group.
    let left = poll(Duration::from_secs(5), || {
        let running = std::fs::read_dir("/proc")
            .ok()?
            .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
            .filter(|c| String::from_utf8_lossy(c).contains(&*op.dir.to_string_lossy()))
            .count();
        (running == 0).then_some(())
    });
    assert!(left.is_ok(), "an op process outlived its time-out");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_project_config_cannot_borrow_the_daemons_1password_sign_in() -> Result<()> {
    let home = Home::new()?;
    let op = OpStandIn::install(&home, &op_db())?;
    let path = op.path();
    let _daemon = Daemon::start(&home, |c| {
        c.env("PATH", &path);
    })?;
    // Another project, whose config (written by the agent) names a
    // 1password vault without a token of its own.
    let project = home.dir.path().join("other-project");
    std::fs::create_dir_all(&project)?;
    std::fs::write(
        project.join("agent-vault.config.json"),
        r#"{"vaults":{"ambient":{"type":"1password","vaultIds":["vlt-ops-2"]}}}"#,
    )?;
    let agent = Agent::start_in(&home, &project).await?;
    let r = agent.call("list_secrets", json!({})).await?;
    assert!(r.is_error, "{r:?}");
    assert!(
        r.text().contains("vaults.ambient.serviceAccountToken")
            && r.text()
                .contains("serves only vaults of agent-vaultd's own config"),
        "{}",
        r.text()
    );
    assert!(op.calls()?.is_empty(), "op was run for it");
    agent.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_op_says_how_to_install_it() -> Result<()> {
    let home = Home::with_config(PROTOTYPE_CONFIG)?;
    let _daemon = Daemon::start(&home, |c| {
        c.env("PATH", "/usr/bin:/bin").env("OP_DEV_TOKEN", TOKEN);
    })?;
    let agent = Agent::start(&home).await?;
    let listed = agent.call("list_secrets", json!({})).await?;
    assert!(
        listed.text().contains("the 1Password CLI (`op`) is not installed on agent-vaultd's PATH; install it (https://developer.1password.com/docs/cli/get-started/)"),
        "{}",
        listed.text()
    );
    // The other vault still lists.
    assert!(listed.text().contains("API_KEY"), "{}", listed.text());
    let r = agent.call("get_secret", get("dev", "GitHub Token")).await?;
    assert!(r.is_error && r.text().contains("is not installed"), "{r:?}");
    assert!(!r.text().contains("unreachable"), "{r:?}");
    agent.stop().await;
    Ok(())
}

/// A shim started with the prototype's environment variables and no
/// config file anywhere it looks.
async fn agent_with_env(home: &Home, vars: &[(&str, &str)]) -> Result<(Agent, PathBuf)> {
    let dir = home.dir.path().join("no-config");
    std::fs::create_dir_all(&dir)?;
    let mut cmd = tokio::process::Command::from(home.command(&bin("agent-vault-mcp")));
    cmd.current_dir(&dir);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    Ok((Agent::spawn(cmd).await?, dir))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_prototypes_environment_variables_give_one_vault() -> Result<()> {
    let home = Home::new()?;
    let op = OpStandIn::install(&home, &op_db())?;
    let path = op.path();
    let daemon = Daemon::start(&home, |c| {
        c.env("PATH", &path);
    })?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;

    // 1password: the token from the MCP server's environment.
    let (agent, _) = agent_with_env(
        &home,
        &[
            ("AGENT_VAULT_PROVIDER", "1password"),
            ("OP_SERVICE_ACCOUNT_TOKEN", TOKEN),
            ("AGENT_VAULT_1P_VAULTS", "vlt-ops-2"),
        ],
    )
    .await?;
    let listed = agent.call("list_secrets", json!({})).await?;
    assert!(
        listed.text().contains("default") && listed.text().contains("Prod Root"),
        "{}",
        listed.text()
    );
    assert!(!listed.text().contains("GitHub Token"), "{}", listed.text());
    let (r, agent) = call_and_decide(
        &home,
        &approver,
        agent,
        "get_secret",
        get("default", "op://Operations/Prod Root/password"),
        "approve",
    )
    .await?;
    assert!(!r.is_error && r.text() == OPS_PASSWORD, "{r:?}");
    agent.stop().await;

    // env: the file named, relative to the MCP server's directory.
    let (agent, dir) = agent_with_env(
        &home,
        &[
            ("AGENT_VAULT_PROVIDER", "env"),
            ("AGENT_VAULT_ENV_FILE", "mine.env"),
        ],
    )
    .await?;
    std::fs::write(dir.join("mine.env"), "MY_KEY=my-value-31f0\n")?;
    let listed = agent.call("list_secrets", json!({})).await?;
    assert!(listed.text().contains("MY_KEY"), "{}", listed.text());
    assert!(!listed.text().contains("API_KEY"), "{}", listed.text());
    agent.stop().await;

    // A value it does not know is refused with what it expects.
    let (agent, _) = agent_with_env(&home, &[("AGENT_VAULT_PROVIDER", "bitwarden")]).await?;
    let r = agent.call("list_secrets", json!({})).await?;
    assert!(
        r.is_error && r.text().contains("expected \"env\" or \"1password\""),
        "{r:?}"
    );
    agent.stop().await;
    Ok(())
}
