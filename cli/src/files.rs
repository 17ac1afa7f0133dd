//! Writing the person's files (a client's MCP settings, a project's config
//! and env file): whole or not at all, keeping the file's mode.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The owner's alone: for files that hold or may come to hold secrets.
pub const PRIVATE: u32 = 0o600;
/// Readable by all: for files meant to be shared (a project's config, its
/// `.gitignore`).
pub const SHARED: u32 = 0o644;

/// Writes through a temporary file in the same directory and renames it,
/// so no reader ever sees half a file; the old file's mode is kept, a new
/// one gets `new_mode` ([`PRIVATE`] for what may hold secrets or tokens).
pub fn write_atomically(file: &Path, text: &str, new_mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mode = std::fs::metadata(file).map_or(new_mode, |m| m.permissions().mode() & 0o7777);
    let mut tmp_name = file.as_os_str().to_owned();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, file)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        bail!(
            "cannot write {}: {}",
            file.display(),
            agent_vault_proto::words::io_error(&e)
        );
    }
    Ok(())
}

/// The text of `file`, or `None` when it does not exist.
pub fn read_if_exists(file: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(file) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => bail!(
            "cannot read {}: {}",
            file.display(),
            agent_vault_proto::words::io_error(&e)
        ),
    }
}
