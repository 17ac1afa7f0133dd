//! The env-file provider: a dotenv file whose edits take effect at once,
//! written atomically, one writer at a time.
//!
//! Each request opens the file (one `open` and `fstat`, through
//! `vault_file`, which also checks a project vault's owner); its parsed
//! values are reused
//! only while the file is provably unchanged: same device, inode, size,
//! mtime and ctime, and the snapshot was read after the file had settled
//! (its last change at least [`SETTLE`] before the read), so that a later
//! edit cannot share those timestamps even on a filesystem with coarse
//! ones. Anything else reads the file again. An edit, an atomic
//! replacement, a `touch` or our own write all change the key.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use super::contract::{Listed, ProviderError};
use super::dotenv;
use super::vault_file::{FileError, FileIdentity, VaultFile};
use crate::secret::SecretString;

/// The fields an `env` vault sets besides the common ones.
pub const FIELDS: &[&str] = &["file"];

/// An `env` vault's own settings: its file, resolved against the config's
/// directory.
#[derive(Debug, Clone)]
pub struct Settings {
    pub file: PathBuf,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    file: Option<String>,
}

impl Settings {
    pub fn parse(
        fields: serde_json::Value,
        dir: &Path,
    ) -> Result<Self, super::contract::FieldError> {
        let raw: RawSettings = serde_path_to_error::deserialize(fields)
            .map_err(|e| (e.path().to_string(), e.inner().to_string()))?;
        // The prototype's default: `.env.secrets` beside the config.
        match raw.file.as_deref().unwrap_or(".env.secrets") {
            "" => Err((
                "file".into(),
                "expected the path of a .env file (relative to the config file)".into(),
            )),
            f => Ok(Settings { file: dir.join(f) }),
        }
    }
}

/// How long after its last change a file's snapshot may be reused.
const SETTLE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct EnvFileProvider {
    vault: String,
    file: VaultFile,
    cache: Arc<Mutex<Cache>>,
}

/// What identifies one version of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileKey {
    fn of(m: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }

    /// True when the file's last change (mtime or ctime, whichever is
    /// later; ctime cannot be set back) is at least `settle` before `now`.
    fn settled(&self, now: SystemTime, settle: Duration) -> bool {
        let last = self.mtime.max(self.ctime);
        let Ok(secs) = u64::try_from(last.0) else {
            return false;
        };
        let changed = SystemTime::UNIX_EPOCH
            + Duration::from_secs(secs)
            + Duration::from_nanos(u64::try_from(last.1).unwrap_or(0));
        now.duration_since(changed).is_ok_and(|age| age >= settle)
    }
}

/// The parsed values of one settled version of the file (values zeroized
/// on drop, never printed).
struct Cache {
    settle: Duration,
    snapshot: Option<(FileKey, Arc<Values>)>,
    /// Times the file was read (tests check when the snapshot is reused).
    reads: u64,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("cached", &self.snapshot.is_some())
            .finish_non_exhaustive()
    }
}

/// Name → value, later definitions winning (the parser's contract).
type Values = HashMap<String, SecretString>;

/// One lock per file path, shared by every vault that names the file, so
/// concurrent writers in this daemon are serialized.
fn file_lock(path: &Path) -> Arc<Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> = OnceLock::new();
    let locks = LOCKS.get_or_init(Default::default);
    let mut map = locks.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(path.to_path_buf()).or_default().clone()
}

impl EnvFileProvider {
    /// `owner`: `Some(uid)` for a project's vault, whose file must be that
    /// user's (see `vault_file`).
    pub fn new(vault: String, path: PathBuf, owner: Option<u32>) -> Self {
        Self::with_settle(vault, VaultFile::new(path, owner), SETTLE)
    }

    fn with_settle(vault: String, file: VaultFile, settle: Duration) -> Self {
        Self {
            vault,
            file,
            cache: Arc::new(Mutex::new(Cache {
                settle,
                snapshot: None,
                reads: 0,
            })),
        }
    }

    fn io(&self, cause: std::io::Error) -> ProviderError {
        self.file_error(FileError::Io {
            path: self.file.path().display().to_string(),
            cause,
        })
    }

