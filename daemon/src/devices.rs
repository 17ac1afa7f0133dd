//! Approver devices: one-time pairing links, long-lived device credentials
//! (the daemon keeps only their SHA-256), and CSRF tokens.
//!
//! A credential is `"<device id>.<secret>"` in an HttpOnly, SameSite=Strict
//! cookie. A pairing link works once and for 5 minutes. While any device is
//! paired, a new pairing waits for approval on a paired device.
//!
//! Cookies ignore ports: a page that another local program serves on
//! `localhost:8080` receives the cookie of `localhost:9999`. So a device
//! paired on such an origin (any `http://` one) also holds a **device
//! proof**: 32 random bytes its browser makes at pairing
//! (`/static/device.js`), keeps in `localStorage` (which is per origin,
//! port included) and sends with the pairing form; the daemon keeps its
//! SHA-256. Every form and call of that device carries the proof after its
//! CSRF token (`<csrf>~<proof>`), checked here with the token. A stolen
//! cookie alone approves nothing. A device paired through an `https://`
//! origin (the tunnel, a public URL) needs no proof and no script.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::db::devices::DeviceRow;
use crate::db::{StoreCmd, StoreTx};

pub const PAIRING_TTL_MS: i64 = 5 * 60 * 1000;
/// A device unused for this long must pair again.
pub const DEVICE_IDLE_MS: i64 = 90 * 24 * 3600 * 1000;

/// Random bytes, URL-safe base64.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if getrandom::fill(&mut buf).is_err() {
        // The OS RNG never fails on supported platforms; refuse to go on
        // with a predictable token if it somehow does.
        std::process::abort();
    }
    URL_SAFE_NO_PAD.encode(buf)
}

/// A random identifier shown to people and typed on command lines:
/// lowercase hex, so it never starts with '-' (which a CLI would take for a
/// flag) and needs no quoting. Secrets use [`random_token`].
pub fn random_id(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if getrandom::fill(&mut buf).is_err() {
        std::process::abort();
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[derive(Debug, Clone, PartialEq)]
pub enum PairState {
    Waiting,
    Approved { by: String },
    Denied { by: String },
    Completed,
}

#[derive(Debug, Clone)]
pub struct PairRequest {
    pub id: String,
    pub label: String,
    claim_hash: Vec<u8>,
    /// The waiting browser's device proof hash, given to the new device.
    proof_hash: Option<Vec<u8>>,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub state: PairState,
}

/// What claiming a pairing link gives the browser.
#[derive(Debug)]
pub enum PairOutcome {
    /// Paired at once: set this device cookie.
    Paired { device_id: String, cookie: String },
    /// Waiting for a paired device: set this claim cookie and poll.
    Waiting { request_id: String, claim: String },
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PairError {
    #[error(
        "this pairing link is invalid, already used or expired; run `agent-vault pair` for a new one"
    )]
    BadLink,
    #[error("this pairing request was denied on a paired device")]
    Denied,
    #[error("this pairing request expired; run `agent-vault pair` again")]
    Expired,
    #[error(
        "pairing on this address needs JavaScript: the page keeps a second secret in this browser, which other programs serving this machine's ports cannot read. Enable JavaScript and open a new link"
    )]
    NeedsProof,
    #[error(
        "no device is paired, and this link needs approval on a paired device; the first pairing link is shown on agent-vaultd's terminal, or by `agent-vault pair` run as an admin that is not an agent user"
    )]
    NoPairedDevice,
}

/// What [`Devices::revoke`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    Done,
    NoSuchDevice,
    /// Refused: it is the last paired device.
    LastDevice,
}

/// The enrolled authenticator app (one per daemon).
struct Totp {
    secret: zeroize::Zeroizing<Vec<u8>>,
    /// The last time step whose code was accepted; a code works once.
    last_step: u64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TotpError {
    #[error(
        "an authenticator is already enrolled; reset it from a paired device's dashboard first"
    )]
    AlreadyEnrolled,
    #[error("no authenticator is enrolled: run `agent-vault pair --totp`")]
    NotEnrolled,
    #[error("wrong or expired authenticator code")]
    BadCode,
    #[error("this authenticator code was already used; wait for the next one")]
    Replayed,
    #[error("cannot make an authenticator secret: {0}")]
    Build(String),
}

