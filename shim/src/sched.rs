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
//! by 4.5–8% (medians of two sets of four pairs). The price is latency only under CPU contention, where a woken
//! shim waits up to one scheduler slice (milliseconds) rather than running
//! at once; an idle machine runs it immediately either way.
//!
//! Any user may move their own task between the normal and batch classes,
//! so this needs no privilege. Threads started later inherit the class, and
//! so would a child process: the daemon is started through
//! [`spawning_normal`].

/// Puts the calling thread (call it before any other starts) in the batch
/// class. A failure is logged and otherwise ignored: the shim works the
/// same, only with more preemptions.
pub fn relay_class() {
    if let Err(e) = set(Class::Batch) {
        tracing::debug!(error = %e, "could not enter the batch scheduling class");
    }
}

/// Runs `spawn` (which starts another program) in the normal class. A child
/// inherits its parent thread's class, and the daemon a shim starts must be
/// scheduled as if the user had started it, not as a batch job.
pub fn spawning_normal<T>(spawn: impl FnOnce() -> T) -> T {
    let batch = is_batch();
    if batch && let Err(e) = set(Class::Normal) {
        tracing::warn!(error = %e, "could not leave the batch scheduling class; the child inherits it");
    }
    let out = spawn();
    if batch {
        relay_class();
    }
    out
}

#[derive(Clone, Copy)]
enum Class {
    Normal,
    Batch,
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn set(class: Class) -> std::io::Result<()> {
    let policy = match class {
        Class::Normal => libc::SCHED_OTHER,
        Class::Batch => libc::SCHED_BATCH,
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

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn is_batch() -> bool {
    // SAFETY: no arguments besides pid 0 (the calling thread); returns the
    // policy or -1.
    unsafe { libc::sched_getscheduler(0) == libc::SCHED_BATCH }
}

/// macOS has no batch class (its analogue, QoS classes, also lowers the
/// share of CPU), so the shim keeps the default there.
#[cfg(not(target_os = "linux"))]
fn set(_class: Class) -> std::io::Result<()> {
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn is_batch() -> bool {
    false
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// On its own thread: the class belongs to the thread.
    #[test]
    fn a_spawn_runs_in_the_normal_class_and_the_batch_class_comes_back() {
        let result = std::thread::spawn(|| {
            assert!(!is_batch());
            relay_class();
            assert!(is_batch());
            let during = spawning_normal(is_batch);
            (during, is_batch())
        })
        .join();
        assert!(matches!(result, Ok((false, true))), "{result:?}");
    }

    #[test]
    fn outside_the_batch_class_a_spawn_changes_nothing() {
        let result = std::thread::spawn(|| (spawning_normal(is_batch), is_batch())).join();
        assert!(matches!(result, Ok((false, false))), "{result:?}");
    }
}
