//! agent-vault-mcp: the stdio MCP shim an agent spawns. It keeps no state
//! and holds no secret at rest; each tool call is forwarded to agent-vaultd.

mod calls;
mod daemon;
mod link;
mod results;
mod run;
mod server;

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
    match server::run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agent-vault-mcp: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
