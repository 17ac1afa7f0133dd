//! Secret providers: where values actually live, behind one contract.
//!
//! Every vault type is one file here with its settings (parsed from the
//! vault's config, unknown fields refused) and its backend; this module is
//! the registry ([`Settings`], [`Backend`]) and the contract every type
//! gets from [`Provider`]:
//!
//! - a time-out on every call (`timeoutSeconds`, default 10): a slow or
//!   dead backend never blocks another vault, the shim, the web UI or the
//!   daemon's shutdown;
//! - `list` results cached per vault (`listCacheSeconds`, default 30; a
//!   write ends the cache; an env vault's own snapshot is always current);
//! - `get` reads the backend each time;
//! - typed errors, each with a message that tells the agent what to do,
//!   never with a value or a credential.
//!
//! To add a type: a new file with `Settings::parse`, `FIELDS` and a
//! backend; one arm in each match below; docs/PROVIDERS.md.

mod aws_secrets_manager;
mod azure_auth;
mod azure_key_vault;
mod bitwarden;
mod contract;
mod credential;
// The dotenv format lives in proto: the CLI (`agent-vault set`) writes it too.
pub use agent_vault_proto::dotenv;
mod env_file;
mod exec;
mod gcp_auth;
mod gcp_secret_manager;
mod hashicorp_vault;
mod http;
mod json_fields;
mod oauth;
mod onepassword;
mod onepassword_connect;
mod onepassword_items;
mod subprocess;
mod vault_file;

pub use contract::{FieldError, Listed, ProviderError};
pub use credential::{Credential, EnvLookup};
pub use env_file::EnvFileProvider;
pub use vault_file::FileError;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_secrets_manager::AwsSecretsManager;
use azure_key_vault::AzureKeyVault;
use bitwarden::Bitwarden;
use exec::Exec;
use gcp_secret_manager::GcpSecretManager;
use hashicorp_vault::HashicorpVault;
use onepassword::OnePassword;
use onepassword_connect::OnePasswordConnect;
use tokio_util::sync::CancellationToken;

use crate::secret::SecretString;

/// The fields every vault may set, whatever its type.
pub const COMMON_FIELDS: &[&str] = &[
    "type",
    "ttl",
    "ttlScope",
    "writable",
    "approval",
    "timeoutSeconds",
    "listCacheSeconds",
    "policies",
];

/// A vault's type-specific settings, as parsed from its config.
#[derive(Debug, Clone)]
pub enum Settings {
    Env(env_file::Settings),
    OnePassword(onepassword::Settings),
    HashicorpVault(hashicorp_vault::Settings),
    Exec(exec::Settings),
    OnePasswordConnect(onepassword_connect::Settings),
    Bitwarden(bitwarden::Settings),
    AwsSecretsManager(aws_secrets_manager::Settings),
    GcpSecretManager(gcp_secret_manager::Settings),
    AzureKeyVault(azure_key_vault::Settings),
}

