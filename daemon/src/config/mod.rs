//! Configuration: the prototype's `agent-vault.config.json`, unchanged.
//!
//! - `schema`: the serde types and their validation.
//! - `load`: the search order, `env:` references and path resolution.

mod load;
pub mod policies;
mod schema;

pub use load::{
    ConfigError, EnvLookup, default_config_text, find_config, load_config, parse_config,
    restrict_project,
};
pub use schema::{
    AccessList, ApprovalFactor, ApprovalSettings, ProjectFloor, RunSettings, TtlScope, UserRef,
    VaultApproval,
};

/// A list of users by name or uid.
pub type UserRefList = Vec<UserRef>;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::providers::{Limits, Settings};
use crate::secret::SecretString;
pub use policies::{Policies, Rule, VaultDefaults};

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
    /// Where a phone opens the approval pages when something other than
    /// ngrok makes them reachable (Tailscale serve, a reverse proxy): an
    /// origin, without a trailing slash. agent-vaultd's own config only.
    pub public_url: Option<String>,
    pub webhooks: Vec<WebhookConfig>,
    pub approval: ApprovalSettings,
    pub access: AccessList,
    /// `audit.anchor` (agent-vaultd's own config only).
    pub anchor: Option<AnchorConfig>,
    pub run: RunSettings,
}

/// Where and how often the audit chain's head is copied out of the
/// database, so that a rewritten, cut or replaced log shows.
#[derive(Debug, Clone)]
pub struct AnchorConfig {
    /// An append-only file, ideally one the agent's user cannot write.
    pub file: Option<PathBuf>,
    /// An ntfy topic URL (`https://ntfy.sh/<topic>` or a server of your own).
    pub ntfy: Option<String>,
    pub ntfy_token: Option<SecretString>,
    /// Anchor once this many entries were added since the last anchor...
    pub every_events: u64,
    /// ...or this many minutes passed with any entry added.
    pub every_minutes: f64,
}

#[derive(Debug, Clone)]
pub struct VaultConfig {
    pub name: String,
    /// The type and its own settings (providers/).
    pub settings: Settings,
    /// The backend's time-out and list cache.
    pub limits: Limits,
    pub ttl_minutes: f64,
    pub ttl_scope: TtlScope,
    pub writable: bool,
    /// Distinct paired devices that must approve a request.
    pub approvers: u32,
    /// What approving needs beyond a paired device's cookie.
    pub factor: ApprovalFactor,
    /// `agent-vault approve` is allowed even when admins are agents.
    pub allow_terminal: bool,
    /// How each name may be used (`reveal`, `autoApprove`, `hidden`, ...).
    pub policies: Policies,
}

impl VaultConfig {
    /// The vault's own approval settings, which its policies refine.
    pub fn defaults(&self) -> VaultDefaults {
        VaultDefaults {
            ttl_minutes: self.ttl_minutes,
            approvers: self.approvers,
            factor: self.factor,
        }
    }

    /// How `name` may be used.
    pub fn rule(&self, name: &str) -> Rule {
        self.policies.rule(name, self.defaults())
    }

    /// A digest of everything that defines this vault. An approval window
    /// is bound to it, so a window ends when its vault is defined anew
    /// (another file, type, window or approval rule).
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let text = format!(
            "{}\0{}\0{}\0{}\0{}\0{}\0{}\0{}\0{}\0{:?}",
            self.name,
            self.settings.kind(),
            self.settings.definition(),
            self.ttl_minutes,
            self.ttl_scope.as_str(),
            self.writable,
            self.approvers,
            self.factor.as_str(),
            self.allow_terminal,
            self.policies
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
    /// None means the prototype's events (approved, denied, auto_approved).
    pub events: Option<Vec<String>>,
    /// Signs each event (Standard Webhooks: `webhook-signature`).
    pub secret: Option<SigningSecret>,
}

/// A webhook's signing secret, as configured.
#[derive(Debug, Clone)]
pub enum SigningSecret {
    /// `whsec_` and base64, given inline or through `env:`.
    Value(SecretString),
    /// A file holding it, read at each delivery so that it can be rotated
    /// (agent-vaultd's own config only).
    File(PathBuf),
}

/// Events a webhook receives only when it lists them: they are not the
/// prototype's, whose receivers expect `secret_access` alone.
pub const OPT_IN_EVENTS: [&str; 2] = ["audit_anchor", "device_paired"];

impl WebhookConfig {
    pub fn wants(&self, action: &str) -> bool {
        match &self.events {
            Some(events) => events.iter().any(|e| e == action),
            None => !OPT_IN_EVENTS.contains(&action),
        }
    }
}
