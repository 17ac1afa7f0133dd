//! agent-vaultd: the long-lived daemon behind Agent Vault.
//!
//! [`run`] builds the one shared state ([`state::AppState`]), starts the
//! gRPC server on the Unix socket, the approval web UI, the tunnel, the
//! store writer, the expiry sweeper and webhook delivery, then waits for
//! SIGTERM/SIGINT and shuts everything down along one path.

pub mod access;
pub mod alerts;
pub mod anchoring;
pub mod attempts;
pub mod audit;
pub mod banner;
pub mod broker;
pub mod check;
pub mod clock;
pub mod command_line;
pub mod config;
pub mod db;
pub mod decisions;
pub mod devices;
pub mod events;
#[doc(hidden)]
pub mod fuzz_checks;
pub mod grants;
pub mod hardening;
pub mod passkeys;
pub mod procinfo;
pub mod providers;
pub mod rpc;
pub mod secret;
pub mod session;
pub mod socket;
pub mod state;
pub mod text;
pub mod tunnel;
pub mod vault_id;
pub mod web;
pub mod webhooks;

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::audit::Action;
use crate::broker::Broker;
use crate::config::{AccessList, ProjectConfig, UserRefList};
use crate::db::Store;
use crate::db::StoreCmd;
use crate::devices::Devices;
use crate::events::Decision;
use crate::grants::{Grant, Grants};
use crate::state::{AppState, DaemonPaths, Inner, Project};

/// What `main` passes in.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// `--config`: overrides the config search.
    pub config: Option<PathBuf>,
}

/// Finds, or creates, the daemon's own config.
fn own_config(opts: &Options, state_dir: &Path) -> anyhow::Result<ProjectConfig> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let path = match &opts.config {
        Some(p) => Some(p.clone()),
        None => config::find_config(&agent_vault_proto::paths::process_env, &cwd),
    };
    let path = match path {
        Some(p) => p,
        None => {
            // Offline defaults: one writable env vault in the state directory.
            let path = state_dir.join("agent-vault.config.json");
            if !path.exists() {
                std::fs::write(&path, config::default_config_text())
                    .with_context(|| format!("writing {}", path.display()))?;
                tracing::info!(config = %path.display(), "no config found: created a default one with an env vault");
            }
            let secrets = state_dir.join("secrets.env");
            if !secrets.exists() {
                std::fs::write(
                    &secrets,
                    "# Secrets for the \"local\" vault: one KEY=value per line.\n",
                )
                .with_context(|| format!("writing {}", secrets.display()))?;
                std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600))?;
            }
            path
        }
    };
    Ok(config::load_config(&path, &env)?)
}

fn resolve_uids(list: &UserRefList, own: u32) -> anyhow::Result<HashSet<u32>> {
    if list.is_empty() {
        return Ok([own].into());
    }
    list.iter()
        .map(|u| match u {
            config::UserRef::Uid(uid) => Ok(*uid),
            config::UserRef::Name(name) => nix::unistd::User::from_name(name)
                .ok()
                .flatten()
                .map(|u| u.uid.as_raw())
                .with_context(|| format!("access: unknown user {name:?}")),
        })
        .collect()
}

fn socket_group(access: &AccessList) -> anyhow::Result<Option<nix::unistd::Gid>> {
    Ok(match &access.socket_group {
        None => None,
        Some(config::UserRef::Uid(gid)) => Some(nix::unistd::Gid::from_raw(*gid)),
        Some(config::UserRef::Name(name)) => Some(
            nix::unistd::Group::from_name(name)
                .ok()
                .flatten()
                .map(|g| g.gid)
                .with_context(|| format!("access.socketGroup: unknown group {name:?}"))?,
        ),
    })
}

fn roles(access: &AccessList, own: u32) -> anyhow::Result<(HashSet<u32>, HashSet<u32>)> {
    Ok((
        resolve_uids(&access.agents, own)?,
        resolve_uids(&access.admins, own)?,
    ))
}

