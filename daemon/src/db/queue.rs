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

use rusqlite::Connection;
use tokio::sync::{Notify, oneshot, watch};

use super::audit::Head;
use super::batch::{self, StoreCmd};
use super::{StoreError, schema};
use crate::audit::AuditEvent;
use crate::audit::chain::ChainHead;

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
        let mut result = batch::write(&mut c.conn, &c.head, &batch);
        if let Err(e) = &result {
            // A rolled-back transaction changed nothing; try once more,
            // from the head as the database has it.
            tracing::error!(error = %e, records = batch.len(), "store batch failed; retrying once");
            if let Ok(h) = Head::load(&c.conn) {
                c.head = h;
            }
            result = batch::write(&mut c.conn, &c.head, &batch);
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
        self.send(StoreCmd::Audit(Box::new(event.to_row())));
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
    let conn = schema::open(path)?;
    // Checkpoints are the writer thread's job, never a caller's.
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .map_err(err)?;
    let head = Head::load(&conn).map_err(err)?;
    let (head_tx, _) = watch::channel(ChainHead {
        seq: head.count,
        hash: head.last_hash.clone(),
    });
    let checkpointer = schema::open(path)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Action;
    use crate::db::Store;
    /// row.
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
                        secret_name: format!("S{i}"),
                        ..AuditEvent::new(Action::Approved, 1_000)
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
            tx.audit(AuditEvent::new(Action::Approved, 0));
            assert!(tx.flush().await);
        }
        assert_eq!(tx.shared.commits.load(Ordering::Relaxed), grouped + 1);
        assert_eq!(tx.shared.working.load(Ordering::Relaxed), 0);
        drop(tx);
        let _ = handle.join();
        Ok(())
    }

    #[tokio::test]
    async fn a_batch_that_cannot_commit_fails_its_flush_and_leaves_no_gap()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("a.db");
        let (tx, handle) = start(&db, Arc::new(Notify::new()))?;
        let event = |name: &str| AuditEvent {
            secret_name: name.into(),
            ..AuditEvent::new(Action::Approved, 1)
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn unflushed_records_land_and_concurrent_flushes_keep_the_chain()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("a.db");
        let (tx, handle) = start(&db, Arc::new(Notify::new()))?;
        let event = |name: String| AuditEvent {
            secret_name: name,
            ..AuditEvent::new(Action::AutoApproved, 1)
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
