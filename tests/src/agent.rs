//! The agent: a real `agent-vault-mcp` driven by rmcp's MCP client, and a
//! call left running in the background while its request waits.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, anyhow};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
    ProgressNotificationParam, RequestMetaObject,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::Value;

use crate::home::{Home, bin};

/// The MCP client side of a test: declares itself as "e2e-agent", keeps
/// the progress messages it receives, and offers `roots` (file:// URIs)
/// when it has any.
#[derive(Clone, Default)]
pub struct TestClient {
    pub progress: Arc<Mutex<Vec<String>>>,
    pub roots: Vec<String>,
}

#[allow(deprecated)]
impl ClientHandler for TestClient {
    fn get_info(&self) -> ClientConfig {
        let mut capabilities = ClientCapabilities::default();
        if !self.roots.is_empty() {
            capabilities.roots = Some(Default::default());
        }
        ClientConfig::new(capabilities, Implementation::new("e2e-agent", "1.2.3"))
    }

    async fn list_roots(
        &self,
        _context: rmcp::service::RequestContext<RoleClient>,
    ) -> Result<rmcp::model::ListRootsResult, rmcp::ErrorData> {
        Ok(rmcp::model::ListRootsResult::new(
            self.roots.iter().map(rmcp::model::Root::new).collect(),
        ))
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
        Self::spawn_with_roots(cmd, Vec::new()).await
    }

    /// [`Agent::spawn`] with a client that offers these roots.
    pub async fn spawn_with_roots(
        cmd: tokio::process::Command,
        roots: Vec<String>,
    ) -> Result<Self> {
        let transport = TokioChildProcess::builder(cmd)
            .stderr(Stdio::inherit())
            .spawn()?
            .0;
        let client = TestClient {
            roots,
            ..Default::default()
        };
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

/// A tool call left running in the background while its request waits
/// for a decision; [`InFlight::finish`] gives its result and the agent.
pub struct InFlight(tokio::task::JoinHandle<Result<(ToolOutcome, Agent)>>);

impl InFlight {
    pub async fn finish(self) -> Result<(ToolOutcome, Agent)> {
        self.0.await?
    }

    /// [`InFlight::finish`], failing when the call has not ended after
    /// `limit`.
    pub async fn finish_within(self, limit: Duration) -> Result<(ToolOutcome, Agent)> {
        tokio::time::timeout(limit, self.finish())
            .await
            .map_err(|_| anyhow!("the call did not end within {limit:?}"))?
    }

    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

impl Agent {
    /// Starts `tool` and returns at once; the call goes on in the
    /// background (find its request with `one_pending`).
    pub fn call_in_background(self, tool: &str, args: Value) -> InFlight {
        let tool = tool.to_string();
        InFlight(tokio::spawn(async move {
            self.call(&tool, args).await.map(|r| (r, self))
        }))
    }

    /// [`Agent::call_in_background`], asking for progress notifications.
    pub fn call_with_progress_in_background(self, tool: &str, args: Value) -> InFlight {
        let tool = tool.to_string();
        InFlight(tokio::spawn(async move {
            self.call_with_progress(&tool, args)
                .await
                .map(|r| (r, self))
        }))
    }
}
