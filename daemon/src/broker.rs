//! Pending approvals: create or join, decide once, expire, notify waiters.
//!
//! Each request's state lives in a `watch` channel: a decision is a
//! compare-and-set on it (`send_if_modified`), so a request can be decided
//! exactly once however many approvers race, and every waiter wakes at once.
//! The broker's maps sit behind one short `std::sync::Mutex` that is never
//! held across an await.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::command_line::CommandLine;
use crate::config::{ApprovalFactor, TtlScope};
use crate::grants::Binding;
use crate::secret::SecretString;
use crate::session::Session;
use crate::vault_id::VaultId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Read,
    Write,
    /// Values for one command to use, not for the agent to see.
    Run,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::Write => "write",
            Operation::Run => "run",
        }
    }

    /// Whether an approval releases values (to the agent, or to the
    /// command it runs).
    pub fn releases_values(self) -> bool {
        matches!(self, Operation::Read | Operation::Run)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Pending,
    /// Approved by the last device needed; the approval's audit rows are
    /// being committed. It takes effect (Approved) only once they are, so
    /// no value or write ever happens that the log does not show.
    Recording {
        device: String,
        window_minutes: f64,
    },
    /// Approved; for reads the values are fetched when delivered.
    Approved {
        device: String,
        window_minutes: f64,
    },
    /// A write approved and applied.
    Written {
        device: String,
    },
    /// A write approved whose provider call failed (message has no value).
    WriteFailed {
        device: String,
        message: String,
    },
    Denied {
        device: String,
    },
    Expired,
    Cancelled {
        why: String,
    },
    /// A read approval whose values went to the requester (single use).
    Delivered,
}

impl State {
    /// One word for the approval page's script (`/approve/{id}/state`).
    pub fn as_str(&self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Recording { .. } => "recording",
            State::Approved { .. } => "approved",
            State::Written { .. } => "written",
            State::WriteFailed { .. } => "write_failed",
            State::Denied { .. } => "denied",
            State::Expired => "expired",
            State::Cancelled { .. } => "cancelled",
            State::Delivered => "delivered",
        }
    }
}

impl State {
    /// Whether a waiter for `op` has its answer.
    pub fn settled(&self, op: Operation) -> bool {
        match self {
            State::Pending | State::Recording { .. } => false,
            State::Approved { .. } => op.releases_values(),
            _ => true,
        }
    }
}

/// Everything a request asks for; bound to the request for its lifetime.
pub struct PendingApproval {
    pub id: String,
    pub vault: VaultId,
    /// What the approval is for beyond the vault's name; its windows are
    /// bound to it, and an approved read is delivered only from that source.
    pub binding: Binding,
    pub operation: Operation,
    /// The command a run is for (operation Run only).
    pub command: Option<CommandLine>,
    /// Names shown to the approver (reads: those no window covers).
    pub names: Vec<String>,
    /// Every name the agent asked for, in its order (reads).
    pub all_names: Vec<String>,
    pub writes: Vec<(String, SecretString)>,
    pub previews: Vec<String>,
    /// Where the values live (an env vault's file), shown to the approver.
    pub location: String,
    pub reason: String,
    pub session: Arc<Session>,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub ttl_minutes: f64,
    pub scope: TtlScope,
    /// Distinct devices that must approve (quorum).
    pub approvers_needed: u32,
    /// What approving needs beyond a paired device's cookie.
    pub factor: ApprovalFactor,
    /// Terminal approval allowed even when the admin is an agent uid.
    pub allow_terminal: bool,
    /// With scope vault, whether the window may cover the whole vault: not
    /// when a name asked for is under a policy of its own.
    pub whole_vault_window: bool,
    /// Devices that approved so far, while fewer than needed.
    approvals: Mutex<Vec<String>>,
    state: watch::Sender<State>,
    /// Set once the requester has been told a final outcome; the request
    /// then stops being joinable.
    reported: AtomicBool,
    join_key: String,
}

impl std::fmt::Debug for PendingApproval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingApproval")
            .field("id", &self.id)
            .field("vault", &self.vault)
            .field("operation", &self.operation)
            .field("names", &self.names)
            .field("state", &*self.state.borrow())
            .finish_non_exhaustive()
    }
}