impl Settings {
    /// Every type, as the config's `type` spells it.
    pub const TYPES: &'static [&'static str] = &[
        "env",
        "1password",
        "1password-connect",
        "hashicorp-vault",
        "bitwarden",
        "aws-secrets-manager",
        "gcp-secret-manager",
        "azure-key-vault",
        "exec",
    ];

    /// The fields a type sets besides [`COMMON_FIELDS`].
    pub fn fields(kind: &str) -> Option<&'static [&'static str]> {
        match kind {
            "env" => Some(env_file::FIELDS),
            "1password" => Some(onepassword::FIELDS),
            "hashicorp-vault" => Some(hashicorp_vault::FIELDS),
            "exec" => Some(exec::FIELDS),
            "1password-connect" => Some(onepassword_connect::FIELDS),
            "bitwarden" => Some(bitwarden::FIELDS),
            "aws-secrets-manager" => Some(aws_secrets_manager::FIELDS),
            "gcp-secret-manager" => Some(gcp_secret_manager::FIELDS),
            "azure-key-vault" => Some(azure_key_vault::FIELDS),
            _ => None,
        }
    }

    /// Parses a vault's type-specific fields (a JSON object).
    pub fn parse(
        kind: &str,
        fields: serde_json::Value,
        dir: &Path,
        env: EnvLookup<'_>,
    ) -> Result<Self, FieldError> {
        match kind {
            "env" => env_file::Settings::parse(fields, dir).map(Settings::Env),
            "1password" => {
                onepassword::Settings::parse(fields, dir, env).map(Settings::OnePassword)
            }
            "hashicorp-vault" => {
                hashicorp_vault::Settings::parse(fields, dir, env).map(Settings::HashicorpVault)
            }
            "exec" => exec::Settings::parse(fields).map(Settings::Exec),
            "1password-connect" => onepassword_connect::Settings::parse(fields, dir, env)
                .map(Settings::OnePasswordConnect),
            "bitwarden" => bitwarden::Settings::parse(fields, dir, env).map(Settings::Bitwarden),
            "aws-secrets-manager" => aws_secrets_manager::Settings::parse(fields, dir, env)
                .map(Settings::AwsSecretsManager),
            "gcp-secret-manager" => gcp_secret_manager::Settings::parse(fields, dir, env)
                .map(Settings::GcpSecretManager),
            "azure-key-vault" => {
                azure_key_vault::Settings::parse(fields, dir, env).map(Settings::AzureKeyVault)
            }
            other => Err((
                "type".into(),
                format!(
                    "unknown vault type \"{other}\"; expected one of: {}",
                    Self::TYPES.join(", ")
                ),
            )),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Settings::Env(_) => "env",
            Settings::OnePassword(_) => "1password",
            Settings::HashicorpVault(_) => "hashicorp-vault",
            Settings::Exec(_) => "exec",
            Settings::OnePasswordConnect(_) => "1password-connect",
            Settings::Bitwarden(_) => "bitwarden",
            Settings::AwsSecretsManager(_) => "aws-secrets-manager",
            Settings::GcpSecretManager(_) => "gcp-secret-manager",
            Settings::AzureKeyVault(_) => "azure-key-vault",
        }
    }

    /// Everything that defines where values come from (part of the
    /// vault's fingerprint, to which approval windows are bound).
    pub fn definition(&self) -> String {
        match self {
            // As it was spelled before types had settings of their own, so
            // that windows kept across an upgrade stay valid.
            Settings::Env(s) => format!("{:?}", Some(&s.file)),
            Settings::OnePassword(s) => s.definition(),
            Settings::HashicorpVault(s) => s.definition(),
            Settings::Exec(s) => s.definition(),
            Settings::OnePasswordConnect(s) => s.definition(),
            Settings::Bitwarden(s) => s.definition(),
            Settings::AwsSecretsManager(s) => s.definition(),
            Settings::GcpSecretManager(s) => s.definition(),
            Settings::AzureKeyVault(s) => s.definition(),
        }
    }

    /// What a project's config (a file an agent may write) may not ask of
    /// this type, if anything.
    pub fn project_refusal(&self) -> Option<FieldError> {
        match self {
            Settings::Env(_) => None,
            Settings::OnePassword(s) => s.project_refusal(),
            Settings::HashicorpVault(s) => s.project_refusal(),
            Settings::Exec(s) => s.project_refusal(),
            Settings::OnePasswordConnect(s) => s.project_refusal(),
            Settings::Bitwarden(s) => s.project_refusal(),
            Settings::AwsSecretsManager(s) => s.project_refusal(),
            Settings::GcpSecretManager(s) => s.project_refusal(),
            Settings::AzureKeyVault(s) => s.project_refusal(),
        }
    }

    /// Why a vault of this type cannot be `writable`, if it cannot.
    pub fn cannot_write(&self) -> Option<&'static str> {
        match self {
            Settings::Bitwarden(_) => Some(bitwarden::CANNOT_WRITE),
            Settings::Exec(s) if !s.can_write() => Some(exec::CANNOT_WRITE),
            _ => None,
        }
    }

    /// An env vault's file.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Settings::Env(s) => Some(&s.file),
            _ => None,
        }
    }
}

#[derive(Debug)]
enum Backend {
    EnvFile(EnvFileProvider),
    OnePassword(OnePassword),
    HashicorpVault(Box<HashicorpVault>),
    Exec(Exec),
    OnePasswordConnect(Box<OnePasswordConnect>),
    Bitwarden(Bitwarden),
    AwsSecretsManager(Box<AwsSecretsManager>),
    GcpSecretManager(Box<GcpSecretManager>),
    AzureKeyVault(Box<AzureKeyVault>),
}

/// How a provider calls its backend.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub timeout: Duration,
    pub list_cache: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            list_cache: Duration::from_secs(30),
        }
    }
}

