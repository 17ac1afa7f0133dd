//! The MCP side: the prototype's five tools, each forwarded to the daemon.
//!
//! Results: an approved single secret is its value in a text block; several
//! are `[NAME]\nvalue` blocks. Denials, expiry, unknown vaults or secrets,
//! read-only vaults and an unreachable daemon are `isError: true` with a
//! message that says what to do next. While a request waits, progress
//! notifications carry the approval link; after `approval.waitSeconds` the
//! call returns "still waiting" and a repeated call joins the same request.

use std::path::PathBuf;
use std::sync::Arc;

use agent_vault_proto::pb;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{
    ErrorData, RoleServer, ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router,
};
use serde::Deserialize;

use crate::arguments::{self, Args};
use crate::calls;
use crate::link::DaemonLink;
use crate::run;

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

/// One secret to create or update: its name and its value.
// Inline in set_secrets' schema: several MCP clients do not resolve
// `$ref`/`$defs`.
#[derive(Deserialize, schemars::JsonSchema)]
#[schemars(inline)]
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

/// One secret for `run_with_secrets`: its name, or its name and the
/// environment variable to put it in.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(
    untagged,
    expecting = "expected a secret's name, or {\"name\": ..., \"env\": ...}"
)]
#[schemars(inline)]
pub enum SecretForRun {
    /// The secret's name; the variable gets the same name.
    Name(String),
    /// The secret and the environment variable to put it in (default: the
    /// secret's name).
    Mapped { name: String, env: Option<String> },
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunWithSecretsArgs {
    /// The vault name.
    vault: String,
    /// The secrets the command needs, each a name or {"name", "env"}.
    secrets: Vec<SecretForRun>,
    /// The program and its arguments, such as ["npm", "test"]. Not run
    /// through a shell: pass ["sh", "-c", "..."] for one.
    command: Vec<String>,
    /// The directory to run in (default: the agent's).
    cwd: Option<String>,
    /// Stop the command (and all it started) after this many seconds
    /// (default 300, at most 3600).
    timeout_seconds: Option<f64>,
    /// Why you need to run this with these secrets; shown to the human.
    reason: Option<String>,
}

impl RunWithSecretsArgs {
    fn into_run(self) -> run::RunArgs {
        run::RunArgs {
            vault: self.vault,
            secrets: self
                .secrets
                .into_iter()
                .map(|s| match s {
                    SecretForRun::Name(name) => run::Wanted {
                        env: name.clone(),
                        name,
                    },
                    SecretForRun::Mapped { name, env } => run::Wanted {
                        env: env.unwrap_or_else(|| name.clone()),
                        name,
                    },
                })
                .collect(),
            command: self.command,
            cwd: self.cwd,
            timeout_seconds: self.timeout_seconds,
            reason: self.reason.unwrap_or_default(),
        }
    }
}

#[derive(Clone)]
pub struct Shim {
    link: Arc<DaemonLink>,
    tool_router: ToolRouter<Shim>,
}

impl Shim {
    pub fn new(socket: PathBuf) -> Self {
        Self {
            link: Arc::new(DaemonLink::new(socket)),
            tool_router: Self::tool_router(),
        }
    }

    async fn list(&self, ctx: RequestContext<RoleServer>) -> Result<CallToolResult, ErrorData> {
        calls::list(&self.link, ctx).await.or_else(Into::into)
    }

    async fn access(
        &self,
        ctx: RequestContext<RoleServer>,
        req: pb::AccessRequest,
    ) -> Result<CallToolResult, ErrorData> {
        calls::access(&self.link, ctx, req)
            .await
            .or_else(Into::into)
    }
}

#[tool_router]
impl Shim {
    #[tool(
        name = "run_with_secrets",
        description = "Run a command with secrets in its environment, without seeing them. A human approves the exact command line and directory (usually from their phone); the result has the exit code and the output, with every secret value, and its base64, hex, URL and JSON encodings, replaced by [REDACTED:NAME]. Prefer this over get_secret whenever a command is what needs the secret.",
        annotations(
            title = "Run a command with secrets (human approval)",
            read_only_hint = false,
            destructive_hint = true,
            open_world_hint = true
        )
    )]
    async fn run_with_secrets(
        &self,
        Parameters(Args(a)): Parameters<Args<RunWithSecretsArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        run::run(&self.link, ctx, a.into_run())
            .await
            .or_else(Into::into)
    }

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
        self.list(ctx).await
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
        Parameters(Args(a)): Parameters<Args<GetSecretArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let req = pb::AccessRequest {
            vault: a.vault,
            operation: pb::Operation::Read as i32,
            names: vec![a.name],
            reason: a.reason,
            ..Default::default()
        };
        self.access(ctx, req).await
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
        Parameters(Args(a)): Parameters<Args<GetSecretsArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let req = pb::AccessRequest {
            vault: a.vault,
            operation: pb::Operation::Read as i32,
            names: a.names,
            reason: a.reason,
            ..Default::default()
        };
        self.access(ctx, req).await
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
        Parameters(Args(a)): Parameters<Args<SetSecretArgs>>,
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
        self.access(ctx, req).await
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
        Parameters(Args(a)): Parameters<Args<SetSecretsArgs>>,
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
        self.access(ctx, req).await
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Shim {
    /// The router's call, with arguments that do not fit said in words
    /// (`arguments`).
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let tool = request.name.clone();
        let call = ToolCallContext::new(self, request, context);
        let response = self.tool_router.call(call).await?;
        Ok(arguments::explained(response, self.tool_router.get(&tool)))
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("agent-vault", agent_vault_proto::VERSION))
            .with_instructions(
                "Human-approved secret access. Call list_secrets to see names. When a command needs a secret, use run_with_secrets: \
                 the value goes into the command's environment and never into this conversation. Use get_secret(s) only when you must \
                 see a value; give a specific, honest reason; the user approves on their phone. Use set_secret(s) to store generated \
                 credentials instead of printing them.",
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
