//! The one writer: every change to the database goes through one queue, in
//! order, and is committed in batches (one transaction, cached prepared
//! statements) by whoever holds the connection:
//!
//! - a caller of [`StoreTx::flush`] commits inline when the connection is
//!   free: the queue up to and including its flush, in one transaction, on
//!   its own thread. On this machine a wake-up of another thread costs more
//!   than the commit itself, so the common case (an agent's get, which must
//!   not return before its audit row is stored) waits for no other thread;
//! - the writer thread commits everything else (records nobody waits for),
//!   anything a busy connection left behind, and checkpoints the WAL, mostly
//!   on a connection of its own, so that no caller waits for more than the
//!   last few frames of a checkpoint.
//!
//! Every batch is taken from the front of the queue while the connection is
//! held, so the commit order is the send order, and the hash chain follows
//! it. The queue is unbounded: nothing is ever dropped for lack of room.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{Notify, oneshot, watch};

use super::AuditEvent;
use super::chain::{self, ChainHead, ChainedRow};
use super::store::{self, DeviceRecord, StoreError};
use crate::clock;
use crate::grants::Grant;

pub enum StoreCmd {
    Audit(Box<AuditEvent>),
    /// Queue a webhook delivery (same transaction as the audit rows before
    /// it, whose chain head it carries).
    Webhook {
        event_id: String,
        config_path: String,
        hook_index: usize,
        url: String,
        payload: String,
        now_ms: i64,
    },
    WebhookDone(i64),
    WebhookRetry {
        id: i64,
        attempts: i64,
        next_attempt_ms: i64,
    },
    PutGrant(Grant),
    DeleteGrants(Vec<String>),
    PutDevice(DeviceRecord),
    TouchDevice {
        id: String,
        now_ms: i64,
    },
    /// Revokes a device and deletes its passkeys.
    RevokeDevice(String),
    /// Stores a new passkey or its updated counter.
    PutPasskey(Box<crate::passkeys::StoredPasskey>),
    /// Enroll (Some) or remove (None) the TOTP authenticator.
    PutTotp(Option<Vec<u8>>),
    /// The last TOTP time step accepted (codes are single use).
    TotpStep(u64),
    /// Answered once everything sent before it is committed; dropped
    /// unanswered when that failed.
    Flush(oneshot::Sender<()>),
}

const MAX_BATCH: usize = 1024;
/// How often the writer thread checkpoints the WAL into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// How long the writer thread leaves new records to a flush that usually
/// follows them (an agent's get records its row, then flushes).
const GRACE: Duration = Duration::from_millis(2);

#[derive(Default)]
struct Queue {
    items: Vec<StoreCmd>,
    /// Live `StoreTx` handles; the writer thread ends at 0 once drained.
    handles: usize,
}

/// The connection and the chain head: whoever holds this commits.
struct Committer {
    conn: Connection,
    head: Head,
}

struct Shared {
    queue: Mutex<Queue>,
    queued: Condvar,
    committer: Mutex<Committer>,
    /// Told after every commit, so that a flush that found the connection
    /// busy tries again itself rather than waiting for another thread.
    committed: Notify,
    /// Commits since the last checkpoint.
    dirty: AtomicBool,
    /// Calls in progress that will flush (see [`StoreTx::working`]).
    working: AtomicUsize,
    /// Transactions committed (tests check how rows are grouped).
    commits: AtomicUsize,
    webhooks_queued: Arc<Notify>,
    /// The chain's head after the last commit (anchoring and the approval
    /// pages watch it).
    head: watch::Sender<ChainHead>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Takes the front of the queue (at most [`MAX_BATCH`] commands).
    /// Call with the committer held, so batches commit in send order.
    fn take_batch(&self) -> Vec<StoreCmd> {
        let mut q = lock(&self.queue);
        if q.items.len() <= MAX_BATCH {
            std::mem::take(&mut q.items)
        } else {
            q.items.drain(..MAX_BATCH).collect()
        }
    }

