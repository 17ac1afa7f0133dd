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
//! by 5–10%. The price is latency only under CPU contention, where a woken
//! shim waits up to one scheduler slice (milliseconds) rather than running
//! at once; an idle machine runs it immediately either way.
//!
//! Any user may move their own task between the normal and batch classes,
//! so this needs no privilege. Threads started later inherit the class.

/// Puts the calling thread (call it before any other starts) in the batch
/// class. A failure is logged and otherwise ignored: the shim works the
/// same, only with more preemptions.
pub fn relay_class() {
    if let Err(e) = set_batch() {
        tracing::debug!(error = %e, "could not enter the batch scheduling class");
    }
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn set_batch() -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid, initialised sched_param that outlives the
    // call; pid 0 names the calling thread; the call reads it and nothing else.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// macOS has no batch class (its analogue, QoS classes, also lowers the
/// share of CPU), so the shim keeps the default there.
#[cfg(not(target_os = "linux"))]
fn set_batch() -> std::io::Result<()> {
    Ok(())
}
