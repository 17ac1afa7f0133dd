//! Failed second-factor attempts, counted per paired device.
//!
//! A TOTP code has a million values; a device credential, stolen or not,
//! must not get to try them at the rate of the web UI's unauthenticated
//! limit. After [`MAX_FAILURES`] failed factor checks (wrong or replayed
//! codes, refused passkey assertions) within [`WINDOW_MS`], that device's
//! factor checks are refused until the window has passed since its last
//! failure. Other devices, denials and plain approvals are not affected.

use std::collections::HashMap;
use std::sync::Mutex;

pub const MAX_FAILURES: u32 = 5;
pub const WINDOW_MS: i64 = 15 * 60 * 1000;

#[derive(Debug, Default)]
pub struct FactorAttempts {
    /// Device id → (failures, time of the last one).
    by_device: Mutex<HashMap<String, (u32, i64)>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "too many failed attempts from this device: its approvals that need a code or a passkey are locked for {minutes} more minute(s)"
)]
pub struct Locked {
    pub minutes: i64,
}

impl FactorAttempts {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u32, i64)>> {
        self.by_device.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refused while the device is locked.
    pub fn check(&self, device: &str, now_ms: i64) -> Result<(), Locked> {
        match self.map().get(device) {
            Some(&(n, last)) if n >= MAX_FAILURES && now_ms - last < WINDOW_MS => Err(Locked {
                minutes: (WINDOW_MS - (now_ms - last) + 59_999) / 60_000,
            }),
            _ => Ok(()),
        }
    }

    /// Counts a failure; returns true when it locks the device.
    pub fn failed(&self, device: &str, now_ms: i64) -> bool {
        let mut map = self.map();
        map.retain(|_, (_, last)| now_ms - *last < WINDOW_MS);
        let entry = map.entry(device.to_string()).or_insert((0, now_ms));
        entry.0 += 1;
        entry.1 = now_ms;
        entry.0 == MAX_FAILURES
    }

    /// A factor check passed: the device starts afresh.
    pub fn succeeded(&self, device: &str) {
        self.map().remove(device);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_one_device_after_five_failures_then_recovers() {
        let a = FactorAttempts::default();
        for i in 0..MAX_FAILURES {
            assert_eq!(a.check("phone", 0), Ok(()));
            assert_eq!(a.failed("phone", 0), i + 1 == MAX_FAILURES);
        }
        assert_eq!(a.check("phone", 1), Err(Locked { minutes: 15 }));
        assert_eq!(a.check("laptop", 1), Ok(()), "another device is not locked");
        assert_eq!(a.check("phone", WINDOW_MS), Ok(()), "it recovers");
        a.failed("laptop", 0);
        a.succeeded("laptop");
        for _ in 0..MAX_FAILURES - 1 {
            a.failed("laptop", 1);
        }
        assert_eq!(a.check("laptop", 2), Ok(()), "a success reset the count");
    }
}
