//! The MCP side: the prototype's five tools, each forwarded to the daemon.
//!
//! Results: an approved single secret is its value in a text block; several
//! are `[NAME]\nvalue` blocks. Denials, expiry, unknown vaults or secrets,
//! read-only vaults and an unreachable daemon are `isError: true` with a
//! message that says what to do next. While a request waits, progress
//! notifications carry the approval link; after `approval.waitSeconds` the
//! call returns "still waiting" and a repeated call joins the same request.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use agent_vault_proto::client::{ConnectError, Connection};
use agent_vault_proto::pb::{self, agent_client::AgentClient};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, ProgressNotificationParam, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{
    ErrorData, RoleServer, ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router,
};
use serde::Deserialize;
use tonic::transport::Channel as Transport;
use tonic::{Code, Status};

use crate::daemon;

/// How often a waiting call polls the daemon (and sends progress).
const TICK: Duration = Duration::from_secs(5);

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct GetSecretArgs {
    /// The vault name (as defined in the config).
    vault: String,
    /// The name or ID of the secret.
    name: String,
    /// Why you need this secret; shown to the human who approves.
    reason: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct GetSecretsArgs {
    /// The vault name.
    vault: String,
    /// Names or IDs of the secrets to access.
    names: Vec<String>,
    /// Why you need these secrets; shown to the human who approves.
    reason: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct SetSecretArgs {
    /// The vault name (must have "writable": true in the config).
    vault: String,
    /// The name/ID for the secret.
    name: String,
    /// The secret value to store.
    value: String,
    /// Why you are creating or updating this secret.
    reason: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct SecretPair {
    name: String,
    value: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct SetSecretsArgs {
    /// The vault name (must have "writable": true).
    vault: String,
    /// The secrets to create or update.
    secrets: Vec<SecretPair>,
    /// Why you are creating these secrets.
    reason: String,
}

struct Link {
    agent: AgentClient<Transport>,
    session_id: String,
}

#[derive(Clone)]
pub struct Shim {
    socket: PathBuf,
    link: std::sync::Arc<tokio::sync::Mutex<Option<Link>>>,
    tool_router: ToolRouter<Shim>,
}

fn text_error(msg: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(msg.into())])
}

fn unreachable_msg(e: &dyn std::fmt::Display) -> String {
    format!(
        "agent-vaultd is unreachable: {e}. Ask the user to start it (`agent-vaultd`) or to check `agent-vault status`, then call again."
    )
}

/// The text for a gRPC error: the daemon's message already says what to do.
fn status_result(s: &Status) -> CallToolResult {
    match s.code() {
        Code::Unavailable | Code::Unknown | Code::Cancelled => text_error(format!(
            "{} This is retryable: call again with the same arguments.",
            unreachable_msg(&s.message())
        )),
        _ => text_error(s.message()),
    }
}

/// The project config the shim registers, read here with the agent's own
/// rights (the daemon never opens it): found from the shim's directory,
/// its path made absolute with every link resolved, its text, and the
/// values of the env: names it references, from the shim's env.
struct Registration {
    path: String,
    text: String,
    env: HashMap<String, String>,
}

fn project_registration() -> Result<Registration, String> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let Some(found) =
        agent_vault_proto::project::find_config(&agent_vault_proto::paths::process_env, &cwd)
    else {
        return Ok(Registration {
            path: String::new(),
            text: String::new(),
            env: HashMap::new(),
        });
    };
    let cannot = |e: std::io::Error| {
        format!(
            "agent-vault-mcp cannot read the project config {}: {e}. Make it readable by this user, or point AGENT_VAULT_CONFIG at another file.",
            found.display()
        )
    };
    let path = std::fs::canonicalize(&found).map_err(cannot)?;
    let text = std::fs::read_to_string(&path).map_err(cannot)?;
    let env = agent_vault_proto::project::referenced_env_names(&text)
        .into_iter()
        .filter_map(|name| std::env::var(&name).ok().map(|v| (name, v)))
        .collect();
    Ok(Registration {
        path: path.display().to_string(),
        text,
        env,
    })
}

enum Failure {
    /// An MCP protocol error (version mismatch).
    Protocol(ErrorData),
    /// A tool result with isError.
    Tool(CallToolResult),
}

impl From<Failure> for Result<CallToolResult, ErrorData> {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Protocol(e) => Err(e),
            Failure::Tool(r) => Ok(r),
        }
    }
}

impl Shim {
    pub fn new(socket: PathBuf) -> Self {
        Self {
            socket,
            link: Default::default(),
            tool_router: Self::tool_router(),
        }
    }

