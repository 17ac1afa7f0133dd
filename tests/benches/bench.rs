//! The benchmark suite: real release binaries, loopback only.
//!
//! Run: `cargo build --release --workspace --bins && cargo bench -p agent-vault-e2e --bench bench`
//! (`BENCH_QUICK=1` shrinks every count for a smoke run.)
//!
//! Each measurement states its method in the printed table. Latencies are
//! medians (and p99 where asked) over many calls; nothing is a single run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_vault_e2e::*;
use agent_vault_proto::pb;
use agent_vaultd::audit::{Action, AuditEvent};
use agent_vaultd::procinfo;
use anyhow::{Context, Result};
use serde_json::json;

const BENCH_CONFIG: &str = r#"{
  "vaults": {
    "open": { "type": "env", "file": ".env.secrets", "ttl": 600, "ttlScope": "vault" },
    "dev": { "type": "env", "file": ".env.secrets", "ttl": 0 }
  },
  "port": 0,
  "approval": { "waitSeconds": 50 }
}"#;

fn quick() -> bool {
    std::env::var("BENCH_QUICK").is_ok()
}

fn n(full: usize, small: usize) -> usize {
    if quick() { small } else { full }
}

struct Row {
    what: String,
    target: String,
    measured: String,
    method: String,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn stats(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (percentile(&v, 0.5), percentile(&v, 0.99))
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn rss_kib(pid: u32) -> u64 {
    proc_status(pid, "VmRSS:").unwrap_or(0)
}

/// User + system CPU time of a process so far (clock ticks → Duration).
fn cpu_time(pid: &str) -> Duration {
    let fields = proc_stat_fields(format!("/proc/{pid}/stat")).unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    Duration::from_secs_f64((ticks(11) + ticks(12)) as f64 / hz)
}

/// CPU used per call by each party of a throughput run.
struct CpuSplit {
    client: Duration,
    shims: Duration,
    daemon: Duration,
}

impl CpuSplit {
    /// CPU so far of this process, its children running `server`, and the daemon.
    fn sample(daemon: u32, server: &std::path::Path) -> [Duration; 3] {
        // (The relay floor's server runs the relays' executable.)
        let shims = child_pids(server)
            .iter()
            .filter(|&&p| p != daemon)
            .map(|p| cpu_time(&p.to_string()))
            .sum();
        [cpu_time("self"), shims, cpu_time(&daemon.to_string())]
    }

    fn per_call(before: [Duration; 3], after: [Duration; 3], calls: u64) -> Self {
        let per = |i: usize| after[i].saturating_sub(before[i]) / calls.max(1) as u32;
        Self {
            client: per(0),
            shims: per(1),
            daemon: per(2),
        }
    }

    fn describe(&self) -> String {
        format!(
            "CPU per call: client {}, shims {}, daemon {}",
            us(self.client),
            us(self.shims),
            us(self.daemon)
        )
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Pins this thread and every thread of `pids` to CPU 0; returns the CPU
/// set they had (this thread's), for [`unpin`].
fn pin_to_one_cpu(pids: &[u32]) -> Result<nix::sched::CpuSet> {
    let before = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))?;
    let mut one = nix::sched::CpuSet::new();
    one.set(0)?;
    set_affinity(pids, &one)?;
    Ok(before)
}

fn unpin(pids: &[u32], cpus: &nix::sched::CpuSet) -> Result<()> {
    set_affinity(pids, cpus)
}

fn set_affinity(pids: &[u32], cpus: &nix::sched::CpuSet) -> Result<()> {
    use nix::sched::sched_setaffinity;
    use nix::unistd::Pid;
    sched_setaffinity(Pid::from_raw(0), cpus)?;
    for pid in pids {
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
            if let Some(tid) = task?.file_name().to_str().and_then(|t| t.parse().ok()) {
                sched_setaffinity(Pid::from_raw(tid), cpus)?;
            }
        }
    }
    Ok(())
}

/// A daemon with the "open" vault's window opened by one real approval.
async fn ready_home() -> Result<(Home, Daemon, Approver)> {
    let home = Home::with_config(BENCH_CONFIG)?;
    let daemon = home.start_daemon()?;
    let approver = open_window(&home, &daemon).await?;
    Ok((home, daemon, approver))
}

async fn open_window(home: &Home, daemon: &Daemon) -> Result<Approver> {
    let approver = Approver::pair(home, &daemon.base_url).await?;
    let agent = Agent::start(home).await?;
    let call = agent.call_in_background(
        "get_secret",
        json!({"vault": "open", "name": "API_KEY", "reason": "bench"}),
    );
    let id = one_pending_id(home).await?;
    approver.decide(&id, "approve", None).await?;
    let (_, agent) = call.finish().await?;
    agent.stop().await;
    Ok(approver)
}

/// A direct gRPC session on the daemon (no shim).
async fn grpc_session(
    home: &Home,
) -> Result<(
    pb::agent_client::AgentClient<tonic::transport::Channel>,
    String,
)> {
    let conn = agent_vault_proto::client::connect(&home.socket(), "bench").await?;
    let mut agent = conn.agent;
    let session = agent
        .open_session(pb::OpenSessionRequest {
            mcp_client_name: "bench".into(),
            config_path: home.config_path().display().to_string(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .session_id;
    // Held open as a shim holds it: a session without its watch is
    // forgotten after 30 s.
    let mut watch = agent
        .watch(pb::WatchRequest {
            session_id: session.clone(),
        })
        .await?
        .into_inner();
    tokio::spawn(async move { while let Ok(Some(_)) = watch.message().await {} });
    Ok((agent, session))
}

fn get_request(session: &str, name: &str) -> pb::AccessRequest {
    pb::AccessRequest {
        session_id: session.to_string(),
        vault: "open".into(),
        operation: pb::Operation::Read as i32,
        names: vec![name.into()],
        reason: "bench".into(),
        ..Default::default()
    }
}

async fn grpc_latency(home: &Home, calls: usize) -> Result<Vec<Duration>> {
    let (mut agent, session) = grpc_session(home).await?;
    timed_gets(&mut agent, &session, 200).await?;
    timed_gets(&mut agent, &session, calls).await
}

/// `calls` sequential auto-approved gets on one session, each timed.
async fn timed_gets(
    agent: &mut pb::agent_client::AgentClient<tonic::transport::Channel>,
    session: &str,
    calls: usize,
) -> Result<Vec<Duration>> {
    let mut v = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        let r = agent
            .access(get_request(session, "API_KEY"))
            .await?
            .into_inner();
        v.push(t.elapsed());
        anyhow::ensure!(r.values.len() == 1, "not auto-approved");
    }
    Ok(v)
}

/// The transport alone: `Hello` (no session, no provider, no audit row).
async fn hello_latency(home: &Home, calls: usize) -> Result<Vec<Duration>> {
    let (mut agent, _) = grpc_session(home).await?;
    let hello = || pb::HelloRequest {
        protocol: agent_vault_proto::PROTOCOL_VERSION,
        version: "bench".into(),
        ..Default::default()
    };
    for _ in 0..200 {
        agent.hello(hello()).await?;
    }
    let mut v = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        agent.hello(hello()).await?;
        v.push(t.elapsed());
    }
    Ok(v)
}

/// `sockets`: the shim's stdin and stdout are Unix socket pairs, as a
/// Node-based agent spawns it; otherwise pipes.
async fn shim_latency(
    home: &Home,
    daemon: u32,
    calls: usize,
    sockets: bool,
) -> Result<(Vec<Duration>, CpuSplit)> {
    let (agent, _child) = if sockets {
        let mut cmd = tokio::process::Command::from(home.command(&bin("agent-vault-mcp")));
        cmd.current_dir(&home.project);
        let (agent, child) = Agent::spawn_with_sockets(cmd).await?;
        (agent, Some(child))
    } else {
        (Agent::start(home).await?, None)
    };
    let args = json!({"vault": "open", "name": "API_KEY", "reason": "bench"});
    for _ in 0..200 {
        agent.call("get_secret", args.clone()).await?;
    }
    let cpu_before = CpuSplit::sample(daemon, &bin("agent-vault-mcp"));
    let mut v = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        let r = agent.call("get_secret", args.clone()).await?;
        v.push(t.elapsed());
        anyhow::ensure!(!r.is_error, "{r:?}");
    }
    let cpu = CpuSplit::per_call(
        cpu_before,
        CpuSplit::sample(daemon, &bin("agent-vault-mcp")),
        calls as u64,
    );
    agent.stop().await;
    Ok((v, cpu))
}

async fn shim_start(home: &Home, runs: usize) -> Result<(Vec<Duration>, u64)> {
    let mut v = Vec::new();
    let mut idle_rss = 0;
    for i in 0..runs {
        let t = Instant::now();
        let agent = Agent::start(home).await?;
        let tools = agent.service.list_all_tools().await?;
        v.push(t.elapsed());
        anyhow::ensure!(
            tools.len() == 6,
            "expected the six tools, listed {}",
            tools.len()
        );
        if i == runs - 1 {
            // Idle: initialized and listed, no call yet; find its pid.
            tokio::time::sleep(Duration::from_millis(300)).await;
            idle_rss = shim_pids().iter().map(|p| rss_kib(*p)).max().unwrap_or(0);
        }
        agent.stop().await;
    }
    Ok((v, idle_rss))
}

/// Pids of running agent-vault-mcp processes started by this bench.
fn shim_pids() -> Vec<u32> {
    child_pids(&bin("agent-vault-mcp"))
}

/// Pids of this bench's children running the executable `exe` (a
/// canonical path, as /proc/<pid>/exe gives it).
fn child_pids(exe: &std::path::Path) -> Vec<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .filter(|&pid| {
                    procinfo::parent(pid).is_some_and(|(ppid, _)| ppid == me)
                        && std::path::Path::new(&procinfo::exe(pid)) == exe
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A session of the throughput runs: it spawns a stdio MCP server and
/// makes one auto-approved get at a time.
trait Session: Sized + Send + 'static {
    fn start(home: &Home, server: &std::path::Path) -> impl Future<Output = Result<Self>>;
    /// One get, Ok only when it succeeded.
    fn get(&mut self) -> impl Future<Output = Result<()>> + Send;
    fn stop(self) -> impl Future<Output = ()> + Send;
}

/// rmcp's client, as the latency rows use it.
struct RmcpSession {
    agent: Agent,
    args: serde_json::Value,
}

impl Session for RmcpSession {
    async fn start(home: &Home, server: &std::path::Path) -> Result<Self> {
        let mut cmd = tokio::process::Command::from(home.command(server));
        cmd.current_dir(&home.project);
        Ok(Self {
            agent: Agent::spawn(cmd).await?,
            args: json!({"vault": "open", "name": "OTHER", "reason": "bench"}),
        })
    }

    async fn get(&mut self) -> Result<()> {
        let r = self.agent.call("get_secret", self.args.clone()).await?;
        // An error result says why and carries no value.
        anyhow::ensure!(!r.is_error, "isError: {}", r.text());
        Ok(())
    }

    fn stop(self) -> impl Future<Output = ()> + Send {
        self.agent.stop()
    }
}

/// 50 concurrent sessions of `S`, each getting as fast as it can for
/// `secs`. `server` is the stdio MCP server each session spawns: the shim,
/// or the do-nothing `mcp-floor` that gives the cost of the processes alone.
async fn throughput<S: Session>(
    home: &Home,
    server: &std::path::Path,
    daemon: u32,
    sessions: usize,
    secs: f64,
) -> Result<(f64, CpuSplit)> {
    let mut clients = Vec::new();
    for _ in 0..sessions {
        clients.push(S::start(home, server).await?);
    }
    let cpu_before = CpuSplit::sample(daemon, server);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < deadline {
                    client.get().await?;
                    done += 1;
                }
                anyhow::Ok((client, done))
            })
        })
        .collect();
    // Every session ends here, even after a failed one: a shim left running
    // past its home would start a new daemon there once this one is gone.
    // (A failed session's server is killed when its client drops.)
    let mut total = 0;
    let mut clients = Vec::new();
    let mut failed = None;
    for t in tasks {
        match t.await? {
            Ok((client, done)) => {
                total += done;
                clients.push(client);
            }
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    let cpu = CpuSplit::per_call(cpu_before, CpuSplit::sample(daemon, server), total);
    for client in clients {
        client.stop().await;
    }
    match failed {
        Some(e) => Err(e),
        None => Ok((rate, cpu)),
    }
}

/// A minimal MCP client: JSON-RPC lines on a server's stdio, as the
/// protocol's stdio transport defines them. It initializes like any client,
/// then keeps one `tools/call` in flight and checks every reply in full
/// (its id, no error, not `isError`, the secret's value). It exists to
/// measure the shim and the daemon with as little of the two cores as
/// possible going to the client: rmcp's client costs 10-13 µs per call
/// here, this one a third of that.
struct LineClient {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::BufReader<tokio::process::ChildStdout>,
    line: String,
    next_id: u64,
}

#[derive(serde::Deserialize)]
struct LineReply {
    id: Option<u64>,
    result: Option<LineResult>,
    error: Option<serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct LineResult {
    #[serde(rename = "isError", default)]
    is_error: bool,
    #[serde(default)]
    content: Vec<LineBlock>,
}

#[derive(serde::Deserialize)]
struct LineBlock {
    #[serde(default)]
    text: String,
}

impl Session for LineClient {
    async fn start(home: &Home, server: &std::path::Path) -> Result<Self> {
        Self::start(home, server).await
    }

    fn get(&mut self) -> impl Future<Output = Result<()>> + Send {
        let args = r#"{"vault":"open","name":"OTHER","reason":"bench"}"#;
        self.call("get_secret", args, "other-secret-91c2")
    }

    fn stop(self) -> impl Future<Output = ()> + Send {
        Self::stop(self)
    }
}

impl LineClient {
    async fn start(home: &Home, server: &std::path::Path) -> Result<Self> {
        use std::process::Stdio;
        let mut cmd = tokio::process::Command::from(home.command(server));
        cmd.current_dir(&home.project)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn()?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = tokio::io::BufReader::new(child.stdout.take().context("no stdout")?);
        let mut c = Self {
            child,
            stdin,
            stdout,
            line: String::new(),
            next_id: 0,
        };
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "bench-line-client", "version": "1"}}});
        c.send(&format!("{init}\n")).await?;
        let reply = c.receive().await?;
        anyhow::ensure!(
            reply.id == Some(0) && reply.error.is_none(),
            "initialize failed: {}",
            c.line
        );
        c.send("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n")
            .await?;
        Ok(c)
    }

    async fn send(&mut self, line: &str) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        self.stdin.write_all(line.as_bytes()).await?;
        Ok(())
    }

    async fn receive(&mut self) -> Result<LineReply> {
        use tokio::io::AsyncBufReadExt;
        self.line.clear();
        anyhow::ensure!(
            self.stdout.read_line(&mut self.line).await? > 0,
            "the server closed its stdout"
        );
        Ok(serde_json::from_str(&self.line)?)
    }

    /// One `tools/call` with `arguments` (a JSON object's text); Ok when the
    /// reply is this call's and its one text block is `expect`.
    async fn call(&mut self, tool: &str, arguments: &str, expect: &str) -> Result<()> {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"tools/call\",\"params\":{{\"name\":\"{tool}\",\"arguments\":{arguments}}}}}\n"
        ))
        .await?;
        let reply = self.receive().await?;
        anyhow::ensure!(
            reply.id == Some(id),
            "call {id}: the reply is for {:?}",
            reply.id
        );
        if let Some(e) = reply.error {
            anyhow::bail!("call {id}: JSON-RPC error {e}");
        }
        let result = reply
            .result
            .with_context(|| format!("call {id}: no result"))?;
        let texts = || result.content.iter().map(|b| b.text.as_str());
        // A tool error says why and carries no value: shown whole.
        anyhow::ensure!(
            !result.is_error,
            "call {id}: isError: {}",
            texts().collect::<Vec<_>>().join(" ")
        );
        // A result is never printed: it would be the secret.
        anyhow::ensure!(
            texts().eq([expect]),
            "call {id}: the result is not exactly the secret's value"
        );
        Ok(())
    }

    /// Closes stdin (the end of the session for a stdio server) and waits.
    async fn stop(mut self) {
        drop(self.stdin);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

/// 50 minimal-client sessions through `mcp-relay-floor` relays to one
/// `mcp-relay-floor --serve`: the cost of the product's shape alone.
async fn relay_floor(home: &Home, secs: f64) -> Result<(f64, CpuSplit)> {
    let exe = bin("mcp-relay-floor");
    let mut server = home.command(&exe).arg("--serve").spawn()?;
    let socket = home.dir.path().join("relay-floor.sock");
    let measured = match poll(Duration::from_secs(5), || socket.exists().then_some(())) {
        Ok(()) => throughput::<LineClient>(home, &exe, server.id(), 50, secs).await,
        Err(e) => Err(e.context("mcp-relay-floor --serve did not listen")),
    };
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_file(&socket);
    measured
}

/// The same over direct gRPC sessions (the daemon's own ceiling).
async fn throughput_grpc(
    home: &Home,
    daemon: u32,
    sessions: usize,
    total: usize,
) -> Result<(f64, CpuSplit)> {
    let mut clients = Vec::new();
    for _ in 0..sessions {
        clients.push(grpc_session(home).await?);
    }
    let per = total / sessions;
    let cpu_before = CpuSplit::sample(daemon, &bin("agent-vault-mcp"));
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|(mut agent, session)| {
            tokio::spawn(async move {
                for _ in 0..per {
                    agent.access(get_request(&session, "OTHER")).await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let calls = (per * sessions) as u64;
    let rate = calls as f64 / started.elapsed().as_secs_f64();
    Ok((
        rate,
        CpuSplit::per_call(
            cpu_before,
            CpuSplit::sample(daemon, &bin("agent-vault-mcp")),
            calls,
        ),
    ))
}

/// Fills the audit table through the daemon's own writer (valid chain).
async fn prefill_audit(home: &Home, rows: usize) -> Result<Duration> {
    let (tx, handle) = agent_vaultd::db::start(&home.db(), Arc::new(tokio::sync::Notify::new()))?;
    let t = Instant::now();
    for i in 0..rows {
        tx.audit(AuditEvent {
            secret_name: "API_KEY".into(),
            reason: "prefill".into(),
            scope: "vault".into(),
            operation: "read".into(),
            ..AuditEvent::new(Action::AutoApproved, 1_700_000_000_000 + i as i64)
        });
        if i % 50_000 == 0 {
            assert!(tx.flush().await, "prefill commit failed");
        }
    }
    assert!(tx.flush().await, "prefill commit failed");
    let took = t.elapsed();
    drop(tx);
    let _ = handle.join();
    Ok(took)
}

/// Approves request `id` "just this once" as a person does: the page and
/// its form token are loaded first, so the click is the POST alone.
/// Returns what `started` read just before the POST was sent.
async fn click_approve<T>(approver: &Approver, id: &str, started: impl FnOnce() -> T) -> Result<T> {
    let (_, html) = approver.page(&format!("/approve/{id}")).await?;
    let csrf = form_value(&html, "csrf").context("csrf")?;
    let t = started();
    let res = approver
        .http
        .post(format!("{}/approve/{id}", approver.base))
        .header("cookie", &approver.cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("decision", "approve"),
            ("window", "0"),
        ])
        .send()
        .await?;
    // A decision is answered with a redirect to the request's page.
    anyhow::ensure!(
        res.status() == 303,
        "the Approve POST was answered {}",
        res.status()
    );
    Ok(t)
}

async fn approve_click_to_value(
    home: &Home,
    approver: &Approver,
    runs: usize,
) -> Result<Vec<Duration>> {
    let mut agent = Agent::start(home).await?;
    let mut v = Vec::new();
    for i in 0..runs {
        let call = tokio::spawn(async move {
            let r = agent
                .call(
                    "get_secret",
                    json!({"vault": "dev", "name": "OTHER", "reason": format!("click {i}")}),
                )
                .await;
            (r, Instant::now(), agent)
        });
        let id = one_pending_id(home).await?;
        let t = click_approve(approver, &id, Instant::now).await?;
        let (r, done, a) = call.await?;
        anyhow::ensure!(!r?.is_error);
        v.push(done.duration_since(t));
        agent = a;
    }
    agent.stop().await;
    Ok(v)
}

/// CLOCK_MONOTONIC in nanoseconds (the clock Python's
/// `time.clock_gettime_ns(time.CLOCK_MONOTONIC)` reads too).
fn monotonic_ns() -> Result<u64> {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)?;
    Ok(ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64)
}

/// Drives `server` with the official Python MCP SDK
/// (`tests/py/bench_client.py`): `calls` sequential auto-approved gets,
/// each timed at the client, then `approvals` requests approved here, each
/// timed from the approve POST to the value's arrival at the client.
async fn python_client(
    home: &Home,
    approver: Option<&Approver>,
    python: &std::path::Path,
    server: &std::path::Path,
    calls: usize,
    approvals: usize,
) -> Result<(Vec<Duration>, Vec<Duration>)> {
    use tokio::io::AsyncBufReadExt;
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("py/bench_client.py");
    let mut cmd = tokio::process::Command::from(home.command(python));
    cmd.arg(&script)
        .arg(server)
        .arg(calls.to_string())
        .arg(approvals.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true);
    let mut child = cmd.spawn().context("starting the Python client")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut next = async || -> Result<serde_json::Value> {
        let line = tokio::time::timeout(Duration::from_secs(300), lines.next_line())
            .await??
            .context("the Python client ended early")?;
        Ok(serde_json::from_str(&line)?)
    };
    let gets: Vec<Duration> = next().await?["latencies_ns"]
        .as_array()
        .context("no latencies")?
        .iter()
        .filter_map(|v| v.as_u64().map(Duration::from_nanos))
        .collect();
    let mut clicks = Vec::new();
    for _ in 0..approvals {
        let approver = approver.context("approvals need an approver")?;
        anyhow::ensure!(next().await?["waiting"] == true);
        let id = one_pending_id(home).await?;
        let t = click_approve(approver, &id, monotonic_ns).await??;
        let got = next().await?;
        anyhow::ensure!(got["ok"] == true, "the value was wrong: {got}");
        let at = got["value_at_ns"].as_u64().context("no time")?;
        clicks.push(Duration::from_nanos(at.saturating_sub(t)));
    }
    anyhow::ensure!(child.wait().await?.success(), "the Python client failed");
    Ok((gets, clicks))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|k| k.parse::<u64>().ok())
        .map_or(0, |k| k / 1024 / 1024);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} cores ({cpu}), {mem} GiB, Linux {}", kernel.trim())
}

/// One side of a paired comparison: the shim each session spawns and the
/// daemon (with its home) they talk to.
struct Side<'a> {
    home: &'a Home,
    daemon: &'a Daemon,
    shim: std::path::PathBuf,
}

