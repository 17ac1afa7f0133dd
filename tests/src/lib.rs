//! The end-to-end harness: real binaries in temp dirs.
//!
//! - [`Home`]: a state directory, a project directory with a config and an
//!   env file, and the environment that points all three binaries at them.
//! - [`Daemon`]: the real `agent-vaultd`, started and waited for by polling
//!   `agent-vault status` (never a fixed sleep), stopped with SIGTERM.
//! - [`Agent`]: an MCP client (rmcp) driving a real `agent-vault-mcp`.
//! - [`Approver`]: a browser stand-in that pairs through the real pairing
//!   link and approves or denies through the real HTML forms.

pub mod browser;
pub mod floor;
pub mod hardened;
pub mod receiver;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
    ProgressNotificationParam, RequestMetaObject,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::Value;

/// A number from `/proc/<pid>/status` (`"VmRSS:"` in KiB, `"Threads:"`, …).
pub fn proc_status(pid: u32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The fields of a `/proc/.../stat` file after the ")" that ends the command
/// name (which may hold spaces itself): the state is `[0]`, utime `[11]`,
/// the scheduling policy `[38]`.
pub fn proc_stat_fields(path: impl AsRef<Path>) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(path).ok()?;
    Some(
        stat.rsplit(')')
            .next()?
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    )
}

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

    pub fn start_daemon(&self) -> Result<Daemon> {
        Daemon::start(self, |_| {})
    }
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

/// A fresh log file under `target/e2e-logs`, kept after the test so that
/// the whole run's logs can be searched for secret values.
pub fn log_path(kind: &str) -> PathBuf {
    let dir = bin("agent-vaultd")
        .parent()
        .and_then(Path::parent)
        .map(|t| t.join("e2e-logs"))
        .unwrap_or_else(std::env::temp_dir);
    let _ = std::fs::create_dir_all(&dir);
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    dir.join(format!(
        "{kind}-{}-{}.log",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ))
}

/// A terminal whose output is appended to `log`: the daemon's stderr, as
/// when a person runs it in a terminal (agent-vaultd shows the first
/// pairing link only there). Returns the terminal's side for the daemon.
pub fn terminal_into(log: &Path) -> Result<std::fs::File> {
    let pty = nix::pty::openpty(None, None)?;
    let mut master = std::fs::File::from(pty.master);
    let mut out = std::fs::OpenOptions::new().append(true).open(log)?;
    // Ends when the daemon (the last holder of the other side) exits.
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut master, &mut out);
    });
    Ok(std::fs::File::from(pty.slave))
}

/// The pairing links shown in a daemon's terminal output, oldest first.
pub fn pairing_links(log: &str) -> Vec<String> {
    log.split_whitespace()
        .filter(|w| w.starts_with("http") && w.contains("/pair/"))
        .map(str::to_string)
        .collect()
}

/// Polls `f` every 20 ms until it returns Some, or fails after `timeout`.
pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
    pub base_url: String,
}

impl Daemon {
    /// Starts the daemon (`configure` may change the command, e.g. its uid)
    /// and waits until `agent-vault status` answers.
    pub fn start(home: &Home, configure: impl FnOnce(&mut Command)) -> Result<Self> {
        Self::start_exe(home, &bin("agent-vaultd"), configure)
    }

