//! `list_secrets`: every vault of the session's config, with its names
//! (never values) or the error that vault gave.

use agent_vault_proto::pb;

use super::AccessError;
use super::session::project_of;
use crate::session::Session;
use crate::state::AppState;

pub async fn list(
    state: &AppState,
    session: &Session,
) -> Result<pb::ListSecretsReply, AccessError> {
    let project = project_of(state, session)?;
    let mut vaults = Vec::new();
    for (name, provider) in &project.providers {
        let cfg = &project.config.vaults[name];
        let (secrets, error) = match provider.list().await {
            Ok(list) => (
                list.into_iter()
                    .map(|l| pb::SecretEntry {
                        name: l.name,
                        group: l.group,
                    })
                    .collect(),
                String::new(),
            ),
            Err(e) => (Vec::new(), e.to_string()),
        };
        vaults.push(pb::VaultListing {
            vault: name.clone(),
            kind: cfg.kind.as_str().into(),
            writable: cfg.writable,
            secrets,
            error,
        });
    }
    Ok(pb::ListSecretsReply { vaults })
}