impl Side<'_> {
    /// `BENCH_AB_CLIENT=line`: the sessions use [`LineClient`], not rmcp's.
    async fn throughput(&self, secs: f64) -> Result<(f64, CpuSplit)> {
        let (home, shim, daemon) = (self.home, &self.shim, self.daemon.child.id());
        if std::env::var("BENCH_AB_CLIENT").is_ok_and(|c| c == "line") {
            throughput::<LineClient>(home, shim, daemon, 50, secs).await
        } else {
            throughput::<RmcpSession>(home, shim, daemon, 50, secs).await
        }
    }
}

/// An absolute path to another build's binary, as `BENCH_AB*` names it.
fn other_build(
    var: &str,
    other: &std::ffi::OsStr,
    ours: &std::path::Path,
) -> Result<std::path::PathBuf> {
    let other = std::fs::canonicalize(other).with_context(|| {
        format!(
            "{var}: cannot find {} (cargo runs the bench in tests/: give an absolute path)",
            other.to_string_lossy()
        )
    })?;
    anyhow::ensure!(other != ours, "{var} names this build's own binary");
    Ok(other)
}

/// `BENCH_AB=<other shim>` or `BENCH_AB_DAEMON=<other daemon>`: the
/// 50-session throughput of this build against another build's shim (both
/// against one daemon) or daemon (each in its own home, one window open in
/// each), in pairs, so that the machine's drift between runs cancels out (a
/// change to that figure is judged this way; see docs/BENCHMARKS.md).
/// `BENCH_AB_PAIRS` (default 4) sets the number of pairs; which build goes
/// first alternates.
async fn compare(ours: Side<'_>, other: Side<'_>) -> Result<()> {
    let pairs: usize = match std::env::var("BENCH_AB_PAIRS") {
        Ok(v) => v.parse().context("BENCH_AB_PAIRS must be a number")?,
        Err(_) => 4,
    };
    anyhow::ensure!(pairs > 0, "BENCH_AB_PAIRS must be at least 1");
    let secs = if quick() { 2.0 } else { 10.0 };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    println!(
        "| pair | this build (gets/s) | other (gets/s) | ratio | CPU per call, this build | CPU per call, other |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for pair in 0..pairs {
        let ((ra, ca), (rb, cb)) = if pair % 2 == 0 {
            let x = ours.throughput(secs).await?;
            (x, other.throughput(secs).await?)
        } else {
            let y = other.throughput(secs).await?;
            (ours.throughput(secs).await?, y)
        };
        println!(
            "| {} | {ra:.0} | {rb:.0} | {:.3} | {} | {} |",
            pair + 1,
            ra / rb,
            ca.describe().trim_start_matches("CPU per call: "),
            cb.describe().trim_start_matches("CPU per call: ")
        );
        a.push(ra);
        b.push(rb);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    };
    let ahead = a.iter().zip(&b).filter(|(x, y)| x > y).count();
    let (ma, mb) = (median(&mut a), median(&mut b));
    println!(
        "\n50 sessions, {secs} s each, {pairs} pairs: this build {ma:.0} gets/s, other {mb:.0} (ratio of the medians {:.3}); this build ahead in {ahead} of {pairs}.",
        ma / mb
    );
    println!("Machine: {}", machine());
    Ok(())
}