impl PendingApproval {
    pub fn state(&self) -> State {
        self.state.borrow().clone()
    }

    /// Devices that have approved so far (quorum requests).
    pub fn approved_by(&self) -> Vec<String> {
        self.approvals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<State> {
        self.state.subscribe()
    }

    /// Atomically moves from `from` (matched by the predicate) to `to`.
    fn transition(&self, from: impl Fn(&State) -> bool, to: State) -> bool {
        self.state.send_if_modified(|s| {
            if from(s) {
                *s = to;
                true
            } else {
                false
            }
        })
    }

    /// Recording → Approved once the approval's rows are committed, or →
    /// Cancelled (with why) when they could not be.
    pub fn recorded(&self, committed: Result<(), String>) {
        let (device, window_minutes) = match &*self.state.borrow() {
            State::Recording {
                device,
                window_minutes,
            } => (device.clone(), *window_minutes),
            _ => return,
        };
        let to = match committed {
            Ok(()) => State::Approved {
                device,
                window_minutes,
            },
            Err(why) => State::Cancelled { why },
        };
        self.transition(|s| matches!(s, State::Recording { .. }), to);
    }

    /// Approved read → Delivered, once. True for the caller that wins.
    pub fn mark_delivered(&self) -> bool {
        self.transition(|s| matches!(s, State::Approved { .. }), State::Delivered)
    }

    /// Approved write → Written / WriteFailed.
    pub fn finish_write(&self, result: Result<(), String>) {
        let device = match &*self.state.borrow() {
            State::Approved { device, .. } => device.clone(),
            _ => return,
        };
        let to = match result {
            Ok(()) => State::Written { device },
            Err(message) => State::WriteFailed { device, message },
        };
        self.transition(|s| matches!(s, State::Approved { .. }), to);
    }
}

/// What a new request asks for.
pub struct NewRequest {
    pub vault: VaultId,
    pub binding: Binding,
    pub operation: Operation,
    pub command: Option<CommandLine>,
    pub names: Vec<String>,
    pub all_names: Vec<String>,
    pub writes: Vec<(String, SecretString)>,
    pub previews: Vec<String>,
    pub location: String,
    pub reason: String,
    pub session: Arc<Session>,
    pub ttl_minutes: f64,
    pub scope: TtlScope,
    pub expire_ms: i64,
    pub approvers_needed: u32,
    pub factor: ApprovalFactor,
    pub allow_terminal: bool,
    pub whole_vault_window: bool,
}

impl NewRequest {
    /// Identical requests from the same session share this key. Write values
    /// enter only as a digest.
    fn join_key(&self) -> String {
        let mut h = Sha256::new();
        for part in [
            self.session.id.as_str(),
            &self.vault.config,
            &self.vault.name,
            &self.binding.definition,
            &self.binding.source,
            self.operation.as_str(),
            &self.reason,
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        for n in &self.all_names {
            h.update((n.len() as u64).to_le_bytes());
            h.update(n.as_bytes());
        }
        if let Some(c) = &self.command {
            h.update(c.digest().as_bytes());
        }
        for (n, v) in &self.writes {
            h.update((n.len() as u64).to_le_bytes());
            h.update(n.as_bytes());
            h.update((v.len() as u64).to_le_bytes());
            h.update(v.expose().as_bytes());
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// How many requests one session may have waiting at once.
pub const MAX_PENDING_PER_SESSION: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq)]
#[error(
    "this session already has {MAX_PENDING_PER_SESSION} requests waiting for approval; wait for the user to answer them"
)]
pub struct TooManyPending;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecideError {
    #[error("no such request (it may have expired)")]
    NotFound,
    #[error("this request was already decided")]
    AlreadyDecided,
    #[error("this device already approved; another paired device must approve too")]
    SameDevice,
}

/// The result of one approver's decision.
#[derive(Debug)]
pub enum Decided {
    /// Approved or denied for good.
    Final(Arc<PendingApproval>),
    /// Approved by `have` of the devices a quorum needs; still pending.
    Partial {
        have: u32,
        req: Arc<PendingApproval>,
    },
}

#[derive(Default)]
struct Maps {
    by_id: HashMap<String, Arc<PendingApproval>>,
    by_join: HashMap<String, String>,
}

#[derive(Default)]
pub struct Broker {
    maps: Mutex<Maps>,
}

/// How long a settled request stays findable (so a repeated call learns
/// its outcome) after it expires.
const KEEP_SETTLED_MS: i64 = 10 * 60 * 1000;

impl Broker {
    fn maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.maps.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Joins an identical unreported request from the same session, or
    /// creates one. Returns the request and whether it was joined.
    pub fn open(
        &self,
        new: NewRequest,
        id: String,
        now_ms: i64,
    ) -> Result<(Arc<PendingApproval>, bool), TooManyPending> {
        let key = new.join_key();
        let mut maps = self.maps();
        if let Some(existing) = maps.by_join.get(&key).and_then(|id| maps.by_id.get(id))
            && !existing.reported.load(Ordering::Acquire)
        {
            return Ok((existing.clone(), true));
        }
        // An agent cannot bury the approver under requests.
        let waiting = maps
            .by_id
            .values()
            .filter(|r| r.session.id == new.session.id && r.state() == State::Pending)
            .count();
        if waiting >= MAX_PENDING_PER_SESSION {
            return Err(TooManyPending);
        }
        let (tx, _) = watch::channel(State::Pending);
        let req = Arc::new(PendingApproval {
            id: id.clone(),
            vault: new.vault,
            binding: new.binding,
            operation: new.operation,
            command: new.command,
            names: new.names,
            all_names: new.all_names,
            writes: new.writes,
            previews: new.previews,
            location: new.location,
            reason: new.reason,
            session: new.session,
            created_ms: now_ms,
            expires_ms: now_ms + new.expire_ms,
            ttl_minutes: new.ttl_minutes,
            scope: new.scope,
            approvers_needed: new.approvers_needed.max(1),
            factor: new.factor,
            allow_terminal: new.allow_terminal,
            whole_vault_window: new.whole_vault_window,
            approvals: Mutex::new(Vec::new()),
            state: tx,
            reported: AtomicBool::new(false),
            join_key: key.clone(),
        });
        maps.by_join.insert(key, id.clone());
        maps.by_id.insert(id, req.clone());
        Ok((req, false))
    }