/// How a vault's backend has been answering (`agent-vault status`).
#[derive(Debug, Clone, Default)]
pub struct Health {
    /// When it last answered (ms since the epoch).
    pub last_ok_ms: Option<i64>,
    /// Its last failure, and when.
    pub last_error: Option<(i64, String)>,
    /// Names in the list cache, if any.
    pub cached: Option<usize>,
}

#[derive(Debug)]
pub struct Provider {
    vault: String,
    backend: Backend,
    limits: Limits,
    listed: Mutex<Option<(Instant, Arc<Vec<Listed>>)>>,
    /// Cancelled when the daemon shuts down: no backend call holds it up.
    stop: CancellationToken,
    health: Mutex<Health>,
}

impl Provider {
    /// `owner`: `Some(uid)` for a vault of a project that uid registered,
    /// `None` for the daemon's own config.
    pub fn new(
        vault: &str,
        settings: &Settings,
        limits: Limits,
        owner: Option<u32>,
        stop: CancellationToken,
    ) -> Provider {
        let backend = match settings {
            Settings::Env(s) => Backend::EnvFile(EnvFileProvider::new(
                vault.to_string(),
                s.file.clone(),
                owner,
            )),
            Settings::OnePassword(s) => {
                Backend::OnePassword(OnePassword::new(vault.to_string(), s.clone()))
            }
            Settings::HashicorpVault(s) => {
                Backend::HashicorpVault(Box::new(HashicorpVault::new(vault.to_string(), s.clone())))
            }
            Settings::Exec(s) => Backend::Exec(Exec::new(vault.to_string(), s.clone())),
            Settings::OnePasswordConnect(s) => Backend::OnePasswordConnect(Box::new(
                OnePasswordConnect::new(vault.to_string(), s.clone()),
            )),
            Settings::Bitwarden(s) => {
                Backend::Bitwarden(Bitwarden::new(vault.to_string(), s.clone()))
            }
            Settings::AwsSecretsManager(s) => Backend::AwsSecretsManager(Box::new(
                AwsSecretsManager::new(vault.to_string(), s.clone()),
            )),
            Settings::GcpSecretManager(s) => Backend::GcpSecretManager(Box::new(
                GcpSecretManager::new(vault.to_string(), s.clone()),
            )),
            Settings::AzureKeyVault(s) => {
                Backend::AzureKeyVault(Box::new(AzureKeyVault::new(vault.to_string(), s.clone())))
            }
        };
        Provider {
            vault: vault.to_string(),
            backend,
            limits,
            listed: Mutex::new(None),
            stop,
            health: Mutex::default(),
        }
    }

