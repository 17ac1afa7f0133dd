//! agent-vault-mcp: the stdio MCP shim an agent spawns. It keeps no state
//! and holds no secret at rest; each tool call is forwarded to agent-vaultd.

mod daemon;
mod server;

fn quiet(d: &str) -> tracing_subscriber::filter::Directive {
    d.parse().unwrap_or_default()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    // stdout belongs to MCP: logs go to stderr only.
    // rmcp logs whole messages at debug level, and those may carry values:
    // it is capped at warn whatever AGENT_VAULT_LOG says.
    let filter = tracing_subscriber::EnvFilter::try_from_env("AGENT_VAULT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
        .add_directive(quiet("rmcp=warn"))
        .add_directive(quiet("h2=warn"))
        .add_directive(quiet("tonic=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
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
