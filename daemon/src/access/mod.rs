//! The agent's side of a request: open a session ([`session`]), list the
//! vaults ([`list`]), ask ([`ask`], after [`validate`]), and get the answer
//! ([`reply`]: wait, then the values through [`deliver`], or why not).
//!
//! Every check that can fail without a human runs before anyone is asked:
//! the vault exists, it is writable for writes, the names are valid, and
//! for reads every name exists.

mod ask;
mod deliver;
mod list;
mod reply;
mod session;
mod validate;

pub use ask::access;
pub use list::list;
pub use reply::await_decision;
pub use session::{close_session, forget_unwatched, open_session};

use crate::providers::ProviderError;

pub const MAX_REASON_BYTES: usize = 4096;
pub const MAX_NAMES: usize = 100;
pub const MAX_NAME_BYTES: usize = 256;
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("this agent session is unknown to agent-vaultd (it may have restarted); reconnect")]
    UnknownSession,
    #[error("the session belongs to another process")]
    NotYourSession,
    #[error("unknown vault \"{vault}\"; the available vaults are: {available}")]
    UnknownVault { vault: String, available: String },
    #[error(
        "vault \"{0}\" is not writable; set \"writable\": true on it in the config to allow writes"
    )]
    NotWritable(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(
        "{} in vault \"{vault}\" {} use-only: {} never shown, only used by a command. Call run_with_secrets with the command that needs {}",
        names.join(", "),
        if names.len() == 1 { "is" } else { "are" },
        if names.len() == 1 { "its value is" } else { "their values are" },
        if names.len() == 1 { "it" } else { "them" }
    )]
    UseOnly { vault: String, names: Vec<String> },
    #[error("no pending request {0} for this session")]
    UnknownRequest(String),
    #[error("the write was approved but failed: {0}")]
    WriteFailed(String),
    #[error("{0}")]
    TooMany(String),
    #[error(
        "the audit log could not be written, so no value was released; try again, and see agent-vaultd's log if it persists"
    )]
    AuditUnavailable,
    #[error(
        "vault \"{0}\" now reads another file than the one that was approved (it was replaced), so no value was released; call again to ask anew"
    )]
    SourceChanged(String),
}
