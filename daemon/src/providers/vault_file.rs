//! Opening a vault's file with the right rights.
//!
//! A vault of the daemon's own config is the admin's: its file is opened
//! by path, as the admin wrote it. A vault of a project config was written
//! by whoever registered the project (possibly the agent itself), while the
//! daemon may run as another, more privileged user (the hardened set-up).
//! Such a file is read only when the requesting user could read it itself:
//! its directory must belong to that user, the file is opened relative to
//! that directory without following a symbolic link, and what was opened
//! must be a regular file that the user owns. Every check is made on the
//! opened descriptors, so swapping a path for a link between a check and a
//! read changes nothing. A file that fails them gives one and the same
//! error whatever lies behind it, so the answer never tells whether a file
//! only the daemon can read exists.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::Mode;

/// What identifies the file a value was read from: device and inode, or
/// its absence. An approval window is bound to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileIdentity(pub String);

impl FileIdentity {
    pub fn of(m: &std::fs::Metadata) -> Self {
        Self(format!("file {}:{}", m.dev(), m.ino()))
    }

    pub fn absent() -> Self {
        Self("absent".into())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The requesting user could not read this file itself (or it is no
    /// regular file in a directory of theirs). Deliberately one message.
    #[error(
        "{path} is not a file that uid {uid} owns in a directory that uid {uid} owns; a project's vault files must belong to the user whose agent asks (a symbolic link is not followed)"
    )]
    NotYours { path: String, uid: u32 },
    #[error(
        "{path}: a project's vault is written by agent-vaultd with its own rights, and it runs as uid {daemon}, not as uid {uid}; put writable vaults in agent-vaultd's own config"
    )]
    WriteAsOtherUser { path: String, uid: u32, daemon: u32 },
    #[error("{path}: {}", agent_vault_proto::words::io_error(.cause))]
    Io { path: String, cause: std::io::Error },
}

/// A vault's file, and whose it must be.
#[derive(Debug, Clone)]
pub struct VaultFile {
    path: PathBuf,
    /// `Some(uid)` for a project's vault: the requesting user's.
    owner: Option<u32>,
}

impl VaultFile {
    pub fn new(path: PathBuf, owner: Option<u32>) -> Self {
        Self { path, owner }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, cause: impl Into<std::io::Error>) -> FileError {
        FileError::Io {
            path: self.path.display().to_string(),
            cause: cause.into(),
        }
    }

    fn not_yours(&self, uid: u32) -> FileError {
        FileError::NotYours {
            path: self.path.display().to_string(),
            uid,
        }
    }

    fn file_name(&self) -> Result<&std::ffi::OsStr, FileError> {
        self.path
            .file_name()
            .ok_or_else(|| self.io(std::io::Error::other("not a file name")))
    }

    /// The directory of a project's vault file, checked to be the owner's.
    fn owned_dir(&self, uid: u32) -> Result<OwnedFd, FileError> {
        let dir = self.path.parent().unwrap_or(Path::new("/"));
        let fd = nix::fcntl::open(
            dir,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|_| self.not_yours(uid))?;
        let meta = File::from(fd.try_clone().map_err(|e| self.io(e))?)
            .metadata()
            .map_err(|e| self.io(e))?;
        if meta.uid() != uid {
            return Err(self.not_yours(uid));
        }
        Ok(fd)
    }

    /// Opens the file for reading; `None` when it does not exist (an empty
    /// vault). The identity is the opened file's.
    pub fn open(&self) -> Result<Option<(File, std::fs::Metadata)>, FileError> {
        let file = match self.owner {
            None => match File::open(&self.path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(self.io(e)),
            },
            Some(uid) => {
                let dir = self.owned_dir(uid)?;
                match openat(
                    dir.as_fd(),
                    self.file_name()?,
                    OFlag::O_RDONLY
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC
                        | OFlag::O_NONBLOCK
                        | OFlag::O_NOCTTY,
                    Mode::empty(),
                ) {
                    Ok(fd) => File::from(fd),
                    Err(Errno::ENOENT) => return Ok(None),
                    Err(_) => return Err(self.not_yours(uid)),
                }
            }
        };
        let meta = file.metadata().map_err(|e| self.io(e))?;
        if let Some(uid) = self.owner
            && (!meta.is_file() || meta.uid() != uid)
        {
            return Err(self.not_yours(uid));
        }
        Ok(Some((file, meta)))
    }

    /// The identity of the file as it is now (one open and fstat).
    pub fn identity(&self) -> Result<FileIdentity, FileError> {
        Ok(match self.open()? {
            Some((_, meta)) => FileIdentity::of(&meta),
            None => FileIdentity::absent(),
        })
    }

    /// The file's path with every link in its directory resolved, as the
    /// approver should see it.
    pub fn resolved(&self) -> String {
        let dir = self.path.parent().unwrap_or(Path::new("/"));
        match (std::fs::canonicalize(dir), self.path.file_name()) {
            (Ok(d), Some(name)) => d.join(name).display().to_string(),
            _ => self.path.display().to_string(),
        }
    }

