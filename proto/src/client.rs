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
///
/// It speaks HTTP/2 through `h2` itself rather than hyper's client on top
/// of it: hyper hands each request to its connection task over a channel
/// and spawns two tasks per request (one sends the body, one waits for the
/// response), so a unary call woke five tasks in the shim. Here the caller's
/// own task opens the stream, queues HEADERS and DATA (the last frame
/// carries END_STREAM, no empty frame after it) and awaits the response;
/// only the connection task runs besides. Failures are gRPC statuses: a
/// lost connection is `Unavailable`, which callers retry.
#[derive(Clone, Debug)]
pub struct Link(h2::client::SendRequest<bytes::Bytes>);

type LinkFuture = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = Result<tonic::codegen::http::Response<ResponseBody>, tonic::Status>,
            > + Send,
    >,
>;

/// The status for an HTTP/2 failure, as tonic maps them (gRPC's
/// PROTOCOL-HTTP2.md), except that a failed connection is `Unavailable`.
fn status_of(e: h2::Error) -> tonic::Status {
    use h2::Reason;
    use tonic::Code;
    if e.is_io() || e.is_go_away() {
        return tonic::Status::unavailable(format!("connection lost ({e})"));
    }
    let code = match e.reason() {
        Some(Reason::REFUSED_STREAM) => Code::Unavailable,
        Some(Reason::CANCEL) => Code::Cancelled,
        Some(Reason::ENHANCE_YOUR_CALM) => Code::ResourceExhausted,
        Some(Reason::INADEQUATE_SECURITY) => Code::PermissionDenied,
        Some(_) => Code::Internal,
        None => Code::Unknown,
    };
    tonic::Status::new(code, format!("HTTP/2 error ({e})"))
}

impl tower::Service<tonic::codegen::http::Request<tonic::body::Body>> for Link {
    type Response = tonic::codegen::http::Response<ResponseBody>;
    type Error = tonic::Status;
    type Future = LinkFuture;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        // A dead connection is reported by `call`, as `Unavailable`: tonic
        // turns an error here into `Unknown` ("Service was not ready").
        match self.0.poll_ready(cx) {
            std::task::Poll::Ready(Err(_)) => std::task::Poll::Ready(Ok(())),
            other => other.map_err(status_of),
        }
    }

    fn call(&mut self, req: tonic::codegen::http::Request<tonic::body::Body>) -> Self::Future {
        let (head, body) = req.into_parts();
        let opened = self
            .0
            .send_request(tonic::codegen::http::Request::from_parts(head, ()), false);
        Box::pin(async move {
            let (response, stream) = opened.map_err(status_of)?;
            send_body(body, stream).await?;
            let response = response.await.map_err(status_of)?;
            Ok(response.map(|recv| ResponseBody {
                recv,
                data_done: false,
                done: false,
            }))
        })
    }
}

/// Sends a request body's frames, END_STREAM on the last. A unary call's
/// body (tonic's encoder over one message) is ready at once; the frames are
/// queued on the stream and the connection task writes them.
async fn send_body(
    mut body: tonic::body::Body,
    mut stream: h2::SendStream<bytes::Bytes>,
) -> Result<(), tonic::Status> {
    use http_body_util::BodyExt;
    let mut held: Option<bytes::Bytes> = None;
    loop {
        match body.frame().await {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    if let Some(before) = held.replace(data) {
                        stream.send_data(before, false).map_err(status_of)?;
                    }
                }
                Err(frame) => {
                    if let Some(before) = held.take() {
                        stream.send_data(before, false).map_err(status_of)?;
                    }
                    if let Ok(trailers) = frame.into_trailers() {
                        return stream.send_trailers(trailers).map_err(status_of);
                    }
                }
            },
            Some(Err(status)) => {
                stream.send_reset(h2::Reason::CANCEL);
                return Err(status);
            }
            None => {
                return stream
                    .send_data(held.take().unwrap_or_default(), true)
                    .map_err(status_of);
            }
        }
    }
}

/// A response body: DATA frames (their flow-control window given back as
/// they are read), then the trailers that carry the gRPC status.
pub struct ResponseBody {
    recv: h2::RecvStream,
    data_done: bool,
    done: bool,
}

impl http_body::Body for ResponseBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, tonic::Status>>> {
        use std::task::Poll;
        if self.done {
            return Poll::Ready(None);
        }
        if !self.data_done {
            match std::task::ready!(self.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = self.recv.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(http_body::Frame::data(data))));
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(status_of(e))));
                }
                None => self.data_done = true,
            }
        }
        let trailers = std::task::ready!(self.recv.poll_trailers(cx));
        self.done = true;
        Poll::Ready(match trailers {
            Ok(Some(t)) => Some(Ok(http_body::Frame::trailers(t))),
            Ok(None) => None,
            Err(e) => Some(Err(status_of(e))),
        })
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody").finish_non_exhaustive()
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
    // hyper's client settings: windows large enough that a 4 MiB message
    // does not wait on window updates, no server push.
    let (send, conn) = h2::client::Builder::new()
        .initial_window_size(2 << 20)
        .initial_connection_window_size(5 << 20)
        .max_header_list_size(16 << 10)
        .max_send_buffer_size(1 << 20)
        .enable_push(false)
        .handshake(stream)
        .await
        .map_err(|_| not_running())?;
    // Drives the connection until the daemon or every `Link` clone hangs up.
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "the connection to agent-vaultd ended");
        }
    });
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
        let mut agent = AgentClient::with_origin(link(&socket).await?, origin());
        let status = match agent.access(pb::AccessRequest::default()).await {
            Ok(reply) => panic!("a dead daemon answered: {reply:?}"),
            Err(status) => status,
        };
        assert!(call_taken.await?, "the request never reached the server");
        server.await?.map_err(|e| e.to_string())?;
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert!(status.message().contains("connection lost"), "{status:?}");
        // The link is dead for good: the next call fails the same way.
        let again = agent.access(pb::AccessRequest::default()).await;
        assert_eq!(
            again.as_ref().err().map(|s| s.code()),
            Some(tonic::Code::Unavailable),
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
