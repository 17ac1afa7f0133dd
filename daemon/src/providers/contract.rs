//! What every provider speaks: its errors (each with a message that tells
//! the agent what to do, never a value or a credential), a listed secret,
//! and a config field's error.

use super::vault_file::FileError;

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("no secret named {} in vault \"{vault}\"", names.join(", "))]
    UnknownSecret { vault: String, names: Vec<String> },
    #[error("vault \"{vault}\": {why}")]
    NotFound { vault: String, why: String },
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    Invalid(String),
    #[error(
        "vault \"{vault}\": the backend refused the vault's credentials ({why}); ask the user to check them in agent-vault's config"
    )]
    Unauthorized { vault: String, why: String },
    #[error(
        "vault \"{vault}\": its credentials may not do this ({why}); ask the user to grant that access in the backend, or use another vault"
    )]
    Forbidden { vault: String, why: String },
    #[error(
        "vault \"{vault}\" is unavailable: {why}. Call again in a moment; if it persists, ask the user to check `agent-vault status`"
    )]
    Unavailable { vault: String, why: String },
    #[error(
        "vault \"{vault}\" did not answer within {seconds} s, so the call was given up. Call again later; if it persists, ask the user to check the backend (`timeoutSeconds` in the vault's config sets the limit)"
    )]
    TimedOut { vault: String, seconds: f64 },
    #[error("vault \"{vault}\" cannot be used as configured: {why}")]
    NotConfigured { vault: String, why: String },
    #[error("vault \"{vault}\": {error}")]
    File {
        vault: String,
        #[source]
        error: FileError,
    },
}

/// One secret as listed: never a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    /// Shown beside the name (1Password: the vault's id).
    pub group: String,
    /// The backend's own id for it, where it has one besides the name.
    pub id: String,
    /// The group's name, where it has one besides its id.
    pub group_name: String,
}

/// A field of a vault's config (relative to the vault) and what is wrong.
pub type FieldError = (String, String);
