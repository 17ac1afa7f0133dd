//! agent-vault-mcp: the stdio MCP shim an agent spawns. It keeps no state
//! and holds no secret at rest; each tool call is forwarded to agent-vaultd.

mod arguments;
mod calls;
mod daemon;
mod link;
mod results;
mod run;
mod server;

const HELP: &str = "\
agent-vault-mcp: the MCP server (stdio) that an AI agent starts to ask
agent-vaultd for secrets. It is not run by hand: add it to your agent with
`agent-vault mcp-config <client> --install` (claude-code, claude-desktop,
cursor, windsurf, codex, vscode, zed). It starts agent-vaultd if none runs.

Usage: agent-vault-mcp [--help | --version]

Environment:
  AGENT_VAULT_CONFIG  the project config (default: ./agent-vault.config.json,
                      then the one in the MCP client's first workspace
                      folder (roots) that has one, then
                      ~/.agent-vault.config.json, then
                      ~/.config/agent-vault/config.json)
  AGENT_VAULT_HOME    agent-vaultd's state directory (and its socket)
  AGENT_VAULT_SOCKET  the daemon's socket, if elsewhere
  AGENT_VAULT_LOG     log filter for stderr (default: warn)
";

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    // stdout belongs to MCP: logs go to stderr only.
    // A plain target filter (no regex engine: the shim stays small).
    // rmcp logs whole messages at debug level, and those may carry values:
    // it is capped at warn whatever AGENT_VAULT_LOG says.
    use tracing_subscriber::filter::{LevelFilter, Targets};
    let warn = || Targets::new().with_default(LevelFilter::WARN);
    let filter: Targets = match std::env::var("AGENT_VAULT_LOG") {
        Ok(spec) if !spec.is_empty() => spec.parse().unwrap_or_else(|_| warn()),
        _ => warn(),
    };
    let filter = filter
        .with_target("rmcp", LevelFilter::WARN)
        .with_target("h2", LevelFilter::WARN)
        .with_target("hyper", LevelFilter::WARN)
        .with_target("tonic", LevelFilter::WARN);
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false),
        )
        .with(filter)
        .init();
    if std::env::args().any(|a| a == "--version" || a == "-V") {
        println!("agent-vault-mcp {}", agent_vault_proto::VERSION);
        return std::process::ExitCode::SUCCESS;
    }
    if std::env::args().any(|a| a == "--help" || a == "-h") {
        print!("{HELP}");
        return std::process::ExitCode::SUCCESS;
    }
    if let Some(arg) = std::env::args().nth(1) {
        eprintln!("agent-vault-mcp: unknown argument \"{arg}\"; it takes none (see --help)");
        return std::process::ExitCode::from(2);
    }
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        eprintln!(
            "agent-vault-mcp is the MCP server an AI agent starts; it speaks MCP on stdin and stdout.\n\
             Add it to your agent instead: `agent-vault mcp-config --help`. Waiting for MCP messages (Ctrl-D ends)."
        );
    }
    match server::run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agent-vault-mcp: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
