//! agent-vaultd: parse arguments, set up logging, call [`agent_vaultd::run`].

use std::path::PathBuf;

use clap::Parser;

/// The Agent Vault daemon: human-approved secret access for AI agents.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Use this config file instead of searching (AGENT_VAULT_CONFIG,
    /// ./agent-vault.config.json, ~/.agent-vault.config.json).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Check the config (--config's, or the one the search finds from
    /// here) and print what was found as JSON, without starting: for
    /// `agent-vault config check` and `agent-vault doctor`. Exit 1 when it
    /// has a problem.
    #[arg(long)]
    check_config: bool,
    /// More logging (-v: debug, -vv: trace). AGENT_VAULT_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

fn check_config(given: Option<&std::path::Path>) -> std::process::ExitCode {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let report = agent_vaultd::check::run(given, &cwd);
    match serde_json::to_string_pretty(&report) {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("agent-vaultd: cannot write the report: {e}");
            return std::process::ExitCode::FAILURE;
        }
    }
    if report.ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

fn quiet(d: &str) -> tracing_subscriber::filter::Directive {
    d.parse().unwrap_or_default()
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if args.check_config {
        return check_config(args.config.as_deref());
    }
    let default = match args.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("AGENT_VAULT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default))
        // Transport internals log frames at debug level; they never need to.
        .add_directive(quiet("h2=warn"))
        .add_directive(quiet("hyper=warn"))
        .add_directive(quiet("tonic=warn"));
    // Colour only on a terminal (not in the log file a shim-started daemon
    // writes), and never with NO_COLOR set.
    use std::io::IsTerminal;
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
    // ngrok and reqwest may both bring rustls backends; pick one up front.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match agent_vaultd::run(agent_vaultd::Options {
        config: args.config,
    })
    .await
    {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agent-vaultd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