    /// The daemon link, connecting (and opening the session) on first use.
    async fn link(
        &self,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<(AgentClient<Transport>, String), Failure> {
        let mut guard = self.link.lock().await;
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
                    other => Failure::Tool(text_error(unreachable_msg(&other))),
                })?;
        let client: Option<Implementation> = ctx.client_info();
        let registration = project_registration().map_err(|e| Failure::Tool(text_error(e)))?;
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
        *guard = Some(Link {
            agent: agent.clone(),
            session_id: reply.session_id.clone(),
        });
        Ok((agent, reply.session_id))
    }

    async fn forget_link(&self) {
        *self.link.lock().await = None;
    }

    /// Runs `call` with the session; on a lost daemon or an unknown session
    /// (the daemon restarted) reconnects once and retries.
    async fn with_session<T, F, Fut>(
        &self,
        ctx: &RequestContext<RoleServer>,
        call: F,
    ) -> Result<T, Failure>
    where
        F: Fn(AgentClient<Transport>, String) -> Fut,
        Fut: std::future::Future<Output = Result<T, Status>>,
    {
        let (agent, session) = self.link(ctx).await?;
        match call(agent, session).await {
            Ok(v) => Ok(v),
            Err(s)
                if matches!(
                    s.code(),
                    Code::Unauthenticated | Code::Unavailable | Code::Unknown
                ) =>
            {
                self.forget_link().await;
                let (agent, session) = self.link(ctx).await?;
                call(agent, session)
                    .await
                    .map_err(|s| Failure::Tool(status_result(&s)))
            }
            Err(s) => Err(Failure::Tool(status_result(&s))),
        }
    }

    async fn list(&self, ctx: RequestContext<RoleServer>) -> Result<CallToolResult, Failure> {
        let reply = self
            .with_session(&ctx, |mut agent, session_id| async move {
                agent
                    .list_secrets(pb::ListSecretsRequest { session_id })
                    .await
                    .map(tonic::Response::into_inner)
            })
            .await?;
        let mut out = String::new();
        for v in reply.vaults {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&format!("[{}]", v.vault));
            if v.writable {
                out.push_str(" (writable)");
            }
            out.push('\n');
            if !v.error.is_empty() {
                out.push_str(&format!("  unavailable: {}\n", v.error));
            } else if v.secrets.is_empty() {
                out.push_str("  (no secrets)\n");
            }
            for s in v.secrets {
                if s.group.is_empty() {
                    out.push_str(&format!("  - {}\n", s.name));
                } else {
                    out.push_str(&format!("  - {} ({})\n", s.name, s.group));
                }
            }
        }
        if out.is_empty() {
            out = "No vaults are configured. Ask the user to add one to agent-vault.config.json."
                .into();
        }
        Ok(CallToolResult::success(vec![ContentBlock::text(out)]))
    }

    /// Asks, then waits with progress, up to the configured wait.
    async fn access(
        &self,
        ctx: RequestContext<RoleServer>,
        req: pb::AccessRequest,
    ) -> Result<CallToolResult, Failure> {
        let started = Instant::now();
        let req = std::sync::Arc::new(req);
        let (mut reply, session_id) = self
            .with_session(&ctx, |mut agent, session_id| {
                let mut r = (*req).clone();
                r.session_id = session_id.clone();
                async move { agent.access(r).await.map(|r| (r.into_inner(), session_id)) }
            })
            .await?;
        let token = ctx.meta.get_progress_token();
        let wait = Duration::from_secs(u64::from(reply.wait_seconds.max(1)));
        let mut step = 0.0;
        while reply.outcome == pb::Outcome::Pending as i32 {
            if let Some(token) = &token {
                step += 1.0;
                let _ = ctx
                    .peer
                    .notify_progress(
                        ProgressNotificationParam::new(token.clone(), step)
                            .with_message(format!("Waiting for approval: {}", reply.approval_url)),
                    )
                    .await;
            }
            let left = wait.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Ok(CallToolResult::success(vec![ContentBlock::text(format!(
                    "Still waiting for approval at {}; call again with the same arguments to keep waiting.",
                    reply.approval_url
                ))]));
            }
            let (mut agent, _) = self.link(&ctx).await?;
            reply = agent
                .r#await(pb::AwaitRequest {
                    session_id: session_id.clone(),
                    request_id: reply.request_id.clone(),
                    timeout_ms: left.min(TICK).as_millis() as u32,
                })
                .await
                .map_err(|s| {
                    let mut r = status_result(&s);
                    if s.code() == Code::Unavailable {
                        r = text_error(format!(
                            "{} The approval link was {}.",
                            s.message(),
                            reply.approval_url
                        ));
                    }
                    Failure::Tool(r)
                })?
                .into_inner();
        }
        Ok(match pb::Outcome::try_from(reply.outcome) {
            Ok(pb::Outcome::Granted) if !reply.written.is_empty() => {
                CallToolResult::success(vec![ContentBlock::text(format!(
                    "Saved {} to vault \"{}\".",
                    reply.written.join(", "),
                    req.vault
                ))])
            }
            Ok(pb::Outcome::Granted) if reply.values.len() == 1 => {
                let v = reply.values.remove(0);
                CallToolResult::success(vec![ContentBlock::text(v.value)])
            }
            Ok(pb::Outcome::Granted) => CallToolResult::success(
                reply
                    .values
                    .into_iter()
                    .map(|v| ContentBlock::text(format!("[{}]\n{}", v.name, v.value)))
                    .collect(),
            ),
            _ => text_error(reply.message),
        })
    }
}

