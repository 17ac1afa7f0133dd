//! A writer killed with SIGKILL in the middle of an env-file write leaves
//! either the old file or the new one, never a mix.
//!
//! The test re-runs its own executable as the writer process (selected by an
//! environment variable), so the kill hits a real process mid-write.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use agent_vaultd::providers::{EnvFileProvider, dotenv};
use agent_vaultd::secret::SecretString;

const WRITER_ENV: &str = "AGENT_VAULT_TEST_WRITER_FILE";
const HEADER: &str = "# keep this comment\nBEFORE=1\n";

fn value(round: usize) -> String {
    // Large enough that a write takes a while; every byte depends on the round.
    let c = (b'a' + (round % 26) as u8) as char;
    std::iter::repeat_n(c, 512 * 1024).collect()
}

/// In the child: write forever, alternating values.
fn run_writer(path: PathBuf, start: usize) -> ! {
    let p = EnvFileProvider::new("v".into(), path, None);
    let mut round = start;
    loop {
        round += 1;
        let _ = p.set(&[("KEY".into(), SecretString::new(value(round)))]);
    }
}

#[test]
fn a_killed_writer_leaves_the_old_or_the_new_file() -> Result<(), Box<dyn std::error::Error>> {
    if let Some(path) = std::env::var_os(WRITER_ENV) {
        let start = std::env::var("AGENT_VAULT_TEST_WRITER_START")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        run_writer(PathBuf::from(path), start);
    }
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(".env");
    std::fs::write(&path, format!("{HEADER}KEY={}\nAFTER=2\n", value(0)))?;
    let valid: Vec<String> = (0..26).map(value).collect();
    let mut seen = std::collections::HashSet::new();
    let mut seed = 0x2545F4914F6CDD1Du64;
    for kill in 0..25 {
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .args([
                "--exact",
                "a_killed_writer_leaves_the_old_or_the_new_file",
                "--nocapture",
            ])
            .env(WRITER_ENV, &path)
            .env("AGENT_VAULT_TEST_WRITER_START", (kill * 7).to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        // Kill it mid-write, not before it started: a busy machine may take
        // longer to start the process than the random delay below. Every
        // finished write replaces the file (a new inode).
        let before = std::fs::metadata(&path)?.ino();
        let started = std::time::Instant::now();
        while std::fs::metadata(&path)?.ino() == before
            && started.elapsed() < Duration::from_secs(20)
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(20 + seed % 60));
        child.kill()?;
        child.wait()?;
        let text = std::fs::read_to_string(&path)?;
        assert!(
            text.starts_with(HEADER),
            "kill {kill}: the other lines are intact"
        );
        assert_eq!(
            dotenv::get(&text, "AFTER").as_deref(),
            Some("2"),
            "kill {kill}"
        );
        let v = dotenv::get(&text, "KEY").unwrap_or_default();
        assert!(
            valid.contains(&v),
            "kill {kill}: a torn value of {} bytes",
            v.len()
        );
        seen.insert(v);
    }
    assert!(
        seen.len() > 5,
        "the writers really wrote: {} distinct values",
        seen.len()
    );
    // A write cut short may leave its temp file; it is never readable by others.
    for entry in std::fs::read_dir(dir.path())? {
        let meta = entry?.metadata()?;
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o077,
            0
        );
    }
    Ok(())
}
