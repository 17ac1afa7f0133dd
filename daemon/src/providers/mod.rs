//! Secret providers: where values actually live.
//!
//! A [`Provider`] is an enum rather than a trait object so that each backend
//! keeps plain async methods. What the daemon does with each error:
//! - `UnknownSecret`: the request fails at once, before anyone is asked.
//! - `InvalidName` / `Invalid`: the request fails with the message; nothing changes.
//! - `Unavailable`: the request fails and the agent is told to retry.
//! - `File`: the request fails with what to fix (a file that is not the
//!   requester's own, an unreadable file); retrying does not help.
//!
//! Messages never include a value.

pub mod dotenv;
mod env_file;
mod vault_file;

pub use env_file::EnvFileProvider;
pub use vault_file::FileError;

use std::collections::HashMap;

use crate::config::{VaultConfig, VaultKind};
use crate::secret::SecretString;

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("no secret named {} in vault \"{vault}\"", names.join(", "))]
    UnknownSecret { vault: String, names: Vec<String> },
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    Invalid(String),
    #[error("vault \"{vault}\" is unavailable: {why}")]
    Unavailable { vault: String, why: String },
    #[error("vault \"{vault}\": {error}")]
    File {
        vault: String,
        #[source]
        error: FileError,
    },
}

/// One secret as listed: never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub group: String,
}

#[derive(Debug)]
pub enum Provider {
    EnvFile(EnvFileProvider),
    /// A vault type this build cannot serve; it is listed with the reason.
    Unsupported {
        vault: String,
        why: String,
    },
}

impl Provider {
    /// `owner`: `Some(uid)` for a vault of a project that uid registered,
    /// `None` for the daemon's own config.
    pub fn for_vault(v: &VaultConfig, owner: Option<u32>) -> Provider {
        match (v.kind, &v.file) {
            (VaultKind::Env, Some(file)) => {
                Provider::EnvFile(EnvFileProvider::new(v.name.clone(), file.clone(), owner))
            }
            (VaultKind::Env, None) => Provider::Unsupported {
                vault: v.name.clone(),
                why: "an env vault needs a file".into(),
            },
            (VaultKind::OnePassword, _) => Provider::Unsupported {
                vault: v.name.clone(),
                why: "the 1password provider is not available in this version of agent-vault"
                    .into(),
            },
        }
    }

    fn unavailable(vault: &str, why: &str) -> ProviderError {
        ProviderError::Unavailable {
            vault: vault.to_string(),
            why: why.to_string(),
        }
    }

    pub async fn list(&self) -> Result<Vec<Listed>, ProviderError> {
        match self {
            Provider::EnvFile(p) => p.list(),
            Provider::Unsupported { vault, why } => Err(Self::unavailable(vault, why)),
        }
    }

    /// Checks that a name is acceptable to this vault (no I/O).
    pub fn check_name(&self, name: &str) -> Result<(), ProviderError> {
        match self {
            Provider::EnvFile(_) => EnvFileProvider::check_name(name),
            Provider::Unsupported { vault, why } => Err(Self::unavailable(vault, why)),
        }
    }

    /// The values of `names`, and the identity of what they were read
    /// from (see [`Provider::identity`]).
    pub async fn get(
        &self,
        names: &[String],
    ) -> Result<(HashMap<String, SecretString>, String), ProviderError> {
        match self {
            Provider::EnvFile(p) => p.get(names).map(|(v, id)| (v, id.0)),
            Provider::Unsupported { vault, why } => Err(Self::unavailable(vault, why)),
        }
    }

    /// What a value read now would come from (an env vault: its file's
    /// device and inode). Approvals and windows are bound to it.
    pub async fn identity(&self) -> Result<String, ProviderError> {
        match self {
            Provider::EnvFile(p) => p.identity().map(|id| id.0),
            Provider::Unsupported { vault, why } => Err(Self::unavailable(vault, why)),
        }
    }

    /// Where the values live, as the approver should see it.
    pub fn location(&self) -> String {
        match self {
            Provider::EnvFile(p) => p.location(),
            Provider::Unsupported { .. } => String::new(),
        }
    }

    pub async fn set(&self, writes: &[(String, SecretString)]) -> Result<(), ProviderError> {
        match self {
            Provider::EnvFile(p) => {
                let p = p.clone();
                let writes = writes.to_vec();
                tokio::task::spawn_blocking(move || p.set(&writes))
                    .await
                    .map_err(|e| ProviderError::Invalid(format!("write task failed: {e}")))?
            }
            Provider::Unsupported { vault, why } => Err(Self::unavailable(vault, why)),
        }
    }
}
