//! Configuration: the prototype's `agent-vault.config.json`, unchanged.
//!
//! - `schema`: the serde types and their validation.
//! - `load`: the search order, `env:` references and path resolution.

mod load;
mod schema;

pub use load::{
    ConfigError, EnvLookup, default_config_text, find_config, load_config, parse_config,
    restrict_project,
};
pub use schema::{
    AccessList, ApprovalFactor, ApprovalSettings, ProjectFloor, TtlScope, UserRef, VaultApproval,
    VaultKind,
};

/// A list of users by name or uid.
pub type UserRefList = Vec<UserRef>;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::secret::SecretString;

/// One loaded config file: a project, or the daemon's own config.
#[derive(Debug, Clone)]
pub struct ProjectConfig {
    /// Canonical path of the file; with a vault name it identifies a vault.
    pub path: PathBuf,
    pub vaults: BTreeMap<String, VaultConfig>,
    pub port: Option<u16>,
    pub ngrok_auth_token: Option<SecretString>,
    /// A reserved ngrok domain: a stable origin, which passkeys need.
    pub ngrok_domain: Option<String>,
    pub webhooks: Vec<WebhookConfig>,
    pub approval: ApprovalSettings,
    pub access: AccessList,
}

#[derive(Debug, Clone)]
pub struct VaultConfig {
    pub name: String,
    pub kind: VaultKind,
    pub ttl_minutes: f64,
    pub ttl_scope: TtlScope,
    pub writable: bool,
    /// For env vaults: the file, resolved against the config's directory.
    pub file: Option<PathBuf>,
    /// Distinct paired devices that must approve a request.
    pub approvers: u32,
    /// What approving needs beyond a paired device's cookie.
    pub factor: ApprovalFactor,
    /// `agent-vault approve` is allowed even when admins are agents.
    pub allow_terminal: bool,
}

impl VaultConfig {
    /// A digest of everything that defines this vault. An approval window
    /// is bound to it, so a window ends when its vault is defined anew
    /// (another file, type, window or approval rule).
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let text = format!(
            "{}\0{}\0{:?}\0{}\0{}\0{}\0{}\0{}\0{}",
            self.name,
            self.kind.as_str(),
            self.file,
            self.ttl_minutes,
            self.ttl_scope.as_str(),
            self.writable,
            self.approvers,
            self.factor.as_str(),
            self.allow_terminal
        );
        Sha256::digest(text.as_bytes())
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: String,
    pub authorization: Option<SecretString>,
    /// None means all events.
    pub events: Option<Vec<String>>,
}

impl WebhookConfig {
    pub fn wants(&self, action: &str) -> bool {
        self.events
            .as_ref()
            .is_none_or(|events| events.iter().any(|e| e == action))
    }
}
