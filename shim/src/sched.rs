//! The shim's scheduling class: it relays, it does not need to preempt.
//!
//! Every call wakes the shim twice: once when the agent writes a request to
//! its stdin, once when the daemon's reply arrives. Under the normal class
//! (`SCHED_OTHER`) each of those wake-ups may preempt whatever runs on the
//! CPU (the agent that just wrote, the daemon in the middle of answering
//! other sessions), and on a virtual machine a preemption on the other CPU
//! is a rescheduling interrupt, which traps to the hypervisor. As
//! `SCHED_BATCH` the shim gets the same share of CPU, but its wake-ups wait
//! for the running task to block or use up its slice instead of cutting in:
//! the agent and the daemon each finish what they are doing first.
//!
//! Measured on this 2-core VM with 50 sessions (docs/BENCHMARKS.md):
//! rescheduling interrupts fell from ~3,000/s to ~350/s and throughput rose
//! by 4.5–8% (medians of two sets of four pairs). The price is latency only
//! under CPU contention, where a woken shim waits up to one scheduler slice
//! (milliseconds) rather than running at once; an idle machine runs it
//! immediately either way.
//!
//! Any user may move their own task between the normal and batch classes,
//! so this needs no privilege. Only the normal class is changed: a class
//! someone chose for the shim (`chrt --idle`, a real-time policy, batch
//! already) is theirs and is kept. Threads started later inherit the class,
//! and so would a child process: the daemon is started through
//! [`spawning_normal`].

use std::cell::Cell;

thread_local! {
    /// Whether this thread is in the batch class because of [`relay_class`].
    static OURS: Cell<bool> = const { Cell::new(false) };
}

/// Moves the calling thread (call it before any other starts) from the
/// normal class to the batch class. A failure is logged and otherwise
/// ignored: the shim works the same, only with more preemptions.
pub fn relay_class() {
    if policy() != Some(Class::Normal) {
        return;
    }
    match set(Class::Batch) {
        Ok(()) => OURS.set(true),
        Err(e) => tracing::debug!(error = %e, "could not enter the batch scheduling class"),
    }
}

/// Runs `spawn` (which starts another program) in the class the thread had
/// before [`relay_class`]. A child inherits its parent thread's class, and
/// the daemon a shim starts must be scheduled as if the user had started
/// it, not as a batch job.
pub fn spawning_normal<T>(spawn: impl FnOnce() -> T) -> T {
    let left = OURS.get()
        && policy() == Some(Class::Batch)
        && match set(Class::Normal) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "could not leave the batch scheduling class; the child inherits it");
                false
            }
        };
    let out = spawn();
    if left && let Err(e) = set(Class::Batch) {
        OURS.set(false);
        tracing::debug!(error = %e, "could not return to the batch scheduling class");
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Normal,
    Batch,
    /// Any other policy: idle, real-time, deadline.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    Other,
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn set(class: Class) -> std::io::Result<()> {
    let policy = match class {
        Class::Normal => libc::SCHED_OTHER,
        Class::Batch => libc::SCHED_BATCH,
        Class::Other => return Err(std::io::ErrorKind::InvalidInput.into()),
    };
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid, initialised sched_param that outlives the
    // call; pid 0 names the calling thread; the call reads it and nothing else.
    let rc = unsafe { libc::sched_setscheduler(0, policy, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The calling thread's class; None if it cannot be read.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn policy() -> Option<Class> {
    // SAFETY: no arguments besides pid 0 (the calling thread); returns the
    // policy or -1.
    match unsafe { libc::sched_getscheduler(0) } {
        -1 => None,
        libc::SCHED_OTHER => Some(Class::Normal),
        libc::SCHED_BATCH => Some(Class::Batch),
        _ => Some(Class::Other),
    }
}

/// macOS has no batch class (its analogue, QoS classes, also lowers the
/// share of CPU), so the shim keeps the default there.
#[cfg(not(target_os = "linux"))]
fn set(_class: Class) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

#[cfg(not(target_os = "linux"))]
fn policy() -> Option<Class> {
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// Each test on its own thread: the class belongs to the thread.
    fn on_a_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        match std::thread::spawn(f).join() {
            Ok(v) => v,
            Err(e) => std::panic::resume_unwind(e),
        }
    }

    #[test]
    fn a_spawn_runs_in_the_normal_class_and_the_batch_class_comes_back() {
        let seen = on_a_thread(|| {
            let before = policy();
            relay_class();
            let relaying = policy();
            let during = spawning_normal(policy);
            (before, relaying, during, policy())
        });
        let (n, b) = (Some(Class::Normal), Some(Class::Batch));
        assert_eq!(seen, (n, b, n, b));
    }

    /// Batch chosen by someone else (`chrt --batch`): kept, and a child
    /// inherits it as it would from any program.
    #[test]
    fn a_class_chosen_for_the_shim_is_kept_and_passed_on() {
        let seen = on_a_thread(|| {
            let chosen = set(Class::Batch).is_ok();
            relay_class();
            (chosen, spawning_normal(policy), policy())
        });
        let b = Some(Class::Batch);
        assert_eq!(seen, (true, b, b));
    }

    #[test]
    fn outside_the_batch_class_a_spawn_changes_nothing() {
        let seen = on_a_thread(|| (spawning_normal(policy), policy()));
        let n = Some(Class::Normal);
        assert_eq!(seen, (n, n));
    }
}
