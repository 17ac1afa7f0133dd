//! The shim's stdin and stdout, as the MCP transport.
//!
//! An agent spawns the shim with pipes (tokio, Python) or with Unix socket
//! pairs (Node: libuv makes a socketpair for each piped stdio stream, so
//! Claude Code and other Node hosts do this). Both are read and written on
//! tokio's reactor: pipes through rmcp's `stdio_pipes`, sockets here.
//! Anything else (a terminal, a file) goes through tokio's blocking stdio,
//! which hands every read and write to a pool thread and back.
//!
//! A socket cannot be reopened on a description of its own (as rmcp does
//! for pipes through /proc/self/fd), so the duplicates share the sockets'
//! open file descriptions and fds 0 and 1 become non-blocking too. Nothing
//! else in the shim uses them, a daemon it starts gets /dev/null and a log
//! file, and a stderr on the same socket as stdout keeps the blocking path.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use tokio::io::{AsyncRead, AsyncWrite};

pub type Reader = Box<dyn AsyncRead + Send + Unpin>;
pub type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// Which transport the standard streams got (logged at debug level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    UnixSockets,
    PipesOrBlocking,
}

pub fn transport() -> (Reader, Writer, Kind) {
    match unix_sockets(std::io::stdin(), std::io::stdout(), std::io::stderr()) {
        Ok(Some((r, w))) => (Box::new(r), Box::new(w), Kind::UnixSockets),
        other => {
            if let Err(e) = other {
                tracing::debug!(error = %e, "stdio sockets unusable; using pipes or blocking stdio");
            }
            let (r, w) = rmcp::transport::io::stdio_pipes();
            (Box::new(r), Box::new(w), Kind::PipesOrBlocking)
        }
    }
}

fn owned(fd: impl AsFd) -> std::io::Result<OwnedFd> {
    fd.as_fd().try_clone_to_owned()
}

/// Non-blocking streams on duplicates of `input` and `output` when both are
/// Unix domain sockets; `None` otherwise. Not when `errors` is the same
/// socket as either: making it non-blocking would make our own log writes
/// non-blocking too. Nothing is changed unless both are taken.
fn unix_sockets(
    input: impl AsFd,
    output: impl AsFd,
    errors: impl AsFd,
) -> std::io::Result<Option<(tokio::net::UnixStream, tokio::net::UnixStream)>> {
    let meta = |fd: &OwnedFd| -> std::io::Result<std::fs::Metadata> {
        std::fs::File::from(fd.try_clone()?).metadata()
    };
    let (input, output) = (owned(input)?, owned(output)?);
    let (in_meta, out_meta) = (meta(&input)?, meta(&output)?);
    if !in_meta.file_type().is_socket() || !out_meta.file_type().is_socket() {
        return Ok(None);
    }
    let id = |m: &std::fs::Metadata| (m.dev(), m.ino());
    if let Ok(err_meta) = owned(errors).and_then(|e| meta(&e))
        && (id(&err_meta) == id(&out_meta) || id(&err_meta) == id(&in_meta))
    {
        return Ok(None);
    }
    let (input, output) = (
        std::os::unix::net::UnixStream::from(input),
        std::os::unix::net::UnixStream::from(output),
    );
    // An inet socket fails here (only a Unix socket has this address),
    // before either stream is made non-blocking.
    input.local_addr()?;
    output.local_addr()?;
    let stream = |s: std::os::unix::net::UnixStream| -> std::io::Result<tokio::net::UnixStream> {
        s.set_nonblocking(true)?;
        tokio::net::UnixStream::from_std(s)
    };
    Ok(Some((stream(input)?, stream(output)?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn socket_pairs_become_reactor_streams() -> std::io::Result<()> {
        let (agent_in, shim_in) = std::os::unix::net::UnixStream::pair()?;
        let (shim_out, agent_out) = std::os::unix::net::UnixStream::pair()?;
        let (_, log) = std::os::unix::net::UnixStream::pair()?;
        let Some((mut r, mut w)) = unix_sockets(&shim_in, &shim_out, &log)? else {
            panic!("socket pairs were not taken");
        };
        let mut agent_in = tokio::net::UnixStream::from_std({
            agent_in.set_nonblocking(true)?;
            agent_in
        })?;
        let mut agent_out = tokio::net::UnixStream::from_std({
            agent_out.set_nonblocking(true)?;
            agent_out
        })?;
        agent_in.write_all(b"{\"jsonrpc\":\"2.0\"}\n").await?;
        let mut buf = [0u8; 18];
        r.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"{\"jsonrpc\":\"2.0\"}\n");
        w.write_all(b"ok\n").await?;
        let mut back = [0u8; 3];
        agent_out.read_exact(&mut back).await?;
        assert_eq!(&back, b"ok\n");
        Ok(())
    }

    #[tokio::test]
    async fn pipes_files_and_a_shared_log_socket_are_left_alone() -> std::io::Result<()> {
        let (shim_in, _agent_in) = std::os::unix::net::UnixStream::pair()?;
        let (shim_out, _agent_out) = std::os::unix::net::UnixStream::pair()?;
        // stderr is the same socket as stdout (2>&1): not taken.
        assert!(unix_sockets(&shim_in, &shim_out, &shim_out)?.is_none());
        // A file is not a socket.
        let file = dev_null()?;
        assert!(unix_sockets(&file, &shim_out, &file)?.is_none());
        // Neither is a pipe (rmcp's stdio_pipes takes those).
        let (pipe_r, pipe_w) = std::io::pipe()?;
        assert!(unix_sockets(&pipe_r, &pipe_w, &file)?.is_none());
        // stderr is the same socket as stdin: not taken either.
        assert!(unix_sockets(&shim_in, &shim_out, &shim_in)?.is_none());
        // An inet socket is a socket, but not a Unix one; and the Unix
        // socket beside it is left as it was (still blocking).
        let tcp = std::net::TcpListener::bind("127.0.0.1:0")?;
        assert!(unix_sockets(&tcp, &shim_out, &file).is_err());
        assert!(unix_sockets(&shim_in, &tcp, &file).is_err());
        assert!(!nonblocking(&shim_in), "a refused stream was changed");
        let Some(_) = unix_sockets(&shim_in, &shim_out, &file)? else {
            panic!("socket pairs were not taken");
        };
        assert!(nonblocking(&shim_in) && nonblocking(&shim_out));
        Ok(())
    }

    fn nonblocking(fd: &impl AsFd) -> bool {
        use nix::fcntl::{FcntlArg, OFlag, fcntl};
        fcntl(fd, FcntlArg::F_GETFL)
            .is_ok_and(|f| OFlag::from_bits_truncate(f).contains(OFlag::O_NONBLOCK))
    }

    fn dev_null() -> std::io::Result<std::fs::File> {
        std::fs::File::open("/dev/null")
    }
}
