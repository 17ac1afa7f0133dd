//! Passkey approvals (WebAuthn, verified by webauthn-rs).
//!
//! A paired device registers passkeys; each is bound to that device and to
//! the relying-party id (the approval origin's domain). Approving a request
//! of a `"require": "passkey"` vault then takes the device's cookie *and* a
//! WebAuthn assertion with user verification whose challenge is
//!
//! ```text
//! challenge = sha256("agent-vault passkey challenge v1" || digest || nonce)
//! digest    = request_digest(request, window)
//! ```
//!
//! where `nonce` is the 32 random bytes webauthn-rs drew for the ceremony.
//! The authenticator signs over the client data, which holds the challenge,
//! so its signature covers exactly what was approved: the vault, the names,
//! the operation, the requester, the reason and the window. The audit row of
//! the approval keeps the digest. An assertion made for one request cannot
//! approve another: its challenge differs, and the ceremony state is kept
//! per device and request.
//!
//! webauthn-rs draws its own challenges; the daemon replaces that challenge
//! in the ceremony state (serialisable through its
//! `danger-allow-state-serialisation` feature) and in the options sent to
//! the browser. Everything else, including origin, RP id, signature, user
//! verification and counter checks, is webauthn-rs's.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Url, Uuid,
    Webauthn, WebauthnBuilder,
};

use crate::broker::PendingApproval;
use crate::db::passkeys::PasskeyRow;
use crate::db::{StoreCmd, StoreTx};

/// How long a started ceremony may take.
pub const CEREMONY_TTL_MS: i64 = 5 * 60 * 1000;
/// Passkeys one device may hold.
pub const MAX_PER_DEVICE: usize = 10;

/// A registered passkey (public key, counter) and whose it is.
#[derive(Debug, Clone)]
pub struct StoredPasskey {
    /// The credential id, base64url.
    pub id: String,
    pub device_id: String,
    pub rp_id: String,
    pub created_ms: i64,
    pub passkey: Passkey,
}

impl StoredPasskey {
    /// The passkey as it is stored.
    pub fn to_row(&self) -> Result<PasskeyRow, PasskeyError> {
        row_of(
            &self.id,
            &self.device_id,
            &self.rp_id,
            self.created_ms,
            &self.passkey,
        )
    }
}

/// A row holding `passkey`'s serialized form; an error (never an empty
/// passkey) if it cannot be serialized.
fn row_of(
    id: &str,
    device_id: &str,
    rp_id: &str,
    created_ms: i64,
    passkey: &impl serde::Serialize,
) -> Result<PasskeyRow, PasskeyError> {
    let passkey = serde_json::to_string(passkey).map_err(|e| {
        tracing::error!(passkey = %id, error = %e, "a passkey could not be serialized; not stored");
        PasskeyError::Unstorable
    })?;
    Ok(PasskeyRow {
        id: id.to_string(),
        device_id: device_id.to_string(),
        rp_id: rp_id.to_string(),
        passkey,
        created_ms,
    })
}

/// The stored passkeys. A row that no longer parses is skipped with a
/// warning (that passkey then has to be registered again), rather than
/// stopping the daemon.
pub fn parse_rows(rows: Vec<PasskeyRow>) -> Vec<StoredPasskey> {
    rows.into_iter()
        .filter_map(|r| match serde_json::from_str(&r.passkey) {
            Ok(passkey) => Some(StoredPasskey {
                id: r.id,
                device_id: r.device_id,
                rp_id: r.rp_id,
                created_ms: r.created_ms,
                passkey,
            }),
            Err(e) => {
                tracing::warn!(passkey = %r.id, error = %e, "a stored passkey no longer parses; skipped");
                None
            }
        })
        .collect()
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PasskeyError {
    #[error("passkeys are unavailable on this daemon: {0}")]
    Unavailable(String),
    #[error("this device has no passkey for {0} yet: add one from the dashboard first")]
    NoneRegistered(String),
    #[error("this device already has {MAX_PER_DEVICE} passkeys; that is the limit")]
    TooMany,
    #[error(
        "no passkey check is under way for this on this device, or it took longer than 5 minutes; press the button again"
    )]
    NoCeremony,
    #[error("the passkey could not be stored; nothing was changed, try again")]
    Unstorable,
    #[error("the passkey check failed ({0}); nothing was approved")]
    Refused(String),
    #[error(
        "the passkey did not verify you (no PIN, fingerprint or face check); nothing was approved"
    )]
    NotVerified,
}

/// What a finished approval ceremony proved: the digest that was signed and
/// the window it named.
#[derive(Debug, Clone, PartialEq)]
pub struct Proven {
    pub digest: [u8; 32],
    pub window_minutes: f64,
}

