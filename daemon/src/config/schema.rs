//! The serde shape of the config file. A vault's fields are split in two:
//! the ones every vault has ([`RawVault`]) and its type's own, which the
//! type parses (providers/); unknown fields are refused in both.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawConfig {
    pub vaults: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
    pub port: Option<u16>,
    pub ngrok_auth_token: Option<String>,
    pub ngrok_domain: Option<String>,
    pub public_url: Option<String>,
    #[serde(default)]
    pub webhooks: Vec<RawWebhook>,
    #[serde(default)]
    pub approval: ApprovalSettings,
    #[serde(default)]
    pub access: AccessList,
    pub audit: Option<RawAudit>,
    #[serde(default)]
    pub run: RunSettings,
}

/// The fields every vault has (`providers::COMMON_FIELDS`, `type` apart).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawVault {
    #[serde(default)]
    pub ttl: Minutes,
    #[serde(default)]
    pub ttl_scope: TtlScope,
    #[serde(default)]
    pub writable: bool,
    #[serde(default)]
    pub approval: VaultApproval,
    pub timeout_seconds: Option<f64>,
    pub list_cache_seconds: Option<f64>,
    #[serde(default)]
    pub policies: Vec<RawPolicy>,
}

/// One of a vault's `policies`, as written (see `config::policies`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawPolicy {
    #[serde(rename = "match", default = "every_name")]
    pub pattern: String,
    pub reveal: Option<bool>,
    pub auto_approve: Option<bool>,
    pub hidden: Option<bool>,
    pub max_ttl: Option<f64>,
    pub approvers: Option<u32>,
    pub require: Option<ApprovalFactor>,
}

fn every_name() -> String {
    "*".into()
}

/// A vault's `approval`: how strong an approval must be.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct VaultApproval {
    /// Distinct paired devices that must approve (quorum), 1 to 5.
    pub approvers: u32,
    pub require: ApprovalFactor,
    /// Allow `agent-vault approve` even when the admin uid is also an agent
    /// uid. That is no protection against a co-located agent.
    pub allow_terminal: bool,
}

impl Default for VaultApproval {
    fn default() -> Self {
        Self {
            approvers: 1,
            require: ApprovalFactor::Device,
            allow_terminal: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalFactor {
    /// The paired device's cookie alone.
    Device,
    /// The cookie and a WebAuthn assertion, with user verification, over
    /// the request's digest.
    Passkey,
    /// The cookie and a code from the enrolled authenticator app.
    Totp,
}

impl ApprovalFactor {
    /// The stronger of two factors (device < totp < passkey).
    pub fn stronger(self, other: Self) -> Self {
        let rank = |f: Self| match f {
            ApprovalFactor::Device => 0,
            ApprovalFactor::Totp => 1,
            ApprovalFactor::Passkey => 2,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalFactor::Device => "device",
            ApprovalFactor::Passkey => "passkey",
            ApprovalFactor::Totp => "totp",
        }
    }
}

/// A non-negative, finite number of minutes.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Minutes(pub f64);

impl<'de> Deserialize<'de> for Minutes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if !v.is_finite() || !(0.0..=525_600.0).contains(&v) {
            return Err(serde::de::Error::custom(
                "expected a number of minutes between 0 and 525600 (0 means always ask)",
            ));
        }
        Ok(Minutes(v))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TtlScope {
    #[default]
    Secret,
    Vault,
    Session,
}

impl TtlScope {
    pub fn as_str(self) -> &'static str {
        match self {
            TtlScope::Secret => "secret",
            TtlScope::Vault => "vault",
            TtlScope::Session => "session",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "secret" => Some(TtlScope::Secret),
            "vault" => Some(TtlScope::Vault),
            "session" => Some(TtlScope::Session),
            _ => None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawEvents {
    All(String),
    List(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    pub url: String,
    pub authorization: Option<String>,
    pub events: Option<RawEvents>,
    /// The signing secret, `whsec_` and base64 (Standard Webhooks), or an
    /// `env:` or `file:` reference to one.
    pub secret: Option<String>,
}

/// `audit` (agent-vaultd's own config only).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawAudit {
    pub anchor: Option<RawAnchor>,
}

/// `audit.anchor`: where the chain's head is copied, and how often.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawAnchor {
    pub file: Option<String>,
    pub ntfy: Option<String>,
    pub ntfy_token: Option<String>,
    pub every_events: Option<u64>,
    pub every_minutes: Option<f64>,
}

/// `approval`: how long a request stays open and how long a shim waits.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ApprovalSettings {
    pub expire_minutes: f64,
    pub wait_seconds: u32,
    /// The least a project config's vault gets (agent-vaultd's own config
    /// only; `None` when the file does not set it).
    pub projects: Option<ProjectFloor>,
}

impl Default for ApprovalSettings {
    fn default() -> Self {
        Self {
            expire_minutes: 10.0,
            wait_seconds: 50,
            projects: None,
        }
    }
}

/// `approval.projects` in agent-vaultd's own config: what a vault of a
/// project config (a file an agent may have written) gets at least. A
/// project may ask for more, never for less.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ProjectFloor {
    /// At least this many distinct approving devices.
    pub approvers: u32,
    /// At least this factor (device < totp < passkey).
    pub require: ApprovalFactor,
    /// Approval windows of at most this many minutes.
    pub max_ttl: f64,
    /// Whether a project's vault may allow terminal approval at all.
    pub allow_terminal: bool,
}

impl Default for ProjectFloor {
    fn default() -> Self {
        Self {
            approvers: 1,
            require: ApprovalFactor::Device,
            max_ttl: 1440.0,
            allow_terminal: false,
        }
    }
}

/// `run`: how commands run with secrets (run_with_secrets) report back.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RunSettings {
    /// The most output of each stream (stdout, stderr) returned to the
    /// agent; the middle of longer output is left out, and the gap said.
    pub max_output_bytes: u32,
}

impl Default for RunSettings {
    fn default() -> Self {
        Self {
            max_output_bytes: 64 * 1024,
        }
    }
}

/// `access`: which uids may use the agent and admin RPCs (user names or
/// uids). Empty means the daemon's own uid.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessList {
    pub agents: Vec<UserRef>,
    pub admins: Vec<UserRef>,
    /// A group (name or gid) whose members may reach the socket: its
    /// directory becomes 0750 and the socket 0660 with that group. For the
    /// hardened set-up, where the daemon runs as its own user.
    pub socket_group: Option<UserRef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum UserRef {
    Uid(u32),
    Name(String),
}
