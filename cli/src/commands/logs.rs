//! `agent-vault logs [-n N] [--follow]`: the log of an agent-vaultd that an
//! agent started (it writes `agent-vaultd.log` in its state directory), or
//! where to find the log of one started otherwise.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct Options {
    /// How many of the last lines to show.
    #[arg(short = 'n', long, default_value_t = 50)]
    pub lines: usize,
    /// Keep printing what is added (Ctrl-C ends).
    #[arg(short, long)]
    pub follow: bool,
}

/// The most read back from the end of the file for `--lines`.
const TAIL_BYTES: u64 = 1 << 20;

pub fn log_path() -> anyhow::Result<PathBuf> {
    Ok(agent_vault_proto::paths::state_dir()?.join("agent-vaultd.log"))
}

pub async fn run(o: Options) -> anyhow::Result<()> {
    let path = log_path()?;
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "there is no {}: agent-vaultd writes it only when an agent started it. Started in a terminal, it logs there; as a systemd service, `journalctl --user -u agent-vault`; under launchd, the plist's StandardErrorPath",
            path.display()
        ),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read {}", path.display()));
        }
    };
    let len = file.metadata()?.len();
    let from = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(from))?;
    let mut text = Vec::new();
    file.read_to_end(&mut text)?;
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    // A line cut by the 1 MiB window is not shown.
    let whole = if from > 0 {
        &lines[1.min(lines.len())..]
    } else {
        &lines[..]
    };
    let mut stdout = std::io::stdout().lock();
    for line in &whole[whole.len().saturating_sub(o.lines)..] {
        writeln!(stdout, "{line}")?;
    }
    stdout.flush()?;
    drop(stdout);
    if !o.follow {
        return Ok(());
    }
    let mut at = from + text.len() as u64;
    let mut buf = Vec::new();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len < at {
            // Truncated or replaced: start again from its beginning.
            file = std::fs::File::open(&path)?;
            at = 0;
        }
        file.seek(SeekFrom::Start(at))?;
        buf.clear();
        file.read_to_end(&mut buf)?;
        at += buf.len() as u64;
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(&buf)?;
        stdout.flush()?;
    }
}
