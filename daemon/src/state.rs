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

use crate::audit::store::Store;
use crate::audit::writer::StoreTx;
use crate::broker::Broker;
use crate::config::{ProjectConfig, VaultConfig};
use crate::devices::Devices;
use crate::grants::{Grants, VaultId};
use crate::providers::Provider;
use crate::session::Session;

/// A loaded config and a provider per vault.
#[derive(Debug)]
pub struct Project {
    pub config: ProjectConfig,
    pub providers: BTreeMap<String, Provider>,
}

impl Project {
    pub fn new(config: ProjectConfig) -> Self {
        let providers = config
            .vaults
            .values()
            .map(|v| (v.name.clone(), Provider::for_vault(v)))
            .collect();
        Self { config, providers }
    }

    pub fn key(&self) -> String {
        self.config.path.display().to_string()
    }

    pub fn vault(&self, name: &str) -> Option<(&VaultConfig, &Provider, VaultId)> {
        let v = self.config.vaults.get(name)?;
        let p = self.providers.get(name)?;
        Some((v, p, VaultId::new(&self.key(), name)))
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
    /// Uids allowed to use the agent RPCs and the admin RPCs.
    pub agent_uids: HashSet<u32>,
    pub admin_uids: HashSet<u32>,
    pub projects: RwLock<HashMap<PathBuf, Arc<Project>>>,
    /// The daemon's own config: what a session without a project sees.
    pub default_project: PathBuf,
    pub sessions: Mutex<HashMap<String, Arc<Session>>>,
    pub grants: Mutex<Grants>,
    pub broker: Broker,
    pub devices: Devices,
    pub passkeys: crate::passkeys::Passkeys,
    pub store: StoreTx,
    pub reader: Arc<Store>,
    pub approval_base: RwLock<String>,
    pub tunnel: RwLock<String>,
    pub shutdown: CancellationToken,
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

    pub fn add_session(&self, s: Arc<Session>) {
        lock(&self.0.sessions).insert(s.id.clone(), s);
    }

    pub fn project(&self, path: &Path) -> Option<Arc<Project>> {
        self.projects
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
            .cloned()
    }

    pub fn set_project(&self, project: Project) -> Arc<Project> {
        let p = Arc::new(project);
        self.projects
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(p.config.path.clone(), p.clone());
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
        v.sort_by(|a, b| a.config.path.cmp(&b.config.path));
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