impl Proven {
    pub fn digest_hex(&self) -> String {
        hex(&self.digest)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The relying-party id and origin for an approval base URL, or why that
/// base cannot hold passkeys. `stable` says whether the host survives a
/// restart (false for a random ngrok domain).
pub fn origin_for(base: &str, stable: bool) -> Result<(String, Url), String> {
    let url = Url::parse(base).map_err(|e| format!("the approval URL {base:?} is invalid: {e}"))?;
    let Some(url::Host::Domain(host)) = url.host() else {
        return Err(format!(
            "the approval pages are served at {base}, an IP address; passkeys need a domain name \
             (open them at http://localhost:PORT, or use a reserved ngrok domain)"
        ));
    };
    let host = host.to_ascii_lowercase();
    if url.scheme() != "https" && host != "localhost" {
        return Err(format!(
            "the approval pages are served at {base} without HTTPS; passkeys need HTTPS or localhost"
        ));
    }
    if !stable {
        return Err(format!(
            "the approval pages are served at {base}, an ngrok domain that changes on every start, \
             so a passkey registered today would not work tomorrow: reserve a domain in ngrok and set \
             \"ngrokDomain\" in the config"
        ));
    }
    Ok((host, url))
}

/// Everything a passkey approval covers, hashed with length prefixes under
/// a version tag. Write values enter only as their masked previews (the
/// request id binds the values themselves), so the digest stored in the
/// audit table reveals nothing about a value.
pub fn request_digest(req: &PendingApproval, window_minutes: f64) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut field = |s: &str| {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    };
    let r = &req.session.requester;
    field("agent-vault approval v1");
    field(&req.id);
    field(&req.vault.config);
    field(&req.vault.name);
    field(req.operation.as_str());
    field(&req.names.len().to_string());
    for n in &req.names {
        field(n);
    }
    field(&req.previews.len().to_string());
    for p in &req.previews {
        field(p);
    }
    field(&req.location);
    match &req.command {
        Some(c) => {
            field(&c.argv.len().to_string());
            for a in &c.argv {
                field(a);
            }
            field(&c.cwd);
        }
        None => field("no command"),
    }
    field(&req.reason);
    field(req.scope.as_str());
    field(&format!("{window_minutes}"));
    field(&req.session.id);
    field(&r.uid.to_string());
    field(&r.pid.to_string());
    field(&r.user);
    field(&r.exe);
    field(&r.cmdline);
    field(&r.cwd);
    field(&r.agent);
    field(&r.mcp_client);
    field(&req.created_ms.to_string());
    h.finalize().into()
}

fn challenge_for(digest: &[u8; 32], nonce: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"agent-vault passkey challenge v1");
    h.update(digest);
    h.update(nonce);
    h.finalize().to_vec()
}

