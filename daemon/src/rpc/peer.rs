//! Peer credentials: who is on the other end of each call.
//!
//! The kernel records the peer's uid and pid when it connects (SO_PEERCRED
//! on Linux, getpeereid/LOCAL_PEEREPID on macOS); tonic hands them over as
//! `UdsConnectInfo`. A uid outside the role's allow-list is refused with
//! PERMISSION_DENIED, logged and audited.

use tonic::transport::server::UdsConnectInfo;
use tonic::{Request, Status};

use crate::audit::Action;
use crate::events;
use crate::session::Requester;
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Agent,
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub pid: u32,
}

pub fn peer_of<T>(req: &Request<T>) -> Result<Peer, Status> {
    let info = req
        .extensions()
        .get::<UdsConnectInfo>()
        .and_then(|i| i.peer_cred)
        .ok_or_else(|| Status::permission_denied("peer credentials are unavailable"))?;
    Ok(Peer {
        uid: info.uid(),
        pid: info.pid().map_or(0, |p| p as u32),
    })
}

pub fn authorize(state: &AppState, req: Request<()>, role: Role) -> Result<Request<()>, Status> {
    let peer = peer_of(&req)?;
    let allowed = match role {
        Role::Agent => &state.agent_uids,
        Role::Admin => &state.admin_uids,
    };
    if allowed.contains(&peer.uid) {
        return Ok(req);
    }
    tracing::warn!(
        uid = peer.uid,
        pid = peer.pid,
        ?role,
        "refused a peer whose uid is not allowed"
    );
    events::record_plain(
        state,
        Action::Refused,
        "",
        &format!("{role:?} RPC refused for uid {}", peer.uid),
        Some(Requester::from_peer(peer.uid, peer.pid, String::new())),
    );
    Err(Status::permission_denied(format!(
        "uid {} may not use agent-vaultd's {} interface",
        peer.uid,
        match role {
            Role::Agent => "agent",
            Role::Admin => "admin",
        }
    )))
}