    /// [`Daemon::start`] with another build's `agent-vaultd` (benchmarks
    /// compare two).
    pub fn start_exe(
        home: &Home,
        exe: &Path,
        configure: impl FnOnce(&mut Command),
    ) -> Result<Self> {
        let log = log_path("daemon");
        std::fs::File::create(&log)?;
        let mut cmd = home.command(exe);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(terminal_into(&log)?);
        configure(&mut cmd);
        if let Ok(mut l) = home.daemon_log.lock() {
            *l = Some(log.clone());
        }
        let mut child = cmd.spawn()?;
        let status = poll(Duration::from_secs(20), || {
            if let Ok(Some(_)) = child.try_wait() {
                return Some(Err(anyhow!(
                    "agent-vaultd exited: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )));
            }
            home.cli_json(&["status"]).ok().map(Ok)
        })
        .context("waiting for agent-vaultd")??;
        let base_url = status["approvalUrl"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        Ok(Self {
            child,
            log,
            base_url,
        })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> Result<std::process::ExitStatus> {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid()),
            nix::sys::signal::Signal::SIGTERM,
        )?;
        let status = poll(Duration::from_secs(15), || {
            self.child.try_wait().ok().flatten()
        })?;
        Ok(status)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The first word starting with `prefix` (say `otpauth://`) that the
    /// daemon shows on its terminal, waited for.
    pub fn shown_on_terminal(&self, prefix: &str) -> Result<String> {
        poll(Duration::from_secs(10), || {
            self.log()
                .split_whitespace()
                .find(|w| w.starts_with(prefix))
                .map(str::to_string)
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The MCP client side of a test: declares itself as "e2e-agent" and keeps
/// the progress messages it receives.
#[derive(Clone, Default)]
pub struct TestClient {
    pub progress: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for TestClient {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("e2e-agent", "1.2.3"),
        )
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        if let Ok(mut p) = self.progress.lock() {
            p.push(params.message.unwrap_or_default());
        }
    }
}

/// A real agent-vault-mcp driven by a real MCP client.
pub struct Agent {
    pub service: RunningService<RoleClient, TestClient>,
    pub client: TestClient,
}

/// A tool result, flattened for assertions.
#[derive(Debug, Clone)]
pub struct ToolOutcome {
    pub is_error: bool,
    pub texts: Vec<String>,
}

impl ToolOutcome {
    pub fn text(&self) -> String {
        self.texts.join("\n")
    }
}

fn outcome(r: CallToolResult) -> ToolOutcome {
    ToolOutcome {
        is_error: r.is_error.unwrap_or(false),
        texts: r
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect(),
    }
}

impl Agent {
    pub async fn start(home: &Home) -> Result<Self> {
        Self::start_in(home, &home.project).await
    }

    pub async fn start_in(home: &Home, cwd: &Path) -> Result<Self> {
        let mut cmd = tokio::process::Command::from(home.command(&bin("agent-vault-mcp")));
        cmd.current_dir(cwd);
        Self::spawn(cmd).await
    }

    /// Drives a shim started by `cmd` (which may set its uid, env, …).
    pub async fn spawn(cmd: tokio::process::Command) -> Result<Self> {
        let transport = TokioChildProcess::builder(cmd)
            .stderr(Stdio::inherit())
            .spawn()?
            .0;
        let client = TestClient::default();
        let service = client.clone().serve(transport).await?;
        Ok(Self { service, client })
    }

    /// Drives a shim whose stdin and stdout are Unix socket pairs, as a
    /// Node-based agent spawns it (libuv makes a socketpair per piped
    /// stream). Returns the shim's process too.
    pub async fn spawn_with_sockets(
        mut cmd: tokio::process::Command,
    ) -> Result<(Self, tokio::process::Child)> {
        let (ours_in, theirs_in) = std::os::unix::net::UnixStream::pair()?;
        let (ours_out, theirs_out) = std::os::unix::net::UnixStream::pair()?;
        cmd.stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs_in)))
            .stdout(Stdio::from(std::os::fd::OwnedFd::from(theirs_out)))
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let child = cmd.spawn()?;
        let tokio_stream = |s: std::os::unix::net::UnixStream| {
            s.set_nonblocking(true)?;
            tokio::net::UnixStream::from_std(s)
        };
        let (from_shim, to_shim) = (tokio_stream(ours_out)?, tokio_stream(ours_in)?);
        let client = TestClient::default();
        let service = client.clone().serve((from_shim, to_shim)).await?;
        Ok((Self { service, client }, child))
    }

    pub async fn call(&self, tool: &str, args: Value) -> Result<ToolOutcome> {
        let args = args.as_object().cloned().unwrap_or_default();
        let r = self
            .service
            .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(args))
            .await?;
        Ok(outcome(r))
    }

    /// A call that asks for progress notifications.
    pub async fn call_with_progress(&self, tool: &str, args: Value) -> Result<ToolOutcome> {
        let mut meta = RequestMetaObject::default();
        meta.set_progress_token(rmcp::model::ProgressToken(
            rmcp::model::NumberOrString::Number(7),
        ));
        let mut params = CallToolRequestParams::new(tool.to_string())
            .with_arguments(args.as_object().cloned().unwrap_or_default());
        params.meta = Some(meta);
        Ok(outcome(self.service.call_tool(params).await?))
    }

    pub async fn stop(self) {
        let _ = self.service.cancel().await;
    }
}

/// A paired browser: holds the device cookie and its device proof, and
/// submits the real forms as the pages' script leaves them.
pub struct Approver {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: String,
    /// The device proof kept in the browser's localStorage.
    pub proof: String,
}

/// A device proof, as `/static/device.js` makes one: 32 random bytes,
/// URL-safe base64.
pub fn new_proof() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).unwrap_or_else(|e| panic!("{e}"));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A page as the browser holds it once `/static/device.js` ran: every form
/// token followed by `~` and the device proof.
pub fn with_proof(html: &str, proof: &str) -> String {
    let mut out = html.to_string();
    for marker in ["name=\"csrf\" value=\"", "data-csrf=\""] {
        let mut at = 0;
        while let Some(i) = out[at..].find(marker) {
            let start = at + i + marker.len();
            let Some(end) = out[start..].find('"') else {
                break;
            };
            out.insert_str(start + end, &format!("~{proof}"));
            at = start + end + proof.len() + 1;
        }
    }
    out
}

/// The value of a `name="..." value="..."` input in a page.
pub fn form_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let rest = &html[at..];
    let v = rest.find("value=\"")? + 7;
    let end = rest[v..].find('"')?;
    Some(rest[v..v + end].to_string())
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

/// The cookie set by a response, as `name=value`.
pub fn set_cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
}

impl Approver {
    /// Pairs through `agent-vault pair --json` and the pairing page. With
    /// no device paired, and the CLI's user an agent user too (these tests
    /// run everything as one user), the link is taken from the daemon's
    /// terminal, where a person would read it.
    pub async fn pair(home: &Home, base: &str) -> Result<Self> {
        let url = Self::link(home)?;
        let http = http();
        let page = http.get(&url).send().await?;
        if page.status() != 200 {
            bail!("pairing page: {}", page.status());
        }
        let proof = new_proof();
        let res = http
            .post(&url)
            .form(&[("label", "test phone"), ("proof", proof.as_str())])
            .send()
            .await?;
        let cookie = set_cookie(&res, "av_device")
            .ok_or_else(|| anyhow!("no device cookie after pairing ({})", res.status()))?;
        Ok(Self {
            http,
            base: base.to_string(),
            cookie,
            proof,
        })
    }