    pub fn get(&self, id: &str) -> Option<Arc<PendingApproval>> {
        self.maps().by_id.get(id).cloned()
    }

    /// Records that the requester was told the final outcome; the request
    /// is no longer joinable and the next identical call asks anew.
    pub fn reported(&self, req: &PendingApproval) {
        req.reported.store(true, Ordering::Release);
        let mut maps = self.maps();
        if maps.by_join.get(&req.join_key) == Some(&req.id) {
            maps.by_join.remove(&req.join_key);
        }
    }

    /// Approves or denies a pending request, exactly once.
    pub fn decide(
        &self,
        id: &str,
        approve: bool,
        device: &str,
        window_minutes: f64,
        now_ms: i64,
    ) -> Result<Decided, DecideError> {
        let req = self.get(id).ok_or(DecideError::NotFound)?;
        if now_ms >= req.expires_ms {
            self.expire_due(now_ms);
            return Err(DecideError::AlreadyDecided);
        }
        if !approve {
            let to = State::Denied {
                device: device.to_string(),
            };
            return if req.transition(|s| *s == State::Pending, to) {
                Ok(Decided::Final(req))
            } else {
                Err(DecideError::AlreadyDecided)
            };
        }
        // Quorum: collect distinct devices; the last one needed decides.
        let devices = {
            let mut approvals = req.approvals.lock().unwrap_or_else(|e| e.into_inner());
            if req.state() != State::Pending {
                return Err(DecideError::AlreadyDecided);
            }
            if approvals.iter().any(|d| d == device) {
                return Err(DecideError::SameDevice);
            }
            approvals.push(device.to_string());
            if (approvals.len() as u32) < req.approvers_needed {
                Err(approvals.len() as u32)
            } else {
                Ok(approvals.join(","))
            }
        };
        let devices = match devices {
            Ok(d) => d,
            Err(have) => return Ok(Decided::Partial { have, req }),
        };
        let to = State::Recording {
            device: devices,
            window_minutes,
        };
        if req.transition(|s| *s == State::Pending, to) {
            Ok(Decided::Final(req))
        } else {
            Err(DecideError::AlreadyDecided)
        }
    }