    /// Replaces the file's content atomically (temporary file in the same
    /// directory, fsync, rename, fsync of the directory), mode 0600.
    pub fn replace(&self, text: &[u8]) -> Result<(), FileError> {
        match self.owner {
            None => self.replace_by_path(text),
            Some(uid) => {
                let daemon = nix::unistd::geteuid().as_raw();
                if daemon != uid {
                    return Err(FileError::WriteAsOtherUser {
                        path: self.path.display().to_string(),
                        uid,
                        daemon,
                    });
                }
                let dir = self.owned_dir(uid)?;
                self.replace_in(&dir, text)
            }
        }
    }

    fn replace_by_path(&self, text: &[u8]) -> Result<(), FileError> {
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut tmp = tempfile::Builder::new()
            .prefix(".agent-vault-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .tempfile_in(dir)
            .map_err(|e| self.io(e))?;
        tmp.write_all(text).map_err(|e| self.io(e))?;
        tmp.as_file().sync_all().map_err(|e| self.io(e))?;
        tmp.persist(&self.path).map_err(|e| self.io(e.error))?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// The same, entirely relative to an already checked directory.
    fn replace_in(&self, dir: &OwnedFd, text: &[u8]) -> Result<(), FileError> {
        let name = self.file_name()?;
        let tmp_name = format!(".agent-vault-{}", crate::devices::random_id(8));
        let fd = openat(
            dir.as_fd(),
            tmp_name.as_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| self.io(e))?;
        let mut file = File::from(fd);
        let written = file
            .write_all(text)
            .and_then(|()| file.sync_all())
            .map_err(|e| self.io(e))
            .and_then(|()| {
                renameat(dir.as_fd(), tmp_name.as_str(), dir.as_fd(), name).map_err(|e| self.io(e))
            });
        if written.is_err() {
            let _ = nix::unistd::unlinkat(
                dir.as_fd(),
                tmp_name.as_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
            return written;
        }
        let _ = File::from(dir.try_clone().map_err(|e| self.io(e))?).sync_all();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn me() -> u32 {
        nix::unistd::geteuid().as_raw()
    }

    #[test]
    fn a_project_file_of_ones_own_is_read_and_written() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(".env");
        let f = VaultFile::new(path.clone(), Some(me()));
        assert!(f.open()?.is_none());
        assert_eq!(f.identity()?, FileIdentity::absent());
        f.replace(b"A=1\n")?;
        assert_eq!(std::fs::read_to_string(&path)?, "A=1\n");
        let mode = std::fs::metadata(&path)?.mode() & 0o777;
        assert_eq!(mode, 0o600);
        let id = f.identity()?;
        assert_eq!(id, FileIdentity::of(&std::fs::metadata(&path)?));
        // Our own write gives a new file, so a new identity.
        f.replace(b"A=2\n")?;
        assert_ne!(f.identity()?, id);
        // Nothing is left behind.
        assert_eq!(std::fs::read_dir(dir.path())?.count(), 1);
        Ok(())
    }

    #[test]
    fn a_link_is_not_followed_and_says_no_more_than_a_foreign_file()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let target = dir.path().join("elsewhere.env");
        std::fs::write(&target, "SECRET=x\n")?;
        let link = dir.path().join(".env");
        symlink(&target, &link)?;
        let f = VaultFile::new(link.clone(), Some(me()));
        let e = f.open().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("is not a file that uid"), "{e}");
        // A missing link target reads the same.
        let dangling = dir.path().join(".env2");
        symlink(dir.path().join("missing"), &dangling)?;
        let e2 = VaultFile::new(dangling, Some(me()))
            .open()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e2.contains("is not a file that uid"), "{e2}");
        // The daemon's own vaults follow links, as the admin set them.
        assert!(VaultFile::new(link, None).open()?.is_some());
        Ok(())
    }

    #[test]
    fn the_approver_sees_the_directory_with_its_links_resolved()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let real = dir.path().join("real");
        std::fs::create_dir(&real)?;
        symlink(&real, dir.path().join("alias"))?;
        let f = VaultFile::new(dir.path().join("alias").join(".env"), Some(me()));
        let shown = std::fs::canonicalize(&real)?.join(".env");
        assert_eq!(f.resolved(), shown.display().to_string());
        Ok(())
    }

    #[test]
    fn another_users_directory_or_file_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(".env");
        std::fs::write(&path, "A=1\n")?;
        let other = me().wrapping_add(1);
        let f = VaultFile::new(path.clone(), Some(other));
        let e = f.open().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains(&format!("uid {other}")), "{e}");
        assert!(f.replace(b"A=2\n").is_err());
        assert_eq!(std::fs::read_to_string(&path)?, "A=1\n");
        Ok(())
    }
}