/// Runs the daemon until SIGTERM or SIGINT, or until its socket or database
/// file is removed or replaced (see [`socket::until_gone`]).
pub async fn run(opts: Options) -> anyhow::Result<()> {
    hardening::refuse_tracer()?;
    let state_dir = agent_vault_proto::paths::state_dir()?;
    let socket_path = agent_vault_proto::paths::socket_path()?;
    socket::secure_dir(&state_dir)?;
    hardening::harden_process();
    let config = own_config(&opts, &state_dir)?;
    let own_uid = nix::unistd::geteuid().as_raw();
    let (agent_uids, admin_uids) = roles(&config.access, own_uid)?;
    let socket_group = socket_group(&config.access)?;
    if let Some(dir) = socket_path.parent() {
        if socket_group.is_some() && dir == state_dir {
            anyhow::bail!(
                "with access.socketGroup the socket needs a directory of its own, apart from the state directory: set AGENT_VAULT_SOCKET (e.g. /run/agent-vault/agent-vault.sock)"
            );
        }
        socket::secure_dir_for(dir, socket_group)?;
    }
    let _lock = socket::lock(&socket_path)?;

    let db = state_dir.join("agent-vault.db");
    db::schema::prepare_files(&db)?;
    let webhooks_queued = Arc::new(Notify::new());
    let (store, writer) = db::start(&db, webhooks_queued.clone())?;
    let reader = Arc::new(Store::open(&db)?);
    let now = clock::now_ms();
    let mut grants = Grants::default();
    for g in reader.grants(now)? {
        grants.insert(Grant::from_row(g));
    }
    let devices = Devices::with_totp(reader.devices()?, reader.totp()?, store.clone());

    let port = config.port.unwrap_or(9999);
    let http = bind_approval_port(port).await.map_err(|e| {
        let why = agent_vault_proto::words::io_error(&e);
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!(
                "port {port} (for the approval pages) is in use by another program; the prototype (npx agent-vault) uses it too. Stop that program, or set \"port\" in {} to another port (0 picks a free one)",
                config.path.display()
            )
        } else {
            anyhow::anyhow!("cannot listen on 127.0.0.1:{port} for the approval pages: {why}; set \"port\" in {} (0 picks a free one)", config.path.display())
        }
    })?;
    let port = http.local_addr()?.port();
    let token = config.ngrok_auth_token.clone().or_else(|| {
        std::env::var("NGROK_AUTHTOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .map(secret::SecretString::new)
    });
    // A publicUrl in the config wins over NGROK_AUTHTOKEN in the environment
    // (the config refuses both in one file).
    let tunnel = tunnel::open(
        config.public_url.as_deref(),
        token.as_ref(),
        config.ngrok_domain.as_deref(),
        port,
    )
    .await;
    let passkeys = passkeys::Passkeys::new(
        &tunnel.base_url,
        tunnel.stable,
        passkeys::parse_rows(reader.passkeys()?),
        store.clone(),
    );
    if let Err(why) = passkeys.availability() {
        let needing: Vec<&str> = config
            .vaults
            .values()
            .filter(|v| v.factor == config::ApprovalFactor::Passkey)
            .map(|v| v.name.as_str())
            .collect();
        if needing.is_empty() {
            tracing::info!("passkeys: {why}");
        } else {
            // Those vaults can still be denied, never approved: say so loudly.
            tracing::warn!(vaults = ?needing, "these vaults require a passkey, but {why}");
        }
    }

    let anchor = config.anchor.clone();
    let config_lines = banner::ConfigLines::of(&config);
    let shutdown = CancellationToken::new();
    let default = Project::new(config, None, &shutdown);
    let default_project = default.key();
    let mut projects = HashMap::new();
    projects.insert(default_project.clone(), Arc::new(default));
    let state = AppState(Arc::new(Inner {
        paths: DaemonPaths {
            state_dir: state_dir.clone(),
            socket: socket_path.clone(),
            db: db.clone(),
        },
        started: std::time::Instant::now(),
        instance: crate::devices::random_id(16),
        agent_uids,
        admin_uids,
        projects: RwLock::new(projects),
        default_project,
        sessions: Mutex::new(HashMap::new()),
        grants: Mutex::new(grants),
        broker: Broker::default(),
        devices,
        passkeys,
        factor_attempts: Default::default(),
        store: store.clone(),
        reader,
        approval_base: RwLock::new(tunnel.base_url.clone()),
        local_url: tunnel.local_url.clone(),
        tunnel: RwLock::new(tunnel.description.clone()),
        shutdown,
        stop: CancellationToken::new(),
        webhooks_queued,
    }));

    let listener = socket::bind(&socket_path, socket_group)?;
    let socket_id = socket::FileId::of(&socket_path);
    // Watched from here on: see the select below and socket::until_gone.
    let watched: Vec<(&Path, socket::FileId)> = [
        (socket_path.as_path(), socket_id),
        (db.as_path(), socket::FileId::of(&db)),
    ]
    .into_iter()
    .filter_map(|(path, id)| Some((path, id?)))
    .collect();
    let rpc = tokio::spawn(rpc::serve(state.clone(), listener));
    let web_shutdown = state.shutdown.clone();
    let web = tokio::spawn(
        axum::serve(
            http,
            web::router(state.clone())
                .into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(web_shutdown.cancelled_owned())
        .into_future(),
    );
    tokio::spawn(sweep(state.clone()));
    tokio::spawn(webhooks::run(state.clone()));
    let anchoring = anchor.map(|a| tokio::spawn(anchoring::run(state.clone(), a)));

    banner::ready(&socket_path, &tunnel, &config_lines);
    if !state.devices.any_paired() && std::io::stderr().is_terminal() {
        rpc::admin::show_first_pairing_link(&state);
    }

    tokio::select! {
        () = wait_for_signal(&state.shutdown) => {}
        () = state.stop.cancelled() => {}
        gone = socket::until_gone(&watched, socket::WATCH_EVERY) => tracing::warn!(
            path = %gone.display(),
            "removed or replaced under the running daemon (was the state directory deleted?); shutting down"
        ),
    }
    tracing::info!("shutting down");

    // One shutdown path: answer waiters, stop servers, flush, remove the socket.
    let now = clock::now_ms();
    for req in state.broker.cancel_all("agent-vaultd is shutting down") {
        events::record(&state, &Decision::for_request(&req, Action::Cancelled, now));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    state.shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), rpc).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), web).await;
    if !state.store.flush().await {
        tracing::error!("the last audit records could not be written before exit");
    }
    if let Some(task) = anchoring {
        // It anchors what the shutdown recorded last.
        let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
    }
    if let Some(id) = socket_id {
        socket::remove_if_ours(&socket_path, id);
    }
    drop(store);
    drop(state);
    let _ = writer;
    Ok(())
}