#[tool_router]
impl Shim {
    /// Lists the secret names in every configured vault. Never returns values.
    #[tool(
        name = "list_secrets",
        description = "List available secret names across all configured vaults. Never reveals values.",
        annotations(title = "List secrets", read_only_hint = true, open_world_hint = false)
    )]
    async fn list_secrets(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        self.list(ctx).await.or_else(Into::into)
    }

    #[tool(
        name = "get_secret",
        description = "Request access to a single secret. A human approves or denies it (usually from their phone); the call blocks while they decide. Use get_secrets for several.",
        annotations(
            title = "Get a secret (human approval)",
            read_only_hint = true,
            open_world_hint = false
        )
    )]
    async fn get_secret(
        &self,
        Parameters(a): Parameters<GetSecretArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let req = pb::AccessRequest {
            vault: a.vault,
            operation: pb::Operation::Read as i32,
            names: vec![a.name],
            reason: a.reason,
            ..Default::default()
        };
        self.access(ctx, req).await.or_else(Into::into)
    }

    #[tool(
        name = "get_secrets",
        description = "Request access to several secrets in one approval. Secrets already covered by an approval window are returned without asking.",
        annotations(
            title = "Get secrets (human approval)",
            read_only_hint = true,
            open_world_hint = false
        )
    )]
    async fn get_secrets(
        &self,
        Parameters(a): Parameters<GetSecretsArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let req = pb::AccessRequest {
            vault: a.vault,
            operation: pb::Operation::Read as i32,
            names: a.names,
            reason: a.reason,
            ..Default::default()
        };
        self.access(ctx, req).await.or_else(Into::into)
    }

    #[tool(
        name = "set_secret",
        description = "Create or update a secret in a writable vault, after human approval. The approver sees a masked preview of the value. Use this instead of printing generated credentials.",
        annotations(
            title = "Set a secret (human approval)",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn set_secret(
        &self,
        Parameters(a): Parameters<SetSecretArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let req = pb::AccessRequest {
            vault: a.vault,
            operation: pb::Operation::Write as i32,
            writes: vec![pb::SecretWrite {
                name: a.name,
                value: a.value,
            }],
            reason: a.reason,
            ..Default::default()
        };
        self.access(ctx, req).await.or_else(Into::into)
    }

    #[tool(
        name = "set_secrets",
        description = "Create or update several secrets in a writable vault with a single approval.",
        annotations(
            title = "Set secrets (human approval)",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn set_secrets(
        &self,
        Parameters(a): Parameters<SetSecretsArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let req = pb::AccessRequest {
            vault: a.vault,
            operation: pb::Operation::Write as i32,
            writes: a
                .secrets
                .into_iter()
                .map(|s| pb::SecretWrite {
                    name: s.name,
                    value: s.value,
                })
                .collect(),
            reason: a.reason,
            ..Default::default()
        };
        self.access(ctx, req).await.or_else(Into::into)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Shim {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("agent-vault", agent_vault_proto::VERSION))
            .with_instructions(
                "Human-approved secret access. Call list_secrets to see names, then get_secret(s) with a specific, honest reason; \
                 the user approves on their phone. Use set_secret(s) to store generated credentials instead of printing them.",
            )
    }
}

pub async fn run() -> anyhow::Result<()> {
    let socket = agent_vault_proto::paths::socket_path()?;
    // rmcp's stdio transport; on pipes (how MCP clients spawn servers) it
    // reads and writes them on the reactor instead of a blocking thread.
    let service = match Shim::new(socket)
        .serve(rmcp::transport::io::stdio_pipes())
        .await
    {
        Ok(s) => s,
        // The client went away before initializing: nothing to serve.
        Err(rmcp::service::ServerInitializeError::ConnectionClosed(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    // Returns when stdin closes (the client exited or was killed).
    service.waiting().await?;
    Ok(())
}
