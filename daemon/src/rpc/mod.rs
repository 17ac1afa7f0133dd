//! gRPC on the Unix socket: the agent service (for shims) and the admin
//! service (for the CLI). Every call first passes the peer-credential check
//! in [`peer`]; errors become `tonic::Status` only in [`status_of`].

pub(crate) mod admin;
mod agent;
pub mod peer;

use agent_vault_proto::MAX_MESSAGE_BYTES;
use agent_vault_proto::pb::{admin_server::AdminServer, agent_server::AgentServer};
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::Status;
use tonic::service::interceptor::InterceptedService;

use crate::access::AccessError;
use crate::providers::{FileError, ProviderError};
use crate::state::AppState;

pub use peer::Role;

/// Serves until `state.shutdown` is cancelled.
pub async fn serve(state: AppState, listener: UnixListener) -> Result<(), tonic::transport::Error> {
    let agent_state = state.clone();
    let admin_state = state.clone();
    let agent = InterceptedService::new(
        AgentServer::new(agent::AgentService(state.clone()))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
        move |req| peer::authorize(&agent_state, req, Role::Agent),
    );
    let admin = InterceptedService::new(
        AdminServer::new(admin::AdminService(state.clone()))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
        move |req| peer::authorize(&admin_state, req, Role::Admin),
    );
    let shutdown = state.shutdown.clone();
    tonic::transport::Server::builder()
        .add_service(agent)
        .add_service(admin)
        .serve_with_incoming_shutdown(
            UnixListenerStream::new(listener),
            shutdown.cancelled_owned(),
        )
        .await
}

/// The one place where daemon errors become gRPC statuses.
pub fn status_of(e: AccessError) -> Status {
    let msg = e.to_string();
    match e {
        AccessError::UnknownSession => Status::unauthenticated(msg),
        AccessError::NotYourSession => Status::permission_denied(msg),
        AccessError::UnknownVault { .. } | AccessError::UnknownRequest(_) => Status::not_found(msg),
        AccessError::NotWritable(_) | AccessError::UseOnly { .. } => {
            Status::failed_precondition(msg)
        }
        AccessError::Invalid(_) | AccessError::Config(_) => Status::invalid_argument(msg),
        AccessError::WriteFailed(_) => Status::internal(msg),
        AccessError::TooMany(_) => Status::resource_exhausted(msg),
        AccessError::AuditUnavailable => Status::unavailable(msg),
        AccessError::SourceChanged(_) => Status::failed_precondition(msg),
        AccessError::Provider(p) => match p {
            ProviderError::UnknownSecret { .. } | ProviderError::NotFound { .. } => {
                Status::not_found(msg)
            }
            ProviderError::InvalidName(_) | ProviderError::Invalid(_) => {
                Status::invalid_argument(msg)
            }
            // A backend's trouble is not the daemon's absence (UNAVAILABLE,
            // which the shim answers by reconnecting): each says what to do.
            ProviderError::Unavailable { .. } => Status::aborted(msg),
            ProviderError::TimedOut { .. } => Status::deadline_exceeded(msg),
            ProviderError::Unauthorized { .. } | ProviderError::Forbidden { .. } => {
                Status::permission_denied(msg)
            }
            ProviderError::NotConfigured { .. } => Status::failed_precondition(msg),
            // Not the daemon's absence: retrying cannot help, the message
            // says what to fix.
            ProviderError::File { error, .. } => match error {
                FileError::Io { .. } => Status::failed_precondition(msg),
                FileError::NotYours { .. } | FileError::WriteAsOtherUser { .. } => {
                    Status::permission_denied(msg)
                }
            },
        },
    }
}
