//! The client's end of the daemon socket, tuned for one call in flight.
//!
//! A shim sends a request and sleeps until the answer. Two things a tokio
//! `UnixStream` does there cost it a wake-up or a half request per call:
//!
//! - It is registered for readable *and* writable events. A Unix socket
//!   reports "writable" each time the peer reads, so the daemon reading the
//!   request wakes the shim for nothing before the reply wakes it again.
//!   Here the socket is registered for readable events only; a duplicate of
//!   it is registered for writable events only while a write would block (a
//!   large `set_secret` value), and dropped once the data is out.
//! - Each write would be a `sendto` of its own. The HTTP/2 layer
//!   (`client::Link`) queues a request's HEADERS and DATA frames in one go
//!   and writes them frame by frame before it flushes; writes are buffered
//!   here until that flush, so the daemon is handed the whole request in
//!   one `write` and reads it once.
//!
//! (Serving the daemon's accepted sockets the same way was measured too:
//! no difference that rose above this machine's noise, so it is not done.)

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

/// Buffered output above this is written before more is taken.
const BUFFER: usize = 64 * 1024;

/// The most one read takes from the socket.
const READ: usize = 16 * 1024;

pub struct QuietStream {
    socket: AsyncFd<UnixStream>,
    /// The same socket, registered for writable events, while it is full.
    full: Option<AsyncFd<OwnedFd>>,
    out: Vec<u8>,
    /// Where reads land (zeroed once), copied from into the caller's
    /// buffer; see `poll_read`.
    inbuf: Box<[u8]>,
    /// How many times a write found the socket full.
    blocked: u64,
}

impl std::fmt::Debug for QuietStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuietStream")
            .field("buffered", &self.out.len())
            .field("full", &self.full.is_some())
            .field("blocked", &self.blocked)
            .finish()
    }
}

/// `AsyncFd::with_interest` is deprecated because a generic `T` might
/// change or close its descriptor while registered; `UnixStream` and
/// `OwnedFd` own theirs and never do (`register_with_interest` is the same
/// call, marked unsafe for that reason).
#[allow(deprecated)]
fn register<T: std::os::fd::AsRawFd>(io: T, interest: Interest) -> io::Result<AsyncFd<T>> {
    AsyncFd::with_interest(io, interest)
}

impl QuietStream {
    /// The client end, on a connected socket. Must be called inside a
    /// tokio runtime.
    pub fn connected(socket: UnixStream) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        Ok(Self {
            socket: register(socket, Interest::READABLE)?,
            full: None,
            out: Vec::new(),
            inbuf: vec![0; READ].into_boxed_slice(),
            blocked: 0,
        })
    }

    /// Writes out everything buffered.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.out.is_empty() {
            let written = match &self.full {
                None => match self.socket.get_ref().write(&self.out) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        // Registering reports the current state, so space
                        // freed since the write above is not missed.
                        self.blocked += 1;
                        let dup = self.socket.get_ref().as_fd().try_clone_to_owned()?;
                        self.full = Some(register(dup, Interest::WRITABLE)?);
                        continue;
                    }
                    other => other,
                },
                Some(full) => {
                    let mut ready = ready!(full.poll_write_ready(cx))?;
                    match ready.try_io(|_| self.socket.get_ref().write(&self.out)) {
                        Ok(result) => result,
                        // Readiness was cleared: wait for the next event.
                        Err(_would_block) => continue,
                    }
                }
            };
            match written {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        // Back to readable events only.
        self.full = None;
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for QuietStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // The HTTP/2 reader hands over a fresh, uninitialised 8 KiB each
        // time, and reading into it safely means zeroing it first: 8 KiB of
        // stores (a quarter of the L1 cache) for a reply of a few hundred
        // bytes. The read lands in a buffer zeroed once instead, and only
        // what arrived is copied.
        let this = self.get_mut();
        loop {
            let mut ready = ready!(this.socket.poll_read_ready(cx))?;
            let wanted = buf.remaining().min(READ);
            let inbuf = &mut this.inbuf[..wanted];
            match ready.try_io(|socket| socket.get_ref().read(inbuf)) {
                Ok(Ok(n)) => {
                    if n > 0 && n < wanted {
                        // A short read emptied the socket: wait for the
                        // next event rather than read again to learn that
                        // (tokio's own sockets do the same).
                        ready.clear_ready();
                    }
                    buf.put_slice(&this.inbuf[..n]);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => {}
            }
        }
    }
}