    /// What the person should know about the file though the vault works:
    /// that it does not exist yet, or that other users can read it.
    pub fn notice(&self) -> Option<String> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.file.path();
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(format!(
                "its file {} does not exist yet: add a secret with `agent-vault set {}/NAME`, or create the file (mode 0600) with NAME=value lines",
                path.display(),
                self.vault
            )),
            Ok(m) if m.permissions().mode() & 0o077 != 0 => Some(format!(
                "its file {} can be read by other users (mode {:04o}): run `chmod 600 {}`",
                path.display(),
                m.permissions().mode() & 0o7777,
                path.display()
            )),
            _ => None,
        }
    }

    fn file_error(&self, error: FileError) -> ProviderError {
        ProviderError::File {
            vault: self.vault.clone(),
            error,
        }
    }

    /// The file as the approver should see it, links resolved.
    pub fn location(&self) -> String {
        self.file.resolved()
    }

    /// What a value read now would come from.
    pub fn identity(&self) -> Result<FileIdentity, ProviderError> {
        self.file.identity().map_err(|e| self.file_error(e))
    }

    pub fn check_name(name: &str) -> Result<(), ProviderError> {
        if dotenv::valid_key(name) {
            Ok(())
        } else {
            Err(ProviderError::InvalidName(
                dotenv::WriteError::InvalidKey(name.chars().take(80).collect()).to_string(),
            ))
        }
    }

    /// The file's text; a missing file is an empty vault.
    fn read(&self) -> Result<zeroize::Zeroizing<String>, ProviderError> {
        match self.file.open().map_err(|e| self.file_error(e))? {
            Some((file, meta)) => Ok(self.read_from(file, &meta)?.0),
            None => Ok(zeroize::Zeroizing::new(String::new())),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The file's values as they are now, and which file they came from:
    /// the snapshot when the file is unchanged since it was taken, else a
    /// fresh read (see the module doc). The file is opened each time, so
    /// its owner is checked each time (see `vault_file`).
    fn values(&self) -> Result<(Arc<Values>, FileIdentity), ProviderError> {
        let now = SystemTime::now();
        let Some((file, meta)) = self.file.open().map_err(|e| self.file_error(e))? else {
            self.cache().snapshot = None;
            return Ok((Arc::default(), FileIdentity::absent()));
        };
        let identity = FileIdentity::of(&meta);
        let key = FileKey::of(&meta);
        if let Some((k, v)) = &self.cache().snapshot
            && *k == key
        {
            return Ok((v.clone(), identity));
        }
        // Read through the descriptor just checked, keyed by its metadata:
        // the text and the key always describe the same version.
        let (text, key) = self.read_from(file, &meta)?;
        let values: Arc<Values> = Arc::new(
            dotenv::parse(&text)
                .into_iter()
                .map(|e| (e.key, SecretString::new(e.value)))
                .collect(),
        );
        let mut cache = self.cache();
        cache.reads += 1;
        cache.snapshot = key
            .settled(now, cache.settle)
            .then(|| (key, values.clone()));
        Ok((values, identity))
    }

    /// The text of an opened file, and its key.
    fn read_from(
        &self,
        mut file: std::fs::File,
        meta: &std::fs::Metadata,
    ) -> Result<(zeroize::Zeroizing<String>, FileKey), ProviderError> {
        use std::io::Read;
        let key = FileKey::of(meta);
        let mut text = zeroize::Zeroizing::new(String::with_capacity(key.size as usize));
        file.read_to_string(&mut text).map_err(|e| self.io(e))?;
        Ok((text, key))
    }

    pub fn list(&self) -> Result<Vec<Listed>, ProviderError> {
        let (values, _) = self.values()?;
        let mut names: Vec<&String> = values.keys().collect();
        names.sort();
        Ok(names
            .into_iter()
            .map(|name| Listed {
                name: name.clone(),
                ..Listed::default()
            })
            .collect())
    }

    /// The values of `names`, and the file they were read from.
    pub fn get(
        &self,
        names: &[String],
    ) -> Result<(HashMap<String, SecretString>, FileIdentity), ProviderError> {
        let (values, identity) = self.values()?;
        let found: HashMap<String, SecretString> = names
            .iter()
            .filter_map(|n| values.get(n).map(|v| (n.clone(), v.clone())))
            .collect();
        let missing: Vec<String> = names
            .iter()
            .filter(|n| !found.contains_key(*n))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(ProviderError::UnknownSecret {
                vault: self.vault.clone(),
                names: missing,
            });
        }
        Ok((found, identity))
    }

    /// Applies all writes in one atomic replacement (see `vault_file`).
    pub fn set(&self, writes: &[(String, SecretString)]) -> Result<(), ProviderError> {
        let lock = file_lock(self.file.path());
        let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut text = self.read()?;
        for (name, value) in writes {
            let next = dotenv::set(&text, name, value.expose())
                .map_err(|e| ProviderError::Invalid(e.to_string()))?;
            text = zeroize::Zeroizing::new(next);
        }
        self.file
            .replace(text.as_bytes())
            .map_err(|e| self.file_error(e))?;
        // The new file has a new inode, so the key would change anyway.
        self.cache().snapshot = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_writers_are_serialized() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(".env");
        std::fs::write(&path, "# shared\n")?;
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let p = EnvFileProvider::new("v".into(), path.clone(), None);
                std::thread::spawn(move || {
                    for i in 0..25 {
                        let key = format!("K{t}_{i}");
                        let value = SecretString::new(format!("value {t} {i}"));
                        p.set(&[(key, value)]).map_err(|e| e.to_string())?;
                    }
                    Ok::<(), String>(())
                })
            })
            .collect();
        for t in threads {
            t.join().map_err(|_| "writer panicked")??;
        }
        // No write was lost to a concurrent read-modify-write.
        let text = std::fs::read_to_string(&path)?;
        assert!(text.starts_with("# shared\n"));
        let entries = dotenv::parse(&text);
        assert_eq!(entries.len(), 200);
        for t in 0..8 {
            for i in 0..25 {
                assert_eq!(
                    dotenv::get(&text, &format!("K{t}_{i}")).as_deref(),
                    Some(format!("value {t} {i}").as_str())
                );
            }
        }
        Ok(())
    }

    #[test]
    fn reads_fresh_and_writes_atomically_with_mode_0600() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(".env.secrets");
        std::fs::write(&path, "# c\nA=1\n")?;
        let p = EnvFileProvider::new("v".into(), path.clone(), None);
        assert_eq!(p.get(&["A".into()])?.0["A"].expose(), "1");
        std::fs::write(&path, "# c\nA=2\n")?;
        assert_eq!(p.get(&["A".into()])?.0["A"].expose(), "2");
        assert!(matches!(
            p.get(&["B".into()]),
            Err(ProviderError::UnknownSecret { .. })
        ));
        p.set(&[("B".into(), SecretString::new("x \"y\"".into()))])?;
        assert_eq!(
            std::fs::read_to_string(&path)?,
            "# c\nA=2\nB=\"x \\\"y\\\"\"\n"
        );
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path)?.permissions())
                & 0o777;
        assert_eq!(mode, 0o600);
        let err = p.set(&[("../x".into(), SecretString::new("v".into()))]);
        assert!(err.is_err());
        assert_eq!(
            std::fs::read_to_string(&path)?,
            "# c\nA=2\nB=\"x \\\"y\\\"\"\n"
        );
        Ok(())
    }

    fn reads(p: &EnvFileProvider) -> u64 {
        p.cache.lock().map(|c| c.reads).unwrap_or(0)
    }

    #[test]
    fn a_settled_file_is_read_once_and_any_change_is_seen() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(".env");
        std::fs::write(&path, "A=1\n")?;
        // Settled at once: the snapshot is reused while the file is unchanged.
        let p = EnvFileProvider::with_settle(
            "v".into(),
            VaultFile::new(path.clone(), None),
            Duration::ZERO,
        );
        for _ in 0..3 {
            assert_eq!(p.get(&["A".into()])?.0["A"].expose(), "1");
        }
        assert_eq!(reads(&p), 1);
        // Edited in place, same size: a new ctime and mtime.
        std::thread::sleep(Duration::from_millis(50));
        std::fs::write(&path, "A=2\n")?;
        assert_eq!(p.get(&["A".into()])?.0["A"].expose(), "2");
        assert_eq!(reads(&p), 2);
        // Replaced by rename (a new inode), as editors and our writer do.
        let tmp = dir.path().join(".env.new");
        std::fs::write(&tmp, "A=3\n")?;
        std::fs::rename(&tmp, &path)?;
        assert_eq!(p.get(&["A".into()])?.0["A"].expose(), "3");
        // Our own write.
        p.set(&[("B".into(), SecretString::new("4".into()))])?;
        assert_eq!(p.get(&["B".into()])?.0["B"].expose(), "4");
        // Removed: an empty vault, not the old values.
        std::fs::remove_file(&path)?;
        assert!(matches!(
            p.get(&["A".into()]),
            Err(ProviderError::UnknownSecret { .. })
        ));
        assert!(p.list()?.is_empty());
        Ok(())
    }

    #[test]
    fn a_file_changed_within_the_settle_window_is_read_every_time()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(".env");
        std::fs::write(&path, "A=1\n")?;
        let p = EnvFileProvider::new("v".into(), path.clone(), None);
        for _ in 0..3 {
            assert_eq!(p.get(&["A".into()])?.0["A"].expose(), "1");
        }
        // Just written: a same-size edit in the same timestamp tick could
        // not be told apart, so nothing is reused yet.
        assert_eq!(reads(&p), 3);
        Ok(())
    }

    #[test]
    fn the_cache_never_prints_a_value() {
        let p = EnvFileProvider::with_settle(
            "v".into(),
            VaultFile::new(PathBuf::from("/nonexistent"), None),
            SETTLE,
        );
        if let Ok(mut c) = p.cache.lock() {
            let values: Values = [("A".to_string(), SecretString::new("hunter2".into()))].into();
            c.snapshot = Some((
                FileKey {
                    dev: 0,
                    ino: 0,
                    size: 0,
                    mtime: (0, 0),
                    ctime: (0, 0),
                },
                Arc::new(values),
            ));
        }
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
