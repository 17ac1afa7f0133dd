//! The service units parse and point at a real daemon.

use std::process::Command;

use agent_vault_e2e::bin;
use anyhow::Result;

fn tool_available(name: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    // CI installs every tool the suite uses: there, a missing one is a failure.
    assert!(
        found || std::env::var("CI").is_err(),
        "{name} is required in CI"
    );
    if !found {
        eprintln!("skipped: {name} is not installed");
    }
    found
}

/// Verifies a unit with `systemd-analyze`, its ExecStart pointed at the
/// built daemon; returns the offline security exposure score.
fn verify_unit(file: &str, exec: &str) -> Result<Option<f64>> {
    let unit =
        std::fs::read_to_string(format!("{}/../systemd/{file}", env!("CARGO_MANIFEST_DIR")))?;
    assert!(unit.contains(&format!("ExecStart={exec}")), "{file}");
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("agent-vault.service");
    std::fs::write(
        &path,
        unit.replace(exec, &bin("agent-vaultd").display().to_string()),
    )?;
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "systemd-analyze verify {file}: {err}"
    );
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes"])
        .arg(&path)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .and_then(|l| l.split(": ").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok()))
}

#[test]
fn the_systemd_units_verify() -> Result<()> {
    if !tool_available("systemd-analyze") {
        return Ok(());
    }
    verify_unit("agent-vault.service", "%h/.cargo/bin/agent-vaultd")?;
    let exposure = verify_unit(
        "agent-vault-hardened.service",
        "/usr/local/bin/agent-vaultd",
    )?;
    let dynamic = verify_unit("agent-vault-dynamic.service", "/usr/local/bin/agent-vaultd")?;
    // systemd-analyze rates 0 (locked down) to 10 (exposed); "OK" is under 2.
    for (unit, score) in [("hardened", exposure), ("dynamic", dynamic)] {
        if let Some(score) = score {
            assert!(score < 2.0, "the {unit} unit's exposure is {score}");
        }
    }
    Ok(())
}

#[test]
fn the_launchd_plist_parses() -> Result<()> {
    if !tool_available("python3") {
        return Ok(());
    }
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../launchd/dev.agent-vault.agentvaultd.plist"
    );
    let out = Command::new("python3")
        .args([
            "-c",
            "import plistlib,sys; d=plistlib.load(open(sys.argv[1],'rb')); \
             assert d['Label']=='dev.agent-vault.agentvaultd'; assert d['RunAtLoad']; \
             assert 'agent-vaultd' in d['ProgramArguments'][-1]; print('ok')",
            path,
        ])
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