impl AsyncWrite for QuietStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.out.len() >= BUFFER {
            ready!(this.poll_drain(cx))?;
        }
        let mut taken = 0;
        for b in bufs {
            this.out.extend_from_slice(b);
            taken += b.len();
        }
        Poll::Ready(Ok(taken))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_drain(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Poll::Ready(this.socket.get_ref().shutdown(std::net::Shutdown::Write))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    type Res = Result<(), Box<dyn std::error::Error>>;

    /// The epoll event mask registered for `fd` in this process, read from
    /// /proc/self/fdinfo of every epoll instance (`tfd:` lines).
    fn epoll_mask(fd: i32) -> io::Result<u32> {
        for entry in std::fs::read_dir("/proc/self/fd")?.flatten() {
            let target = std::fs::read_link(entry.path()).unwrap_or_default();
            if target.to_string_lossy() != "anon_inode:[eventpoll]" {
                continue;
            }
            let info = std::fs::read_to_string(
                std::path::Path::new("/proc/self/fdinfo").join(entry.file_name()),
            )
            .unwrap_or_default();
            for line in info.lines() {
                let mut words = line.split_whitespace();
                if words.next() == Some("tfd:") && words.next() == Some(&fd.to_string()) {
                    let events = words.skip_while(|w| *w != "events:").nth(1);
                    return u32::from_str_radix(events.unwrap_or_default(), 16)
                        .map_err(|e| io::Error::other(format!("{line}: {e}")));
                }
            }
        }
        Err(io::Error::other(format!("fd {fd} is in no epoll set")))
    }

    const EPOLLIN: u32 = 0x1;
    const EPOLLOUT: u32 = 0x4;

    /// The control: the check below can fail, as it would for tokio's own.
    #[tokio::test]
    async fn the_mask_reader_sees_a_tokio_socket_registered_for_both() -> Res {
        let (ours, _theirs) = UnixStream::pair()?;
        ours.set_nonblocking(true)?;
        let fd = ours.as_raw_fd();
        let _s = tokio::net::UnixStream::from_std(ours)?;
        let mask = epoll_mask(fd)?;
        assert_eq!(
            mask & (EPOLLIN | EPOLLOUT),
            EPOLLIN | EPOLLOUT,
            "mask {mask:#x}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn registered_for_reading_only_so_the_peer_reading_does_not_wake_us() -> Res {
        let (ours, mut theirs) = UnixStream::pair()?;
        let fd = ours.as_raw_fd();
        let mut s = QuietStream::connected(ours)?;
        let mask = epoll_mask(fd)?;
        assert_eq!(mask & EPOLLOUT, 0, "mask {mask:#x}");
        assert_ne!(mask & EPOLLIN, 0, "mask {mask:#x}");

        s.write_all(b"request").await?;
        s.flush().await?;
        let mut got = [0u8; 7];
        theirs.read_exact(&mut got)?;
        assert_eq!(&got, b"request");
        theirs.write_all(b"reply")?;
        let mut reply = [0u8; 5];
        s.read_exact(&mut reply).await?;
        assert_eq!(&reply, b"reply");
        drop(theirs);
        assert_eq!(s.read(&mut reply).await?, 0, "end of stream");
        Ok(())
    }

    #[tokio::test]
    async fn writes_wait_for_the_flush_and_leave_in_one_piece() -> Res {
        let (ours, mut theirs) = UnixStream::pair()?;
        theirs.set_nonblocking(true)?;
        let mut s = QuietStream::connected(ours)?;
        s.write_all(b"HEADERS").await?;
        s.write_all(b"+DATA").await?;
        let mut buf = [0u8; 64];
        assert_eq!(
            theirs.read(&mut buf).map_err(|e| e.kind()),
            Err(io::ErrorKind::WouldBlock),
            "nothing is sent before the flush"
        );
        s.flush().await?;
        let n = theirs.read(&mut buf)?;
        assert_eq!(&buf[..n], b"HEADERS+DATA");
        Ok(())
    }

    #[tokio::test]
    async fn a_reply_larger_than_the_socket_buffer_arrives_whole() -> Res {
        let (ours, theirs) = UnixStream::pair()?;
        let mut s = QuietStream::connected(ours)?;
        let sent: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let expected = sent.clone();
        let writer = std::thread::spawn(move || {
            let mut theirs = theirs;
            theirs.write_all(&sent)
        });
        let mut got = Vec::new();
        s.read_to_end(&mut got).await?;
        writer.join().map_err(|_| "the writer panicked")??;
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "the bytes differ");
        Ok(())
    }

    #[tokio::test]
    async fn a_read_smaller_than_what_arrived_leaves_the_rest_for_the_next() -> Res {
        let (ours, mut theirs) = UnixStream::pair()?;
        let mut s = QuietStream::connected(ours)?;
        theirs.write_all(b"0123456789")?;
        let mut got = Vec::new();
        let mut small = [0u8; 4];
        while got.len() < 10 {
            let n = s.read(&mut small).await?;
            assert!(n > 0 && n <= 4, "read {n}");
            got.extend_from_slice(&small[..n]);
        }
        assert_eq!(got, b"0123456789");
        Ok(())
    }

    #[tokio::test]
    async fn a_write_larger_than_the_socket_buffer_waits_for_room_and_arrives_whole() -> Res {
        let (ours, mut theirs) = UnixStream::pair()?;
        let fd = ours.as_raw_fd();
        let mut s = QuietStream::connected(ours)?;
        let data: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let reader = std::thread::spawn(move || {
            // Let the writer fill the socket first.
            std::thread::sleep(std::time::Duration::from_millis(100));
            let mut all = Vec::new();
            theirs.read_to_end(&mut all).map(|_| all)
        });
        for chunk in data.chunks(16 * 1024) {
            s.write_all(chunk).await?;
            s.flush().await?;
        }
        assert!(s.blocked > 0, "the socket filled up");
        // Written out in the end, and back to readable events only.
        assert!(s.out.is_empty());
        assert!(s.full.is_none());
        assert_eq!(epoll_mask(fd)? & EPOLLOUT, 0);
        s.shutdown().await?;
        let got = reader.join().map_err(|_| "the reader panicked")??;
        assert!(got == data, "{} bytes arrived, in another order", got.len());
        Ok(())
    }
}
