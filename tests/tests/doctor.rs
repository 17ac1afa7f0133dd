//! `agent-vault doctor` and `agent-vault config check`, as a newcomer runs
//! them when something does not work: each finds the problem, says it with
//! its fix, and exits 1 (0 when nothing stops requests).

use agent_vault_e2e::*;
use anyhow::Result;
use serde_json::Value;

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// The checks of `doctor --json` at `level` in `area`.
fn checks<'a>(report: &'a Value, area: &str, level: &str) -> Vec<&'a str> {
    report["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["area"] == area && c["level"] == level)
        .filter_map(|c| c["what"].as_str())
        .collect()
}

fn doctor_json(home: &Home, dir: &std::path::Path) -> Result<(Option<i32>, Value)> {
    let out = home
        .command(&bin("agent-vault"))
        .args(["doctor", "--json"])
        .current_dir(dir)
        .output()?;
    Ok((out.status.code(), serde_json::from_slice(&out.stdout)?))
}

#[test]
fn doctor_without_a_daemon_says_so_and_fails() -> Result<()> {
    let home = Home::new()?;
    let out = home.cli(&["doctor"])?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("FAIL  daemon    agent-vaultd is not running"),
        "{said}"
    );
    assert!(said.contains("fix: start it with `agent-vaultd`"), "{said}");
    // The config is still checked without a daemon, and found valid.
    assert!(said.contains("ok    config"), "{said}");
    let (code, report) = doctor_json(&home, &home.project)?;
    assert_eq!(code, Some(1));
    assert_eq!(report["ok"], false);
    assert_eq!(checks(&report, "daemon", "fail").len(), 1);
    Ok(())
}

#[test]
fn doctor_and_config_check_name_a_broken_config_and_an_unset_reference() -> Result<()> {
    let home = Home::new()?;
    let _daemon = home.start_daemon()?;
    // The daemon's own config is fine: nothing fails.
    let (code, report) = doctor_json(&home, &home.project)?;
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(checks(&report, "backends", "ok").len(), 3, "{report:#}");

    // A project beside it with a typo.
    let typo = home.project.join("typo");
    std::fs::create_dir(&typo)?;
    std::fs::write(
        typo.join("agent-vault.config.json"),
        r#"{"vaults": {"dev": {"type": "env", "file": ".env.secrets", "tll": 5}}}"#,
    )?;
    let out = home
        .command(&bin("agent-vault"))
        .arg("doctor")
        .current_dir(&typo)
        .output()?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("FAIL  config")
            && said.contains("vaults.dev.tll: unknown setting")
            && said.contains("did you mean \"ttl\"?"),
        "{said}"
    );
    // The daemon's own config is checked too, and still fine.
    assert!(said.contains("(agent-vaultd's own): valid"), "{said}");

    // `config check` says the same about the one file.
    let file = typo.join("agent-vault.config.json");
    let out = home.cli(&["config", "check", file.to_str().unwrap_or_default()])?;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("did you mean \"ttl\""),
        "{}",
        text(&out)
    );
    let out = home.cli(&["config", "check"])?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("valid; vaults dev (env), rw (env), shared (env)"),
        "{}",
        text(&out)
    );

    // A reference to a variable that is not set.
    let unset = home.project.join("unset");
    std::fs::create_dir(&unset)?;
    std::fs::write(
        unset.join("agent-vault.config.json"),
        r#"{"vaults": {"dev": {"type": "env"}},
            "webhooks": [{"url": "https://hooks.example/av", "authorization": "env:AGENT_VAULT_DOCTOR_UNSET"}]}"#,
    )?;
    let (code, report) = doctor_json(&home, &unset)?;
    assert_eq!(code, Some(1));
    let failed = checks(&report, "config", "fail");
    assert!(
        failed
            .iter()
            .any(|w| w.ends_with("refers to env:AGENT_VAULT_DOCTOR_UNSET, which is not set here")),
        "{report:#}"
    );
    // Nothing was changed by looking.
    assert!(!unset.join(".env.secrets").exists());
    Ok(())
}

#[test]
fn doctor_lists_every_backend_and_names_one_that_cannot_answer() -> Result<()> {
    let home = Home::with_config(
        r#"{"vaults": {
              "dev": {"type": "env", "file": ".env.secrets"},
              "team": {"type": "1password"}
            }, "port": 0}"#,
    )?;
    // No `op` on the daemon's PATH.
    let empty = home.dir.path().join("empty-bin");
    std::fs::create_dir(&empty)?;
    let _daemon = Daemon::start(&home, |c| {
        c.env("PATH", &empty);
    })?;
    let out = home.cli(&["doctor"])?;
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("ok    backends  dev (env, "), "{said}");
    assert!(
        said.contains("FAIL  backends  team (1password")
            && said.contains("the 1Password CLI (`op`) is not installed")
            && said.contains("fix: install the 1Password CLI (`op`)"),
        "{said}"
    );
    // Only that: the rest is in order.
    let (_, report) = doctor_json(&home, &home.project)?;
    let failed: Vec<&Value> = report["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["level"] == "fail")
        .collect();
    assert_eq!(failed.len(), 1, "{report:#}");
    Ok(())
}
