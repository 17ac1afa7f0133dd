//! Use without reveal, where users feel it: how fast output is redacted
//! (10 secrets and all their encodings), and what `run_with_secrets` adds
//! over running the same command directly.
//!
//! Run: `cargo build --release --workspace --bins && cargo bench -p agent-vault-e2e --bench run`
//! (`BENCH_QUICK=1` shrinks every count). The overhead is measured through
//! the official Python MCP SDK (`AGENT_VAULT_TEST_PYTHON`, a python with
//! `mcp`; tests/py/run_bench_client.py); without one it is skipped.

use std::time::{Duration, Instant};

use agent_vault_e2e::*;
use agent_vault_redact::Redactor;
use anyhow::{Context, Result};
use serde_json::json;

fn quick() -> bool {
    std::env::var("BENCH_QUICK").is_ok()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// 10 secrets of the lengths real ones have (16 to 61 bytes), each its
/// own: drawn from a fixed-seed generator, so runs compare.
fn secrets() -> Vec<(String, Vec<u8>)> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_/+";
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    (0..10)
        .map(|i| {
            let value = (0..16 + i * 5)
                .map(|_| ALPHABET[(next() >> 32) as usize % ALPHABET.len()])
                .collect();
            (format!("SECRET_{i}"), value)
        })
        .collect()
}

/// Output like a build's or a test run's: log lines, with one line in a
/// thousand holding a value or one of its encodings, each secret and each
/// encoding in turn.
fn output(size: usize, secrets: &[(String, Vec<u8>)]) -> Vec<u8> {
    let forms: Vec<_> = secrets
        .iter()
        .map(|(_, v)| agent_vault_redact::forms(v))
        .collect();
    let mut out = Vec::with_capacity(size + 200);
    let mut i = 0usize;
    while out.len() < size {
        out.extend_from_slice(
            format!(
                "2026-12-06T06:30:{:02}Z INFO worker[{}] processed batch {} in 12.{}ms status=ok\n",
                i % 60,
                i % 8,
                i,
                i % 97
            )
            .as_bytes(),
        );
        if i % 1000 == 999 {
            let k = i / 1000;
            let of_secret = &forms[k % forms.len()];
            out.extend_from_slice(b"token=");
            out.extend_from_slice(&of_secret[(k / forms.len()) % of_secret.len()]);
            out.push(b'\n');
        }
        i += 1;
    }
    out
}

/// Redaction alone, in reads of 4 KiB and 64 KiB.
fn redaction_throughput() {
    let secrets = secrets();
    let redactor = match Redactor::new(secrets.iter().map(|(n, v)| (n.as_str(), v.as_slice()))) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    let size = if quick() { 8 << 20 } else { 64 << 20 };
    let input = output(size, &secrets);
    let runs = if quick() { 3 } else { 7 };
    for read in [4096usize, 65536] {
        let mut times = Vec::new();
        let mut out = Vec::with_capacity(input.len());
        for _ in 0..runs {
            out.clear();
            let t = Instant::now();
            let mut s = redactor.stream();
            for chunk in input.chunks(read) {
                s.push(chunk, &mut out);
            }
            s.finish(&mut out);
            times.push(t.elapsed());
        }
        let m = median(times);
        let mbs = input.len() as f64 / m.as_secs_f64() / 1e6;
        let redacted = out.windows(10).filter(|w| w == b"[REDACTED:").count();
        println!(
            "redaction: {:.0} MB/s ({} MB in reads of {} KiB, 10 secrets, {redacted} values replaced; median of {runs})",
            mbs,
            input.len() >> 20,
            read >> 10,
        );
    }
}

/// A command that writes 1 MiB of build-log-like output, the value once.
const ONE_MIB: &str =
    "yes 'compiling module 1234 of 5678: ok (12.3 ms)' | head -c 1048000; echo \"key=$API_KEY\"";

/// `run_with_secrets` against running the same command directly, each
/// timed in the Python client, with the agent's default output cap and
/// with a cap that returns all 1 MiB.
async fn run_overhead() -> Result<()> {
    let Some(python) = std::env::var_os("AGENT_VAULT_TEST_PYTHON") else {
        println!(
            "run_with_secrets overhead: skipped (set AGENT_VAULT_TEST_PYTHON to a python with `mcp`)"
        );
        return Ok(());
    };
    let calls = if quick() { 5 } else { 30 };
    for (cap, what) in [
        (65536, "default cap, 64 KiB per stream"),
        (2 << 20, "all of it returned"),
    ] {
        let config = config_with_open_vault().replace(
            "\"port\": 0,",
            &format!("\"port\": 0, \"run\": {{\"maxOutputBytes\": {cap}}},"),
        );
        let home = Home::with_config(&config)?;
        let daemon = home.start_daemon()?;
        let approver = Approver::pair(&home, &daemon.base_url).await?;
        open_the_open_vault(&home, &approver).await?;
        let script =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("py/run_bench_client.py");
        let args =
            json!({"vault": "open", "secrets": ["API_KEY"], "command": ["sh", "-c", ONE_MIB]});
        let out = home
            .command(std::path::Path::new(&python))
            .arg(&script)
            .arg(bin("agent-vault-mcp"))
            .arg(calls.to_string())
            .arg(args.to_string())
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "the Python client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let times = |k: &str| -> Result<Vec<Duration>> {
            Ok(v[k]
                .as_array()
                .context("no times")?
                .iter()
                .filter_map(|n| n.as_u64().map(Duration::from_nanos))
                .collect())
        };
        let (tool, direct) = (median(times("tool_ns")?), median(times("direct_ns")?));
        let floor = median(times("floor_ns")?);
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "run_with_secrets, 1 MiB of output ({what}): {:.1} ms through the shim vs {:.1} ms directly: overhead {:.1} ms, of which {:.1} ms is the client receiving a result that large from a server that answers at once (medians of {calls}, alternating; {} chars returned, {} bytes direct)",
            ms(tool),
            ms(direct),
            ms(tool) - ms(direct),
            ms(floor),
            v["tool_chars"],
            v["direct_bytes"],
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    redaction_throughput();
    run_overhead().await
}
