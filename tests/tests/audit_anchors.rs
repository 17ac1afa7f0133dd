//! An audit log that survives its own deletion (single-user mode: the
//! agent has a shell as the daemon's user and can stop the daemon and write
//! its database). The hash chain alone cannot show a log whose chain was
//! recomputed, cut short with its head fixed, rolled back to an older copy
//! or replaced: `agent-vault audit verify` passes for each, as these tests
//! first show. The anchors agent-vaultd copies elsewhere (a file, an ntfy
//! topic, signed webhook events) show each one, read back from a file or
//! over HTTP, and the daemon reports the mismatch itself when it starts.
//!
//! ntfy is a local stand-in (tests/src/receiver.rs), written from ntfy's
//! public API documentation. Webhook signatures are checked with the
//! Standard Webhooks reference library for Python when
//! `AGENT_VAULT_TEST_PYTHON` has it (CI installs it).

use std::path::{Path, PathBuf};
use std::time::Duration;

use agent_vault_e2e::receiver::Receiver;
use agent_vault_e2e::*;
use agent_vaultd::audit::chain::{ChainedRow, hash};
use anyhow::{Result, bail};
use rusqlite::{Connection, params};
use serde_json::{Value, json};

const HOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

struct Scene {
    home: Home,
    daemon: Daemon,
    receiver: Receiver,
    anchor_file: PathBuf,
    approver: Approver,
}

impl Scene {
    /// A daemon anchoring after every entry to a file outside its state
    /// directory, an ntfy topic and a signed webhook; one device paired and
    /// two requests approved.
    async fn start() -> Result<Self> {
        let receiver = Receiver::start(0).await?;
        let config = TEST_CONFIG.replace(
            "\"port\": 0,",
            &format!(
                "\"port\": 0,
  \"audit\": {{\"anchor\": {{\"file\": \"../elsewhere/anchors.jsonl\", \"ntfy\": \"{ntfy}\", \"everyEvents\": 1, \"everyMinutes\": 60}}}},
  \"webhooks\": [{{\"url\": \"{hook}\", \"secret\": \"env:HOOK_SECRET\", \"events\": [\"approved\", \"denied\", \"audit_anchor\"]}}],",
                ntfy = receiver.url("/av-anchors"),
                hook = receiver.url("/events"),
            ),
        );
        let home = Home::with_config(&config)?;
        let elsewhere = home.dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere)?;
        let anchor_file = elsewhere.join("anchors.jsonl");
        let daemon = start(&home)?;
        let approver = Approver::pair(&home, &daemon.base_url).await?;
        let scene = Scene {
            home,
            daemon,
            receiver,
            anchor_file,
            approver,
        };
        scene.approve_one("deploy").await?;
        scene.approve_one("run the migration").await?;
        scene.anchored(entries(&scene.home)?)?;
        Ok(scene)
    }

    async fn approve_one(&self, reason: &str) -> Result<()> {
        let agent = Agent::start(&self.home).await?;
        let args = json!({"vault": "dev", "name": "API_KEY", "reason": reason});
        let (r, agent) = call_and_decide(
            &self.home,
            &self.approver,
            agent,
            "get_secret",
            args,
            "approve",
        )
        .await?;
        agent.stop().await;
        if r.is_error {
            bail!("{r:?}");
        }
        Ok(())
    }

    /// Waits until the anchor file, ntfy and the webhook all hold an
    /// anchor of `seq` entries.
    fn anchored(&self, seq: i64) -> Result<()> {
        poll(Duration::from_secs(20), || {
            let file = std::fs::read_to_string(&self.anchor_file).unwrap_or_default();
            let in_file = file.lines().any(|l| anchor_seq(l) == Some(seq));
            let in_ntfy = self
                .receiver
                .posted_to("/av-anchors")
                .iter()
                .any(|p| anchor_seq(&p.text()) == Some(seq));
            let in_hook = self
                .receiver
                .posted_to("/events")
                .iter()
                .any(|p| p.json()["anchor"]["seq"] == json!(seq));
            (in_file && in_ntfy && in_hook).then_some(())
        })
    }

    /// Stops the daemon, lets the attacker change the database, starts it
    /// again.
    fn tamper(&mut self, attack: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
        assert!(self.daemon.terminate()?.success());
        attack(&self.home.db())?;
        self.daemon = start(&self.home)?;
        self.approver.base.clone_from(&self.daemon.base_url);
        Ok(())
    }

    fn verify(&self, anchors: &[String]) -> Result<Value> {
        let mut args = vec!["audit", "verify", "--json"];
        for a in anchors {
            args.extend(["--anchor", a.as_str()]);
        }
        let out = self.home.cli(&args)?;
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    /// The three places an anchor can be read back from.
    fn anchor_sources(&self) -> Vec<String> {
        vec![
            self.anchor_file.display().to_string(),
            self.receiver.url("/av-anchors/json?poll=1&since=all"),
            self.receiver.url("/events"),
        ]
    }

    /// The chain alone is fooled; every anchor source shows the attack in
    /// the words expected; the daemon reported it when it started.
    fn assert_caught(&self, words: &[&str]) -> Result<()> {
        let plain = self.verify(&[])?;
        assert_eq!(
            plain["ok"],
            json!(true),
            "the attack leaves a consistent chain: {plain}"
        );
        for source in self.anchor_sources() {
            let v = self.verify(std::slice::from_ref(&source))?;
            assert_eq!(v["ok"], json!(false), "{source}: {v}");
            let problem = v["problem"].as_str().unwrap_or_default();
            assert!(
                words.iter().any(|w| problem.contains(w)),
                "{source}: {problem}"
            );
        }
        let out = self.home.cli(&[
            "audit",
            "verify",
            "--anchor",
            &self.anchor_file.display().to_string(),
        ])?;
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stdout).contains("AUDIT LOG TAMPERED"));
        // The daemon compared the log with the anchor file when it started,
        // and said so on ntfy at the highest priority and in the log.
        let alert = poll(Duration::from_secs(10), || {
            self.receiver
                .posted_to("/av-anchors")
                .into_iter()
                .find(|p| p.text().contains("does not match its last anchor"))
        })?;
        assert_eq!(alert.header("priority"), "5");
        let actions = audit_actions(&self.home)?;
        assert!(
            actions.iter().any(|(a, _)| a == "anchor_mismatch"),
            "{actions:?}"
        );
        Ok(())
    }
}

