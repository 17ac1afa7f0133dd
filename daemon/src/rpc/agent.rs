//! The agent service: what a shim may ask.

use std::sync::Arc;

use agent_vault_proto::pb::{self, agent_server::Agent};
use tonic::{Request, Response, Status};

use super::peer::{Peer, peer_of};
use super::status_of;
use crate::access::{self, AccessError};
use crate::clock;
use crate::session::{Requester, Session};
use crate::state::AppState;

pub struct AgentService(pub AppState);

pub fn hello(state: &AppState) -> pb::HelloReply {
    pb::HelloReply {
        protocol: agent_vault_proto::PROTOCOL_VERSION,
        version: agent_vault_proto::VERSION.to_string(),
        pid: std::process::id(),
        uptime_ms: state.started.elapsed().as_millis() as u64,
        approval_base_url: state.approval_base(),
    }
}

impl AgentService {
    /// The session, if it belongs to the calling process.
    fn session(&self, peer: Peer, id: &str) -> Result<Arc<Session>, Status> {
        let s = self
            .0
            .session(id)
            .ok_or_else(|| status_of(AccessError::UnknownSession))?;
        if s.requester.pid != peer.pid || s.requester.uid != peer.uid {
            return Err(status_of(AccessError::NotYourSession));
        }
        Ok(s)
    }
}

#[tonic::async_trait]
impl Agent for AgentService {
    async fn hello(
        &self,
        _req: Request<pb::HelloRequest>,
    ) -> Result<Response<pb::HelloReply>, Status> {
        Ok(Response::new(hello(&self.0)))
    }

    async fn open_session(
        &self,
        req: Request<pb::OpenSessionRequest>,
    ) -> Result<Response<pb::OpenSessionReply>, Status> {
        let peer = peer_of(&req)?;
        let r = req.into_inner();
        let client = crate::text::shown(
            format!("{} {}", r.mcp_client_name, r.mcp_client_version).trim(),
            200,
        );
        let requester = Requester::from_peer(peer.uid, peer.pid, client);
        let session =
            access::open_session(&self.0, requester, &r.config_path, &r.config_text, r.env)
                .map_err(status_of)?;
        tracing::info!(session = %session.id, pid = peer.pid, uid = peer.uid, project = %session.project.path.display(), "session opened");
        Ok(Response::new(pb::OpenSessionReply {
            session_id: session.id.clone(),
            config_path: session.project.path.display().to_string(),
        }))
    }

    async fn list_secrets(
        &self,
        req: Request<pb::ListSecretsRequest>,
    ) -> Result<Response<pb::ListSecretsReply>, Status> {
        let peer = peer_of(&req)?;
        let session = self.session(peer, &req.get_ref().session_id)?;
        access::list(&self.0, &session)
            .await
            .map(Response::new)
            .map_err(status_of)
    }

    async fn access(
        &self,
        req: Request<pb::AccessRequest>,
    ) -> Result<Response<pb::AccessReply>, Status> {
        let peer = peer_of(&req)?;
        let session = self.session(peer, &req.get_ref().session_id)?;
        let _working = self.0.store.working();
        access::access(&self.0, &session, req.into_inner(), clock::now_ms())
            .await
            .map(Response::new)
            .map_err(status_of)
    }

    type WatchStream = tokio_stream::wrappers::ReceiverStream<Result<pb::WatchEvent, Status>>;

    async fn watch(
        &self,
        req: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let peer = peer_of(&req)?;
        let session = self.session(peer, &req.get_ref().session_id)?;
        session
            .watched
            .store(true, std::sync::atomic::Ordering::Release);
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let _ = tx.send(Ok(pb::WatchEvent {})).await;
        let state = self.0.clone();
        tokio::spawn(async move {
            tokio::select! {
                // The stream is dropped when the shim's connection closes.
                _ = tx.closed() => access::close_session(&state, &session, clock::now_ms()),
                _ = state.shutdown.cancelled() => {}
            }
        });
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            rx,
        )))
    }

    async fn r#await(
        &self,
        req: Request<pb::AwaitRequest>,
    ) -> Result<Response<pb::AccessReply>, Status> {
        let peer = peer_of(&req)?;
        let session = self.session(peer, &req.get_ref().session_id)?;
        let r = req.into_inner();
        let shutdown = self.0.shutdown.clone();
        tokio::select! {
            reply = access::await_decision(&self.0, &session, &r.request_id, r.timeout_ms) => {
                reply.map(Response::new).map_err(status_of)
            }
            _ = shutdown.cancelled() => Err(Status::unavailable("agent-vaultd is shutting down; call again in a moment")),
        }
    }
}
