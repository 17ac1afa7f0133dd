//! `agent-vault get VAULT/NAME`: prints one value after approval, for
//! scripts; a denial or an expiry exits non-zero.

use agent_vault_proto::pb::{self, agent_client::AgentClient};
use anyhow::{Context, bail};
use tonic::transport::Channel;

use crate::asking::Asking;

pub async fn run(
    agent: AgentClient<Channel>,
    target: &str,
    reason: Option<String>,
) -> anyhow::Result<()> {
    let Some((vault, name)) = target
        .split_once('/')
        .filter(|(v, n)| !v.is_empty() && !n.is_empty())
    else {
        bail!("expected VAULT/NAME, such as dev/DATABASE_URL");
    };
    let cwd = std::env::current_dir()
        .and_then(std::fs::canonicalize)
        .context("cannot tell the current directory")?;
    let mut asking = Asking::open(agent, &cwd).await?;
    let reply = asking
        .ask(pb::AccessRequest {
            vault: vault.into(),
            operation: pb::Operation::Read as i32,
            names: vec![name.into()],
            reason: reason
                .unwrap_or_else(|| "read with `agent-vault get` from the command line".into()),
            ..Default::default()
        })
        .await?;
    let value = reply
        .values
        .into_iter()
        .next()
        .map(|v| zeroize::Zeroizing::new(v.value))
        .context("agent-vaultd granted the read but sent no value")?;
    println!("{}", value.as_str());
    Ok(())
}
