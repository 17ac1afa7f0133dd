//! Use without reveal, where users feel it: how fast output is redacted
//! (10 secrets and all their encodings), and what `run_with_secrets` adds
//! over running the same command directly.
//!
//! Run: `cargo build --release --workspace --bins && cargo bench -p agent-vault-e2e --bench run`
//! (`BENCH_QUICK=1` shrinks every count).

use std::time::{Duration, Instant};

use agent_vault_redact::Redactor;

fn quick() -> bool {
    std::env::var("BENCH_QUICK").is_ok()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// 10 secrets of the lengths real ones have (16 to 64 bytes).
fn secrets() -> Vec<(String, Vec<u8>)> {
    (0..10)
        .map(|i| {
            let len = 16 + i * 5;
            let value: Vec<u8> = (0..len)
                .map(|j| {
                    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_/+"
                        [(i * 7 + j * 13) % 66]
                })
                .collect();
            (format!("SECRET_{i}"), value)
        })
        .collect()
}

/// Output like a build's or a test run's: log lines, with a value (or an
/// encoding of one) on one line in a thousand.
fn output(size: usize, secrets: &[(String, Vec<u8>)]) -> Vec<u8> {
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
            let (_, v) = &secrets[i % secrets.len()];
            out.extend_from_slice(b"token=");
            out.extend_from_slice(v);
            out.push(b'\n');
        }
        i += 1;
    }
    out
}

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

fn main() {
    redaction_throughput();
}
