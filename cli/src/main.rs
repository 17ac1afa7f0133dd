//! agent-vault: the admin command line for agent-vaultd.

mod anchors;
mod asking;
mod commands;
mod env_template;
mod files;
mod mcp_clients;
mod output;

use agent_vault_proto::client::{self, Connection};
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

use commands::audit::Tampered;
use output::Out;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Agent Vault: approve, inspect and revoke AI agents' access to secrets"
)]
struct Cli {
    /// Print JSON for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Version, uptime, approval URL, vaults, devices, pending requests and windows.
    Status,
    /// Requests waiting for approval.
    Pending,
    /// Active approval windows.
    Grants,
    /// End approval windows now: --all, VAULT, or VAULT/NAME.
    Revoke {
        /// End every approval window.
        #[arg(long, conflicts_with = "target")]
        all: bool,
        /// A vault (all its windows) or VAULT/NAME (that secret's).
        target: Option<String>,
    },
    /// The audit log (newest first), or `audit verify` to check its hash chain.
    Audit {
        /// How many entries to show.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[command(subcommand)]
        action: Option<AuditAction>,
    },
    /// Print a one-time link (and QR code) that pairs a browser as an approver.
    Pair {
        /// Enroll an authenticator app instead (for vaults with
        /// "approval": {"require": "totp"}): prints its QR code once.
        #[arg(long)]
        totp: bool,
    },
    /// Approve or deny pending requests from this terminal: one by ID, or
    /// interactively, one after another. Allowed only when this user is not
    /// also an agent user, or on vaults that set approval.allowTerminal.
    Approve {
        /// A request id (from `agent-vault pending`); without one, asks
        /// about each pending request in turn.
        id: Option<String>,
        /// Deny instead of approve (needs a request id; without one, each
        /// request is asked about and may be denied there).
        #[arg(long, requires = "id")]
        deny: bool,
        /// A shorter approval window, in minutes (0: just this once).
        #[arg(long)]
        window: Option<f64>,
    },
    /// Run a command with secrets in its environment, after approval of
    /// that exact command (as an agent's run_with_secrets): output masked,
    /// stdin passed through, signals forwarded, its exit code returned.
    #[command(after_help = "Examples:
  agent-vault run --vault dev --secret DATABASE_URL -- npm run migrate
  agent-vault run --vault prod --secret 'stripe#key=STRIPE_KEY' -- ./deploy.sh
  agent-vault run --env-file .env.tpl -- npm start   (values such as vault://dev/DATABASE_URL)")]
    Run {
        /// The vault of the --secret names.
        #[arg(long)]
        vault: Option<String>,
        /// A secret to put in the environment: NAME, or NAME=ENVVAR.
        #[arg(long = "secret", value_name = "NAME[=ENVVAR]")]
        secrets: Vec<String>,
        /// A template of KEY=value lines where vault://VAULT/NAME values
        /// are secrets (one approval per vault).
        #[arg(long, value_name = "FILE")]
        env_file: Option<PathBuf>,
        /// Why, shown to the approver.
        #[arg(long)]
        reason: Option<String>,
        /// Print the command's output as it is, values included.
        #[arg(long)]
        no_masking: bool,
        /// The command and its arguments, after --.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Print one secret's value after approval, for scripts (exit code 1
    /// on denial or expiry).
    Get {
        /// VAULT/NAME, such as dev/DATABASE_URL.
        target: String,
        /// Why, shown to the approver.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Set up this project: agent-vault.config.json with one vault, its
    /// env file (mode 0600, kept out of git), and what to do next.
    #[command(after_help = "Examples:
  agent-vault init                                  (asks where the secrets live)
  agent-vault init --type env --vault dev --ttl 15
  agent-vault init --type 1password --vault team")]
    Init(commands::init::Options),
    /// Add or change a secret in an env vault; the value is read from
    /// stdin (typed without echo on a terminal).
    #[command(after_help = "Examples:
  agent-vault set local/DATABASE_URL              (asks for the value)
  printf %s \"$TOKEN\" | agent-vault set dev/API_TOKEN")]
    Set {
        /// VAULT/NAME, such as local/DATABASE_URL.
        target: String,
    },
    /// Add a new secret to an env vault (refused if the name exists); the
    /// value is read as for `set`.
    Add {
        /// VAULT/NAME, such as local/DATABASE_URL.
        target: String,
    },
    /// Add agent-vault-mcp to an AI agent's MCP servers: prints the entry
    /// in the client's own format, or with --install merges it into the
    /// client's file (a backup kept, every other entry unchanged).
    #[command(after_help = "Examples:
  agent-vault mcp-config claude-code --install
  agent-vault mcp-config cursor --install --project   (.cursor/mcp.json here)
  agent-vault mcp-config codex                        (print the TOML to paste)")]
    McpConfig(commands::mcp_config::Options),
    /// Check that everything is in place: the daemon, its files, the
    /// config, every vault's backend, how a phone reaches the page, devices,
    /// the service and your MCP clients; each problem with its fix (exit
    /// status 1 when any check fails).
    Doctor,
    /// Stop agent-vaultd as SIGTERM would (pending requests cancelled, the
    /// log flushed) and wait until it has ended.
    Stop,
    /// Show the log of an agent-vaultd an agent started (its state
    /// directory's agent-vaultd.log), or say where its log is.
    Logs(commands::logs::Options),
    /// Check a config file: `config check [FILE]`.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Bring the prototype's audit history (its agent-vault.db) into the
    /// chained audit log, each row marked as imported; running it again
    /// skips rows already imported.
    ImportAudit {
        /// The prototype's database, such as ./agent-vault.db.
        path: PathBuf,
    },
    /// Paired approver devices, or `devices revoke ID` to unpair one.
    Devices {
        #[command(subcommand)]
        action: Option<DevicesAction>,
    },
}

#[derive(Subcommand, Debug)]
enum DevicesAction {
    /// Unpair a device: its credential stops working at once.
    Revoke {
        /// The device's id (from `agent-vault devices`).
        id: String,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigAction {
    /// Read a config as agent-vaultd would and say whether it is valid and
    /// every env: reference in it is set (exit status 1 if not).
    Check {
        /// The file; without it, the one agent-vaultd would find from here.
        file: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum AuditAction {
    /// Check that no row was deleted or changed, and, with --anchor, that
    /// the log was not rewritten, cut short, rolled back or replaced since
    /// its head was anchored there.
    Verify {
        /// An anchor log: the file agent-vaultd appends to
        /// (audit.anchor.file), or a URL serving its lines (an ntfy topic's
        /// https://ntfy.sh/<topic>/json?poll=1&since=all, or logged webhook
        /// bodies). May be given more than once.
        #[arg(long = "anchor", value_name = "FILE|URL")]
        anchors: Vec<String>,
    },
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Commands that need no daemon.
    let out = Out { json: cli.json };
    match cli.command {
        Command::Init(o) => {
            return commands::init::run(out, o)
                .await
                .map(|()| ExitCode::SUCCESS);
        }
        Command::McpConfig(o) => {
            return commands::mcp_config::run(out, o).map(|()| ExitCode::SUCCESS);
        }
        Command::Set { target } => {
            return commands::set::run(out, &target, false).map(|()| ExitCode::SUCCESS);
        }
        Command::Add { target } => {
            return commands::set::run(out, &target, true).map(|()| ExitCode::SUCCESS);
        }
        Command::Doctor => return commands::doctor::run(out).await.map(exit_status),
        Command::Stop => return commands::stop::run(out).await.map(|()| ExitCode::SUCCESS),
        Command::Logs(o) => return commands::logs::run(o).await.map(|()| ExitCode::SUCCESS),
        Command::Config {
            action: ConfigAction::Check { file },
        } => return commands::config::run(out, file).map(exit_status),
        _ => {}
    }
    let socket = agent_vault_proto::paths::socket_path()?;
    let Connection {
        mut admin, agent, ..
    } = client::connect(&socket, "cli").await?;
    match cli.command {
        Command::Run {
            vault,
            secrets,
            env_file,
            reason,
            no_masking,
            command,
        } => {
            let o = commands::run::Options {
                vault,
                secrets,
                env_file,
                reason,
                no_masking,
                command,
            };
            return commands::run::run(agent, o).await;
        }
        Command::Get { target, reason } => {
            commands::get::run(agent, &target, reason).await?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let admin = &mut admin;
    let out = Out { json: cli.json };
    match cli.command {
        Command::Status => commands::status::run(admin, out).await,
        Command::Pending => commands::pending::run(admin, out).await,
        Command::Grants => commands::grants::list(admin, out).await,
        Command::Revoke { all, target } => commands::grants::revoke(admin, out, all, target).await,
        Command::Audit {
            limit,
            action: None,
        } => commands::audit::list(admin, out, limit).await,
        Command::Audit {
            action: Some(AuditAction::Verify { anchors }),
            ..
        } => commands::audit::verify(admin, out, &anchors).await,
        Command::Approve {
            id: Some(id),
            deny,
            window,
        } => commands::approve::one(admin, out, id, deny, window).await,
        Command::Approve {
            id: None, window, ..
        } => commands::approve::each(admin, window).await,
        Command::Devices { action: None } => commands::devices::list(admin, out).await,
        Command::Devices {
            action: Some(DevicesAction::Revoke { id }),
        } => commands::devices::revoke(admin, out, id).await,
        Command::Pair { totp: true } => commands::pair::totp(admin, out).await,
        Command::Pair { totp: false } => commands::pair::device(admin, out).await,
        Command::ImportAudit { path } => commands::import_audit::run(admin, out, &path).await,
        Command::Run { .. }
        | Command::Get { .. }
        | Command::McpConfig(_)
        | Command::Set { .. }
        | Command::Add { .. }
        | Command::Doctor
        | Command::Stop
        | Command::Logs(_)
        | Command::Config { .. }
        | Command::Init(_) => Ok(()),
    }
    .map(|()| ExitCode::SUCCESS)
}

/// Success, or exit status 1 for a check that found a problem (already
/// said).
fn exit_status(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Output into a closed pipe (`agent-vault status | head -1`) ends the
/// command quietly, as it does other Unix tools, instead of a panic. Not
/// for `run`: it forwards a child's output and ends with the child's exit
/// code, so it keeps the signal ignored and handles the error itself.
#[allow(unsafe_code)]
fn quiet_on_closed_pipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: called first thing in main, on the one thread there is yet
    // (the runtime's workers start later; current_thread has none), and it
    // sets the default disposition, installing no handler.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run { .. }) {
        quiet_on_closed_pipe();
    }
    match run(cli).await.context("agent-vault") {
        Ok(code) => code,
        Err(e) if e.root_cause().downcast_ref::<Tampered>().is_some() => {
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            let msg = match e.root_cause().downcast_ref::<tonic::Status>() {
                Some(s) => s.message().to_string(),
                None => format!("{:#}", e),
            };
            eprintln!("agent-vault: {}", msg.trim_start_matches("agent-vault: "));
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// `--help` explains every flag and argument of every command.
    #[test]
    fn every_argument_has_help() {
        fn check(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {} (the command)", sub.get_name()));
                }
                check(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        check(&Cli::command(), "agent-vault", &mut missing);
        assert!(missing.is_empty(), "without help: {missing:?}");
    }

    #[test]
    fn deny_needs_a_request_id() {
        let e = Cli::try_parse_from(["agent-vault", "approve", "--deny"]).err();
        assert!(e.is_some_and(|e| e.to_string().contains("<ID>")));
        assert!(Cli::try_parse_from(["agent-vault", "approve", "abc", "--deny"]).is_ok());
    }
}
