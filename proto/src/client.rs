//! Connect to the daemon's Unix socket and exchange versions.
//!
//! The shim and the CLI both go through [`connect`]; nothing else speaks the
//! wire format.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
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
}

/// Clients for both services over one HTTP/2 connection, plus the daemon's
/// hello.
#[derive(Clone, Debug)]
pub struct Connection {
    pub agent: AgentClient<Link>,
    pub admin: AdminClient<Link>,
    pub hello: pb::HelloReply,
}

/// One HTTP/2 connection to the daemon, used as the gRPC transport as it
/// is: no request queue, worker task or reconnect layer in between (a
/// tonic `Channel` has all three). A client that loses the daemon connects
/// again itself (the shim does on `Unavailable`).
#[derive(Clone, Debug)]
pub struct Link(hyper::client::conn::http2::SendRequest<tonic::body::Body>);

type LinkFuture = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = Result<
                    tonic::codegen::http::Response<hyper::body::Incoming>,
                    hyper::Error,
                >,
            > + Send,
    >,
>;

impl tower::Service<tonic::codegen::http::Request<tonic::body::Body>> for Link {
    type Response = tonic::codegen::http::Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future = LinkFuture;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: tonic::codegen::http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(self.0.send_request(req))
    }
}

/// The HTTP/2 connection on the socket. Fails at once when nothing listens.
pub async fn link(socket: &Path) -> Result<Link, ConnectError> {
    let not_running = || ConnectError::NotRunning {
        path: socket.to_path_buf(),
    };
    let stream = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::UnixStream::connect(socket),
    )
    .await
    .map_err(|_| not_running())?
    .map_err(|_| not_running())?;
    let stream =
        crate::quiet::QuietStream::connected(stream.into_std().map_err(|_| not_running())?)
            .map_err(|_| not_running())?;
    let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|_| not_running())?;
    // Drives the connection until the daemon or every `Link` clone hangs up.
    tokio::spawn(conn);
    Ok(Link(send))
}

fn origin() -> tonic::codegen::http::Uri {
    tonic::codegen::http::Uri::from_static("http://agent-vaultd.local")
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
    let link = link(socket).await?;
    let mut agent = AgentClient::with_origin(link.clone(), origin())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let admin = AdminClient::with_origin(link, origin())
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