    /// Requests still waiting for a human, oldest first.
    pub fn pending(&self) -> Vec<Arc<PendingApproval>> {
        let mut out: Vec<_> = self
            .maps()
            .by_id
            .values()
            .filter(|r| r.state() == State::Pending)
            .cloned()
            .collect();
        out.sort_by(|a, b| a.created_ms.cmp(&b.created_ms).then(a.id.cmp(&b.id)));
        out
    }

    /// Expires pending requests past their deadline (returned, for audit)
    /// and forgets settled ones kept long enough.
    pub fn expire_due(&self, now_ms: i64) -> Vec<Arc<PendingApproval>> {
        let mut maps = self.maps();
        let mut expired = Vec::new();
        let mut forget = Vec::new();
        for req in maps.by_id.values() {
            if now_ms >= req.expires_ms && req.transition(|s| *s == State::Pending, State::Expired)
            {
                expired.push(req.clone());
            }
            if now_ms >= req.expires_ms + KEEP_SETTLED_MS {
                forget.push((req.id.clone(), req.join_key.clone()));
            }
        }
        for (id, key) in forget {
            maps.by_id.remove(&id);
            if maps.by_join.get(&key) == Some(&id) {
                maps.by_join.remove(&key);
            }
        }
        expired
    }

    /// Cancels every pending request (shutdown); returns them for audit.
    pub fn cancel_all(&self, why: &str) -> Vec<Arc<PendingApproval>> {
        self.cancel_where(|_| true, why)
    }

    /// Cancels one session's pending requests (its client went away).
    pub fn cancel_session(&self, session_id: &str, why: &str) -> Vec<Arc<PendingApproval>> {
        self.cancel_where(|r| r.session.id == session_id, why)
    }

