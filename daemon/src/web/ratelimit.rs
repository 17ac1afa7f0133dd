//! Throttling failed authentication on the approval endpoints.
//!
//! Every 401, 403 or 410 answer (no or bad device credential, bad form
//! token, unknown pairing link) counts as a failure for its source and
//! globally. Past a limit within a minute, requests without a paired
//! device's valid credential are refused with 429 (see `web::throttle`),
//! so guessing links and credentials (32 random bytes each) stays bounded
//! while the person's own devices keep working. All loopback addresses
//! are one source: local browsers and the ngrok tunnel both arrive from
//! loopback, and 127.0.0.2 must not be a fresh allowance.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

pub const WINDOW_MS: i64 = 60_000;
pub const PER_SOURCE: u32 = 20;
pub const GLOBAL: u32 = 200;

#[derive(Debug, Clone, Copy, Default)]
struct Window {
    start_ms: i64,
    count: u32,
}

impl Window {
    fn current(&mut self, now_ms: i64) -> &mut Self {
        if now_ms - self.start_ms >= WINDOW_MS {
            *self = Window {
                start_ms: now_ms,
                count: 0,
            };
        }
        self
    }
}

#[derive(Debug, Default)]
struct Inner {
    per_source: HashMap<Option<IpAddr>, Window>,
    global: Window,
}

/// The source a failure counts against: every loopback address is one.
fn bucket(source: Option<IpAddr>) -> Option<IpAddr> {
    match source {
        Some(ip) if ip.is_loopback() => Some(IpAddr::from([127, 0, 0, 1])),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) if v4.is_loopback() => Some(IpAddr::from([127, 0, 0, 1])),
            Some(v4) => Some(IpAddr::V4(v4)),
            None => Some(IpAddr::V6(v6)),
        },
        other => other,
    }
}

#[derive(Debug, Default)]
pub struct FailureLimiter {
    inner: Mutex<Inner>,
}

impl FailureLimiter {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether requests from `source` are refused right now.
    pub fn blocked(&self, source: Option<IpAddr>, now_ms: i64) -> bool {
        let source = bucket(source);
        let mut inner = self.inner();
        if inner.global.current(now_ms).count >= GLOBAL {
            return true;
        }
        inner
            .per_source
            .get_mut(&source)
            .is_some_and(|w| w.current(now_ms).count >= PER_SOURCE)
    }

    pub fn failed(&self, source: Option<IpAddr>, now_ms: i64) {
        let source = bucket(source);
        let mut inner = self.inner();
        inner.global.current(now_ms).count += 1;
        if inner.per_source.len() > 10_000 {
            inner
                .per_source
                .retain(|_, w| now_ms - w.start_ms < WINDOW_MS);
        }
        inner
            .per_source
            .entry(source)
            .or_insert(Window {
                start_ms: now_ms,
                count: 0,
            })
            .current(now_ms)
            .count += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_source_then_globally_and_recovers() {
        let l = FailureLimiter::default();
        let a: Option<IpAddr> = "10.0.0.1".parse().ok();
        let b: Option<IpAddr> = "10.0.0.2".parse().ok();
        for _ in 0..PER_SOURCE {
            assert!(!l.blocked(a, 0));
            l.failed(a, 0);
        }
        assert!(l.blocked(a, 1));
        assert!(!l.blocked(b, 1), "another source is not blocked");
        assert!(!l.blocked(a, WINDOW_MS), "a minute later it recovers");
        for i in 0..GLOBAL {
            l.failed(
                Some(IpAddr::from([10, 1, (i / 256) as u8, (i % 256) as u8])),
                WINDOW_MS,
            );
        }
        assert!(
            l.blocked(b, WINDOW_MS + 1),
            "the global limit applies to all"
        );
    }

    #[test]
    fn every_loopback_address_is_one_source() {
        let l = FailureLimiter::default();
        for i in 0..PER_SOURCE {
            l.failed(Some(IpAddr::from([127, 0, (i % 3) as u8, 2 + i as u8])), 0);
        }
        for ip in ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.5"] {
            assert!(l.blocked(ip.parse().ok(), 1), "{ip}");
        }
        assert!(!l.blocked("10.0.0.1".parse().ok(), 1));
    }
}
