//! A credential a vault's config names: always a reference, never the
//! secret itself, so that a config file can be committed.
//!
//! - `env:NAME`: resolved when the config is loaded, from agent-vaultd's
//!   environment for its own config and from the agent's (the shim's) for
//!   a project's config;
//! - `file:PATH` (relative to the config file): read at each use, so that
//!   systemd's `LoadCredential=` (`$CREDENTIALS_DIRECTORY`), Docker secrets
//!   and rotated files work for a daemon that has no shell environment.
//!   Only agent-vaultd's own config may name one: the daemon never opens a
//!   path that a project config (a file an agent may write) names.

use std::path::{Path, PathBuf};

use crate::secret::SecretString;

/// Resolves the value of an `env:NAME` reference.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

#[derive(Clone)]
pub enum Credential {
    /// `env:NAME` and its value when the config was loaded (None: unset).
    Env {
        name: String,
        value: Option<SecretString>,
    },
    /// `file:PATH`, resolved against the config's directory.
    File(PathBuf),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reference())
    }
}

/// The largest credential file read (a token, not a document).
const MAX_FILE_BYTES: u64 = 64 * 1024;

impl Credential {
    /// Parses a reference. `Err` says what was expected.
    pub fn parse(text: &str, dir: &Path, env: EnvLookup<'_>) -> Result<Self, String> {
        if let Some(name) = text.strip_prefix("env:") {
            if name.is_empty() {
                return Err("expected the name of an environment variable after \"env:\"".into());
            }
            return Ok(Credential::Env {
                name: name.to_string(),
                value: env(name).map(SecretString::new),
            });
        }
        if let Some(path) = text.strip_prefix("file:") {
            if path.is_empty() {
                return Err("expected a path after \"file:\"".into());
            }
            return Ok(Credential::File(dir.join(path)));
        }
        Err("expected a reference, \"env:NAME\" or \"file:PATH\", not the credential itself (a credential written into a config file ends up in backups and version control)".into())
    }

    /// What the config says, for messages and the vault's definition.
    pub fn reference(&self) -> String {
        match self {
            Credential::Env { name, .. } => format!("env:{name}"),
            Credential::File(p) => format!("file:{}", p.display()),
        }
    }

    pub fn is_file(&self) -> bool {
        matches!(self, Credential::File(_))
    }

    /// The credential now; `Err` says what is wrong, never the value.
    pub fn read(&self) -> Result<SecretString, String> {
        match self {
            Credential::Env { name, value } => value.clone().ok_or_else(|| {
                format!("the environment variable {name} is not set (agent-vaultd reads it from its own environment for its own config, and from the agent's for a project's config)")
            }),
            Credential::File(path) => {
                use std::io::Read;
                let mut text = String::new();
                std::fs::File::open(path)
                    .and_then(|f| f.take(MAX_FILE_BYTES).read_to_string(&mut text))
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let value = SecretString::new(text.trim_end_matches(['\n', '\r']).to_string());
                zeroize::Zeroize::zeroize(&mut text);
                if value.expose().is_empty() {
                    return Err(format!("{} is empty", path.display()));
                }
                Ok(value)
            }
        }
    }

    /// A short digest of the credential's value, so that an approval bound
    /// to one account does not carry over to another (no value leaves).
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        match self.read() {
            Ok(v) => Sha256::digest(v.expose().as_bytes())
                .iter()
                .take(8)
                .map(|b| format!("{b:02x}"))
                .collect(),
            Err(_) => "unset".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_only_and_never_printed() -> Result<(), String> {
        let env = |n: &str| (n == "TOKEN").then(|| "s3cret-token".to_string());
        let dir = Path::new("/etc/agent-vault");
        let c = Credential::parse("env:TOKEN", dir, &env)?;
        assert_eq!(c.read()?.expose(), "s3cret-token");
        assert_eq!(format!("{c:?}"), "env:TOKEN");
        let unset = Credential::parse("env:OTHER", dir, &env)?;
        assert!(unset.read().is_err_and(|e| e.contains("OTHER is not set")));
        let f = Credential::parse("file:op.token", dir, &env)?;
        assert_eq!(f.reference(), "file:/etc/agent-vault/op.token");
        let literal = Credential::parse("ops_eyJhbGciOi", dir, &env);
        assert!(literal.is_err_and(|e| e.contains("not the credential itself")));
        Ok(())
    }

    #[test]
    fn a_file_is_read_at_each_use() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("t"), "first\n")?;
        let c = Credential::parse("file:t", dir.path(), &|_| None)?;
        assert_eq!(c.read()?.expose(), "first");
        let before = c.digest();
        std::fs::write(dir.path().join("t"), "second")?;
        assert_eq!(c.read()?.expose(), "second");
        assert_ne!(c.digest(), before);
        Ok(())
    }
}
