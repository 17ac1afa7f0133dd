//! `agent-vault mcp-config CLIENT [--install | --uninstall] [--project]`:
//! prints the entry that runs agent-vault-mcp in the client's own format,
//! or merges it into (or takes it out of) the client's file, keeping a
//! backup and every other entry as it was. Needs no running daemon.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::mcp_clients::{Client, ENTRY, Scope, UserDirs};
use crate::output::Out;

#[derive(Debug, clap::Args)]
pub struct Options {
    /// The MCP client.
    pub client: Client,
    /// Merge the entry into the client's file.
    #[arg(long, conflicts_with = "uninstall")]
    pub install: bool,
    /// Take the entry out of the client's file.
    #[arg(long)]
    pub uninstall: bool,
    /// The project's file in this directory (such as .mcp.json or
    /// .vscode/mcp.json) instead of the user's.
    #[arg(long)]
    pub project: bool,
    /// Replace an entry that runs the prototype (npx agent-vault) without
    /// asking.
    #[arg(long, requires = "install")]
    pub replace_prototype: bool,
}

/// The agent-vault-mcp to run: the one beside this program (made
/// absolute: GUI clients start servers with a short PATH), else the name.
fn shim_command() -> String {
    agent_vault_proto::paths::sibling_program("agent-vault-mcp")
        .display()
        .to_string()
}

fn the_file(client: Client, project: bool) -> anyhow::Result<PathBuf> {
    if project {
        let cwd = std::env::current_dir().context("the current directory is not readable")?;
        return client
            .file(&Scope::Project(&cwd))
            .map_err(anyhow::Error::msg);
    }
    let user = UserDirs::from_env().context("HOME is not set; set it, or use --project")?;
    client.file(&user.scope()).map_err(anyhow::Error::msg)
}

pub fn run(out: Out, o: Options) -> anyhow::Result<()> {
    let command = shim_command();
    let file = the_file(o.client, o.project)?;
    let name = o.client.name();
    if !o.install && !o.uninstall {
        let snippet = o.client.snippet(&command);
        out.emit(
            serde_json::json!({"client": name, "file": file, "entry": snippet}),
            || {
                println!("# Add this to {} (or run with --install):", file.display());
                print!("{snippet}");
                if !snippet.ends_with('\n') {
                    println!();
                }
            },
        );
        return Ok(());
    }
    let text = crate::files::read_if_exists(&file)?;
    let broken = |why: String| anyhow::anyhow!("{}: {why}", file.display());
    let (new_text, what) = if o.uninstall {
        let Some(t) = &text else {
            return report(out, name, &file, "absent", None);
        };
        match o.client.uninstall(t).map_err(broken)? {
            Some(n) => (n, "removed"),
            None => return report(out, name, &file, "absent", None),
        }
    } else {
        let current = text.as_deref().unwrap_or("");
        let prototype = o.client.prototype_entries(current).map_err(broken)?;
        let replace = if prototype.is_empty() {
            Vec::new()
        } else if o.replace_prototype || ask_to_replace(&file, &prototype)? {
            prototype
        } else {
            eprintln!(
                "Kept the prototype's entry {} (npx agent-vault) beside the new one; remove it, or run again with --replace-prototype.",
                prototype.join(", ")
            );
            Vec::new()
        };
        let n = o
            .client
            .install(current, &command, &replace)
            .map_err(broken)?;
        if text.as_deref() == Some(n.as_str()) {
            return report(out, name, &file, "unchanged", None);
        }
        (n, "installed")
    };
    let backup = match &text {
        Some(old) => Some(back_up(&file, old)?),
        None => None,
    };
    crate::files::write_atomically(&file, &new_text, crate::files::PRIVATE)?;
    report(out, name, &file, what, backup.as_deref())
}

fn ask_to_replace(file: &Path, names: &[String]) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!(
        "{} runs the prototype (npx agent-vault) as {}. Replace it with agent-vault-mcp? [Y/n] ",
        file.display(),
        names.join(", ")
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(!answer.trim().to_ascii_lowercase().starts_with('n'))
}

/// `FILE.agent-vault.bak`: the file as it was before this change.
fn back_up(file: &Path, old: &str) -> anyhow::Result<PathBuf> {
    let mut name = file.as_os_str().to_owned();
    name.push(".agent-vault.bak");
    let backup = PathBuf::from(name);
    crate::files::write_atomically(&backup, old, crate::files::PRIVATE)
        .with_context(|| format!("could not back up {}", file.display()))?;
    Ok(backup)
}

fn report(
    out: Out,
    client: &str,
    file: &Path,
    what: &str,
    backup: Option<&Path>,
) -> anyhow::Result<()> {
    out.emit(
        serde_json::json!({"client": client, "file": file, "result": what, "backup": backup}),
        || {
            let done = match what {
                "installed" => format!("Added {ENTRY} to {client}: {}", file.display()),
                "removed" => format!("Removed {ENTRY} from {client}: {}", file.display()),
                "unchanged" => format!("{client} already runs {ENTRY}: {}", file.display()),
                _ => format!("{client} has no {ENTRY} entry in {}", file.display()),
            };
            println!("{done}");
            if let Some(b) = backup {
                println!("The file as it was: {}", b.display());
            }
            if what == "installed" {
                println!("Restart {client} (or reload its MCP servers) to use it.");
            }
        },
    );
    Ok(())
}
