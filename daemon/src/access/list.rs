//! `list_secrets`: every vault of the session's config, with its names
//! (never values) and how each may be used, or the error that vault gave.
//! Names a policy hides are left out.

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
    // Every vault at once: the listing takes as long as the slowest
    // vault (each within its own time-out), not the sum.
    let listings =
        futures_util::future::join_all(project.providers.values().map(|provider| provider.list()))
            .await;
    let vaults = project
        .providers
        .keys()
        .zip(listings)
        .map(|(name, listed)| {
            let cfg = &project.config.vaults[name];
            let (secrets, error) = match listed {
                Ok(list) => (
                    list.iter()
                        .filter_map(|l| {
                            let rule = cfg.rule(&l.name);
                            (!rule.hidden).then(|| pb::SecretEntry {
                                name: l.name.clone(),
                                group: l.group.clone(),
                                policy: rule.words(),
                            })
                        })
                        .collect(),
                    String::new(),
                ),
                Err(e) => (Vec::new(), e.to_string()),
            };
            pb::VaultListing {
                vault: name.clone(),
                kind: cfg.settings.kind().into(),
                writable: cfg.writable,
                secrets,
                error,
                notice: project.providers[name].notice().unwrap_or_default(),
            }
        })
        .collect();
    Ok(pb::ListSecretsReply { vaults })
}
