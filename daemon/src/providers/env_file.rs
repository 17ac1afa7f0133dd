//! The env-file provider: a dotenv file read on every request (so edits take
//! effect at once) and written atomically, one writer at a time.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use super::{Listed, ProviderError, dotenv};
use crate::secret::SecretString;

#[derive(Debug, Clone)]
pub struct EnvFileProvider {
    vault: String,
    path: PathBuf,
}

/// One lock per file path, shared by every vault that names the file, so
/// concurrent writers in this daemon are serialized.
fn file_lock(path: &Path) -> Arc<Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> = OnceLock::new();
    let locks = LOCKS.get_or_init(Default::default);
    let mut map = locks.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(path.to_path_buf()).or_default().clone()
}

impl EnvFileProvider {
    pub fn new(vault: String, path: PathBuf) -> Self {
        Self { vault, path }
    }

    fn io(&self, source: std::io::Error) -> ProviderError {
        ProviderError::Io {
            vault: self.vault.clone(),
            path: self.path.display().to_string(),
            source,
        }
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
        match std::fs::read_to_string(&self.path) {
            Ok(s) => Ok(zeroize::Zeroizing::new(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(zeroize::Zeroizing::new(String::new()))
            }
            Err(e) => Err(self.io(e)),
        }
    }

    pub fn list(&self) -> Result<Vec<Listed>, ProviderError> {
        let text = self.read()?;
        let mut names: Vec<String> = dotenv::parse(&text).into_iter().map(|e| e.key).collect();
        names.sort();
        names.dedup();
        Ok(names
            .into_iter()
            .map(|name| Listed {
                name,
                group: String::new(),
            })
            .collect())
    }

    pub fn get(&self, names: &[String]) -> Result<HashMap<String, SecretString>, ProviderError> {
        let text = self.read()?;
        let mut found: HashMap<String, SecretString> = HashMap::new();
        for e in dotenv::parse(&text) {
            if names.contains(&e.key) {
                // Later definitions win, as in the parser's contract.
                found.insert(e.key, SecretString::new(e.value));
            }
        }
        let missing: Vec<&str> = names
            .iter()
            .filter(|n| !found.contains_key(*n))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(ProviderError::UnknownSecret {
                vault: self.vault.clone(),
                names: missing.join(", "),
            });
        }
        Ok(found)
    }

    /// Applies all writes in one atomic replacement: temp file in the same
    /// directory, fsync, rename, fsync of the directory. Mode 0600.
    pub fn set(&self, writes: &[(String, SecretString)]) -> Result<(), ProviderError> {
        let lock = file_lock(&self.path);
        let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut text = self.read()?;
        for (name, value) in writes {
            let next = dotenv::set(&text, name, value.expose())
                .map_err(|e| ProviderError::Invalid(e.to_string()))?;
            text = zeroize::Zeroizing::new(next);
        }
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut tmp = tempfile::Builder::new()
            .prefix(".agent-vault-")
            .tempfile_in(dir)
            .map_err(|e| self.io(e))?;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| self.io(e))?;
        tmp.write_all(text.as_bytes()).map_err(|e| self.io(e))?;
        tmp.as_file().sync_all().map_err(|e| self.io(e))?;
        tmp.persist(&self.path).map_err(|e| self.io(e.error))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
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
                let p = EnvFileProvider::new("v".into(), path.clone());
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
        let p = EnvFileProvider::new("v".into(), path.clone());
        assert_eq!(p.get(&["A".into()])?["A"].expose(), "1");
        std::fs::write(&path, "# c\nA=2\n")?;
        assert_eq!(p.get(&["A".into()])?["A"].expose(), "2");
        assert!(matches!(
            p.get(&["B".into()]),
            Err(ProviderError::UnknownSecret { .. })
        ));
        p.set(&[("B".into(), SecretString::new("x \"y\"".into()))])?;
        assert_eq!(
            std::fs::read_to_string(&path)?,
            "# c\nA=2\nB=\"x \\\"y\\\"\"\n"
        );
        let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let err = p.set(&[("../x".into(), SecretString::new("v".into()))]);
        assert!(err.is_err());
        assert_eq!(
            std::fs::read_to_string(&path)?,
            "# c\nA=2\nB=\"x \\\"y\\\"\"\n"
        );
        Ok(())
    }
}