fn start(home: &Home) -> Result<Daemon> {
    Daemon::start(home, |c| {
        c.env("HOOK_SECRET", HOOK_SECRET);
    })
}

fn anchor_seq(line: &str) -> Option<i64> {
    let v: Value = serde_json::from_str(line).ok()?;
    (v["type"] == json!("agent-vault-audit-anchor"))
        .then(|| v["seq"].as_i64())
        .flatten()
}

fn entries(home: &Home) -> Result<i64> {
    Ok(Connection::open(home.db())?.query_row("SELECT COUNT(*) FROM audit", [], |r| r.get(0))?)
}

/// What an attacker who knows the (public) chain format does after editing
/// rows: recomputes every hash and the head, so the chain checks out.
fn rechain(db: &Path) -> Result<()> {
    let mut conn = Connection::open(db)?;
    let tx = conn.transaction()?;
    let rows: Vec<ChainedRow> = {
        let mut stmt = tx.prepare(
            "SELECT id, timestamp, secret_name, reason, action, scope, COALESCE(ttl_expires_at, ''), \
             operation, vault, config_path, request_id, requester_uid, requester_pid, requester_exe, \
             requester_user, requester_agent, requester_cwd, requester_cmdline, client_name, device_id, \
             detail, approval_digest FROM audit ORDER BY id",
        )?;
        stmt.query_map([], |r| {
            Ok(ChainedRow {
                id: r.get(0)?,
                timestamp: r.get(1)?,
                secret_name: r.get(2)?,
                reason: r.get(3)?,
                action: r.get(4)?,
                scope: r.get(5)?,
                ttl_expires_at: r.get(6)?,
                operation: r.get(7)?,
                vault: r.get(8)?,
                config_path: r.get(9)?,
                request_id: r.get(10)?,
                requester_uid: r.get(11)?,
                requester_pid: r.get(12)?,
                requester_exe: r.get(13)?,
                requester_user: r.get(14)?,
                requester_agent: r.get(15)?,
                requester_cwd: r.get(16)?,
                requester_cmdline: r.get(17)?,
                client_name: r.get(18)?,
                device_id: r.get(19)?,
                detail: r.get(20)?,
                approval_digest: r.get(21)?,
            })
        })?
        .collect::<Result<_, _>>()?
    };
    let mut prev = String::new();
    for row in &rows {
        let h = hash(&prev, row);
        tx.execute(
            "UPDATE audit SET prev_hash = ?1, hash = ?2 WHERE id = ?3",
            params![prev, h, row.id],
        )?;
        prev = h;
    }
    tx.execute(
        "UPDATE audit_head SET last_hash = ?1, count = ?2 WHERE one = 1",
        params![prev, rows.len() as i64],
    )?;
    tx.commit()?;
    Ok(())
}

