//! `agent-vault init`: a project's first set-up. Writes
//! `agent-vault.config.json` with one vault (an env file here, or
//! 1Password), creates the env file at mode 0600 and keeps it out of git
//! (`.gitignore`, its other lines kept), offers to pair a phone on a
//! terminal, and says what comes next. Flags make it scriptable.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, bail};

use agent_vault_proto::project::CONFIG_FILE_NAME;

use crate::files::{PRIVATE, SHARED, read_if_exists, write_atomically};
use crate::output::Out;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// A dotenv file in the project (kept out of git).
    Env,
    /// 1Password, through a service account (the `op` CLI).
    #[value(name = "1password")]
    OnePassword,
}

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Where the secrets live (asked on a terminal; default env).
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: Option<Kind>,
    /// The vault's name, as the agent will ask for it.
    #[arg(long, default_value = "local")]
    pub vault: String,
    /// The env file, in this directory.
    #[arg(long, default_value = ".env.secrets")]
    pub file: String,
    /// Minutes an approval lasts (0: ask every time).
    #[arg(long, default_value_t = 0.0)]
    pub ttl: f64,
    /// Replace an existing agent-vault.config.json (a backup is kept).
    #[arg(long)]
    pub force: bool,
}

/// The config for one vault, as the prototype's README writes it (plain
/// JSON, so the prototype can still read it).
fn config_text(o: &Options, kind: Kind) -> String {
    let quoted = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    let ttl = if o.ttl.fract() == 0.0 {
        format!("{}", o.ttl as i64)
    } else {
        o.ttl.to_string()
    };
    let fields = match kind {
        Kind::Env => format!("\"type\": \"env\", \"file\": {}", quoted(&o.file)),
        Kind::OnePassword => {
            "\"type\": \"1password\", \"serviceAccountToken\": \"env:OP_SERVICE_ACCOUNT_TOKEN\""
                .into()
        }
    };
    format!(
        "{{\n  \"vaults\": {{\n    {}: {{ {fields}, \"ttl\": {ttl} }}\n  }}\n}}\n",
        quoted(&o.vault)
    )
}

/// `.gitignore` with `entry` added unless a line already names it.
fn ignored(gitignore: &str, entry: &str) -> Option<String> {
    let already = gitignore.lines().map(str::trim).any(|l| {
        l == entry || l.strip_prefix('/') == Some(entry) || l.strip_suffix('/') == Some(entry)
    });
    if already {
        return None;
    }
    let mut out = gitignore.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(entry);
    out.push('\n');
    Some(out)
}

fn ask(question: &str) -> anyhow::Result<String> {
    eprint!("{question}");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim().to_string())
}

pub async fn run(out: Out, o: Options) -> anyhow::Result<()> {
    if !agent_vault_proto::project::valid_vault_name(&o.vault) {
        bail!("--vault: expected 1 to 64 letters, digits, '_', '-' or '.'");
    }
    if o.file.is_empty() || Path::new(&o.file).is_absolute() || o.file.contains("..") {
        bail!("--file: expected a file name in this directory, such as .env.secrets");
    }
    if !(o.ttl.is_finite() && (0.0..=525_600.0).contains(&o.ttl)) {
        bail!("--ttl: expected a number of minutes from 0 (always ask) to 525600");
    }
    let dir = std::env::current_dir().context("the current directory is not readable")?;
    let config = dir.join(CONFIG_FILE_NAME);
    let interactive = std::io::stdin().is_terminal() && !out.json;
    let kind = match o.kind {
        Some(k) => k,
        None if interactive => {
            let a = ask(
                "Where do the secrets live? 1) an env file here (.env.secrets)  2) 1Password  [1] ",
            )?;
            if a == "2" {
                Kind::OnePassword
            } else {
                Kind::Env
            }
        }
        None => Kind::Env,
    };
    let old = read_if_exists(&config)?;
    if old.is_some() && !o.force {
        bail!(
            "{} already exists; edit it, or run again with --force to replace it (the old one is kept as {CONFIG_FILE_NAME}.agent-vault.bak)",
            config.display()
        );
    }
    let mut done = Vec::new();
    if let Some(old) = &old {
        write_atomically(
            &dir.join(format!("{CONFIG_FILE_NAME}.agent-vault.bak")),
            old,
            SHARED,
        )?;
    }
    write_atomically(&config, &config_text(&o, kind), SHARED)?;
    done.push(format!("wrote {}", config.display()));
    let mut secrets_file = None;
    if kind == Kind::Env {
        let file = dir.join(&o.file);
        if read_if_exists(&file)?.is_none() {
            write_atomically(
                &file,
                "# Secrets for agent-vault: one NAME=value per line. Add one with\n# `agent-vault set VAULT/NAME`.\n",
                PRIVATE,
            )?;
            done.push(format!("created {} (mode 0600)", file.display()));
        }
        let gitignore = dir.join(".gitignore");
        let current = read_if_exists(&gitignore)?.unwrap_or_default();
        if let Some(new) = ignored(&current, &o.file) {
            write_atomically(&gitignore, &new, SHARED)?;
            done.push(format!("added {} to {}", o.file, gitignore.display()));
        }
        secrets_file = Some(file);
    }
    let vault = &o.vault;
    let next = match kind {
        Kind::Env => vec![
            format!("agent-vault set {vault}/NAME            add a secret (the value is not shown)"),
            "agent-vault pair                       pair the phone that approves".into(),
            "agent-vault mcp-config claude-code --install   add agent-vault to your agent (or cursor, codex, vscode, ...)".into(),
        ],
        Kind::OnePassword => vec![
            "export OP_SERVICE_ACCOUNT_TOKEN=ops_...   in the environment your agent starts from (the shim passes it on)".into(),
            "agent-vault pair                       pair the phone that approves".into(),
            "agent-vault mcp-config claude-code --install   add agent-vault to your agent (or cursor, codex, vscode, ...)".into(),
        ],
    };
    out.emit(
        serde_json::json!({"config": config, "vault": vault,
            "type": match kind { Kind::Env => "env", Kind::OnePassword => "1password" },
            "secretsFile": secrets_file, "done": done, "next": next}),
        || {
            for d in &done {
                println!("{}{}", d[..1].to_uppercase(), &d[1..]);
            }
            println!("\nNext:");
            for n in &next {
                println!("  {n}");
            }
        },
    );
    if interactive && !ask("\nPair a phone now? [Y/n] ")?.eq_ignore_ascii_case("n") {
        let socket = agent_vault_proto::paths::socket_path()?;
        match agent_vault_proto::client::connect(&socket, "cli").await {
            Ok(mut c) => super::pair::device(&mut c.admin, out).await?,
            Err(e) => eprintln!("{e}\nThen run `agent-vault pair`."),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitignore_keeps_its_lines_and_gains_one() {
        assert_eq!(
            ignored("", ".env.secrets").as_deref(),
            Some(".env.secrets\n")
        );
        assert_eq!(
            ignored("target/\n# mine\nnode_modules", ".env.secrets").as_deref(),
            Some("target/\n# mine\nnode_modules\n.env.secrets\n")
        );
        assert_eq!(ignored("/.env.secrets\n", ".env.secrets"), None);
        assert_eq!(ignored("a\n.env.secrets\nb\n", ".env.secrets"), None);
    }
}
