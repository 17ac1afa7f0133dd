//! The first hour, as a newcomer meets it: a config written the way the
//! prototype's README shows it (with comments) loads, as the daemon's own
//! (the daemon here starts in the project); a mistyped setting
//! is named with the one meant; a vault's file that is missing or that
//! others can read is said plainly, with the fix; a daemon the shim starts
//! that cannot start tells the agent why, at once; a backend's trouble is
//! not worded as the daemon's absence.

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

#[tokio::test(flavor = "multi_thread")]
async fn an_auto_start_that_fails_tells_the_agent_why_within_seconds() -> Result<()> {
    let holder = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = holder.local_addr()?.port();
    let home = Home::new()?;
    // The daemon the shim starts finds this config in $HOME; its port is
    // taken (as by the prototype, still running).
    let own = home.dir.path().join(".agent-vault.config.json");
    std::fs::write(
        &own,
        format!(r#"{{"vaults":{{"home":{{"type":"env","file":"home.env"}}}},"port":{port}}}"#),
    )?;
    let agent = Agent::spawn(tokio::process::Command::from(
        home.command(&bin("agent-vault-mcp")),
    ))
    .await?;
    let started = std::time::Instant::now();
    let listed = agent.call("list_secrets", json!({})).await?;
    let took = started.elapsed();
    let text = listed.text();
    assert!(listed.is_error, "{text}");
    assert!(
        text.starts_with("agent-vaultd could not start (exit status: 1): ")
            && text.contains(&format!(
                "port {port} (for the approval pages) is in use by another program; the prototype (npx agent-vault) uses it too"
            ))
            && text.contains(&format!("set \"port\" in {}", own.display()))
            && text.contains("agent-vaultd.log")
            && !text.contains("unreachable")
            && !text.contains("retryable"),
        "{text}"
    );
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    // Its log file is plain text: no colour codes.
    let log = std::fs::read_to_string(home.state.join("agent-vaultd.log"))?;
    assert!(log.contains("INFO") && !log.contains('\u{1b}'), "{log}");
    agent.stop().await;
    drop(holder);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backend_error_is_worded_as_the_backends_not_the_daemons() -> Result<()> {
    let home = Home::new()?;
    // A 1password vault on a machine without the `op` CLI: nothing on the
    // daemon's PATH.
    let empty = home.dir.path().join("empty-bin");
    std::fs::create_dir(&empty)?;
    let _daemon = Daemon::start(&home, |c| {
        c.env("PATH", &empty);
    })?;
    let project = home.project.join("onepassword");
    std::fs::create_dir(&project)?;
    std::fs::write(
        project.join("agent-vault.config.json"),
        r#"{"vaults":{"team":{"type":"1password","serviceAccountToken":"env:OP_SERVICE_ACCOUNT_TOKEN"}}}"#,
    )?;
    let mut cmd = tokio::process::Command::from(home.command(&bin("agent-vault-mcp")));
    cmd.current_dir(&project)
        .env("PATH", "/nonexistent")
        .env("OP_SERVICE_ACCOUNT_TOKEN", "ops_test");
    let agent = Agent::spawn(cmd).await?;
    for (tool, args) in [
        ("list_secrets", json!({})),
        (
            "get_secret",
            json!({"vault": "team", "name": "API_KEY", "reason": "deploy"}),
        ),
    ] {
        let text = agent.call(tool, args).await?.text();
        assert!(
            !text.contains("unreachable") && !text.contains("retryable"),
            "{tool}: {text}"
        );
        assert!(
            text.contains("vault \"team\" cannot be used as configured: the 1Password CLI (`op`) is not installed"),
            "{tool}: {text}"
        );
    }
    agent.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_manners_a_closed_pipe_help_and_a_deny_without_an_id() -> Result<()> {
    let home = Home::new()?;
    let _daemon = home.start_daemon()?;
    // `agent-vault status | head -1`: the reader is gone before the
    // command writes. It ends quietly, with no panic.
    for args in [
        &["status"][..],
        &["pending"],
        &["audit"],
        &["status", "--json"],
    ] {
        let mut child = home
            .command(&bin("agent-vault"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        drop(child.stdout.take());
        let out = child.wait_with_output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
    }
    let out = home.cli(&["approve", "--deny"])?;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("<ID>"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The shim answers --help and --version, and refuses what it does not
    // know, instead of waiting for MCP on a terminal.
    let shim = |args: &[&str]| home.command(&bin("agent-vault-mcp")).args(args).output();
    let help = shim(&["--help"])?;
    assert!(help.status.success());
    assert!(
        String::from_utf8_lossy(&help.stdout).contains("agent-vault mcp-config <client> --install")
    );
    let version = shim(&["--version"])?;
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("agent-vault-mcp "));
    let bad = shim(&["--stdio"])?;
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown argument \"--stdio\""));
    Ok(())
}

/// Every client's file, as its user already has it: another server, and
/// for the JSONC files a comment.
fn existing(client: &str) -> (&'static str, &'static str) {
    match client {
        "claude-code" => (
            ".claude.json",
            "{\n  \"numStartups\": 3,\n  \"mcpServers\": {\n    \"github\": { \"type\": \"stdio\", \"command\": \"gh-mcp\", \"args\": [] }\n  }\n}\n",
        ),
        "claude-desktop" => (
            ".config/Claude/claude_desktop_config.json",
            "{\n  \"mcpServers\": {\n    \"github\": { \"command\": \"gh-mcp\" }\n  }\n}\n",
        ),
        "cursor" => (
            ".cursor/mcp.json",
            "{\n  \"mcpServers\": {\n    \"github\": { \"command\": \"gh-mcp\" }\n  }\n}\n",
        ),
        "windsurf" => (
            ".codeium/windsurf/mcp_config.json",
            "{\n  \"mcpServers\": {\n    \"github\": { \"command\": \"gh-mcp\" }\n  }\n}\n",
        ),
        "codex" => (
            ".codex/config.toml",
            "model = \"o4-mini\" # mine\n\n[mcp_servers.github]\ncommand = \"gh-mcp\"\n",
        ),
        "vscode" => (
            ".config/Code/User/mcp.json",
            "{\n  // mine\n  \"servers\": {\n    \"github\": { \"type\": \"stdio\", \"command\": \"gh-mcp\" },\n  },\n  \"inputs\": []\n}\n",
        ),
        _ => (
            ".config/zed/settings.json",
            "// Zed settings\n{\n  \"vim_mode\": true,\n  \"context_servers\": {\n    \"github\": { \"command\": \"gh-mcp\", \"args\": [] }\n  }\n}\n",
        ),
    }
}

#[test]
fn mcp_config_installs_and_uninstalls_for_every_client() -> Result<()> {
    let home = Home::new()?;
    let shim = bin("agent-vault-mcp");
    for client in [
        "claude-code",
        "claude-desktop",
        "cursor",
        "windsurf",
        "codex",
        "vscode",
        "zed",
    ] {
        let (rel, before) = existing(client);
        let file = home.dir.path().join(rel);
        std::fs::create_dir_all(file.parent().unwrap_or(&home.project))?;
        std::fs::write(&file, before)?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640))?;

        // Printed, nothing written.
        let printed = home.cli(&["mcp-config", client])?;
        assert!(printed.status.success());
        assert!(String::from_utf8_lossy(&printed.stdout).contains(&shim.display().to_string()));
        assert_eq!(std::fs::read_to_string(&file)?, before);

        let out = home.cli(&["mcp-config", client, "--install"])?;
        assert!(
            out.status.success(),
            "{client}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let after = std::fs::read_to_string(&file)?;
        let (ours, others) = if client == "codex" {
            let doc: toml_edit::DocumentMut = after.parse()?;
            (
                doc["mcp_servers"]["agent-vault"]["command"]
                    .as_str()
                    .map(String::from),
                doc["mcp_servers"]["github"]["command"]
                    .as_str()
                    .map(String::from),
            )
        } else {
            let v = agent_vault_proto::jsonc::parse(&after).map_err(anyhow::Error::msg)?;
            let key = match client {
                "vscode" => "servers",
                "zed" => "context_servers",
                _ => "mcpServers",
            };
            (
                v[key]["agent-vault"]["command"].as_str().map(String::from),
                v[key]["github"]["command"].as_str().map(String::from),
            )
        };
        assert_eq!(ours, Some(shim.display().to_string()), "{client}: {after}");
        assert_eq!(others.as_deref(), Some("gh-mcp"), "{client}: {after}");
        for line in before.lines().filter(|l| {
            l.contains("//")
                || l.contains('#')
                || l.contains("numStartups")
                || l.contains("vim_mode")
        }) {
            assert!(after.contains(line), "{client}: {line:?} lost in {after}");
        }
        let mode = std::fs::metadata(&file)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "{client}: the file's mode is kept");
        let mut backup = file.clone().into_os_string();
        backup.push(".agent-vault.bak");
        assert_eq!(
            std::fs::read_to_string(&backup)?,
            before,
            "{client}: the backup"
        );

        // Again: unchanged.
        let again = home.cli(&["mcp-config", client, "--install", "--json"])?;
        let v: serde_json::Value = serde_json::from_slice(&again.stdout)?;
        assert_eq!(v["result"], "unchanged", "{client}");

        let out = home.cli(&["mcp-config", client, "--uninstall"])?;
        assert!(out.status.success(), "{client}");
        // Installed, then uninstalled: the file as it was, byte for byte.
        assert_eq!(std::fs::read_to_string(&file)?, before, "{client}");
        let v: serde_json::Value = serde_json::from_slice(
            &home
                .cli(&["mcp-config", client, "--uninstall", "--json"])?
                .stdout,
        )?;
        assert_eq!(v["result"], "absent", "{client}");
    }

    // A project's file, created where there was none (mode 0600).
    let out = home.cli(&["mcp-config", "vscode", "--install", "--project"])?;
    assert!(out.status.success());
    let file = home.project.join(".vscode/mcp.json");
    assert!(std::fs::read_to_string(&file)?.contains("\"type\": \"stdio\""));
    assert_eq!(
        std::fs::metadata(&file)?.permissions().mode() & 0o777,
        0o600
    );
    // Clients without a project scope say so, and a broken file is not
    // overwritten.
    let out = home.cli(&["mcp-config", "windsurf", "--install", "--project"])?;
    assert!(String::from_utf8_lossy(&out.stderr).contains("windsurf has no project configuration"));
    let cursor = home.project.join(".cursor/mcp.json");
    std::fs::create_dir_all(home.project.join(".cursor"))?;
    std::fs::write(&cursor, "{\"mcpServers\": ")?;
    let out = home.cli(&["mcp-config", "cursor", "--install", "--project"])?;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not valid JSON"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&cursor)?, "{\"mcpServers\": ");

    // The prototype's entry, replaced when asked.
    std::fs::write(
        &cursor,
        r#"{"mcpServers": {"vault": {"command": "npx", "args": ["-y", "agent-vault"]}}}"#,
    )?;
    let out = home.cli(&["mcp-config", "cursor", "--install", "--project"])?;
    assert!(String::from_utf8_lossy(&out.stderr).contains("Kept the prototype's entry vault"));
    assert!(std::fs::read_to_string(&cursor)?.contains("npx"));
    let out = home.cli(&[
        "mcp-config",
        "cursor",
        "--install",
        "--project",
        "--replace-prototype",
    ])?;
    assert!(out.status.success());
    let text = std::fs::read_to_string(&cursor)?;
    assert!(
        !text.contains("npx") && text.contains("agent-vault-mcp"),
        "{text}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn set_and_add_write_an_env_vault_from_the_terminal() -> Result<()> {
    let home = Home::new()?;
    let file = home.project.join(".env.secrets");
    let before = std::fs::read_to_string(&file)?;
    let out = home.cli_with_input(&home.project, &["set", "dev/NEW_TOKEN"], "tok-123\n")?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Added dev/NEW_TOKEN in "));
    let after = std::fs::read_to_string(&file)?;
    assert_eq!(after, format!("{before}NEW_TOKEN=tok-123\n"));
    assert_eq!(
        std::fs::metadata(&file)?.permissions().mode() & 0o777,
        0o600
    );
    // Changed in place; `add` refuses a name that exists.
    let out = home.cli_with_input(
        &home.project,
        &["set", "dev/NEW_TOKEN", "--json"],
        "tok 456",
    )?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["result"], "changed");
    assert!(std::fs::read_to_string(&file)?.ends_with("NEW_TOKEN=\"tok 456\"\n"));
    let out = home.cli_with_input(&home.project, &["add", "dev/NEW_TOKEN"], "x")?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    let out = home.cli_with_input(&home.project, &["add", "dev/ANOTHER"], "y")?;
    assert!(out.status.success());
    // Bad input changes nothing.
    let snapshot = std::fs::read_to_string(&file)?;
    for (args, input, said) in [
        (
            &["set", "dev/1BAD"][..],
            "v",
            "cannot be a name in an env file",
        ),
        (&["set", "nodot"], "v", "expected VAULT/NAME"),
        (&["set", "nosuch/NAME"], "v", "no vault \"nosuch\" in "),
        (&["set", "dev/EMPTY"], "", "the value is empty"),
    ] {
        let out = home.cli_with_input(&home.project, args, input)?;
        assert!(!out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(said),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(std::fs::read_to_string(&file)?, snapshot);
    let elsewhere = home.project.join("team");
    std::fs::create_dir(&elsewhere)?;
    std::fs::write(
        elsewhere.join("agent-vault.config.json"),
        r#"{"vaults":{"team":{"type":"1password","serviceAccountToken":"env:OP"}}}"#,
    )?;
    let out = home
        .command(&bin("agent-vault"))
        .args(["set", "team/KEY"])
        .current_dir(&elsewhere)
        .stdin(std::process::Stdio::null())
        .output()?;
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("is a 1password vault: add the secret with 1password's own tool"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The agent sees the new names at once.
    let _daemon = home.start_daemon()?;
    let agent = Agent::start(&home).await?;
    let text = agent.call("list_secrets", json!({})).await?.text();
    assert!(
        text.contains("- NEW_TOKEN") && text.contains("- ANOTHER"),
        "{text}"
    );
    agent.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn init_sets_up_a_project_the_agent_can_use() -> Result<()> {
    let home = Home::new()?;
    let app = home.project.join("app");
    std::fs::create_dir(&app)?;
    std::fs::write(app.join(".gitignore"), "target/\n# mine\nnode_modules")?;
    let init = |args: &[&str]| {
        home.command(&bin("agent-vault"))
            .arg("init")
            .args(args)
            .current_dir(&app)
            .stdin(std::process::Stdio::null())
            .output()
    };
    let out = init(&["--type", "env", "--vault", "dev", "--ttl", "15", "--json"])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["type"], "env");
    let config = std::fs::read_to_string(app.join("agent-vault.config.json"))?;
    let parsed: serde_json::Value = serde_json::from_str(&config)?;
    assert_eq!(
        parsed,
        json!({"vaults": {"dev": {"type": "env", "file": ".env.secrets", "ttl": 15}}})
    );
    let mode = |f: &str| -> Result<u32> {
        Ok(std::fs::metadata(app.join(f))?.permissions().mode() & 0o777)
    };
    assert_eq!(mode(".env.secrets")?, 0o600);
    // Shareable (it holds no secret): 0644 less the umask.
    let config_mode = mode("agent-vault.config.json")?;
    assert!(
        config_mode & 0o600 == 0o600 && config_mode & 0o022 == 0,
        "{config_mode:o}"
    );
    assert_eq!(
        std::fs::read_to_string(app.join(".gitignore"))?,
        "target/\n# mine\nnode_modules\n.env.secrets\n"
    );
    // Not twice; --force keeps a backup.
    let out = init(&[])?;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("already exists; edit it, or run again with --force")
    );
    let out = init(&["--force", "--vault", "local"])?;
    assert!(out.status.success());
    assert_eq!(
        std::fs::read_to_string(app.join("agent-vault.config.json.agent-vault.bak"))?,
        config
    );
    assert_eq!(
        std::fs::read_to_string(app.join(".gitignore"))?,
        "target/\n# mine\nnode_modules\n.env.secrets\n",
        "ignored once"
    );
    for (args, said) in [
        (&["--force", "--vault", "a b"][..], "--vault: expected"),
        (
            &["--force", "--file", "../x"],
            "--file: expected a file name in this directory",
        ),
        (&["--force", "--type", "vault"], "invalid value 'vault'"),
    ] {
        let out = init(args)?;
        assert!(!out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(said),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // The first hour: a secret added, and an agent started here sees it.
    let set = home.cli_with_input(
        &app,
        &["set", "local/DATABASE_URL"],
        "postgres://first-hour\n",
    )?;
    assert!(set.status.success());
    let _daemon = home.start_daemon()?;
    let agent = Agent::start_in(&home, &app).await?;
    let text = agent.call("list_secrets", json!({})).await?.text();
    assert!(text.contains("[local]\n  - DATABASE_URL"), "{text}");
    agent.stop().await;

    // 1Password: a config naming the token's variable, no env file.
    let team = home.project.join("team");
    std::fs::create_dir(&team)?;
    let out = home
        .command(&bin("agent-vault"))
        .args(["init", "--type", "1password", "--vault", "team"])
        .current_dir(&team)
        .stdin(std::process::Stdio::null())
        .output()?;
    assert!(out.status.success());
    let parsed: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        team.join("agent-vault.config.json"),
    )?)?;
    assert_eq!(
        parsed["vaults"]["team"]["serviceAccountToken"],
        "env:OP_SERVICE_ACCOUNT_TOKEN"
    );
    assert!(!team.join(".env.secrets").exists() && !team.join(".gitignore").exists());
    Ok(())
}

/// A client that starts its servers in the home directory (as desktop
/// clients do) but names its workspace folder as a root: the shim uses the
/// project's config there, and says which config it uses.
#[tokio::test(flavor = "multi_thread")]
async fn the_shim_finds_the_project_config_through_the_clients_roots() -> Result<()> {
    let home = Home::new()?;
    let _daemon = home.start_daemon()?;
    let app = home.dir.path().join("my app");
    std::fs::create_dir(&app)?;
    std::fs::write(
        app.join("agent-vault.config.json"),
        r#"{"vaults": {"app": {"type": "env", "file": ".env.app"}}}"#,
    )?;
    std::fs::write(app.join(".env.app"), "APP_TOKEN=app-token-value\n")?;
    std::fs::set_permissions(app.join(".env.app"), std::fs::Permissions::from_mode(0o600))?;
    let start = |roots: Vec<String>| {
        let mut cmd = tokio::process::Command::from(home.command(&bin("agent-vault-mcp")));
        cmd.current_dir(home.dir.path());
        Agent::spawn_with_roots(cmd, roots)
    };

    // Without roots: the daemon's own config, said so.
    let agent = start(Vec::new()).await?;
    let text = agent.call("list_secrets", json!({})).await?.text();
    assert!(text.contains("[dev]") && !text.contains("[app]"), "{text}");
    assert!(
        text.contains("Config: agent-vaultd's own (no agent-vault.config.json in "),
        "{text}"
    );
    agent.stop().await;

    // With the workspace folder as a root (its URI percent-encoded).
    let uri = format!("file://{}", app.display()).replace(' ', "%20");
    let agent = start(vec!["https://example.com/not-a-folder".into(), uri]).await?;
    let text = agent.call("list_secrets", json!({})).await?.text();
    assert!(
        text.contains("[app]") && text.contains("APP_TOKEN"),
        "{text}"
    );
    assert!(!text.contains("[dev]"), "{text}");
    let config = std::fs::canonicalize(app.join("agent-vault.config.json"))?;
    assert!(
        text.contains(&format!(
            "Config: {} (found in the MCP client's workspace folder)",
            config.display()
        )),
        "{text}"
    );
    agent.stop().await;
    Ok(())
}

/// Every `--json` output uses one key style (camelCase), so scripts need
/// not guess.
#[tokio::test(flavor = "multi_thread")]
async fn every_json_output_has_camel_case_keys() -> Result<()> {
    fn keys(v: &serde_json::Value, path: &str, bad: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(o) => {
                for (k, v) in o {
                    if k.contains('_') || k.contains('-') || k.starts_with(char::is_uppercase) {
                        bad.push(format!("{path}.{k}"));
                    }
                    keys(v, &format!("{path}.{k}"), bad);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| keys(v, path, bad)),
            _ => {}
        }
    }
    let home = Home::new()?;
    let daemon = home.start_daemon()?;
    // A device and an audit row to show.
    let _approver = Approver::pair(&home, &daemon.base_url).await?;
    let mut bad = Vec::new();
    let mut seen_rows = 0;
    for args in [
        &["status"][..],
        &["pending"],
        &["grants"],
        &["audit"],
        &["audit", "verify"],
        &["devices"],
        &["config", "check"],
        &["mcp-config", "cursor"],
    ] {
        let v = home.cli_json(args)?;
        if args == ["audit"] {
            seen_rows = v.as_array().map_or(0, Vec::len);
        }
        keys(&v, &args.join(" "), &mut bad);
    }
    let doctor = home.cli(&["doctor", "--json"])?;
    keys(&serde_json::from_slice(&doctor.stdout)?, "doctor", &mut bad);
    assert!(seen_rows > 0, "no audit row to look at");
    assert!(bad.is_empty(), "keys not in camelCase: {bad:?}");
    Ok(())
}

/// Coming from the prototype: its agent-vault.db history joins the chained
/// log, marked as imported, once; a bad row imports nothing; an imported
/// approval opens no window.
#[tokio::test(flavor = "multi_thread")]
async fn import_audit_brings_the_prototypes_history_once() -> Result<()> {
    let home = Home::new()?;
    let _daemon = home.start_daemon()?;
    let old = home.dir.path().join("agent-vault.db");
    {
        // The prototype's table, as its README documents it.
        let db = rusqlite::Connection::open(&old)?;
        db.execute_batch(
            "CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, timestamp TEXT NOT NULL,
               secret_name TEXT NOT NULL, reason TEXT, action TEXT NOT NULL, ttl_expires_at TEXT);
             INSERT INTO audit (timestamp, secret_name, reason, action, ttl_expires_at) VALUES
               ('2025-03-01T10:00:00.000Z', 'API_KEY', 'deploy', 'approved', '2999-01-01T00:00:00.000Z'),
               ('2025-03-01T10:05:00.000Z', 'API_KEY', 'deploy again', 'auto_approved', NULL),
               ('2025-03-02T09:00:00.000Z', 'DB_URL', 'migrate', 'denied', NULL);",
        )?;
    }
    let path = old.to_str().unwrap_or_default();
    let first = home.cli_json(&["import-audit", path])?;
    assert_eq!(
        (first["imported"].as_u64(), first["already"].as_u64()),
        (Some(3), Some(0))
    );
    let again = home.cli_json(&["import-audit", path])?;
    assert_eq!(
        (again["imported"].as_u64(), again["already"].as_u64()),
        (Some(0), Some(3))
    );
    // In the chain, with their own times, marked.
    assert_eq!(home.cli_json(&["audit", "verify"])?["ok"], true);
    let db = rusqlite::Connection::open(home.db())?;
    let rows: Vec<(String, String, String)> = db
        .prepare("SELECT timestamp, action, detail FROM audit WHERE detail LIKE 'imported from%' ORDER BY id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let canonical = std::fs::canonicalize(&old)?;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].0, "2025-03-01T10:00:00.000Z");
    assert_eq!(rows[2].1, "denied");
    assert_eq!(
        rows[0].2,
        format!(
            "imported from the prototype's {}, its row 1",
            canonical.display()
        )
    );
    // An imported approval with a window still open grants nothing.
    assert_eq!(
        home.cli_json(&["grants"])?.as_array().map(Vec::len),
        Some(0)
    );

    // A row that is not the prototype's: nothing is imported.
    let bad = home.dir.path().join("bad.db");
    rusqlite::Connection::open(&bad)?.execute_batch(
        "CREATE TABLE audit (id INTEGER PRIMARY KEY, timestamp TEXT, secret_name TEXT, reason TEXT, action TEXT);
         INSERT INTO audit VALUES (1, '2025-03-01T10:00:00Z', 'A', 'r', 'approved'), (2, '2025-03-01T10:00:00Z', 'B', 'r', 'maybe');",
    )?;
    let out = home.cli(&["import-audit", bad.to_str().unwrap_or_default()])?;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "nothing was imported: row 2: action \"maybe\" is not one the prototype wrote"
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let count: i64 = db.query_row(
        "SELECT COUNT(*) FROM audit WHERE detail LIKE 'imported from%'",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(count, 3);
    // Not a database at all.
    let out = home.cli(&[
        "import-audit",
        home.config_path().to_str().unwrap_or_default(),
    ])?;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a database agent-vault can read"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// The README's first steps on the offline defaults: `agent-vaultd` with no
/// config anywhere says which config it wrote and how to add a secret; the
/// secret added that way reaches an agent started in any directory.
#[tokio::test(flavor = "multi_thread")]
async fn the_offline_defaults_say_where_secrets_go() -> Result<()> {
    let home = Home::new()?;
    let nowhere = home.dir.path().join("nowhere");
    std::fs::create_dir(&nowhere)?;
    // The config it would write, on a free port (tests run side by side).
    let config = home.state.join("agent-vault.config.json");
    std::fs::write(
        &config,
        r#"{"vaults": {"local": {"type": "env", "file": "secrets.env", "ttl": 0, "writable": true}}, "port": 0}"#,
    )?;
    let daemon = Daemon::start(&home, |c| {
        c.current_dir(&nowhere);
    })?;
    let secrets = home.state.join("secrets.env");
    let banner = poll(std::time::Duration::from_secs(5), || {
        let log = daemon.log();
        log.contains("add a secret").then_some(log)
    })?;
    assert!(
        banner.contains(&format!("config: {}", config.display()))
            && banner.contains(&format!(
                "  vault local (env: {}); add a secret: agent-vault set local/NAME",
                secrets.display()
            )),
        "{banner}"
    );
    assert_eq!(
        std::fs::metadata(&secrets)?.permissions().mode() & 0o777,
        0o600
    );
    let set = home.cli_with_input(&nowhere, &["set", "local/GITHUB_TOKEN"], "ghp-first-hour\n")?;
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let agent = Agent::start_in(&home, &nowhere).await?;
    let text = agent.call("list_secrets", json!({})).await?.text();
    assert!(
        text.contains("[local] (writable)\n  - GITHUB_TOKEN"),
        "{text}"
    );
    agent.stop().await;
    Ok(())
}