fn db_files(db: &Path) -> [PathBuf; 3] {
    let side = |s: &str| PathBuf::from(format!("{}{s}", db.display()));
    [db.to_path_buf(), side("-wal"), side("-shm")]
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untouched_log_matches_every_anchor_and_webhooks_are_signed() -> Result<()> {
    let scene = Scene::start().await?;
    let v = scene.verify(&scene.anchor_sources())?;
    assert_eq!(v["ok"], json!(true), "{v}");
    assert!(v["anchorsChecked"].as_u64().unwrap_or(0) >= 3, "{v}");

    // Every event names itself and where the chain stood; ids are unique.
    let events = scene.receiver.posted_to("/events");
    let approvals: Vec<_> = events
        .iter()
        .filter(|p| p.json()["event"] == json!("secret_access"))
        .collect();
    assert_eq!(approvals.len(), 2);
    let mut ids: Vec<&str> = events.iter().map(|p| p.header("webhook-id")).collect();
    for p in &events {
        let body = p.json();
        assert_eq!(body["id"], json!(p.header("webhook-id")));
        assert!(body["chain"]["seq"].is_i64(), "{body}");
        assert!(p.header("webhook-signature").starts_with("v1,"));
        assert!(!p.text().contains("value-of-api-key"));
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "event ids are unique");
    // The approval's position is that of its own audit entry.
    let approved_at: Vec<i64> = Connection::open(scene.home.db())?
        .prepare("SELECT id FROM audit WHERE action = 'approved' ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let positions: Vec<i64> = approvals
        .iter()
        .filter_map(|p| p.json()["chain"]["seq"].as_i64())
        .collect();
    assert_eq!(positions, approved_at);
    for p in &approvals {
        assert_eq!(p.json()["chain"]["hash"].as_str().map(str::len), Some(64));
    }

    // The signatures verify with the Standard Webhooks reference library,
    // and fail with another secret or a changed body.
    if let Some(python) = python_with("standardwebhooks") {
        let cases: Vec<Value> = events
            .iter()
            .map(|p| json!({"body": p.text(), "headers": p.headers}))
            .collect();
        let script = r#"
import json, sys
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
cases = json.load(sys.stdin)
good = Webhook(sys.argv[1])
bad = Webhook("whsec_" + "QUFB" * 8)
for c in cases:
    good.verify(c["body"], c["headers"])
    for wh, body in ((bad, c["body"]), (good, c["body"] + " ")):
        try:
            wh.verify(body, c["headers"])
        except WebhookVerificationError:
            continue
        sys.exit("a forged event verified")
print("verified", len(cases))
"#;
        let out = run_with_stdin(&python, script, HOOK_SECRET, &serde_json::to_vec(&cases)?)?;
        assert!(
            out.starts_with(&format!("verified {}", cases.len())),
            "{out}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rewritten_log_with_a_recomputed_chain_is_caught() -> Result<()> {
    let mut scene = Scene::start().await?;
    scene.tamper(|db| {
        Connection::open(db)?.execute(
            "UPDATE audit SET reason = 'routine check' WHERE reason = 'run the migration'",
            [],
        )?;
        rechain(db)
    })?;
    scene.assert_caught(&["rewritten"])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_cut_short_with_its_head_fixed_is_caught() -> Result<()> {
    let mut scene = Scene::start().await?;
    scene.tamper(|db| {
        let conn = Connection::open(db)?;
        conn.execute(
            "DELETE FROM audit WHERE id >= (SELECT MIN(id) FROM audit WHERE reason = 'run the migration')",
            [],
        )?;
        drop(conn);
        rechain(db)
    })?;
    scene.assert_caught(&["cut off", "cut back"])
}

#[tokio::test(flavor = "multi_thread")]
async fn an_older_copy_of_the_log_put_back_is_caught() -> Result<()> {
    let mut scene = Scene::start().await?;
    let saved = scene.home.dir.path().join("saved");
    std::fs::create_dir(&saved)?;
    scene.tamper(|db| {
        for f in db_files(db) {
            if f.exists() {
                std::fs::copy(&f, saved.join(f.file_name().unwrap_or_default()))?;
            }
        }
        Ok(())
    })?;
    scene.approve_one("read production data").await?;
    scene.anchored(entries(&scene.home)?)?;
    scene.tamper(|db| {
        for f in db_files(db) {
            let _ = std::fs::remove_file(&f);
            let from = saved.join(f.file_name().unwrap_or_default());
            if from.exists() {
                std::fs::copy(from, &f)?;
            }
        }
        Ok(())
    })?;
    scene.assert_caught(&["older copy", "cut back"])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replaced_log_is_caught() -> Result<()> {
    let mut scene = Scene::start().await?;
    scene.tamper(|db| {
        for f in db_files(db) {
            let _ = std::fs::remove_file(f);
        }
        Ok(())
    })?;
    scene.assert_caught(&["replaced"])
}

/// A Python interpreter that has `module`, from `AGENT_VAULT_TEST_PYTHON`;
/// required in CI, skipped (with a note) elsewhere.
fn python_with(module: &str) -> Option<PathBuf> {
    let found = std::env::var_os("AGENT_VAULT_TEST_PYTHON").map(PathBuf::from);
    let usable = found.filter(|p| {
        std::process::Command::new(p)
            .args(["-c", &format!("import {module}")])
            .status()
            .is_ok_and(|s| s.success())
    });
    assert!(
        usable.is_some() || std::env::var("CI").is_err(),
        "AGENT_VAULT_TEST_PYTHON with the {module} package is required in CI"
    );
    if usable.is_none() {
        eprintln!("skipped: set AGENT_VAULT_TEST_PYTHON to a python with the `{module}` package");
    }
    usable
}

fn run_with_stdin(python: &Path, script: &str, arg: &str, input: &[u8]) -> Result<String> {
    use std::io::Write;
    let mut child = std::process::Command::new(python)
        .args(["-c", script, arg])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .map(|mut s| s.write_all(input))
        .transpose()?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("python: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
