//! Connect to the daemon's Unix socket and exchange versions.
//!
//! The shim and the CLI both go through [`connect`]; nothing else speaks the
//! wire format.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

use crate::pb::{self, admin_client::AdminClient, agent_client::AgentClient};
use crate::{MAX_MESSAGE_BYTES, PROTOCOL_VERSION, VERSION};

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "agent-vaultd is not running (nothing answers on {path}): start it with `agent-vaultd`, or let agent-vault-mcp start it"
    )]
    NotRunning { path: PathBuf },
    #[error(
        "agent-vaultd (pid {pid}) speaks protocol {daemon_protocol} (version {daemon_version}) but this client speaks protocol {PROTOCOL_VERSION} (version {VERSION}); restart the daemon: `kill {pid}` (or `systemctl --user restart agent-vault`) and it will start again on next use"
    )]
    Mismatch {
        pid: u32,
        daemon_protocol: u32,
        daemon_version: String,
    },
    #[error("agent-vaultd refused the connection: {0}")]
    Refused(String),
    /// A daemon started for this client exited before it answered.
    #[error(
        "agent-vaultd could not start ({status}): {reason} (its log: {}). Tell the user; calling again will not help until this is fixed.",
        log.display()
    )]
    StartFailed {
        status: String,
        reason: String,
        log: PathBuf,
    },
}

/// Clients for both services over one connection (a tonic `Channel`,
/// which reconnects by itself after the daemon restarts), plus the daemon's
/// hello.
#[derive(Clone, Debug)]
pub struct Connection {
    pub agent: AgentClient<Channel>,
    pub admin: AdminClient<Channel>,
    pub hello: pb::HelloReply,
}

/// A channel on the socket. Fails at once when nothing listens.
pub async fn channel(socket: &Path) -> Result<Channel, ConnectError> {
    let path = socket.to_path_buf();
    let connector = tower::service_fn(move |_| {
        let path = path.clone();
        async move {
            let stream = tokio::net::UnixStream::connect(path).await?;
            Ok::<_, std::io::Error>(TokioIo::new(stream))
        }
    });
    // The URI is required by the API and ignored by the connector.
    Endpoint::from_static("http://agent-vaultd.local")
        .connect_timeout(Duration::from_secs(5))
        .connect_with_connector(connector)
        .await
        .map_err(|_| ConnectError::NotRunning {
            path: socket.to_path_buf(),
        })
}

/// Connect and exchange versions; refuses a protocol mismatch.
pub async fn connect(socket: &Path, client_kind: &str) -> Result<Connection, ConnectError> {
    let channel = channel(socket).await?;
    let mut agent = AgentClient::new(channel.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let admin = AdminClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let request = pb::HelloRequest {
        protocol: PROTOCOL_VERSION,
        version: VERSION.to_string(),
        client_kind: client_kind.to_string(),
    };
    // The CLI speaks to the admin service, the shim to the agent service:
    // each role's allow-list decides who may even say hello.
    let mut admin = admin;
    let hello = if client_kind == "cli" {
        admin.hello(request).await
    } else {
        agent.hello(request).await
    };
    let hello = hello
        .map_err(|status| match status.code() {
            tonic::Code::Unavailable | tonic::Code::Unknown => ConnectError::NotRunning {
                path: socket.to_path_buf(),
            },
            _ => ConnectError::Refused(status.message().to_string()),
        })?
        .into_inner();
    if hello.protocol != PROTOCOL_VERSION {
        return Err(ConnectError::Mismatch {
            pid: hello.pid,
            daemon_protocol: hello.protocol,
            daemon_version: hello.version,
        });
    }
    Ok(Connection {
        agent,
        admin,
        hello,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::agent_server::{Agent, AgentServer};
    use tonic::{Request, Response, Status};

    /// A daemon from the future: it answers hello with another protocol.
    struct FutureDaemon;

    #[tonic::async_trait]
    impl Agent for FutureDaemon {
        async fn hello(
            &self,
            _: Request<pb::HelloRequest>,
        ) -> Result<Response<pb::HelloReply>, Status> {
            Ok(Response::new(pb::HelloReply {
                protocol: PROTOCOL_VERSION + 1,
                version: "9.9.9".into(),
                pid: 4242,
                ..Default::default()
            }))
        }
        async fn open_session(
            &self,
            _: Request<pb::OpenSessionRequest>,
        ) -> Result<Response<pb::OpenSessionReply>, Status> {
            Err(Status::unimplemented("test"))
        }
        async fn list_secrets(
            &self,
            _: Request<pb::ListSecretsRequest>,
        ) -> Result<Response<pb::ListSecretsReply>, Status> {
            Err(Status::unimplemented("test"))
        }
        async fn access(
            &self,
            _: Request<pb::AccessRequest>,
        ) -> Result<Response<pb::AccessReply>, Status> {
            Err(Status::unimplemented("test"))
        }
        async fn r#await(
            &self,
            _: Request<pb::AwaitRequest>,
        ) -> Result<Response<pb::AccessReply>, Status> {
            Err(Status::unimplemented("test"))
        }
        type WatchStream = tokio_stream::Empty<Result<pb::WatchEvent, Status>>;
        async fn watch(
            &self,
            _: Request<pb::WatchRequest>,
        ) -> Result<Response<Self::WatchStream>, Status> {
            Err(Status::unimplemented("test"))
        }
    }

    /// A daemon that takes the call and dies before it answers.
    #[tokio::test]
    async fn a_connection_lost_mid_call_is_unavailable_and_says_so()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("s.sock");
        let listener = tokio::net::UnixListener::bind(&socket)?;
        let (took, call_taken) = tokio::sync::oneshot::channel();
        let server = tokio::spawn(async move {
            let (io, _) = listener.accept().await?;
            let mut conn = h2::server::handshake(io).await?;
            let taken = conn.accept().await;
            let _ = took.send(taken.is_some_and(|r| r.is_ok()));
            // Dropping the connection hangs up with the call unanswered.
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        });
        let mut agent = AgentClient::new(channel(&socket).await?);
        let status = match agent.access(pb::AccessRequest::default()).await {
            Ok(reply) => panic!("a dead daemon answered: {reply:?}"),
            Err(status) => status,
        };
        assert!(call_taken.await?, "the request never reached the server");
        server.await?.map_err(|e| e.to_string())?;
        // What the shim retries (see shim/src/server.rs).
        let retried = [tonic::Code::Unavailable, tonic::Code::Unknown];
        assert!(retried.contains(&status.code()), "{status:?}");
        // With nothing listening any more, the next call fails the same way.
        let again = agent.access(pb::AccessRequest::default()).await;
        assert!(
            again
                .as_ref()
                .err()
                .is_some_and(|s| retried.contains(&s.code())),
            "{again:?}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_protocol_mismatch_is_refused_with_restart_advice()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("s.sock");
        assert!(matches!(
            connect(&socket, "cli").await,
            Err(ConnectError::NotRunning { .. })
        ));
        let listener = tokio::net::UnixListener::bind(&socket)?;
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(AgentServer::new(FutureDaemon))
                .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener)),
        );
        match connect(&socket, "shim").await {
            Err(e @ ConnectError::Mismatch { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("protocol 2 (version 9.9.9)") && msg.contains("kill 4242"),
                    "{msg}"
                );
            }
            other => panic!("expected a mismatch, got {other:?}"),
        }
        Ok(())
    }
}
