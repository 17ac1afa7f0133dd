//! Which vault, and which loaded config: the keys every other module uses
//! to name them (windows, sessions, audit rows, the project table).

use std::path::PathBuf;
use std::sync::Arc;

/// A vault's identity: its config file, its name, and who registered that
/// config (`None`: the daemon's own config; `Some(uid)`: a project config
/// that uid's shim registered, which is that uid's alone).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VaultId {
    pub config: Arc<str>,
    pub name: Arc<str>,
    pub owner: Option<u32>,
}

impl VaultId {
    /// A vault of the daemon's own config.
    pub fn new(config: &str, name: &str) -> Self {
        Self::owned(config, name, None)
    }

    pub fn owned(config: &str, name: &str, owner: Option<u32>) -> Self {
        Self {
            config: config.into(),
            name: name.into(),
            owner,
        }
    }
}

/// Which loaded config: its path, and who registered it. The daemon's own
/// config has no owner. A project config is registered by a shim, from
/// the text that shim read as its user; it is that uid's alone, so two
/// users who name the same path have two projects.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectKey {
    pub owner: Option<u32>,
    pub path: PathBuf,
}

impl ProjectKey {
    pub fn of_vault(v: &VaultId) -> Self {
        Self {
            owner: v.owner,
            path: PathBuf::from(&*v.config),
        }
    }
}
