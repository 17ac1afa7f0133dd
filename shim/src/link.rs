//! The shim's link to agent-vaultd: one connection (starting the daemon
//! when none answers) and one agent session, opened on first use with the
//! project config this shim found, kept alive by a watch stream, and
//! opened again when the daemon restarted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use agent_vault_proto::client::{ConnectError, Connection};
use agent_vault_proto::pb::{self, agent_client::AgentClient};
use rmcp::model::Implementation;
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use tokio::sync::Mutex;
use tonic::transport::Channel as Transport;
use tonic::{Code, Status};

use crate::daemon;
use crate::results::{Failure, status_result, text_error, unreachable_msg};

struct Open {
    agent: AgentClient<Transport>,
    session_id: String,
    /// Which config the session uses, said with every list.
    config: String,
}

/// How long a client that offers roots has to name them.
const ROOTS_TIMEOUT: Duration = Duration::from_secs(2);

/// The client's workspace folders, when it offers roots (file:// URIs
/// only), else none. Roots are deprecated in MCP's newest draft
/// (SEP-2577), but they are how today's clients name their workspace.
#[allow(deprecated)]
async fn client_roots(ctx: &RequestContext<RoleServer>) -> Vec<PathBuf> {
    let offers = ctx
        .peer
        .peer_info()
        .is_some_and(|info| info.capabilities.roots.is_some());
    if !offers {
        return Vec::new();
    }
    match tokio::time::timeout(ROOTS_TIMEOUT, ctx.peer.list_roots()).await {
        Ok(Ok(list)) => list
            .roots
            .iter()
            .filter_map(|r| url::Url::parse(&r.uri).ok()?.to_file_path().ok())
            .collect(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "the MCP client did not list its roots");
            Vec::new()
        }
        Err(_) => {
            tracing::warn!("the MCP client did not list its roots within 2 s");
            Vec::new()
        }
    }
}

/// Which config a session uses, in words for the agent and its user.
fn config_words(path: &str, cwd: &Path, roots: &[PathBuf]) -> String {
    if !path.is_empty() {
        let dir = Path::new(path).parent();
        let same = |d: &Path| std::fs::canonicalize(d).ok().as_deref() == dir;
        let from_root = !same(cwd) && roots.iter().any(|r| same(r));
        return if from_root {
            format!("{path} (found in the MCP client's workspace folder)")
        } else {
            path.to_string()
        };
    }
    let mut looked = vec![cwd.display().to_string()];
    looked.extend(roots.iter().map(|r| r.display().to_string()));
    format!(
        "agent-vaultd's own (no {} in {})",
        agent_vault_proto::project::CONFIG_FILE_NAME,
        looked.join(", ")
    )
}

/// The daemon connection and session, shared by the shim's calls.
pub struct DaemonLink {
    socket: PathBuf,
    open: Mutex<Option<Open>>,
}

impl DaemonLink {
    pub fn new(socket: PathBuf) -> Self {
        Self {
            socket,
            open: Mutex::new(None),
        }
    }

    /// The daemon link, connecting (and opening the session) on first use.
    pub async fn get(
        &self,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<(AgentClient<Transport>, String), Failure> {
        let mut guard = self.open.lock().await;
        if let Some(l) = guard.as_ref() {
            return Ok((l.agent.clone(), l.session_id.clone()));
        }
        let Connection { mut agent, .. } =
            daemon::connect_or_start(&self.socket)
                .await
                .map_err(|e| match e {
                    ConnectError::Mismatch { .. } => {
                        Failure::Protocol(ErrorData::internal_error(e.to_string(), None))
                    }
                    ConnectError::StartFailed { .. } => Failure::Tool(text_error(e.to_string())),
                    other => Failure::Tool(text_error(unreachable_msg(&other))),
                })?;
        let client: Option<Implementation> = ctx.client_info();
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        let roots = client_roots(ctx).await;
        let registration = agent_vault_proto::project::registration(&cwd, &roots)
            .map_err(|e| Failure::Tool(text_error(e)))?;
        let config = config_words(&registration.path, &cwd, &roots);
        let reply = agent
            .open_session(pb::OpenSessionRequest {
                mcp_client_name: client.as_ref().map(|c| c.name.clone()).unwrap_or_default(),
                mcp_client_version: client
                    .as_ref()
                    .map(|c| c.version.clone())
                    .unwrap_or_default(),
                config_path: registration.path,
                env: registration.env,
                config_text: registration.text,
            })
            .await
            .map_err(|s| Failure::Tool(status_result(&s)))?
            .into_inner();
        // Hold a watch open for the session's lifetime: when this process
        // ends, the daemon sees it close and cancels what we left pending.
        if let Ok(watch) = agent
            .watch(pb::WatchRequest {
                session_id: reply.session_id.clone(),
            })
            .await
        {
            let mut stream = watch.into_inner();
            tokio::spawn(async move { while let Ok(Some(_)) = stream.message().await {} });
        }
        *guard = Some(Open {
            agent: agent.clone(),
            session_id: reply.session_id.clone(),
            config,
        });
        Ok((agent, reply.session_id))
    }

    /// Which config the open session uses.
    pub async fn config(&self) -> Option<String> {
        self.open.lock().await.as_ref().map(|o| o.config.clone())
    }

    async fn forget(&self) {
        *self.open.lock().await = None;
    }

    /// Runs `call` with the session; on a lost daemon or an unknown session
    /// (the daemon restarted) reconnects once and retries.
    pub async fn with_session<T, F, Fut>(
        &self,
        ctx: &RequestContext<RoleServer>,
        call: F,
    ) -> Result<T, Failure>
    where
        F: Fn(AgentClient<Transport>, String) -> Fut,
        Fut: std::future::Future<Output = Result<T, Status>>,
    {
        let (agent, session) = self.get(ctx).await?;
        match call(agent, session).await {
            Ok(v) => Ok(v),
            Err(s)
                if matches!(
                    s.code(),
                    Code::Unauthenticated | Code::Unavailable | Code::Unknown
                ) =>
            {
                self.forget().await;
                let (agent, session) = self.get(ctx).await?;
                call(agent, session)
                    .await
                    .map_err(|s| Failure::Tool(status_result(&s)))
            }
            Err(s) => Err(Failure::Tool(status_result(&s))),
        }
    }
}