    pub async fn page(&self, path: &str) -> Result<(u16, String)> {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await?;
        let status = res.status().as_u16();
        Ok((status, with_proof(&res.text().await?, &self.proof)))
    }

    /// Opens the approval page and submits Approve or Deny (with a window).
    pub async fn decide(
        &self,
        id: &str,
        decision: &str,
        window: Option<&str>,
    ) -> Result<(u16, String)> {
        let (status, html) = self.page(&format!("/approve/{id}")).await?;
        if status != 200 {
            bail!("approval page: {status}");
        }
        let csrf = form_value(&html, "csrf").ok_or_else(|| anyhow!("no csrf field"))?;
        let mut form = vec![("csrf", csrf), ("decision", decision.to_string())];
        if let Some(w) = window {
            form.push(("window", w.to_string()));
        }
        let res = self
            .http
            .post(format!("{}/approve/{id}", self.base))
            .header("cookie", &self.cookie)
            .form(&form)
            .send()
            .await?;
        Ok((res.status().as_u16(), res.text().await?))
    }
}

/// Waits for exactly one pending request and returns its JSON.
pub async fn one_pending(home: &Home) -> Result<Value> {
    let start = Instant::now();
    loop {
        let p = home.cli_json(&["pending"])?;
        if let Some(arr) = p.as_array() {
            if arr.len() == 1 {
                return Ok(arr[0].clone());
            }
            if arr.len() > 1 {
                bail!("expected one pending request, found {}", arr.len());
            }
        }
        if start.elapsed() > Duration::from_secs(15) {
            bail!("no pending request appeared");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The id of the one pending request (see [`one_pending`]).
pub async fn one_pending_id(home: &Home) -> Result<String> {
    Ok(one_pending(home).await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// Audit rows as (action, secret_name), oldest first.
pub fn audit_actions(home: &Home) -> Result<Vec<(String, String)>> {
    // The audit RPC flushes the writer first; ignored when no daemon runs.
    let _ = home.cli(&["audit", "--limit", "1"]);
    let conn = rusqlite::Connection::open(home.db())?;
    let mut stmt = conn.prepare("SELECT action, secret_name FROM audit ORDER BY id")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

impl Approver {
    /// A pairing link from `agent-vault pair`, or from the daemon's terminal
    /// when the CLI says it was shown there.
    pub fn link(home: &Home) -> Result<String> {
        let log = home
            .daemon_log
            .lock()
            .ok()
            .and_then(|l| l.clone())
            .unwrap_or_default();
        let before = pairing_links(&std::fs::read_to_string(&log).unwrap_or_default()).len();
        let reply = home.cli_json(&["pair"])?;
        if reply["shownOnDaemonTerminal"] != Value::Bool(true) {
            return Ok(reply["url"].as_str().unwrap_or_default().to_string());
        }
        poll(Duration::from_secs(10), || {
            let links = pairing_links(&std::fs::read_to_string(&log).ok()?);
            (links.len() > before)
                .then(|| links.last().cloned())
                .flatten()
        })
        .context("the first pairing link on the daemon's terminal")
    }

    /// Pairs another browser, approved on the dashboard of `first`.
    pub async fn pair_another(home: &Home, first: &Approver, label: &str) -> Result<Approver> {
        let url = home.cli_json(&["pair"])?["url"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let http = http();
        let proof = new_proof();
        let claimed = http
            .post(&url)
            .form(&[("label", label), ("proof", proof.as_str())])
            .send()
            .await?;
        let claim = set_cookie(&claimed, "av_claim").ok_or_else(|| anyhow!("no claim cookie"))?;
        let (_, dash) = first.page("/").await?;
        let at = dash
            .find("action=\"/pairings/")
            .ok_or_else(|| anyhow!("no pairing request on the dashboard"))?
            + "action=\"".len();
        let action = dash[at..].split('"').next().unwrap_or_default().to_string();
        let csrf = form_value(&dash, "csrf").unwrap_or_default();
        first
            .http
            .post(format!("{}{action}", first.base))
            .header("cookie", &first.cookie)
            .form(&[("decision", "approve"), ("csrf", csrf.as_str())])
            .send()
            .await?;
        let done = http
            .get(format!("{}/pair-wait", first.base))
            .header("cookie", &claim)
            .send()
            .await?;
        let cookie = set_cookie(&done, "av_device").ok_or_else(|| anyhow!("not paired"))?;
        Ok(Approver {
            http,
            base: first.base.clone(),
            cookie,
            proof,
        })
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

/// Calls `tool` in the background, waits for the one request it opens,
/// answers it on `approver` ("approve" or "deny"), and returns the tool's
/// result with the agent.
pub async fn call_and_decide(
    home: &Home,
    approver: &Approver,
    agent: Agent,
    tool: &'static str,
    args: Value,
    decision: &str,
) -> Result<(ToolOutcome, Agent)> {
    let call = tokio::spawn(async move { agent.call(tool, args).await.map(|r| (r, agent)) });
    let id = one_pending(home).await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (status, _) = approver.decide(&id, decision, None).await?;
    if status != 200 {
        bail!("the approval page answered {status}");
    }
    call.await?
}

/// Opens the "open" vault's window with one real approval.
pub async fn open_the_open_vault(home: &Home, approver: &Approver) -> Result<()> {
    let agent = Agent::start(home).await?;
    let args = serde_json::json!({"vault": "open", "name": "API_KEY", "reason": "open the vault"});
    let (r, agent) = call_and_decide(home, approver, agent, "get_secret", args, "approve").await?;
    if r.is_error {
        bail!("{r:?}");
    }
    agent.stop().await;
    Ok(())
}