    /// Commits one batch with the committer held: retried once from the
    /// head as the database has it; on success the batch's flushes are
    /// answered, on failure they are dropped (their callers learn it).
    fn commit(&self, c: &mut Committer, batch: Vec<StoreCmd>) {
        if batch.is_empty() {
            return;
        }
        // The whole batch commits in one transaction, so every flush in it
        // is answered by that one commit.
        let mut acks = Vec::new();
        let batch: Vec<StoreCmd> = batch
            .into_iter()
            .filter_map(|cmd| match cmd {
                StoreCmd::Flush(ack) => {
                    acks.push(ack);
                    None
                }
                other => Some(other),
            })
            .collect();
        let mut result = write_batch(&mut c.conn, &c.head, &batch);
        if let Err(e) = &result {
            // A rolled-back transaction changed nothing; try once more,
            // from the head as the database has it.
            tracing::error!(error = %e, records = batch.len(), "store batch failed; retrying once");
            if let Ok(h) = Head::load(&c.conn) {
                c.head = h;
            }
            result = write_batch(&mut c.conn, &c.head, &batch);
        }
        let committed = &self.committed;
        let _tell = Defer(|| committed.notify_waiters());
        match result {
            Ok((head, queued_hooks)) => {
                c.head = head;
                self.publish(&c.head);
                self.commits.fetch_add(1, Ordering::Relaxed);
                self.dirty.store(true, Ordering::Relaxed);
                if queued_hooks {
                    self.webhooks_queued.notify_one();
                }
                for ack in acks {
                    let _ = ack.send(());
                }
            }
            Err(e) => {
                // Dropping the acks tells every waiting flush that its
                // records are not stored: what depends on them (a value, an
                // approval) does not happen.
                tracing::error!(error = %e, records = batch.len(), "store batch failed twice; these records are lost and the calls waiting on them fail");
                if let Ok(h) = Head::load(&c.conn) {
                    c.head = h;
                    self.publish(&c.head);
                }
            }
        }
    }

    /// Tells the head's watchers when it moved.
    fn publish(&self, head: &Head) {
        self.head.send_if_modified(|h| {
            let moved = h.seq != head.count || h.hash != head.last_hash;
            if moved {
                h.seq = head.count;
                h.hash.clone_from(&head.last_hash);
            }
            moved
        });
    }

    fn commit_now(&self) {
        let mut c = match self.committer.try_lock() {
            Ok(c) => c,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return,
        };
        let batch = self.take_batch();
        self.commit(&mut c, batch);
    }

    /// Copies the WAL into the database in two steps, so that no flush
    /// waits long and the WAL still starts over: first on the writer
    /// thread's own connection, holding none of our locks (a PASSIVE
    /// checkpoint waits for no writer), which copies nearly everything;
    /// then, holding the connection for the moment it takes, the few frames
    /// committed meanwhile. The WAL is then fully copied, so the next commit
    /// rewinds it instead of letting it grow under steady load.
    fn checkpoint(&self, own: &Connection) {
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return;
        }
        let passive =
            |conn: &Connection| conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        let result = passive(own).and_then(|()| {
            let c = lock(&self.committer);
            let r = passive(&c.conn);
            drop(c);
            // A flush that found the connection busy with this tries again.
            self.committed.notify_waiters();
            r
        });
        if let Err(e) = result {
            tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
            self.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// The writer thread: commits what no flush took, and checkpoints.
    fn run(&self, checkpointer: Connection) {
        let mut last_checkpoint = Instant::now();
        loop {
            let mut q = lock(&self.queue);
            while q.items.is_empty() && q.handles > 0 {
                let wait = CHECKPOINT_EVERY.saturating_sub(last_checkpoint.elapsed());
                let (guard, timeout) = self
                    .queued
                    .wait_timeout(q, wait.max(Duration::from_millis(1)))
                    .unwrap_or_else(|e| e.into_inner());
                q = guard;
                if timeout.timed_out() && q.items.is_empty() {
                    drop(q);
                    self.checkpoint(&checkpointer);
                    last_checkpoint = Instant::now();
                    q = lock(&self.queue);
                }
            }
            if q.items.is_empty() {
                // Every handle is gone and nothing is left.
                break;
            }
            let closing = q.handles == 0;
            drop(q);
            if !closing {
                std::thread::sleep(GRACE);
            }
            // A flush has usually taken everything by now; then leave the
            // connection alone rather than hold it against the next one.
            if !lock(&self.queue).items.is_empty() {
                let mut c = lock(&self.committer);
                let batch = self.take_batch();
                self.commit(&mut c, batch);
            }
            if last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
                self.checkpoint(&checkpointer);
                last_checkpoint = Instant::now();
            }
        }
        self.checkpoint(&checkpointer);
    }
}

