//! The one shared-state handle, cloned into the gRPC services, the web
//! router and the background tasks.
//!
//! Ownership: `projects` (loaded configs and their providers), `sessions`,
//! `grants`, the `broker`, `devices` and `passkeys` each sit behind their own short
//! lock; none is held across an await. All durable changes go through
//! `store` (the single writer).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;
use crate::config::{ProjectConfig, VaultConfig};
use crate::db::Store;
use crate::db::StoreTx;
use crate::devices::Devices;
use crate::grants::Grants;
use crate::providers::Provider;
use crate::session::Session;
use crate::vault_id::{ProjectKey, VaultId};

/// A loaded config and a provider per vault.
#[derive(Debug)]
pub struct Project {
    pub config: ProjectConfig,
    pub owner: Option<u32>,
    pub providers: BTreeMap<String, Provider>,
}

impl Project {
    /// `owner`: the uid that registered a project config (its vault files
    /// must be that uid's); `None` for the daemon's own config. `stop` ends
    /// every backend call in flight (the daemon is shutting down).
    pub fn new(config: ProjectConfig, owner: Option<u32>, stop: &CancellationToken) -> Self {
        let providers = config
            .vaults
            .values()
            .map(|v| {
                let provider = Provider::new(&v.name, &v.settings, v.limits, owner, stop.clone());
                (v.name.clone(), provider)
            })
            .collect();
        Self {
            config,
            owner,
            providers,
        }
    }

    pub fn key(&self) -> ProjectKey {
        ProjectKey {
            owner: self.owner,
            path: self.config.path.clone(),
        }
    }

    pub fn vault(&self, name: &str) -> Option<(&VaultConfig, &Provider, VaultId)> {
        let v = self.config.vaults.get(name)?;
        let p = self.providers.get(name)?;
        let config = self.config.path.display().to_string();
        Some((v, p, VaultId::owned(&config, name, self.owner)))
    }

    pub fn vault_names(&self) -> Vec<String> {
        self.config.vaults.keys().cloned().collect()
    }
}

#[derive(Debug, Clone)]
pub struct DaemonPaths {
    pub state_dir: PathBuf,
    pub socket: PathBuf,
    pub db: PathBuf,
}

pub struct Inner {
    pub paths: DaemonPaths,
    pub started: std::time::Instant,
    /// A random id of this run, served at `/.well-known/agent-vaultd` so
    /// that `agent-vault doctor` can tell whether an address leads here.
    pub instance: String,
    /// Uids allowed to use the agent RPCs and the admin RPCs.
    pub agent_uids: HashSet<u32>,
    pub admin_uids: HashSet<u32>,
    pub projects: RwLock<HashMap<ProjectKey, Arc<Project>>>,
    /// The daemon's own config: what a session without a project sees.
    pub default_project: ProjectKey,
    pub sessions: Mutex<HashMap<String, Arc<Session>>>,
    pub grants: Mutex<Grants>,
    pub broker: Broker,
    pub devices: Devices,
    pub passkeys: crate::passkeys::Passkeys,
    /// Failed second-factor attempts per device.
    pub factor_attempts: crate::attempts::FactorAttempts,
    pub store: StoreTx,
    pub reader: Arc<Store>,
    pub approval_base: RwLock<String>,
    /// The approval pages' own listener, `http://localhost:PORT`.
    pub local_url: String,
    pub tunnel: RwLock<String>,
    pub shutdown: CancellationToken,
    /// Asked to stop (`agent-vault stop`): the same path as SIGTERM.
    pub stop: CancellationToken,
    pub webhooks_queued: Arc<Notify>,
}

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AppState {
    pub fn grants(&self) -> std::sync::MutexGuard<'_, Grants> {
        lock(&self.0.grants)
    }

    pub fn session(&self, id: &str) -> Option<Arc<Session>> {
        lock(&self.0.sessions).get(id).cloned()
    }

    pub fn remove_session(&self, id: &str) {
        lock(&self.0.sessions).remove(id);
    }

    /// Adds a session unless its uid already holds `max`.
    pub fn add_session(&self, s: Arc<Session>, max: usize) -> bool {
        let mut sessions = lock(&self.0.sessions);
        let uid = s.requester.uid;
        if sessions.values().filter(|o| o.requester.uid == uid).count() >= max {
            return false;
        }
        sessions.insert(s.id.clone(), s);
        true
    }

    /// Sessions opened before `before_ms` that never opened their watch.
    pub fn sessions_unwatched_since(&self, before_ms: i64) -> Vec<Arc<Session>> {
        lock(&self.0.sessions)
            .values()
            .filter(|s| {
                s.opened_ms < before_ms && !s.watched.load(std::sync::atomic::Ordering::Acquire)
            })
            .cloned()
            .collect()
    }

    pub fn project(&self, key: &ProjectKey) -> Option<Arc<Project>> {
        self.projects
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// A project loaded from `path`, whoever registered it (the daemon's
    /// own config first).
    pub fn project_at(&self, path: &Path) -> Option<Arc<Project>> {
        let projects = self.projects.read().unwrap_or_else(|e| e.into_inner());
        let mut at: Vec<&Arc<Project>> = projects
            .values()
            .filter(|p| p.config.path == path)
            .collect();
        at.sort_by_key(|p| p.owner);
        at.first().map(|p| (*p).clone())
    }

    pub fn set_project(&self, project: Project) -> Arc<Project> {
        let p = Arc::new(project);
        self.projects
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(p.key(), p.clone());
        p
    }

    pub fn all_projects(&self) -> Vec<Arc<Project>> {
        let mut v: Vec<_> = self
            .projects
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by_key(|p| p.key());
        v
    }

    pub fn approval_base(&self) -> String {
        self.0
            .approval_base
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn tunnel(&self) -> String {
        self.0
            .tunnel
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn approval_url(&self, request_id: &str) -> String {
        format!("{}/approve/{request_id}", self.approval_base())
    }
}
