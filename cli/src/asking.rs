//! The CLI as an agent would ask (`agent-vault run`, `agent-vault get`):
//! a session registered with the project config found from this
//! directory, held open by a watch, and a request waited on until a
//! person decides it on a paired device, or it expires.

use std::path::Path;
use std::time::Duration;

use agent_vault_proto::pb::{self, agent_client::AgentClient};
use anyhow::{Context, bail};
use tonic::transport::Channel;

pub struct Asking {
    agent: AgentClient<Channel>,
    session_id: String,
}

impl Asking {
    /// Opens a session for the project config found from `cwd`.
    pub async fn open(mut agent: AgentClient<Channel>, cwd: &Path) -> anyhow::Result<Self> {
        let registration =
            agent_vault_proto::project::registration(cwd, &[]).map_err(anyhow::Error::msg)?;
        let reply = agent
            .open_session(pb::OpenSessionRequest {
                mcp_client_name: "agent-vault (command line)".into(),
                mcp_client_version: agent_vault_proto::VERSION.into(),
                config_path: registration.path,
                env: registration.env,
                config_text: registration.text,
            })
            .await?
            .into_inner();
        // The daemon forgets a session whose watch is not held open, and
        // cancels what it left pending when the watch closes (this process
        // ended).
        let mut watch = agent
            .watch(pb::WatchRequest {
                session_id: reply.session_id.clone(),
            })
            .await?
            .into_inner();
        tokio::spawn(async move { while let Ok(Some(_)) = watch.message().await {} });
        Ok(Self {
            agent,
            session_id: reply.session_id,
        })
    }

    /// Asks, tells the person on stderr where to approve, and waits for
    /// the decision. Returns the granted reply; a denial, an expiry or a
    /// refusal is an error that says so.
    pub async fn ask(&mut self, mut req: pb::AccessRequest) -> anyhow::Result<pb::AccessReply> {
        req.session_id = self.session_id.clone();
        let what = format!("{} in vault \"{}\"", req.names.join(", "), req.vault);
        let mut reply = self.agent.access(req).await?.into_inner();
        let mut told = false;
        while reply.outcome == pb::Outcome::Pending as i32 {
            if !told {
                eprintln!(
                    "agent-vault: waiting for approval of {what} at {}",
                    reply.approval_url
                );
                told = true;
            }
            reply = self
                .agent
                .r#await(pb::AwaitRequest {
                    session_id: self.session_id.clone(),
                    request_id: reply.request_id.clone(),
                    timeout_ms: Duration::from_secs(60).as_millis() as u32,
                })
                .await
                .context("waiting for the decision")?
                .into_inner();
        }
        if reply.outcome != pb::Outcome::Granted as i32 {
            bail!("{}", reply.message);
        }
        Ok(reply)
    }
}