    /// Runs one backend call within the vault's time-out, or until the
    /// daemon shuts down (the call is dropped: a command's process group
    /// is killed, a connection closed).
    async fn timed<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        tokio::select! {
            r = tokio::time::timeout(self.limits.timeout, call) => r.unwrap_or_else(|_| {
                Err(ProviderError::TimedOut {
                    vault: self.vault.clone(),
                    seconds: self.limits.timeout.as_secs_f64(),
                })
            }),
            () = self.stop.cancelled() => Err(ProviderError::Unavailable {
                vault: self.vault.clone(),
                why: "agent-vaultd is shutting down".into(),
            }),
        }
    }

    /// Records how a backend call went: an answer (a name it does not
    /// have, or one it refuses, is an answer too) or a failure.
    fn note<T>(&self, r: Result<T, ProviderError>) -> Result<T, ProviderError> {
        let mut h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        let now = crate::clock::now_ms();
        match &r {
            Ok(_)
            | Err(
                ProviderError::UnknownSecret { .. }
                | ProviderError::NotFound { .. }
                | ProviderError::InvalidName(_)
                | ProviderError::Invalid(_),
            ) => h.last_ok_ms = Some(now),
            Err(e) => h.last_error = Some((now, e.to_string())),
        }
        r
    }

    pub fn health(&self) -> Health {
        let mut h = self
            .health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        h.cached = self.cache().as_ref().map(|(_, l)| l.len());
        h
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Arc<Vec<Listed>>)>> {
        self.listed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The vault's names, from the cache while it is fresh.
    pub async fn list(&self) -> Result<Arc<Vec<Listed>>, ProviderError> {
        Ok(self.list_cached().await?.0)
    }

    /// Asks the backend for its names now, past the cache (within the
    /// time-out): how many it has, or why it cannot answer.
    pub async fn check(&self) -> Result<usize, ProviderError> {
        Ok(self.list_fresh().await?.len())
    }

    /// What the person should know about the vault though it works (an
    /// env file that does not exist yet, or that others can read).
    pub fn notice(&self) -> Option<String> {
        match &self.backend {
            Backend::EnvFile(p) => p.notice(),
            _ => None,
        }
    }

    /// The listing and whether it came from the cache.
    async fn list_cached(&self) -> Result<(Arc<Vec<Listed>>, bool), ProviderError> {
        if let Backend::EnvFile(p) = &self.backend {
            // Its own snapshot is keyed by the file's identity: always current.
            return Ok((Arc::new(self.note(p.list())?), false));
        }
        if let Some((at, l)) = &*self.cache()
            && at.elapsed() < self.limits.list_cache
        {
            return Ok((l.clone(), true));
        }
        self.list_fresh().await.map(|l| (l, false))
    }

    async fn list_fresh(&self) -> Result<Arc<Vec<Listed>>, ProviderError> {
        let listed = Arc::new(match &self.backend {
            Backend::EnvFile(p) => self.note(p.list())?,
            Backend::OnePassword(p) => self.note(self.timed(p.list()).await)?,
            Backend::HashicorpVault(p) => self.note(self.timed(p.list()).await)?,
            Backend::Exec(p) => self.note(self.timed(p.list()).await)?,
            Backend::OnePasswordConnect(p) => self.note(self.timed(p.list()).await)?,
            Backend::Bitwarden(p) => self.note(self.timed(p.list()).await)?,
            Backend::AwsSecretsManager(p) => self.note(self.timed(p.list()).await)?,
            Backend::GcpSecretManager(p) => self.note(self.timed(p.list()).await)?,
            Backend::AzureKeyVault(p) => self.note(self.timed(p.list()).await)?,
        });
        *self.cache() = Some((Instant::now(), listed.clone()));
        Ok(listed)
    }

    fn knows(&self, listed: &[Listed], name: &str) -> bool {
        match &self.backend {
            Backend::EnvFile(_) => listed.iter().any(|l| l.name == name),
            Backend::OnePassword(_) | Backend::OnePasswordConnect(_) => {
                OnePassword::knows(listed, name)
            }
            Backend::HashicorpVault(_) => HashicorpVault::knows(listed, name),
            Backend::Exec(_) => listed.iter().any(|l| l.name == name),
            Backend::Bitwarden(_) => Bitwarden::knows(listed, name),
            Backend::AwsSecretsManager(_) => AwsSecretsManager::knows(listed, name),
            Backend::GcpSecretManager(_) => GcpSecretManager::knows(listed, name),
            Backend::AzureKeyVault(_) => AzureKeyVault::knows(listed, name),
        }
    }

    /// The names of `names` the vault does not have (a cached listing is
    /// refreshed before a name is called missing).
    pub async fn missing(&self, names: &[String]) -> Result<Vec<String>, ProviderError> {
        let (listed, cached) = self.list_cached().await?;
        let missing: Vec<String> = names
            .iter()
            .filter(|n| !self.knows(&listed, n))
            .cloned()
            .collect();
        if missing.is_empty() || !cached {
            return Ok(missing);
        }
        let listed = self.list_fresh().await?;
        Ok(missing
            .into_iter()
            .filter(|n| !self.knows(&listed, n))
            .collect())
    }

    /// A listing that has every name of `names` it can: a cached one,
    /// else (or when a name is not in it) a fresh one.
    async fn listing_for(&self, names: &[String]) -> Result<Arc<Vec<Listed>>, ProviderError> {
        let (listed, cached) = self.list_cached().await?;
        if cached && names.iter().any(|n| !self.knows(&listed, n)) {
            self.list_fresh().await
        } else {
            Ok(listed)
        }
    }

    /// Checks that a name is acceptable to this vault (no I/O).
    pub fn check_name(&self, name: &str) -> Result<(), ProviderError> {
        match &self.backend {
            Backend::EnvFile(_) => EnvFileProvider::check_name(name),
            Backend::OnePassword(_) | Backend::OnePasswordConnect(_) => {
                OnePassword::check_name(name)
            }
            Backend::HashicorpVault(_) => HashicorpVault::check_name(name),
            Backend::Exec(_) => Exec::check_name(name),
            Backend::Bitwarden(_) => Bitwarden::check_name(name),
            Backend::AwsSecretsManager(_) => AwsSecretsManager::check_name(name),
            Backend::GcpSecretManager(_) => GcpSecretManager::check_name(name),
            Backend::AzureKeyVault(_) => AzureKeyVault::check_name(name),
        }
    }

    /// The values of `names`, and the identity of what they were read
    /// from (see [`Provider::identity`]).
    pub async fn get(
        &self,
        names: &[String],
    ) -> Result<(HashMap<String, SecretString>, String), ProviderError> {
        match &self.backend {
            Backend::EnvFile(p) => self.note(p.get(names).map(|(v, id)| (v, id.0))),
            Backend::OnePassword(p) => {
                let listed = self.listing_for(names).await?;
                let values = self.note(self.timed(p.get(names, &listed)).await)?;
                Ok((values, p.identity()))
            }
            Backend::HashicorpVault(p) => {
                let values = self.note(self.timed(p.get(names)).await)?;
                Ok((values, p.identity()))
            }
            Backend::Exec(p) => {
                let values = self.note(self.timed(p.get(names)).await)?;
                Ok((values, p.identity()))
            }
            Backend::OnePasswordConnect(p) => {
                let listed = self.listing_for(names).await?;
                let values = self.note(self.timed(p.get(names, &listed)).await)?;
                Ok((values, p.identity()))
            }
            Backend::Bitwarden(p) => {
                let listed = self.listing_for(names).await?;
                let values = self.note(self.timed(p.get(names, &listed)).await)?;
                Ok((values, p.identity()))
            }
            Backend::AwsSecretsManager(p) => {
                let values = self.note(self.timed(p.get(names)).await)?;
                Ok((values, p.identity()))
            }
            Backend::GcpSecretManager(p) => {
                let values = self.note(self.timed(p.get(names)).await)?;
                Ok((values, p.identity()))
            }
            Backend::AzureKeyVault(p) => {
                let values = self.note(self.timed(p.get(names)).await)?;
                Ok((values, p.identity()))
            }
        }
    }

    /// What a value read now would come from (an env vault: its file's
    /// device and inode; 1Password: the account and vaults). Approvals and
    /// windows are bound to it.
    pub async fn identity(&self) -> Result<String, ProviderError> {
        match &self.backend {
            Backend::EnvFile(p) => p.identity().map(|id| id.0),
            Backend::OnePassword(p) => Ok(p.identity()),
            Backend::HashicorpVault(p) => Ok(p.identity()),
            Backend::Exec(p) => Ok(p.identity()),
            Backend::OnePasswordConnect(p) => Ok(p.identity()),
            Backend::Bitwarden(p) => Ok(p.identity()),
            Backend::AwsSecretsManager(p) => Ok(p.identity()),
            Backend::GcpSecretManager(p) => Ok(p.identity()),
            Backend::AzureKeyVault(p) => Ok(p.identity()),
        }
    }

    /// Where the values live, as the approver should see it.
    pub fn location(&self) -> String {
        match &self.backend {
            Backend::EnvFile(p) => p.location(),
            Backend::OnePassword(p) => p.location(),
            Backend::HashicorpVault(p) => p.location(),
            Backend::Exec(p) => p.location(),
            Backend::OnePasswordConnect(p) => p.location(),
            Backend::Bitwarden(p) => p.location(),
            Backend::AwsSecretsManager(p) => p.location(),
            Backend::GcpSecretManager(p) => p.location(),
            Backend::AzureKeyVault(p) => p.location(),
        }
    }

    pub async fn set(&self, writes: &[(String, SecretString)]) -> Result<(), ProviderError> {
        let result = match &self.backend {
            Backend::EnvFile(p) => {
                let p = p.clone();
                let writes = writes.to_vec();
                tokio::task::spawn_blocking(move || p.set(&writes))
                    .await
                    .map_err(|e| ProviderError::Invalid(format!("write task failed: {e}")))?
            }
            Backend::OnePassword(p) => self.timed(p.set(writes)).await,
            Backend::HashicorpVault(p) => self.timed(p.set(writes)).await,
            Backend::Exec(p) => self.timed(p.set(writes)).await,
            Backend::OnePasswordConnect(p) => self.timed(p.set(writes)).await,
            Backend::Bitwarden(p) => Err(p.set()),
            Backend::AwsSecretsManager(p) => self.timed(p.set(writes)).await,
            Backend::GcpSecretManager(p) => self.timed(p.set(writes)).await,
            Backend::AzureKeyVault(p) => self.timed(p.set(writes)).await,
        };
        let result = self.note(result);
        // Even a failed write may have changed some names.
        *self.cache() = None;
        result
    }
}