    fn cancel_where(
        &self,
        pred: impl Fn(&PendingApproval) -> bool,
        why: &str,
    ) -> Vec<Arc<PendingApproval>> {
        let maps = self.maps();
        maps.by_id
            .values()
            .filter(|r| pred(r))
            .filter(|r| {
                r.transition(
                    |s| *s == State::Pending,
                    State::Cancelled {
                        why: why.to_string(),
                    },
                )
            })
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Requester;

    fn session(id: &str) -> Arc<Session> {
        Arc::new(Session {
            id: id.into(),
            requester: Requester::default(),
            project: crate::vault_id::ProjectKey {
                owner: None,
                path: "/p".into(),
            },
            opened_ms: 0,
            watched: Default::default(),
        })
    }

    fn new_read(session_id: &str, names: &[&str], reason: &str) -> NewRequest {
        NewRequest {
            vault: VaultId::new("/p", "dev"),
            binding: Binding::default(),
            operation: Operation::Read,
            command: None,
            names: names.iter().map(|s| s.to_string()).collect(),
            all_names: names.iter().map(|s| s.to_string()).collect(),
            writes: vec![],
            previews: vec![],
            location: String::new(),
            reason: reason.into(),
            session: session(session_id),
            ttl_minutes: 0.0,
            scope: TtlScope::Secret,
            expire_ms: 1_000,
            approvers_needed: 1,
            factor: ApprovalFactor::Device,
            allow_terminal: false,
            whole_vault_window: true,
        }
    }

    fn opened(b: &Broker, new: NewRequest, id: &str, now: i64) -> (Arc<PendingApproval>, bool) {
        b.open(new, id.into(), now)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn one_session_cannot_flood_the_approver() {
        let b = Broker::default();
        for i in 0..MAX_PENDING_PER_SESSION {
            opened(
                &b,
                new_read("s1", &["A"], &format!("r{i}")),
                &format!("id{i}"),
                0,
            );
        }
        assert!(
            b.open(new_read("s1", &["A"], "one more"), "x".into(), 0)
                .is_err()
        );
        // Joining an existing request and other sessions are unaffected.
        assert!(b.open(new_read("s1", &["A"], "r0"), "y".into(), 0).is_ok());
        assert!(b.open(new_read("s2", &["A"], "r0"), "z".into(), 0).is_ok());
    }

    #[test]
    fn identical_requests_join_until_reported() {
        let b = Broker::default();
        let (r1, j1) = opened(&b, new_read("s1", &["A"], "why"), "r1", 0);
        let (r2, j2) = opened(&b, new_read("s1", &["A"], "why"), "r2", 1);
        assert!(!j1 && j2 && r1.id == r2.id);
        let (r3, j3) = opened(&b, new_read("s2", &["A"], "why"), "r3", 1);
        assert!(!j3 && r3.id == "r3", "another session never joins");
        let (_, j4) = opened(&b, new_read("s1", &["A"], "other reason"), "r4", 1);
        assert!(!j4);
        b.reported(&r1);
        let (r5, j5) = opened(&b, new_read("s1", &["A"], "why"), "r5", 2);
        assert!(!j5 && r5.id == "r5");
    }

    #[test]
    fn decided_exactly_once() {
        let b = Broker::default();
        let (r, _) = opened(&b, new_read("s1", &["A"], "why"), "r1", 0);
        assert!(matches!(
            b.decide("r1", true, "d1", 0.0, 10),
            Ok(Decided::Final(_))
        ));
        assert_eq!(
            b.decide("r1", false, "d2", 0.0, 11).err(),
            Some(DecideError::AlreadyDecided)
        );
        assert_eq!(
            b.decide("nope", true, "d1", 0.0, 11).err(),
            Some(DecideError::NotFound)
        );
        assert!(
            !r.state().settled(Operation::Read),
            "not before its rows are committed"
        );
        assert!(!r.mark_delivered());
        r.recorded(Ok(()));
        assert!(r.state().settled(Operation::Read));
        assert!(r.mark_delivered());
        assert!(!r.mark_delivered(), "single use");
    }

    #[test]
    fn an_approval_whose_rows_cannot_be_committed_does_not_take_effect() {
        let b = Broker::default();
        let (r, _) = opened(&b, new_read("s1", &["A"], "why"), "r1", 0);
        assert!(matches!(
            b.decide("r1", true, "d1", 5.0, 10),
            Ok(Decided::Final(_))
        ));
        assert!(b.pending().is_empty(), "no longer offered to approvers");
        assert!(b.expire_due(i64::MAX / 2).is_empty(), "not expired mid-way");
        r.recorded(Err("the audit log could not be written".into()));
        assert!(matches!(r.state(), State::Cancelled { .. }));
        assert!(!r.mark_delivered());
    }

    #[test]
    fn a_quorum_needs_distinct_devices() {
        let b = Broker::default();
        let mut two = new_read("s1", &["A"], "why");
        two.approvers_needed = 2;
        let (r, _) = opened(&b, two, "q", 0);
        assert!(matches!(
            b.decide("q", true, "d1", 0.0, 1),
            Ok(Decided::Partial { have: 1, .. })
        ));
        assert_eq!(r.state(), State::Pending, "one device is not enough");
        assert_eq!(
            b.decide("q", true, "d1", 0.0, 2).err(),
            Some(DecideError::SameDevice)
        );
        assert!(matches!(
            b.decide("q", true, "d2", 0.0, 3),
            Ok(Decided::Final(_))
        ));
        assert!(matches!(r.state(), State::Recording { .. }));
        assert_eq!(r.approved_by(), ["d1", "d2"]);
    }

    #[test]
    fn expiry_is_final_and_time_is_a_parameter() {
        let b = Broker::default();
        let (r, _) = opened(&b, new_read("s1", &["A"], "why"), "r1", 0);
        assert!(b.expire_due(999).is_empty());
        assert_eq!(b.expire_due(1_000).len(), 1);
        assert_eq!(r.state(), State::Expired);
        assert!(b.decide("r1", true, "d", 0.0, 1_001).is_err());
        assert!(b.get("r1").is_some());
        b.expire_due(1_000 + KEEP_SETTLED_MS);
        assert!(b.get("r1").is_none());
    }

    #[test]
    fn cancel_wakes_waiters() {
        let b = Broker::default();
        let (r, _) = opened(&b, new_read("s1", &["A"], "why"), "r1", 0);
        let rx = r.subscribe();
        assert_eq!(b.cancel_session("s2", "gone").len(), 0);
        assert_eq!(b.cancel_all("shutdown").len(), 1);
        assert!(rx.has_changed().unwrap_or(false));
        assert!(matches!(r.state(), State::Cancelled { .. }));
    }
}