/// Binds the approval port on loopback. A port in use is tried again for a
/// few seconds: the daemon before this one may still be stopping (one whose
/// state directory was deleted notices within [`socket::WATCH_EVERY`]).
/// Not longer: a shim that started this daemon is waiting to tell the
/// agent why it could not start.
async fn bind_approval_port(port: u16) -> std::io::Result<tokio::net::TcpListener> {
    let deadline = std::time::Instant::now() + socket::WATCH_EVERY + Duration::from_secs(1);
    let mut told = false;
    loop {
        match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && std::time::Instant::now() < deadline =>
            {
                if !told {
                    tracing::info!(
                        port,
                        "the approval port is in use; waiting a few seconds in case a previous agent-vaultd is stopping"
                    );
                    told = true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

async fn wait_for_signal(token: &CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        token.cancelled().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        _ = token.cancelled() => {}
    }
}

/// Expires pending requests and prunes windows, once a second.
async fn sweep(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = clock::now_ms();
        for req in state.broker.expire_due(now) {
            tracing::info!(request = %req.id, "approval request expired");
            events::record(&state, &Decision::for_request(&req, Action::Expired, now));
        }
        let gone = state.grants().prune(now);
        if !gone.is_empty() {
            state.store.send(StoreCmd::DeleteGrants(gone));
        }
        access::forget_unwatched(&state, now);
    }
}

/// A complete daemon state in `dir` with no socket, listener or tunnel: the
/// same parts `run` wires, for fuzzing and in-process tests. The returned
/// handle is the store writer's thread.
pub fn ephemeral_state(
    dir: &Path,
    config_text: &str,
) -> anyhow::Result<(AppState, std::thread::JoinHandle<()>)> {
    let config_path = dir.join("agent-vault.config.json");
    std::fs::write(&config_path, config_text)?;
    let config = config::load_config(&config_path, &|_| None)?;
    let db = dir.join("agent-vault.db");
    let webhooks_queued = Arc::new(Notify::new());
    let (store, writer) = db::start(&db, webhooks_queued.clone())?;
    let reader = Arc::new(Store::open(&db)?);
    let devices = Devices::new(Vec::new(), store.clone());
    let base = "http://localhost:1";
    let passkeys = passkeys::Passkeys::new(base, true, Vec::new(), store.clone());
    let shutdown = CancellationToken::new();
    let default = Project::new(config, None, &shutdown);
    let default_project = default.key();
    let mut projects = HashMap::new();
    projects.insert(default_project.clone(), Arc::new(default));
    let own = nix::unistd::geteuid().as_raw();
    let state = AppState(Arc::new(Inner {
        paths: DaemonPaths {
            state_dir: dir.to_path_buf(),
            socket: dir.join("agent-vault.sock"),
            db,
        },
        started: std::time::Instant::now(),
        instance: crate::devices::random_id(16),
        agent_uids: [own].into(),
        admin_uids: [own].into(),
        projects: RwLock::new(projects),
        default_project,
        sessions: Mutex::new(HashMap::new()),
        grants: Mutex::new(Grants::default()),
        broker: Broker::default(),
        devices,
        passkeys,
        factor_attempts: Default::default(),
        store,
        reader,
        approval_base: RwLock::new(base.into()),
        local_url: base.into(),
        tunnel: RwLock::new("none: ephemeral state".into()),
        shutdown,
        stop: CancellationToken::new(),
        webhooks_queued,
    }));
    Ok((state, writer))
}