// One thread, as the shim and the CLI run: a client on a multi-thread
// runtime pays a cross-thread wake-up per call in tonic's channel buffer.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    // `cargo bench` passes --bench; nothing else is expected.
    let mut rows: Vec<Row> = Vec::new();
    let push = |rows: &mut Vec<Row>, what: &str, target: &str, measured: String, method: &str| {
        eprintln!("{what}: {measured}");
        rows.push(Row {
            what: what.into(),
            target: target.into(),
            measured,
            method: method.into(),
        });
    };

    // Idle daemon, shim start-up, shim idle memory.
    let (home, daemon, approver) = ready_home().await?;
    let ours = |home, daemon| Side {
        home,
        daemon,
        shim: bin("agent-vault-mcp"),
    };
    if let Some(other) = std::env::var_os("BENCH_AB") {
        let shim = other_build("BENCH_AB", &other, &bin("agent-vault-mcp"))?;
        let theirs = Side {
            shim,
            ..ours(&home, &daemon)
        };
        return compare(ours(&home, &daemon), theirs).await;
    }
    if let Some(other) = std::env::var_os("BENCH_AB_DAEMON") {
        let exe = other_build("BENCH_AB_DAEMON", &other, &bin("agent-vaultd"))?;
        let other_home = Home::with_config(BENCH_CONFIG)?;
        let other_daemon = Daemon::start_exe(&other_home, &exe, |_| {})?;
        open_window(&other_home, &other_daemon).await?;
        return compare(ours(&home, &daemon), ours(&other_home, &other_daemon)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let daemon_idle = rss_kib(daemon.child.id());
    let runs = n(20, 5);
    let (starts, shim_idle) = shim_start(&home, runs).await?;
    let (start_med, _) = stats(starts.clone());
    push(
        &mut rows,
        "shim start to first `tools/list` reply, daemon running",
        "≤ 15 ms",
        format!(
            "median {} (min {}, max {})",
            ms(start_med),
            ms(*starts.iter().min().unwrap_or(&Duration::ZERO)),
            ms(*starts.iter().max().unwrap_or(&Duration::ZERO))
        ),
        &format!(
            "spawn `agent-vault-mcp` with the rmcp client, initialize, `tools/list`; {runs} runs"
        ),
    );

    let calls = n(5_000, 500);
    let pipes_method =
        format!("{calls} sequential calls after 200 warm-up, one session, window open");
    for (sockets, what, target, method) in [
        (
            false,
            "auto-approved `get_secret` through the shim (Rust MCP client)",
            "≤ 300 µs median, ≤ 1 ms p99",
            pipes_method.as_str(),
        ),
        (
            true,
            "the same, shim on Unix-socket stdio (as Node-based agents spawn it)",
            "—",
            "as above, but stdin and stdout are socket pairs (libuv's choice) instead of pipes",
        ),
    ] {
        let (lat, cpu) = shim_latency(&home, daemon.child.id(), calls, sockets).await?;
        let (med, p99) = stats(lat);
        push(
            &mut rows,
            what,
            target,
            format!("median {}, p99 {}; {}", us(med), us(p99), cpu.describe()),
            method,
        );
    }

    let cpu_before = CpuSplit::sample(daemon.child.id(), &bin("agent-vault-mcp"));
    let grpc = grpc_latency(&home, n(20_000, 1_000)).await?;
    let grpc_cpu = CpuSplit::per_call(
        cpu_before,
        CpuSplit::sample(daemon.child.id(), &bin("agent-vault-mcp")),
        grpc.len() as u64 + 200,
    );
    let (grpc_med, grpc_p99) = stats(grpc);
    push(
        &mut rows,
        "the same as a direct gRPC call to the daemon",
        "≤ 100 µs median",
        format!(
            "median {}, p99 {}; CPU per call: client {}, daemon {}",
            us(grpc_med),
            us(grpc_p99),
            us(grpc_cpu.client),
            us(grpc_cpu.daemon)
        ),
        &format!(
            "{} sequential `Access` RPCs on the Unix socket, from a current-thread runtime (as the shim and CLI use)",
            n(20_000, 1_000)
        ),
    );

    // The same on one CPU: a hand-off between the client and the daemon
    // then never has to wake the other (idle) vCPU.
    let everywhere = pin_to_one_cpu(&[daemon.child.id()])?;
    let pinned = grpc_latency(&home, n(20_000, 1_000)).await;
    unpin(&[daemon.child.id()], &everywhere)?;
    let (pinned_med, pinned_p99) = stats(pinned?);
    push(
        &mut rows,
        "the same, client and daemon pinned to one CPU",
        "—",
        format!("median {}, p99 {}", us(pinned_med), us(pinned_p99)),
        "as above, with every thread of both processes on CPU 0 (sched_setaffinity)",
    );

    let hello = hello_latency(&home, n(20_000, 1_000)).await?;
    let (hello_med, _) = stats(hello);
    push(
        &mut rows,
        "for comparison: a gRPC `Hello` round trip (the transport alone)",
        "—",
        format!(
            "median {}; `Access` adds {}",
            us(hello_med),
            us(grpc_med.saturating_sub(hello_med))
        ),
        "same client and socket; no session, provider read or audit row",
    );

    let secs = if quick() { 3.0 } else { 10.0 };
    let (tput, cpu) =
        throughput::<RmcpSession>(&home, &bin("agent-vault-mcp"), daemon.child.id(), 50, secs)
            .await?;
    push(
        &mut rows,
        "throughput, 50 concurrent sessions (shims), rmcp's client",
        "≥ 10,000 gets/s",
        format!("{tput:.0} gets/s; {}", cpu.describe()),
        &format!(
            "50 shims, each calling back to back for {secs} s, driven by rmcp's client (50 sessions on one thread); client, shims and daemon share the 2 cores"
        ),
    );
    let (tput_line, line_cpu) =
        throughput::<LineClient>(&home, &bin("agent-vault-mcp"), daemon.child.id(), 50, secs)
            .await?;
    push(
        &mut rows,
        "throughput, 50 concurrent sessions (shims), minimal MCP client",
        "≥ 10,000 gets/s",
        format!("{tput_line:.0} gets/s; {}", line_cpu.describe()),
        &format!(
            "the same 50 shims and daemon, driven by `LineClient` (in the bench): MCP's stdio transport as JSON-RPC lines, `initialize` like any client, then one `tools/call` in flight per session, every reply parsed and checked (its id, no error, not `isError`, exactly the secret's value); {secs} s"
        ),
    );
    let (tput_grpc, grpc_cpu) =
        throughput_grpc(&home, daemon.child.id(), 50, n(200_000, 20_000)).await?;
    push(
        &mut rows,
        "throughput, 50 concurrent sessions (direct gRPC)",
        "—",
        format!(
            "{tput_grpc:.0} gets/s; CPU per call: client {}, daemon {}",
            us(grpc_cpu.client),
            us(grpc_cpu.daemon)
        ),
        &format!("50 gRPC sessions, {} calls in all", n(200_000, 20_000)),
    );
    let (floor, floor_cpu) =
        throughput::<RmcpSession>(&home, &bin("mcp-floor"), daemon.child.id(), 50, secs).await?;
    push(
        &mut rows,
        "floor: 50 sessions whose server does nothing",
        "—",
        format!(
            "{floor:.0} calls/s; CPU per call: client {}, servers {}",
            us(floor_cpu.client),
            us(floor_cpu.shims)
        ),
        &format!(
            "as the rmcp-client row, but each session spawns `mcp-floor` (tests/src/bin), which answers every call with a fixed text on blocking std I/O: no runtime, no daemon; {secs} s"
        ),
    );
    let (relay, relay_cpu) = relay_floor(&home, secs).await?;
    push(
        &mut rows,
        "floor of the shape: 50 relays to one server, none doing anything",
        "—",
        format!(
            "{relay:.0} calls/s; CPU per call: client {}, relays {}, server {}",
            us(relay_cpu.client),
            us(relay_cpu.shims),
            us(relay_cpu.daemon)
        ),
        &format!(
            "as the minimal-client row, but each session spawns `mcp-relay-floor` (tests/src/bin), which sends each call's arguments as a line over a Unix socket to one `mcp-relay-floor --serve` (a thread per connection) and answers with the line it gets back (the expected value): the shim's and the daemon's hops and wake-ups with no work in them; {secs} s"
        ),
    );
    push(
        &mut rows,
        "resident memory, daemon idle",
        "≤ 30 MiB",
        mib(daemon_idle),
        "VmRSS 0.5 s after start, one device paired, one window",
    );
    push(
        &mut rows,
        "resident memory, shim idle",
        "≤ 8 MiB",
        mib(shim_idle),
        "VmRSS of an initialized shim that has listed tools",
    );

    // Through the official Python SDK, as a Python-based agent sees it.
    match std::env::var_os("AGENT_VAULT_TEST_PYTHON") {
        Some(python) => {
            let python = std::path::PathBuf::from(python);
            let (calls, approvals) = (n(3_000, 300), n(20, 5));
            let (floor, _) =
                python_client(&home, None, &python, &bin("mcp-floor"), calls, 0).await?;
            let (gets, clicks) = python_client(
                &home,
                Some(&approver),
                &python,
                &bin("agent-vault-mcp"),
                calls,
                approvals,
            )
            .await?;
            let (floor_med, _) = stats(floor);
            let (get_med, get_p99) = stats(gets);
            push(
                &mut rows,
                "auto-approved `get_secret` through the shim, official Python SDK client",
                "≤ 0.15 ms above that client's floor",
                format!(
                    "median {}, p99 {}; the same client against `mcp-floor` (answers at once): median {}; the shim and daemon add {}",
                    us(get_med),
                    us(get_p99),
                    us(floor_med),
                    us(get_med.saturating_sub(floor_med))
                ),
                &format!(
                    "`mcp` (PyPI) `ClientSession.call_tool` from tests/py/bench_client.py over stdio pipes; {calls} sequential calls after 200 warm-up, timed in Python; the floor measured just before, with the same client, in the same run"
                ),
            );
            let (click_med, click_max) = stats(clicks);
            push(
                &mut rows,
                "approve POST to the value at the Python SDK client",
                "≤ 1 ms median",
                format!("median {}, max {}", ms(click_med), ms(click_max)),
                &format!(
                    "{approvals} approvals: CLOCK_MONOTONIC when the bench sends the Approve POST to CLOCK_MONOTONIC when `call_tool` returns the value in Python"
                ),
            );
        }
        None => eprintln!(
            "the Python SDK rows are skipped: set AGENT_VAULT_TEST_PYTHON to a python with `mcp`"
        ),
    }

    // Approve-click to value.
    let clicks = approve_click_to_value(&home, &approver, n(20, 5)).await?;
    let (click_med, click_p99) = stats(clicks);
    push(
        &mut rows,
        "approve-click to value delivered at the client",
        "≤ 5 ms",
        format!("median {}, max {}", ms(click_med), ms(click_p99)),
        &format!(
            "{} approvals: from sending the Approve POST to the `get_secret` result arriving",
            n(20, 5)
        ),
    );

    // Memory after 1M requests (direct gRPC: the daemon's side of them).
    let million = n(1_000_000, 50_000);
    let _ = throughput_grpc(&home, daemon.child.id(), 50, million).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    push(
        &mut rows,
        "resident memory, daemon after 1M requests",
        "≤ 60 MiB",
        mib(rss_kib(daemon.child.id())),
        &format!("VmRSS after {million} more auto-approved gets over 50 gRPC sessions"),
    );
    drop(daemon);
    drop(home);

    // Audit table size: an empty table versus 1M rows, both daemons running
    // at once and measured in alternating rounds, so machine noise hits both.
    let small = Home::with_config(BENCH_CONFIG)?;
    let big = Home::with_config(BENCH_CONFIG)?;
    let rows_n = n(1_000_000, 100_000);
    let fill = prefill_audit(&big, rows_n).await?;
    let small_daemon = small.start_daemon()?;
    let big_daemon = big.start_daemon()?;
    open_window(&small, &small_daemon).await?;
    open_window(&big, &big_daemon).await?;
    // Many short rounds, each starting with the other daemon, so that a
    // burst of noise from the machine lands on both alike. Everything runs
    // on one CPU: otherwise each daemon flips, for seconds at a time,
    // between ~60 µs (same vCPU as the client) and ~120 µs (a wake-up of
    // the other, idle vCPU per hand-off), which swamps what is compared.
    let (rounds, per_round) = (n(100, 20), 200);
    let pinned = [small_daemon.child.id(), big_daemon.child.id()];
    let everywhere = pin_to_one_cpu(&pinned)?;
    let (mut small_agent, small_session) = grpc_session(&small).await?;
    let (mut big_agent, big_session) = grpc_session(&big).await?;
    timed_gets(&mut small_agent, &small_session, 500).await?;
    timed_gets(&mut big_agent, &big_session, 500).await?;
    let (mut lat_small, mut lat_big) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        if round % 2 == 0 {
            lat_small.extend(timed_gets(&mut small_agent, &small_session, per_round).await?);
            lat_big.extend(timed_gets(&mut big_agent, &big_session, per_round).await?);
        } else {
            lat_big.extend(timed_gets(&mut big_agent, &big_session, per_round).await?);
            lat_small.extend(timed_gets(&mut small_agent, &small_session, per_round).await?);
        }
    }
    unpin(&pinned, &everywhere)?;
    let (small_med, _) = stats(lat_small);
    let (big_med, _) = stats(lat_big);
    push(
        &mut rows,
        "latency with 1M rows in the audit table",
        "within 10% of empty",
        format!(
            "median {} vs {} with an empty table ({:+.1}%)",
            us(big_med),
            us(small_med),
            (big_med.as_secs_f64() / small_med.as_secs_f64() - 1.0) * 100.0
        ),
        &format!(
            "{rows_n} rows written first through the daemon's own writer ({:.1} s, {:.0} rows/s); \
                  then gRPC gets on both daemons, side by side, in {rounds} alternating rounds of {per_round} (each round led by the other), client and both daemons pinned to CPU 0",
            fill.as_secs_f64(),
            rows_n as f64 / fill.as_secs_f64(),
        ),
    );
    drop(big_daemon);
    drop(small_daemon);

    // Binary sizes.
    let size = |name: &str| std::fs::metadata(bin(name)).map_or(0, |m| m.len());
    push(
        &mut rows,
        "release binaries (stripped)",
        "shim ≤ 5 MB",
        format!(
            "shim {:.1} MB, daemon {:.1} MB, CLI {:.1} MB",
            size("agent-vault-mcp") as f64 / 1e6,
            size("agent-vaultd") as f64 / 1e6,
            size("agent-vault") as f64 / 1e6
        ),
        "file sizes in target/release (profile: strip = symbols, fat LTO, one codegen unit)",
    );

    println!("\nMachine: {}\n", machine());
    println!("| measurement | target | measured | method |");
    println!("| --- | --- | --- | --- |");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} |",
            r.what, r.target, r.measured, r.method
        );
    }
    Ok(())
}