/// A user handle per device: stable, so re-registering on the same
/// authenticator replaces rather than piles up.
fn user_handle(device_id: &str) -> Uuid {
    let d = Sha256::digest(format!("agent-vault device {device_id}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    Uuid::from_bytes(b)
}

struct Ceremony {
    state: PasskeyAuthentication,
    proven: Proven,
    expires_ms: i64,
}

#[derive(Default)]
struct Inner {
    keys: Vec<StoredPasskey>,
    /// device id -> registration under way.
    registrations: HashMap<String, (PasskeyRegistration, i64)>,
    /// (device id, request id) -> approval ceremony under way.
    ceremonies: HashMap<(String, String), Ceremony>,
}

pub struct Passkeys {
    webauthn: Result<(Webauthn, String), String>,
    inner: Mutex<Inner>,
    store: StoreTx,
}

impl Passkeys {
    /// For the approval base URL (see [`origin_for`]); `existing` are the
    /// stored passkeys.
    pub fn new(base: &str, stable: bool, existing: Vec<StoredPasskey>, store: StoreTx) -> Self {
        let webauthn = origin_for(base, stable).and_then(|(rp_id, origin)| {
            WebauthnBuilder::new(&rp_id, &origin)
                .and_then(|b| b.rp_name("Agent Vault").build())
                .map(|w| (w, rp_id))
                .map_err(|e| format!("cannot set up WebAuthn for {origin}: {e}"))
        });
        Self {
            webauthn,
            inner: Mutex::new(Inner {
                keys: existing,
                ..Default::default()
            }),
            store,
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn webauthn(&self) -> Result<(&Webauthn, &str), PasskeyError> {
        match &self.webauthn {
            Ok((w, rp)) => Ok((w, rp.as_str())),
            Err(why) => Err(PasskeyError::Unavailable(why.clone())),
        }
    }

    /// The relying-party id passkeys are registered for, or why there is none.
    pub fn availability(&self) -> Result<&str, &str> {
        match &self.webauthn {
            Ok((_, rp)) => Ok(rp),
            Err(why) => Err(why),
        }
    }

    /// This device's passkeys usable at the current origin.
    pub fn of_device(&self, device_id: &str) -> Vec<StoredPasskey> {
        let rp = self.availability().unwrap_or_default();
        self.inner()
            .keys
            .iter()
            .filter(|k| k.device_id == device_id && k.rp_id == rp)
            .cloned()
            .collect()
    }

    pub fn start_registration(
        &self,
        device_id: &str,
        label: &str,
        now_ms: i64,
    ) -> Result<CreationChallengeResponse, PasskeyError> {
        let (w, _) = self.webauthn()?;
        let existing = self.of_device(device_id);
        if existing.len() >= MAX_PER_DEVICE {
            return Err(PasskeyError::TooMany);
        }
        let exclude = existing
            .iter()
            .map(|k| k.passkey.cred_id().clone())
            .collect();
        let (options, state) = w
            .start_passkey_registration(
                user_handle(device_id),
                &format!("approver-{device_id}"),
                label,
                Some(exclude),
            )
            .map_err(|e| PasskeyError::Refused(e.to_string()))?;
        let mut inner = self.inner();
        inner.registrations.retain(|_, (_, exp)| *exp > now_ms);
        inner
            .registrations
            .insert(device_id.to_string(), (state, now_ms + CEREMONY_TTL_MS));
        Ok(options)
    }

    /// Verifies and stores a new passkey; returns its id.
    pub fn finish_registration(
        &self,
        device_id: &str,
        credential: &RegisterPublicKeyCredential,
        now_ms: i64,
    ) -> Result<String, PasskeyError> {
        let (w, rp_id) = self.webauthn()?;
        let state = match self.inner().registrations.remove(device_id) {
            Some((state, exp)) if exp > now_ms => state,
            _ => return Err(PasskeyError::NoCeremony),
        };
        let passkey = w
            .finish_passkey_registration(credential, &state)
            .map_err(|e| PasskeyError::Refused(e.to_string()))?;
        let stored = StoredPasskey {
            id: URL_SAFE_NO_PAD.encode(passkey.cred_id().as_slice()),
            device_id: device_id.to_string(),
            rp_id: rp_id.to_string(),
            created_ms: now_ms,
            passkey,
        };
        let row = stored.to_row()?;
        let mut inner = self.inner();
        if inner.keys.iter().any(|k| k.id == stored.id) {
            return Err(PasskeyError::Refused(
                "this passkey is already registered".into(),
            ));
        }
        self.store.send(StoreCmd::PutPasskey(Box::new(row)));
        let id = stored.id.clone();
        inner.keys.push(stored);
        Ok(id)
    }

    /// Starts approving `req` from `device_id` with `window_minutes`: the
    /// options for `navigator.credentials.get()`, whose challenge commits to
    /// the request's digest.
    pub fn start_approval(
        &self,
        device_id: &str,
        req: &PendingApproval,
        window_minutes: f64,
        now_ms: i64,
    ) -> Result<RequestChallengeResponse, PasskeyError> {
        let (w, rp_id) = self.webauthn()?;
        let keys: Vec<Passkey> = self
            .of_device(device_id)
            .into_iter()
            .map(|k| k.passkey)
            .collect();
        if keys.is_empty() {
            return Err(PasskeyError::NoneRegistered(rp_id.to_string()));
        }
        let (mut options, state) = w
            .start_passkey_authentication(&keys)
            .map_err(|e| PasskeyError::Refused(e.to_string()))?;
        let digest = request_digest(req, window_minutes);
        let challenge = challenge_for(&digest, options.public_key.challenge.as_slice());
        let state = with_challenge(state, &challenge)?;
        options.public_key.challenge = challenge;
        let mut inner = self.inner();
        inner.ceremonies.retain(|_, c| c.expires_ms > now_ms);
        inner.ceremonies.insert(
            (device_id.to_string(), req.id.clone()),
            Ceremony {
                state,
                proven: Proven {
                    digest,
                    window_minutes,
                },
                expires_ms: now_ms + CEREMONY_TTL_MS,
            },
        );
        Ok(options)
    }

    /// Verifies the assertion for the ceremony `device_id` started on
    /// `request_id`. The ceremony is used up either way.
    pub fn finish_approval(
        &self,
        device_id: &str,
        request_id: &str,
        credential: &PublicKeyCredential,
        now_ms: i64,
    ) -> Result<Proven, PasskeyError> {
        let (w, _) = self.webauthn()?;
        let ceremony = match self
            .inner()
            .ceremonies
            .remove(&(device_id.to_string(), request_id.to_string()))
        {
            Some(c) if c.expires_ms > now_ms => c,
            _ => return Err(PasskeyError::NoCeremony),
        };
        let result = w
            .finish_passkey_authentication(credential, &ceremony.state)
            .map_err(|e| PasskeyError::Refused(e.to_string()))?;
        if !result.user_verified() {
            return Err(PasskeyError::NotVerified);
        }
        let mut inner = self.inner();
        if let Some(k) = inner
            .keys
            .iter_mut()
            .find(|k| k.device_id == device_id && k.passkey.cred_id() == result.cred_id())
            && k.passkey.update_credential(&result) == Some(true)
        {
            // The counter only moves forward: a copy that cannot be stored
            // leaves the stored, lower one, which a later assertion also
            // passes. The approval itself is recorded by the caller.
            if let Ok(row) = k.to_row() {
                self.store.send(StoreCmd::PutPasskey(Box::new(row)));
            }
        }
        Ok(ceremony.proven)
    }

    /// Forgets one passkey (one whose registration could not be stored).
    pub fn forget(&self, id: &str) {
        self.inner().keys.retain(|k| k.id != id);
    }

    /// Forgets a revoked device's passkeys and ceremonies.
    pub fn remove_device(&self, device_id: &str) {
        let mut inner = self.inner();
        inner.keys.retain(|k| k.device_id != device_id);
        inner.registrations.remove(device_id);
        inner.ceremonies.retain(|(d, _), _| d != device_id);
    }
}

/// The ceremony state with its challenge replaced. The state's serialised
/// form is webauthn-rs's; a version that changes it makes this fail closed
/// (no approval), which the tests catch.
fn with_challenge(
    state: PasskeyAuthentication,
    challenge: &[u8],
) -> Result<PasskeyAuthentication, PasskeyError> {
    let broken = |e: String| PasskeyError::Refused(format!("ceremony state: {e}"));
    let mut v = serde_json::to_value(&state).map_err(|e| broken(e.to_string()))?;
    let slot = v
        .get_mut("ast")
        .and_then(|a| a.get_mut("challenge"))
        .ok_or_else(|| broken("no challenge field".into()))?;
    *slot = serde_json::Value::String(URL_SAFE_NO_PAD.encode(challenge));
    serde_json::from_value(v).map_err(|e| broken(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_that_can_and_cannot_hold_passkeys() {
        let ok = |b: &str| origin_for(b, true).map(|(rp, _)| rp);
        assert_eq!(ok("http://localhost:9999"), Ok("localhost".into()));
        assert_eq!(
            ok("https://Vault.Example.ngrok.app"),
            Ok("vault.example.ngrok.app".into())
        );
        let why = |b: &str, stable| origin_for(b, stable).err().unwrap_or_default();
        assert!(why("http://127.0.0.1:9999", true).contains("IP address"));
        assert!(why("http://[::1]:9999", true).contains("IP address"));
        assert!(why("http://vault.example.com", true).contains("HTTPS"));
        assert!(why("https://abc.ngrok-free.app", false).contains("ngrokDomain"));
        assert!(why("not a url", true).contains("invalid"));
    }

    #[test]
    fn user_handles_are_stable_per_device() {
        assert_eq!(user_handle("a1"), user_handle("a1"));
        assert_ne!(user_handle("a1"), user_handle("a2"));
    }

    /// A passkey whose serialization fails is refused with an error, never
    /// stored as an empty row; a stored row that no longer parses is
    /// skipped when loading, and the others load.
    #[test]
    fn a_passkey_that_cannot_be_serialized_is_refused() {
        struct Unserializable;
        impl serde::Serialize for Unserializable {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no"))
            }
        }
        assert_eq!(
            row_of("k1", "d1", "localhost", 1, &Unserializable),
            Err(PasskeyError::Unstorable)
        );
        let row = row_of("k2", "d1", "localhost", 2, &serde_json::json!({"a": 1}));
        assert_eq!(row.map(|r| r.passkey), Ok(r#"{"a":1}"#.to_string()));
        let broken = PasskeyRow {
            id: "k3".into(),
            device_id: "d1".into(),
            rp_id: "localhost".into(),
            passkey: String::new(),
            created_ms: 3,
        };
        assert!(parse_rows(vec![broken]).is_empty());
    }
}
