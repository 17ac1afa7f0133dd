//! The socket's directory, the single-daemon lock and the listener.
//!
//! The directory is created 0700 and then checked: it must not be a
//! symlink, must belong to us and must have no group/other bits, because a
//! directory someone else controls lets them swap the socket for their own.
//! The process umask is never changed (it is process-wide and we are
//! threaded); modes are set explicitly instead.

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("{path}: {why}")]
    UnsafeDir { path: PathBuf, why: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("another agent-vaultd is already running on {socket} (lock {lock} is held)")]
    AlreadyRunning { socket: PathBuf, lock: PathBuf },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SocketError + '_ {
    move |source| SocketError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `dir` (0700) if missing and checks that it is safe.
pub fn secure_dir(dir: &Path) -> Result<(), SocketError> {
    secure_dir_for(dir, None)
}

/// As [`secure_dir`]; with a group, the directory is 0750 and belongs to
/// that group, so its members can reach the socket but not change it.
pub fn secure_dir_for(dir: &Path, group: Option<nix::unistd::Gid>) -> Result<(), SocketError> {
    let mode = if group.is_some() { 0o750 } else { 0o700 };
    if std::fs::symlink_metadata(dir).is_err() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(dir)
            .map_err(io(dir))?;
        if let Some(gid) = group {
            nix::unistd::chown(dir, None, Some(gid)).map_err(|e| io(dir)(e.into()))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
                .map_err(io(dir))?;
        }
    }
    let meta = std::fs::symlink_metadata(dir).map_err(io(dir))?;
    let unsafe_dir = |why: &str| SocketError::UnsafeDir {
        path: dir.to_path_buf(),
        why: why.to_string(),
    };
    if meta.file_type().is_symlink() {
        return Err(unsafe_dir("is a symlink; refusing to use it"));
    }
    if !meta.is_dir() {
        return Err(unsafe_dir("is not a directory"));
    }
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != euid {
        return Err(unsafe_dir(&format!(
            "is owned by uid {}, not by us (uid {euid})",
            meta.uid()
        )));
    }
    match group {
        None if meta.mode() & 0o077 != 0 => Err(unsafe_dir(&format!(
            "has mode {:o}; it must not be open to group or other (chmod 700 it)",
            meta.mode() & 0o777
        ))),
        Some(gid) if meta.gid() != gid.as_raw() || meta.mode() & 0o027 != 0 => {
            Err(unsafe_dir(&format!(
                "has group {} and mode {:o}; with a socket group it must be group {} with mode 750 (chgrp and chmod it)",
                meta.gid(),
                meta.mode() & 0o777,
                gid.as_raw()
            )))
        }
        _ => Ok(()),
    }
}

/// Holds the single-daemon lock for as long as it lives.
pub struct DaemonLock {
    _lock: Flock<File>,
    pub path: PathBuf,
}

/// Takes `<socket>.lock`; fails if another daemon holds it.
pub fn lock(socket: &Path) -> Result<DaemonLock, SocketError> {
    let mut name = socket.as_os_str().to_owned();
    name.push(".lock");
    let path = PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(&path))?;
    let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
    let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|_| {
        SocketError::AlreadyRunning {
            socket: socket.to_path_buf(),
            lock: path.clone(),
        }
    })?;
    Ok(DaemonLock { _lock: lock, path })
}

/// Binds the socket (0600). A leftover socket file is removed only after a
/// connect attempt to it is refused (nobody is listening).
pub fn bind(
    socket: &Path,
    group: Option<nix::unistd::Gid>,
) -> Result<tokio::net::UnixListener, SocketError> {
    if std::fs::symlink_metadata(socket).is_ok() {
        match std::os::unix::net::UnixStream::connect(socket) {
            Ok(_) => {
                return Err(SocketError::AlreadyRunning {
                    socket: socket.to_path_buf(),
                    lock: PathBuf::from("(none)"),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                tracing::info!(socket = %socket.display(), "removing a stale socket");
                std::fs::remove_file(socket).map_err(io(socket))?;
            }
            Err(e) => return Err(io(socket)(e)),
        }
    }
    let listener = tokio::net::UnixListener::bind(socket).map_err(io(socket))?;
    // The directory already keeps others out while the mode is set.
    let mode = match group {
        Some(gid) => {
            // Usually the socket already has the group (the directory's, or
            // the daemon's own); chown only when it must, since a hardened
            // unit filters the chown system calls.
            let meta = std::fs::symlink_metadata(socket).map_err(io(socket))?;
            if meta.gid() != gid.as_raw() {
                nix::unistd::chown(socket, None, Some(gid)).map_err(|e| io(socket)(e.into()))?;
            }
            0o660
        }
        None => 0o600,
    };
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(mode)).map_err(io(socket))?;
    Ok(listener)
}

/// What a path names: a removed or replaced file has another identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    /// The file at `path` now, if there is one.
    pub fn of(path: &Path) -> Option<FileId> {
        std::fs::symlink_metadata(path).ok().map(|m| FileId {
            dev: m.dev(),
            ino: m.ino(),
        })
    }
}

/// How often the daemon checks that its socket and database are still there.
pub const WATCH_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Returns the first of `files` whose path no longer names the file it had
/// (removed, as when the state directory is deleted, or replaced). Without
/// its socket no client can reach the daemon, while it would still hold the
/// approval port and keep a new daemon from starting; without its database
/// file every row it committed from then on would be lost when it exits.
/// Either way it should stop.
pub async fn until_gone<'a>(
    files: &'a [(&'a Path, FileId)],
    every: std::time::Duration,
) -> &'a Path {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Some((path, _)) = files.iter().find(|(p, id)| FileId::of(p) != Some(*id)) {
            return path;
        }
    }
}

/// Removes the socket file at shutdown, unless it is no longer ours (a
/// daemon started after ours was removed has its own there now).
pub fn remove_if_ours(path: &Path, ours: FileId) {
    if FileId::of(path) == Some(ours) {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_unsafe_directories() -> Result<(), Box<dyn std::error::Error>> {
        let t = tempfile::tempdir()?;
        let good = t.path().join("good");
        secure_dir(&good)?;
        assert_eq!(std::fs::metadata(&good)?.mode() & 0o777, 0o700);

        let open = t.path().join("open");
        std::fs::create_dir(&open)?;
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755))?;
        assert!(secure_dir(&open).is_err());

        let link = t.path().join("link");
        std::os::unix::fs::symlink(&good, &link)?;
        assert!(matches!(
            secure_dir(&link),
            Err(SocketError::UnsafeDir { .. })
        ));
        Ok(())
    }

    #[test]
    fn one_lock_per_socket() -> Result<(), Box<dyn std::error::Error>> {
        let t = tempfile::tempdir()?;
        let sock = t.path().join("s.sock");
        let first = lock(&sock)?;
        assert!(matches!(
            lock(&sock),
            Err(SocketError::AlreadyRunning { .. })
        ));
        drop(first);
        assert!(lock(&sock).is_ok());
        Ok(())
    }
}
