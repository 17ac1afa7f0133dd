//! Whether an approver's proof is enough for a request: the one place
//! that knows which factor a vault requires and what each transport can
//! show. The web and admin handlers only gather the proof (a device's
//! cookie and form token are checked by the web layer before a
//! [`Proof::Device`] or [`Proof::Passkey`] exists; a [`Proof::Terminal`]
//! carries the socket peer's uid).
//!
//! Denying needs no factor: anyone who may approve may refuse.

use std::sync::Arc;

use webauthn_rs::prelude::PublicKeyCredential;

use crate::attempts::{self, Locked};
use crate::audit::Action;
use crate::broker::{DecideError, PendingApproval, State};
use crate::config::ApprovalFactor;
use crate::devices::TotpError;
use crate::events;
use crate::passkeys::{self, PasskeyError};
use crate::state::AppState;

/// What an approver shows. A push channel's callback (a chat message's
/// button, signed by the channel) will be one more variant, decided here
/// like the others.
pub enum Proof<'a> {
    /// A paired device (cookie and form token checked), with the
    /// authenticator code typed on the page ("" when none).
    Device { device_id: &'a str, code: &'a str },
    /// A paired device's passkey assertion for the ceremony it started on
    /// this request.
    Passkey {
        device_id: &'a str,
        credential: &'a PublicKeyCredential,
    },
    /// An admin at a terminal: the uid of the socket's peer.
    Terminal { uid: u32 },
}

/// Who is recorded as having decided, and what a passkey signed for.
#[derive(Debug, Clone, PartialEq)]
pub struct Admitted {
    pub approver: String,
    /// Hex digest a passkey signed for; empty otherwise.
    pub approval_digest: String,
    /// The window a passkey signed for (it cannot be changed afterwards).
    pub signed_window: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Request(#[from] DecideError),
    #[error(
        "terminal approval is off for vault \"{vault}\": uid {uid} is both an admin and an agent, so an agent could approve its own request. \
         Approve on a paired device, or run the daemon with separate agent and admin users (SECURITY.md)"
    )]
    TerminalOff { vault: String, uid: u32 },
    /// A factor the terminal cannot give.
    #[error("this vault needs {}: approve it on a paired device", factor_name(*.0))]
    OnDevice(ApprovalFactor),
    #[error(
        "This vault needs a passkey: use \u{201c}Approve with passkey\u{201d} on the request's page."
    )]
    UsePasskey,
    #[error("this vault does not use passkeys: approve it with the form")]
    NotPasskeyVault,
    #[error(transparent)]
    Locked(#[from] Locked),
    #[error(transparent)]
    Code(#[from] TotpError),
    #[error(transparent)]
    Passkey(#[from] PasskeyError),
}

fn factor_name(f: ApprovalFactor) -> &'static str {
    match f {
        ApprovalFactor::Device => "a paired device",
        ApprovalFactor::Totp => "an authenticator code",
        ApprovalFactor::Passkey => "a passkey",
    }
}

/// The request `id`, while it waits for a decision.
pub fn pending(state: &AppState, id: &str) -> Result<Arc<PendingApproval>, Refusal> {
    let req = state.broker.get(id).ok_or(DecideError::NotFound)?;
    if req.state() != State::Pending {
        return Err(DecideError::AlreadyDecided.into());
    }
    Ok(req)
}

/// The request `id`, if a passkey ceremony may start on it.
pub fn passkey_request(state: &AppState, id: &str) -> Result<Arc<PendingApproval>, Refusal> {
    let req = pending(state, id)?;
    if req.factor != ApprovalFactor::Passkey {
        return Err(Refusal::NotPasskeyVault);
    }
    Ok(req)
}

/// Decides whether `proof` lets its approver approve (or deny) `req`.
/// Failed second factors count against the device (the failure that locks
/// it is audited); refusals that matter to the person are audited too.
pub fn admit(
    state: &AppState,
    req: &PendingApproval,
    approve: bool,
    proof: Proof<'_>,
    now_ms: i64,
) -> Result<Admitted, Refusal> {
    let plain = |approver: String| Admitted {
        approver,
        approval_digest: String::new(),
        signed_window: None,
    };
    match proof {
        Proof::Terminal { uid } => {
            // The terminal is the admin's; it is a separate approver only
            // when the admin is not also an agent.
            if state.agent_uids.contains(&uid) && !req.allow_terminal {
                events::record_plain(
                    state,
                    Action::Refused,
                    "",
                    &format!(
                        "terminal approval of {} refused: uid {uid} is an agent uid",
                        req.id
                    ),
                    None,
                );
                return Err(Refusal::TerminalOff {
                    vault: req.vault.name.to_string(),
                    uid,
                });
            }
            if approve && req.factor != ApprovalFactor::Device {
                return Err(Refusal::OnDevice(req.factor));
            }
            Ok(plain(format!("terminal:uid {uid}")))
        }
        Proof::Device { device_id, code } => {
            match req.factor {
                _ if !approve => {}
                ApprovalFactor::Device => {}
                ApprovalFactor::Totp => {
                    state.factor_attempts.check(device_id, now_ms)?;
                    if let Err(e) = state.devices.check_totp(code, (now_ms / 1000) as u64) {
                        factor_failed(
                            state,
                            device_id,
                            &format!("authenticator code for request {}: {e}", req.id),
                        );
                        return Err(e.into());
                    }
                    state.factor_attempts.succeeded(device_id);
                }
                ApprovalFactor::Passkey => return Err(Refusal::UsePasskey),
            }
            Ok(plain(device_id.to_string()))
        }
        Proof::Passkey {
            device_id,
            credential,
        } => {
            if req.factor != ApprovalFactor::Passkey {
                return Err(Refusal::NotPasskeyVault);
            }
            state.factor_attempts.check(device_id, now_ms)?;
            let proven = match state
                .passkeys
                .finish_approval(device_id, &req.id, credential, now_ms)
            {
                // The request is immutable, so this holds unless a digest
                // input changed under us; refuse rather than approve
                // something unsigned.
                Ok(p) if p.digest == passkeys::request_digest(req, p.window_minutes) => p,
                Ok(_) => {
                    return Err(PasskeyError::Refused(
                        "the request no longer matches what was signed".into(),
                    )
                    .into());
                }
                Err(e) => {
                    tracing::warn!(request = %req.id, device = device_id, error = %e, "passkey approval refused");
                    events::record_plain(
                        state,
                        Action::Refused,
                        device_id,
                        &format!("passkey approval of request {} refused: {e}", req.id),
                        None,
                    );
                    factor_failed(state, device_id, &format!("passkey for request {}", req.id));
                    return Err(e.into());
                }
            };
            state.factor_attempts.succeeded(device_id);
            Ok(Admitted {
                approver: device_id.to_string(),
                approval_digest: proven.digest_hex(),
                signed_window: Some(proven.window_minutes),
            })
        }
    }
}

/// Counts a failed second factor against the device; the failure that
/// locks it is audited.
pub fn factor_failed(state: &AppState, device_id: &str, what: &str) {
    if state
        .factor_attempts
        .failed(device_id, crate::clock::now_ms())
    {
        tracing::warn!(
            device = device_id,
            "second-factor attempts locked for this device"
        );
        events::record_plain(
            state,
            Action::FactorLocked,
            device_id,
            &format!(
                "{} failed second-factor attempts (last: {what}); locked for {} minutes",
                attempts::MAX_FAILURES,
                attempts::WINDOW_MS / 60_000
            ),
            None,
        );
    }
}
