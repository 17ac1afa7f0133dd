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

#[test]
fn the_systemd_unit_verifies() -> Result<()> {
    if !tool_available("systemd-analyze") {
        return Ok(());
    }
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../systemd/agent-vault.service"
    ))?;
    assert!(unit.contains("ExecStart=%h/.cargo/bin/agent-vaultd"));
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("agent-vault.service");
    let daemon = bin("agent-vaultd");
    std::fs::write(
        &path,
        unit.replace("%h/.cargo/bin/agent-vaultd", &daemon.display().to_string()),
    )?;
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "systemd-analyze verify: {err}"
    );
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
