//! A test's home: a state directory, a project with a config and env
//! files, the commands pointed at them, and the built binaries.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::Value;

/// A built binary of the workspace (`cargo build --workspace` first).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/debug/deps/<test> -> target/debug/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the binaries first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

pub const TEST_CONFIG: &str = r#"{
  "vaults": {
    "dev": { "type": "env", "file": ".env.secrets", "ttl": 0 },
    "shared": { "type": "env", "file": ".env.secrets", "ttl": 5, "ttlScope": "secret" },
    "rw": { "type": "env", "file": ".env.rw", "ttl": 0, "writable": true }
  },
  "port": 0,
  "approval": { "waitSeconds": 3, "expireMinutes": 10 }
}"#;

pub const TEST_SECRETS: &str = "# test secrets\nAPI_KEY=value-of-api-key-7f3a\nexport DB_URL=\"postgres://u:p@h/db\"\nOTHER='other-secret-91c2'\n";

/// A copy of a built binary that other uids can run, in `home`'s own
/// directory (made 0755): the checkout may sit under a directory that only
/// its owner can enter, such as a fresh `mktemp -d`.
pub fn bin_for_other_users(home: &Home, name: &str) -> Result<PathBuf> {
    std::fs::set_permissions(home.dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let dir = home.dir.path().join("bin");
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    let to = dir.join(name);
    if !to.exists() {
        // A hard link opens nothing for writing. A copy does, and a process
        // forked meanwhile by another test thread keeps that descriptor
        // until it execs, so running the copy at once can fail with "text
        // file busy"; give such children a moment.
        if std::fs::hard_link(bin(name), &to).is_err() {
            std::fs::copy(bin(name), &to)?;
            std::thread::sleep(Duration::from_millis(300));
        }
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(to)
}

/// A state directory and a project, isolated from every other test.
pub struct Home {
    pub dir: tempfile::TempDir,
    pub state: PathBuf,
    pub project: PathBuf,
    /// The log of the daemon last started here (its terminal's output).
    pub daemon_log: Mutex<Option<PathBuf>>,
}

impl Home {
    pub fn new() -> Result<Self> {
        Self::with_config(TEST_CONFIG)
    }

    pub fn with_config(config: &str) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("av-e2e-").tempdir()?;
        let state = dir.path().join("state");
        let project = dir.path().join("project");
        std::fs::create_dir(&state)?;
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700))?;
        std::fs::create_dir(&project)?;
        std::fs::write(project.join("agent-vault.config.json"), config)?;
        std::fs::write(project.join(".env.secrets"), TEST_SECRETS)?;
        std::fs::write(project.join(".env.rw"), "# writable\nKEEP=me\n")?;
        // As `agent-vault init` and `set` make them: the owner's alone.
        for f in [".env.secrets", ".env.rw"] {
            std::fs::set_permissions(project.join(f), std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(Self {
            dir,
            state,
            project,
            daemon_log: Mutex::new(None),
        })
    }

    pub fn config_path(&self) -> PathBuf {
        self.project.join("agent-vault.config.json")
    }

    pub fn socket(&self) -> PathBuf {
        self.state.join("agent-vault.sock")
    }

    pub fn db(&self) -> PathBuf {
        self.state.join("agent-vault.db")
    }

    /// A command with the environment pointing at this home.
    pub fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("AGENT_VAULT_HOME", &self.state)
            .env("AGENT_VAULT_LOG", "info")
            .current_dir(&self.project);
        c
    }

    /// Runs the CLI and returns its output.
    pub fn cli(&self, args: &[&str]) -> Result<Output> {
        Ok(self.command(&bin("agent-vault")).args(args).output()?)
    }

    /// Runs the CLI in `dir` with `stdin` as its input.
    pub fn cli_with_input(&self, dir: &Path, args: &[&str], stdin: &str) -> Result<Output> {
        use std::io::Write;
        let mut child = self
            .command(&bin("agent-vault"))
            .args(args)
            .current_dir(dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.as_bytes())?;
        }
        Ok(child.wait_with_output()?)
    }

    /// Runs the CLI with --json and parses stdout; fails on a non-zero exit.
    pub fn cli_json(&self, args: &[&str]) -> Result<Value> {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.cli(&all)?;
        if !out.status.success() {
            bail!(
                "agent-vault {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }
}

/// [`TEST_CONFIG`] plus an "open" vault whose approval opens the whole vault
/// to every session for an hour.
pub fn config_with_open_vault() -> String {
    TEST_CONFIG.replace(
        "\"rw\":",
        "\"open\": { \"type\": \"env\", \"file\": \".env.secrets\", \"ttl\": 60, \"ttlScope\": \"vault\" },\n    \"rw\":",
    )
}

/// The test values of [`TEST_SECRETS`] and the other suites: none of them
/// may ever appear in a log (scripts/test.sh greps `target/e2e-logs`).
pub const SECRET_VALUES: [&str; 5] = [
    "value-of-api-key-7f3a",
    "other-secret-91c2",
    "postgres://u:p@h/db",
    "locked-value-5e1f",
    "s3cr3t",
];