/// Runs a closure when dropped (on every way out of a commit).
struct Defer<F: Fn()>(F);

impl<F: Fn()> Drop for Defer<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

/// The sending side, cloned wherever something must be recorded.
pub struct StoreTx {
    shared: Arc<Shared>,
}

impl Clone for StoreTx {
    fn clone(&self) -> Self {
        lock(&self.shared.queue).handles += 1;
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for StoreTx {
    fn drop(&mut self) {
        let mut q = lock(&self.shared.queue);
        q.handles = q.handles.saturating_sub(1);
        if q.handles == 0 {
            self.shared.queued.notify_one();
        }
    }
}

impl StoreTx {
    /// Queues a command. The queue is unbounded, so this never drops one
    /// and never waits for the database.
    pub fn send(&self, cmd: StoreCmd) {
        let was_empty = {
            let mut q = lock(&self.shared.queue);
            q.items.push(cmd);
            q.items.len() == 1
        };
        // While a call is in progress its flush (or, failing that, the end
        // of the call) takes care of the queue: no need to wake the writer.
        if was_empty && self.shared.working.load(Ordering::Relaxed) == 0 {
            self.shared.queued.notify_one();
        }
    }

    /// Marks a call that will record and flush as in progress until the
    /// guard drops: a flush that sees others in progress lets them queue
    /// their rows before it commits (a group commit under load).
    pub fn working(&self) -> Working {
        self.shared.working.fetch_add(1, Ordering::Relaxed);
        Working(self.shared.clone())
    }

    /// The chain's head, updated after every commit that added entries.
    pub fn head(&self) -> watch::Receiver<ChainHead> {
        self.shared.head.subscribe()
    }

    pub fn audit(&self, event: AuditEvent) {
        self.send(StoreCmd::Audit(Box::new(event)));
    }

    /// Waits until everything sent so far is committed, committing it
    /// inline when the connection is free. False when it could not be (the
    /// batch failed twice): then nothing that depends on those records may
    /// happen.
    #[must_use = "a value may be released only once its audit rows are committed"]
    pub async fn flush(&self) -> bool {
        let (tx, mut rx) = oneshot::channel();
        lock(&self.shared.queue).items.push(StoreCmd::Flush(tx));
        // Other calls in progress: let the tasks that are ready now queue
        // their rows first, so that one commit carries them all. Alone, it
        // commits at once (a yield costs a trip through the scheduler).
        if self.shared.working.load(Ordering::Relaxed) > 1 {
            tokio::task::yield_now().await;
        }
        loop {
            // Registered before trying, so a commit that ends in between
            // still wakes this loop.
            let committed = self.shared.committed.notified();
            // Busy means another thread is committing right now: its batch
            // may hold this flush; if not, try again when it is done.
            self.shared.commit_now();
            match rx.try_recv() {
                Ok(()) => return true,
                Err(oneshot::error::TryRecvError::Closed) => return false,
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            tokio::select! {
                answered = &mut rx => return answered.is_ok(),
                () = committed => {}
            }
        }
    }
}

/// A call in progress; see [`StoreTx::working`].
pub struct Working(Arc<Shared>);

impl Drop for Working {
    /// The last call to end hands anything still queued (rows sent while
    /// calls were in progress and never flushed) to the writer thread.
    fn drop(&mut self) {
        if self.0.working.fetch_sub(1, Ordering::Relaxed) == 1
            && !lock(&self.0.queue).items.is_empty()
        {
            self.0.queued.notify_one();
        }
    }
}

/// Starts the writer thread. `webhooks_queued` is notified after a commit
/// that queued deliveries. The thread ends when every `StoreTx` is dropped
/// and the queue is empty.
pub fn start(
    path: &Path,
    webhooks_queued: Arc<Notify>,
) -> Result<(StoreTx, std::thread::JoinHandle<()>), StoreError> {
    let err = |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let conn = store::open(path)?;
    // Checkpoints are the writer thread's job, never a caller's.
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .map_err(err)?;
    let head = Head::load(&conn).map_err(err)?;
    let (head_tx, _) = watch::channel(ChainHead {
        seq: head.count,
        hash: head.last_hash.clone(),
    });
    let checkpointer = store::open(path)?;
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue {
            items: Vec::new(),
            handles: 1,
        }),
        queued: Condvar::new(),
        committer: Mutex::new(Committer { conn, head }),
        committed: Notify::new(),
        dirty: AtomicBool::new(false),
        working: AtomicUsize::new(0),
        commits: AtomicUsize::new(0),
        webhooks_queued,
        head: head_tx,
    });
    let thread_shared = shared.clone();
    let handle = std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || thread_shared.run(checkpointer))
        .map_err(|e| err(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?;
    Ok((StoreTx { shared }, handle))
}

/// The chain's head: the last hash and the row count.
struct Head {
    last_hash: String,
    count: i64,
    /// The highest id in the table; the next row gets the one after.
    last_id: i64,
}

impl Head {
    fn load(conn: &Connection) -> rusqlite::Result<Head> {
        let head = conn
            .query_row(
                "SELECT last_hash, count FROM audit_head WHERE one = 1",
                [],
                |r| {
                    Ok(Head {
                        last_hash: r.get(0)?,
                        count: r.get(1)?,
                        last_id: 0,
                    })
                },
            )
            .optional()?;
        let last_id: i64 =
            conn.query_row("SELECT COALESCE(MAX(id), 0) FROM audit", [], |r| r.get(0))?;
        let mut head = head.unwrap_or(Head {
            last_hash: String::new(),
            count: 0,
            last_id: 0,
        });
        head.last_id = last_id;
        Ok(head)
    }
}

/// Writes a batch in one transaction; returns the new chain head and
/// whether webhook deliveries were queued. On error nothing is written.
fn write_batch(
    conn: &mut Connection,
    head: &Head,
    batch: &[StoreCmd],
) -> rusqlite::Result<(Head, bool)> {
    let tx = conn.transaction()?;
    let mut next = Head {
        last_hash: head.last_hash.clone(),
        count: head.count,
        last_id: head.last_id,
    };
    let mut wrote_audit = false;
    let mut queued_hooks = false;
    for cmd in batch {
        match cmd {
            StoreCmd::Audit(e) => {
                insert_audit(&tx, &mut next, e)?;
                wrote_audit = true;
            }
            StoreCmd::Webhook {
                event_id,
                config_path,
                hook_index,
                url,
                payload,
                now_ms,
            } => {
                tx.prepare_cached(
                    "INSERT INTO webhook_outbox (config_path, hook_index, url, payload, attempts, next_attempt_ms, created_ms, \
                     event_id, chain_seq, chain_hash) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![
                    config_path,
                    *hook_index as i64,
                    url,
                    payload,
                    now_ms,
                    event_id,
                    next.count,
                    next.last_hash
                ])?;
                queued_hooks = true;
            }
            StoreCmd::WebhookDone(id) => {
                tx.prepare_cached("DELETE FROM webhook_outbox WHERE id = ?1")?
                    .execute([id])?;
            }
            StoreCmd::WebhookRetry {
                id,
                attempts,
                next_attempt_ms,
            } => {
                tx.prepare_cached(
                    "UPDATE webhook_outbox SET attempts = ?2, next_attempt_ms = ?3 WHERE id = ?1",
                )?
                .execute(params![id, attempts, next_attempt_ms])?;
            }
            StoreCmd::PutGrant(g) => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO grants (id, config_path, vault, scope, name, session_id, expires_at_ms, \
                     owner_uid, requester_uid, definition, source) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )?
                .execute(params![
                    g.id,
                    &*g.vault.config,
                    &*g.vault.name,
                    g.scope.as_str(),
                    g.name,
                    g.session,
                    g.expires_at_ms,
                    g.vault.owner,
                    g.binding.uid,
                    &*g.binding.definition,
                    &*g.binding.source
                ])?;
            }
            StoreCmd::DeleteGrants(ids) => {
                let mut stmt = tx.prepare_cached("DELETE FROM grants WHERE id = ?1")?;
                for id in ids {
                    stmt.execute([id])?;
                }
            }
            StoreCmd::PutDevice(d) => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO devices (id, label, secret_hash, paired_at_ms, last_seen_ms, revoked, proof_hash) \
                     VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)",
                )?
                .execute(params![d.id, d.label, d.secret_hash, d.paired_at_ms, d.last_seen_ms, d.proof_hash])?;
            }
            StoreCmd::TouchDevice { id, now_ms } => {
                tx.prepare_cached("UPDATE devices SET last_seen_ms = ?2 WHERE id = ?1")?
                    .execute(params![id, now_ms])?;
            }
            StoreCmd::RevokeDevice(id) => {
                tx.prepare_cached("UPDATE devices SET revoked = 1 WHERE id = ?1")?
                    .execute([id])?;
                tx.prepare_cached("DELETE FROM passkeys WHERE device_id = ?1")?
                    .execute([id])?;
            }
            StoreCmd::PutPasskey(k) => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO passkeys (id, device_id, rp_id, passkey, created_ms) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    k.id,
                    k.device_id,
                    k.rp_id,
                    k.to_json()
                        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?,
                    k.created_ms
                ])?;
            }
            StoreCmd::PutTotp(Some(secret)) => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO totp (one, secret, last_step) VALUES (1, ?1, 0)",
                )?
                .execute([secret])?;
            }
            StoreCmd::PutTotp(None) => {
                tx.prepare_cached("DELETE FROM totp")?.execute([])?;
            }
            StoreCmd::TotpStep(step) => {
                tx.prepare_cached("UPDATE totp SET last_step = ?1 WHERE one = 1")?
                    .execute([*step as i64])?;
            }
            StoreCmd::Flush(_) => {}
        }
    }
    if wrote_audit {
        tx.prepare_cached(
            "INSERT INTO audit_head (one, last_hash, count) VALUES (1, ?1, ?2) \
             ON CONFLICT(one) DO UPDATE SET last_hash = excluded.last_hash, count = excluded.count",
        )?
        .execute(params![next.last_hash, next.count])?;
    }
    tx.commit()?;
    Ok((next, queued_hooks))
}