fn totp_of(secret: &[u8]) -> Result<totp_rs::Totp, TotpError> {
    totp_rs::Builder::new()
        .with_secret(secret.to_vec())
        .with_account_name("approver")
        .with_issuer(Some("Agent Vault"))
        .build()
        .map_err(|e| TotpError::Build(e.to_string()))
}

struct Inner {
    totp: Option<Totp>,
    devices: HashMap<String, DeviceRow>,
    /// sha256(token) -> expiry; removed when used.
    /// Link hash → (expiry, direct). A direct link pairs at once while no
    /// device is paired; it is only ever given where an agent cannot see
    /// it (the daemon's terminal, an admin that is not an agent user).
    links: HashMap<Vec<u8>, (i64, bool)>,
    requests: HashMap<String, PairRequest>,
}

pub struct Devices {
    csrf_key: Vec<u8>,
    inner: Mutex<Inner>,
    store: StoreTx,
}

impl Devices {
    pub fn new(existing: Vec<DeviceRow>, store: StoreTx) -> Self {
        Self::with_totp(existing, None, store)
    }

    /// As `new`, with the enrolled authenticator (secret, last step).
    pub fn with_totp(
        existing: Vec<DeviceRow>,
        totp: Option<(Vec<u8>, u64)>,
        store: StoreTx,
    ) -> Self {
        let mut key = vec![0u8; 32];
        if getrandom::fill(&mut key).is_err() {
            std::process::abort();
        }
        Self {
            csrf_key: key,
            inner: Mutex::new(Inner {
                totp: totp.map(|(secret, last_step)| Totp {
                    secret: zeroize::Zeroizing::new(secret),
                    last_step,
                }),
                devices: existing.into_iter().map(|d| (d.id.clone(), d)).collect(),
                links: HashMap::new(),
                requests: HashMap::new(),
            }),
            store,
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn list(&self) -> Vec<DeviceRow> {
        let mut v: Vec<_> = self.inner().devices.values().cloned().collect();
        v.sort_by_key(|d| d.paired_at_ms);
        v
    }

    pub fn any_paired(&self) -> bool {
        !self.inner().devices.is_empty()
    }

    /// A new one-time pairing link token, and whether a paired device will
    /// have to approve it. A `direct` link pairs at once while no device is
    /// paired (give it only where an agent cannot see it); any other link
    /// always needs a paired device's approval.
    pub fn new_link(&self, now_ms: i64, direct: bool) -> (String, i64, bool) {
        let token = random_token(32);
        let expires = now_ms + PAIRING_TTL_MS;
        let mut inner = self.inner();
        inner.links.retain(|_, (exp, _)| *exp > now_ms);
        inner
            .links
            .insert(sha256(token.as_bytes()), (expires, direct));
        (token, expires, !direct || !inner.devices.is_empty())
    }

    /// Whether a link is still usable (does not use it).
    pub fn link_valid(&self, token: &str, now_ms: i64) -> bool {
        self.inner()
            .links
            .get(&sha256(token.as_bytes()))
            .is_some_and(|(exp, _)| *exp > now_ms)
    }

    fn create_device(
        inner: &mut Inner,
        label: &str,
        proof_hash: Option<Vec<u8>>,
        now_ms: i64,
    ) -> (DeviceRow, String) {
        let id = random_id(8);
        let secret = random_token(32);
        let record = DeviceRow {
            id: id.clone(),
            label: label.to_string(),
            secret_hash: sha256(secret.as_bytes()),
            paired_at_ms: now_ms,
            last_seen_ms: now_ms,
            proof_hash,
        };
        inner.devices.insert(id.clone(), record.clone());
        (record, format!("{id}.{secret}"))
    }

    /// Uses a pairing link (once). `proof` is the browser's device proof
    /// (empty without script); `need_proof` is true on an origin that other
    /// local programs can serve, where a device without one is refused.
    pub fn claim(
        &self,
        token: &str,
        label: &str,
        proof: &str,
        need_proof: bool,
        now_ms: i64,
    ) -> Result<PairOutcome, PairError> {
        let proof_hash = match proof_of(proof) {
            Some(p) => Some(sha256(p.as_bytes())),
            None if need_proof => return Err(PairError::NeedsProof),
            None => None,
        };
        let mut inner = self.inner();
        let direct = match inner.links.remove(&sha256(token.as_bytes())) {
            Some((exp, direct)) if exp > now_ms => direct,
            _ => return Err(PairError::BadLink),
        };
        if inner.devices.is_empty() {
            if !direct {
                return Err(PairError::NoPairedDevice);
            }
            let (record, cookie) = Self::create_device(&mut inner, label, proof_hash, now_ms);
            let device_id = record.id.clone();
            self.store.send(StoreCmd::PutDevice(Box::new(record)));
            return Ok(PairOutcome::Paired { device_id, cookie });
        }
        // Forget pairing requests long past their expiry.
        inner
            .requests
            .retain(|_, r| r.expires_ms + PAIRING_TTL_MS > now_ms);
        let id = random_id(8);
        let claim = random_token(32);
        inner.requests.insert(
            id.clone(),
            PairRequest {
                id: id.clone(),
                label: label.to_string(),
                claim_hash: sha256(claim.as_bytes()),
                proof_hash,
                created_ms: now_ms,
                expires_ms: now_ms + PAIRING_TTL_MS,
                state: PairState::Waiting,
            },
        );
        let claim = format!("{id}.{claim}");
        Ok(PairOutcome::Waiting {
            request_id: id,
            claim,
        })
    }

    /// Pairing requests waiting for a paired device.
    pub fn waiting_requests(&self, now_ms: i64) -> Vec<PairRequest> {
        let mut v: Vec<_> = self
            .inner()
            .requests
            .values()
            .filter(|r| r.state == PairState::Waiting && r.expires_ms > now_ms)
            .cloned()
            .collect();
        v.sort_by_key(|r| r.created_ms);
        v
    }

    /// A paired device approves or denies a waiting pairing, once.
    pub fn decide_pairing(&self, id: &str, approve: bool, by: &str, now_ms: i64) -> bool {
        let mut inner = self.inner();
        match inner.requests.get_mut(id) {
            Some(r) if r.state == PairState::Waiting && r.expires_ms > now_ms => {
                r.state = if approve {
                    PairState::Approved { by: by.into() }
                } else {
                    PairState::Denied { by: by.into() }
                };
                true
            }
            _ => false,
        }
    }

    /// Polled by the waiting browser with its claim cookie. Ok(None) means
    /// still waiting; Ok(Some) is the new device's (id, cookie, approver).
    pub fn poll_claim(
        &self,
        claim_cookie: &str,
        now_ms: i64,
    ) -> Result<Option<(String, String, String)>, PairError> {
        let (id, secret) = claim_cookie.split_once('.').ok_or(PairError::BadLink)?;
        let mut inner = self.inner();
        let req = inner.requests.get(id).cloned().ok_or(PairError::BadLink)?;
        if !ct_eq(&req.claim_hash, &sha256(secret.as_bytes())) {
            return Err(PairError::BadLink);
        }
        match req.state {
            PairState::Waiting if req.expires_ms <= now_ms => Err(PairError::Expired),
            PairState::Waiting => Ok(None),
            PairState::Denied { .. } => Err(PairError::Denied),
            PairState::Completed => Err(PairError::BadLink),
            PairState::Approved { by } => {
                let (record, cookie) =
                    Self::create_device(&mut inner, &req.label, req.proof_hash.clone(), now_ms);
                if let Some(r) = inner.requests.get_mut(id) {
                    r.state = PairState::Completed;
                }
                let device_id = record.id.clone();
                self.store.send(StoreCmd::PutDevice(Box::new(record)));
                Ok(Some((device_id, cookie, by)))
            }
        }
    }

    /// The device a cookie value belongs to, checked in constant time.
    pub fn authenticate(&self, cookie: &str, now_ms: i64) -> Option<DeviceRow> {
        let (id, secret) = cookie.split_once('.')?;
        let mut inner = self.inner();
        let device = inner.devices.get_mut(id)?;
        if !ct_eq(&device.secret_hash, &sha256(secret.as_bytes())) {
            return None;
        }
        if now_ms - device.last_seen_ms > DEVICE_IDLE_MS {
            return None;
        }
        // Persist last-seen at most once a minute.
        if now_ms - device.last_seen_ms > 60_000 {
            device.last_seen_ms = now_ms;
            self.store.send(StoreCmd::TouchDevice {
                id: id.to_string(),
                now_ms,
            });
        }
        Some(device.clone())
    }

    /// Unpairs a device. With `keep_one`, the last paired device is kept
    /// (checked under the same lock as the removal, so two concurrent
    /// revocations cannot leave none).
    pub fn revoke(&self, id: &str, keep_one: bool) -> Revoked {
        let mut inner = self.inner();
        if !inner.devices.contains_key(id) {
            return Revoked::NoSuchDevice;
        }
        if keep_one && inner.devices.len() == 1 {
            return Revoked::LastDevice;
        }
        inner.devices.remove(id);
        self.store.send(StoreCmd::RevokeDevice(id.to_string()));
        Revoked::Done
    }

    /// Enrolls an authenticator app; returns its otpauth:// URL (shown once,
    /// as a QR code). Refused while one is enrolled: only a paired device can
    /// reset it, so an admin-uid agent cannot swap in its own.
    pub fn enroll_totp(&self) -> Result<String, TotpError> {
        let mut inner = self.inner();
        if inner.totp.is_some() {
            return Err(TotpError::AlreadyEnrolled);
        }
        let mut secret = vec![0u8; 20];
        if getrandom::fill(&mut secret).is_err() {
            std::process::abort();
        }
        let url = totp_of(&secret)?
            .to_url()
            .map_err(|e| TotpError::Build(e.to_string()))?;
        self.store.send(StoreCmd::PutTotp(Some(secret.clone())));
        inner.totp = Some(Totp {
            secret: zeroize::Zeroizing::new(secret),
            last_step: 0,
        });
        Ok(url)
    }

    pub fn totp_enrolled(&self) -> bool {
        self.inner().totp.is_some()
    }

    /// Removes the authenticator (from a paired device's dashboard).
    pub fn reset_totp(&self) -> bool {
        let removed = self.inner().totp.take().is_some();
        if removed {
            self.store.send(StoreCmd::PutTotp(None));
        }
        removed
    }

    /// Checks a code at `now_secs`; each time step's code is accepted once.
    pub fn check_totp(&self, code: &str, now_secs: u64) -> Result<(), TotpError> {
        let mut inner = self.inner();
        let totp = inner.totp.as_mut().ok_or(TotpError::NotEnrolled)?;
        let step = totp_of(&totp.secret)?
            .check(code.trim(), now_secs)
            .ok_or(TotpError::BadCode)?;
        if step <= totp.last_step {
            return Err(TotpError::Replayed);
        }
        totp.last_step = step;
        self.store.send(StoreCmd::TotpStep(step));
        Ok(())
    }

    /// A CSRF token bound to a device and a purpose (such as one request id).
    pub fn csrf(&self, device_id: &str, purpose: &str) -> String {
        let mut mac = match hmac::Hmac::<Sha256>::new_from_slice(&self.csrf_key) {
            Ok(m) => m,
            Err(_) => std::process::abort(),
        };
        mac.update(device_id.as_bytes());
        mac.update(b"\0");
        mac.update(purpose.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Checks a form token: the CSRF token for (device, purpose), followed
    /// by `~` and the device proof when the device has one.
    pub fn check_csrf(&self, device_id: &str, purpose: &str, token: &str) -> bool {
        let (csrf, proof) = match token.split_once('~') {
            Some((c, p)) => (c, Some(p)),
            None => (token, None),
        };
        if !ct_eq(self.csrf(device_id, purpose).as_bytes(), csrf.as_bytes()) {
            return false;
        }
        let needed = self
            .inner()
            .devices
            .get(device_id)
            .and_then(|d| d.proof_hash.clone());
        match (needed, proof.and_then(proof_of)) {
            (None, _) => true,
            (Some(hash), Some(p)) => ct_eq(&hash, &sha256(p.as_bytes())),
            (Some(_), None) => false,
        }
    }
}

/// A well-formed device proof: 43 characters of URL-safe base64 (32 bytes).
fn proof_of(s: &str) -> Option<&str> {
    (s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn devices() -> (Devices, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (tx, _h) = crate::db::start(
            &dir.path().join("d.db"),
            Arc::new(tokio::sync::Notify::new()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        (Devices::new(vec![], tx), dir)
    }

    #[test]
    fn first_pairing_is_direct_and_links_work_once() {
        let (d, _dir) = devices();
        let (token, _, needs) = d.new_link(0, true);
        assert!(!needs);
        assert!(d.link_valid(&token, 1));
        let cookie = match d.claim(&token, "phone", "", false, 1) {
            Ok(PairOutcome::Paired { cookie, .. }) => cookie,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            d.claim(&token, "again", "", false, 2).err(),
            Some(PairError::BadLink)
        );
        assert!(d.authenticate(&cookie, 3).is_some());
        assert!(d.authenticate(&format!("{cookie}x"), 3).is_none());
        assert!(d.authenticate("nodot", 3).is_none());
        let (late, _, _) = d.new_link(10, true);
        assert_eq!(
            d.claim(&late, "x", "", false, 10 + PAIRING_TTL_MS).err(),
            Some(PairError::BadLink)
        );
    }

    #[test]
    fn a_link_given_to_an_agent_never_pairs_without_a_paired_device() {
        let (d, _dir) = devices();
        let (token, _, needs) = d.new_link(0, false);
        assert!(needs);
        assert_eq!(
            d.claim(&token, "agent's browser", "", false, 1).err(),
            Some(PairError::NoPairedDevice)
        );
        assert!(d.list().is_empty());
        // With a paired device, the same kind of link waits for its approval.
        let (first, _, _) = d.new_link(0, true);
        assert!(matches!(
            d.claim(&first, "phone", "", false, 1),
            Ok(PairOutcome::Paired { .. })
        ));
        let (token, _, _) = d.new_link(2, false);
        assert!(matches!(
            d.claim(&token, "x", "", false, 3),
            Ok(PairOutcome::Waiting { .. })
        ));
        assert_eq!(d.list().len(), 1);
    }

    #[test]
    fn a_device_with_a_proof_needs_it_on_every_form() {
        let (d, _dir) = devices();
        let proof = "p".repeat(43);
        let (token, _, _) = d.new_link(0, true);
        // On an http:// origin, a browser without the script is refused.
        assert_eq!(
            d.claim(&token, "phone", "", true, 1).err(),
            Some(PairError::NeedsProof)
        );
        let (token, _, _) = d.new_link(0, true);
        let id = match d.claim(&token, "phone", &proof, true, 1) {
            Ok(PairOutcome::Paired { device_id, .. }) => device_id,
            other => panic!("{other:?}"),
        };
        let csrf = d.csrf(&id, "approve:r1");
        assert!(d.check_csrf(&id, "approve:r1", &format!("{csrf}~{proof}")));
        // The cookie's CSRF token alone, as a page on another port that got
        // the cookie could produce it, is not enough.
        assert!(!d.check_csrf(&id, "approve:r1", &csrf));
        assert!(!d.check_csrf(&id, "approve:r1", &format!("{csrf}~{}", "q".repeat(43))));
        assert!(!d.check_csrf(&id, "approve:r2", &format!("{csrf}~{proof}")));
        // A second device waiting for approval takes its own proof along.
        let (t2, _, _) = d.new_link(2, false);
        let other = "o".repeat(43);
        let (rid, claim) = match d.claim(&t2, "laptop", &other, true, 2) {
            Ok(PairOutcome::Waiting { request_id, claim }) => (request_id, claim),
            other => panic!("{other:?}"),
        };
        assert!(d.decide_pairing(&rid, true, &id, 3));
        let laptop = match d.poll_claim(&claim, 4) {
            Ok(Some((laptop, _, _))) => laptop,
            other => panic!("{other:?}"),
        };
        let csrf = d.csrf(&laptop, "dashboard");
        assert!(d.check_csrf(&laptop, "dashboard", &format!("{csrf}~{other}")));
        assert!(!d.check_csrf(&laptop, "dashboard", &format!("{csrf}~{proof}")));
    }

    #[test]
    fn the_last_device_is_kept_when_asked() {
        let (d, _dir) = devices();
        let (t, _, _) = d.new_link(0, true);
        let first = match d.claim(&t, "phone", "", false, 0) {
            Ok(PairOutcome::Paired { device_id, .. }) => device_id,
            other => panic!("{other:?}"),
        };
        assert_eq!(d.revoke("nope", true), Revoked::NoSuchDevice);
        assert_eq!(d.revoke(&first, true), Revoked::LastDevice);
        assert_eq!(d.list().len(), 1);
        assert_eq!(d.revoke(&first, false), Revoked::Done);
        assert!(d.list().is_empty());
    }

    #[test]
    fn second_pairing_needs_a_paired_device() {
        let (d, _dir) = devices();
        let (t1, _, _) = d.new_link(0, true);
        let first = match d.claim(&t1, "phone", "", false, 0) {
            Ok(PairOutcome::Paired { device_id, .. }) => device_id,
            other => panic!("{other:?}"),
        };
        let (t2, _, needs) = d.new_link(0, true);
        assert!(needs);
        let (rid, claim) = match d.claim(&t2, "laptop", "", false, 0) {
            Ok(PairOutcome::Waiting { request_id, claim }) => (request_id, claim),
            other => panic!("{other:?}"),
        };
        assert_eq!(d.poll_claim(&claim, 1), Ok(None));
        assert!(d.poll_claim("bad.claim", 1).is_err());
        assert!(d.decide_pairing(&rid, true, &first, 2));
        assert!(!d.decide_pairing(&rid, false, &first, 2), "decided once");
        let (_, cookie, by) = match d.poll_claim(&claim, 3) {
            Ok(Some(x)) => x,
            other => panic!("{other:?}"),
        };
        assert_eq!(by, first);
        assert!(d.authenticate(&cookie, 4).is_some());
        assert!(d.poll_claim(&claim, 5).is_err(), "completed");
    }

    #[test]
    fn totp_codes_work_once_and_only_one_enrollment() {
        let (d, _dir) = devices();
        assert_eq!(d.check_totp("123456", 0), Err(TotpError::NotEnrolled));
        let url = d.enroll_totp().unwrap_or_default();
        assert!(url.starts_with("otpauth://totp/"));
        assert_eq!(d.enroll_totp(), Err(TotpError::AlreadyEnrolled));
        let totp = totp_rs::Totp::from_url(&url).unwrap_or_else(|e| panic!("{e}"));
        let now = 1_800_000_000;
        let code = totp.generate(now).to_string();
        assert_eq!(d.check_totp("000000x", now), Err(TotpError::BadCode));
        assert_eq!(d.check_totp(&code, now), Ok(()));
        assert_eq!(d.check_totp(&code, now), Err(TotpError::Replayed));
        let next = totp.generate(now + 30).to_string();
        assert_eq!(d.check_totp(&next, now + 30), Ok(()));
        assert!(d.reset_totp());
        assert!(d.enroll_totp().is_ok());
    }

    #[test]
    fn ids_are_safe_on_a_command_line() {
        for _ in 0..200 {
            let id = random_id(12);
            assert_eq!(id.len(), 24);
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
        }
    }

    #[test]
    fn csrf_is_bound_to_device_and_purpose() {
        let (d, _dir) = devices();
        let t = d.csrf("dev1", "approve:r1");
        assert!(d.check_csrf("dev1", "approve:r1", &t));
        assert!(!d.check_csrf("dev2", "approve:r1", &t));
        assert!(!d.check_csrf("dev1", "approve:r2", &t));
        assert!(!d.check_csrf("dev1", "approve:r1", ""));
    }
}