fn insert_audit(
    tx: &rusqlite::Transaction<'_>,
    head: &mut Head,
    e: &AuditEvent,
) -> rusqlite::Result<()> {
    // The id is assigned here (not by SQLite) so that it can be hashed.
    let id = head.last_id + 1;
    let requester = e.requester.clone().unwrap_or_default();
    let has_requester = e.requester.is_some();
    let row = ChainedRow {
        id,
        timestamp: clock::iso(e.timestamp_ms),
        secret_name: e.secret_name.clone(),
        reason: e.reason.clone(),
        action: e.action.clone(),
        scope: e.scope.clone(),
        ttl_expires_at: e.ttl_expires_ms.map(clock::iso).unwrap_or_default(),
        operation: e.operation.clone(),
        vault: e
            .vault
            .as_ref()
            .map(|v| v.name.to_string())
            .unwrap_or_default(),
        config_path: e
            .vault
            .as_ref()
            .map(|v| v.config.to_string())
            .unwrap_or_default(),
        request_id: e.request_id.clone(),
        requester_uid: has_requester.then_some(requester.uid as i64),
        requester_pid: has_requester.then_some(requester.pid as i64),
        requester_exe: requester.exe.clone(),
        requester_user: requester.user.clone(),
        requester_agent: requester.agent.clone(),
        requester_cwd: requester.cwd.clone(),
        requester_cmdline: requester.cmdline.clone(),
        client_name: requester.mcp_client.clone(),
        device_id: e.device_id.clone(),
        detail: e.detail.clone(),
        approval_digest: e.approval_digest.clone(),
    };
    let hash = chain::hash(&head.last_hash, &row);
    let ttl: Option<&str> = (!row.ttl_expires_at.is_empty()).then_some(row.ttl_expires_at.as_str());
    tx.prepare_cached(
        "INSERT INTO audit (id, timestamp, secret_name, reason, action, scope, ttl_expires_at, operation, vault, \
         config_path, request_id, requester_uid, requester_pid, requester_exe, client_name, device_id, detail, prev_hash, hash, \
         requester_user, requester_agent, requester_cwd, requester_cmdline, approval_digest) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)",
    )?
    .execute(params![
        row.id,
        row.timestamp,
        row.secret_name,
        row.reason,
        row.action,
        row.scope,
        ttl,
        row.operation,
        row.vault,
        row.config_path,
        row.request_id,
        row.requester_uid,
        row.requester_pid,
        row.requester_exe,
        row.client_name,
        row.device_id,
        row.detail,
        head.last_hash,
        hash,
        row.requester_user,
        row.requester_agent,
        row.requester_cwd,
        row.requester_cmdline,
        row.approval_digest,
    ])?;
    head.last_hash = hash;
    head.count += 1;
    head.last_id = id;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::store::Store;

    /// New tables have no AUTOINCREMENT (an extra page per commit); a table
    /// created with it, by an earlier release, keeps taking rows in order.
    #[tokio::test]
    async fn audit_ids_with_and_without_autoincrement() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let fresh = dir.path().join("new.db");
        let old = dir.path().join("old.db");
        let earlier = store::SCHEMA.replacen(
            "id INTEGER PRIMARY KEY,",
            "id INTEGER PRIMARY KEY AUTOINCREMENT,",
            1,
        );
        assert_ne!(earlier, store::SCHEMA);
        Connection::open(&old)?.execute_batch(&earlier)?;
        for db in [&fresh, &old] {
            let (tx, handle) = start(db, Arc::new(Notify::new()))?;
            for i in 0..3 {
                tx.audit(AuditEvent {
                    timestamp_ms: 1_000 + i,
                    action: "approved".into(),
                    ..Default::default()
                });
                assert!(tx.flush().await);
            }
            drop(tx);
            let _ = handle.join();
            let v = Store::open(db)?.verify(&Default::default())?;
            assert_eq!((v.rows_checked, v.problem), (3, None));
            let ids: Vec<i64> = Connection::open(db)?
                .prepare("SELECT id FROM audit ORDER BY id")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            assert_eq!(ids, [1, 2, 3]);
        }
        let sql: String = Connection::open(&fresh)?.query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'audit'",
            [],
            |r| r.get(0),
        )?;
        assert!(!sql.contains("AUTOINCREMENT"), "{sql}");
        Ok(())
    }

    /// An agent's get commits one audit row; that commit writes two pages
    /// (the row's and the chain head's), nothing else. A database from a
    /// build that indexed the timestamp (a third page per commit, never
    /// read) loses the index when opened and keeps its 4 KiB pages; a new
    /// database gets 2 KiB pages.
    #[test]
    fn one_audit_row_writes_two_pages() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("audit.db");
        Connection::open(&db)?.execute_batch(&format!(
            "{}CREATE INDEX audit_timestamp ON audit(timestamp);",
            store::SCHEMA
        ))?;
        let mut conn = store::open(&db)?;
        let indexes: i64 = conn.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit'",
            [],
            |r| r.get(0),
        )?;
        assert_eq!(indexes, 0);
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // An existing database keeps its page size; a new one gets 2 KiB.
        let page_size =
            |c: &Connection| c.query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0));
        let page = page_size(&conn)?;
        assert_eq!(page, 4096);
        assert_eq!(page_size(&store::open(&dir.path().join("new.db"))?)?, 2048);
        let page = page as u64;
        let wal = dir.path().join("audit.db-wal");
        let mut head = Head::load(&conn)?;
        let row = || {
            StoreCmd::Audit(Box::new(AuditEvent {
                timestamp_ms: 1_700_000_000_000,
                secret_name: "API_KEY".into(),
                reason: "deploy".into(),
                action: "auto_approved".into(),
                ..Default::default()
            }))
        };
        // The first commit also creates the head's row and a leaf.
        for _ in 0..3 {
            head = write_batch(&mut conn, &head, &[row()])?.0;
        }
        for _ in 0..5 {
            let before = std::fs::metadata(&wal)?.len();
            head = write_batch(&mut conn, &head, &[row()])?.0;
            let frames = (std::fs::metadata(&wal)?.len() - before) / (page + 24);
            assert_eq!(frames, 2);
        }
        Ok(())
    }

    /// Calls in progress together share a commit: each flush lets the
    /// others queue their rows first. Alone, a flush commits at once.
    #[tokio::test]
    async fn concurrent_calls_share_one_commit() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let (tx, handle) = start(&dir.path().join("a.db"), Arc::new(Notify::new()))?;
        let calls = 16;
        let all_working = Arc::new(tokio::sync::Barrier::new(calls));
        let tasks: Vec<_> = (0..calls)
            .map(|i| {
                let tx = tx.clone();
                let all_working = all_working.clone();
                tokio::spawn(async move {
                    let _working = tx.working();
                    all_working.wait().await;
                    tx.audit(AuditEvent {
                        timestamp_ms: 1_000,
                        secret_name: format!("S{i}"),
                        action: "approved".into(),
                        ..Default::default()
                    });
                    tx.flush().await
                })
            })
            .collect();
        for t in tasks {
            assert!(t.await?);
        }
        let grouped = tx.shared.commits.load(Ordering::Relaxed);
        assert!(
            grouped <= 2,
            "{calls} concurrent calls took {grouped} commits"
        );
        // One call alone: committed by its own flush, no waiting.
        {
            let _working = tx.working();
            tx.audit(AuditEvent::default());
            assert!(tx.flush().await);
        }
        assert_eq!(tx.shared.commits.load(Ordering::Relaxed), grouped + 1);
        assert_eq!(tx.shared.working.load(Ordering::Relaxed), 0);
        drop(tx);
        let _ = handle.join();
        Ok(())
    }

    #[tokio::test]
    async fn chain_detects_deletion_and_edits() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("a.db");
        let (tx, handle) = start(&db, Arc::new(Notify::new()))?;
        for i in 0..5 {
            tx.audit(AuditEvent {
                timestamp_ms: 1_000 + i,
                secret_name: format!("S{i}"),
                action: "approved".into(),
                ..Default::default()
            });
        }
        assert!(tx.flush().await);
        drop(tx);
        let _ = handle.join();
        let store = Store::open(&db)?;
        assert_eq!(store.verify(&Default::default())?.problem, None);
        assert_eq!(store.verify(&Default::default())?.rows_checked, 5);

        let conn = Connection::open(&db)?;
        conn.execute("UPDATE audit SET reason = 'edited' WHERE id = 2", [])?;
        assert!(
            store
                .verify(&Default::default())?
                .problem
                .unwrap_or_default()
                .contains("row 2")
        );
        conn.execute("UPDATE audit SET reason = '' WHERE id = 2", [])?;
        assert_eq!(store.verify(&Default::default())?.problem, None);
        conn.execute("DELETE FROM audit WHERE id = 3", [])?;
        assert!(
            store
                .verify(&Default::default())?
                .problem
                .unwrap_or_default()
                .contains("row 4")
        );
        Ok(())
    }

    #[tokio::test]
    async fn chain_detects_a_deleted_last_row() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("a.db");
        let (tx, handle) = start(&db, Arc::new(Notify::new()))?;
        for _ in 0..3 {
            tx.audit(AuditEvent {
                action: "denied".into(),
                ..Default::default()
            });
        }
        assert!(tx.flush().await);
        drop(tx);
        let _ = handle.join();
        Connection::open(&db)?.execute("DELETE FROM audit WHERE id = 3", [])?;
        let v = Store::open(&db)?.verify(&Default::default())?;
        assert!(v.problem.unwrap_or_default().contains("deleted"));
        Ok(())
    }

    #[tokio::test]
    async fn a_batch_that_cannot_commit_fails_its_flush_and_leaves_no_gap()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("a.db");
        let (tx, handle) = start(&db, Arc::new(Notify::new()))?;
        let event = |name: &str| AuditEvent {
            timestamp_ms: 1,
            secret_name: name.into(),
            action: "approved".into(),
            ..Default::default()
        };
        tx.audit(event("FIRST"));
        assert!(tx.flush().await);
        // Every insert of this name fails, as a full disk would.
        Connection::open(&db)?.execute_batch(
            "CREATE TRIGGER boom BEFORE INSERT ON audit WHEN NEW.secret_name = 'BOOM' \
             BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
        )?;
        tx.audit(event("BOOM"));
        assert!(
            !tx.flush().await,
            "the caller learns its rows are not stored"
        );
        Connection::open(&db)?.execute_batch("DROP TRIGGER boom")?;
        tx.audit(event("AFTER"));
        assert!(tx.flush().await);
        drop(tx);
        let _ = handle.join();
        let store = Store::open(&db)?;
        let v = store.verify(&Default::default())?;
        assert_eq!(
            (v.rows_checked, v.problem),
            (2, None),
            "the chain has no gap"
        );
        Ok(())
    }

    /// Records no one flushes are committed by the writer thread, and many
    /// tasks flushing at once share commits without losing or reordering a
    /// row.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn unflushed_records_land_and_concurrent_flushes_keep_the_chain()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("a.db");
        let (tx, handle) = start(&db, Arc::new(Notify::new()))?;
        let event = |name: String| AuditEvent {
            timestamp_ms: 1,
            secret_name: name,
            action: "auto_approved".into(),
            ..Default::default()
        };
        tx.audit(event("LONE".into()));
        let store = Store::open(&db)?;
        let mut landed = false;
        for _ in 0..200 {
            if store.verify(&Default::default())?.rows_checked == 1 {
                landed = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(landed, "the writer thread committed the unflushed row");

        let tasks: Vec<_> = (0..16)
            .map(|t| {
                let tx = tx.clone();
                tokio::spawn(async move {
                    for i in 0..200 {
                        tx.audit(event(format!("T{t}-{i}")));
                        assert!(tx.flush().await);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await?;
        }
        drop(tx);
        let _ = handle.join();
        let v = store.verify(&Default::default())?;
        assert_eq!((v.rows_checked, v.problem), (1 + 16 * 200, None));
        // Each task's rows are in the order it sent them.
        let names: Vec<String> = Connection::open(&db)?
            .prepare("SELECT secret_name FROM audit ORDER BY id")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut last = std::collections::HashMap::new();
        for n in names.iter().filter(|n| n.starts_with('T')) {
            let (t, i) = n[1..].split_once('-').unwrap_or_default();
            let i: i64 = i.parse()?;
            let prev = last.insert(t.to_string(), i).unwrap_or(-1);
            assert_eq!(i, prev + 1, "task {t}: {i} after {prev}");
        }
        Ok(())
    }
}
