//! The benchmark's floor for the product's shape: each agent session's
//! process relays every tool call over a Unix socket to one shared server
//! and waits for its answer, as the shim does with the daemon, but neither
//! side does any work. The relay sends the call's arguments as one line and
//! answers the tool call with the line it gets back; the server
//! (`mcp-relay-floor --serve`, one thread per connection) answers every
//! line with the benchmark secret's value, so the minimal client's check of
//! the result holds. Blocking std I/O throughout: no runtime, no HTTP/2, no
//! database. The socket is `$HOME/relay-floor.sock`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;

/// What the server answers: the value the bench's sessions expect.
const ANSWER: &[u8] = b"other-secret-91c2\n";

fn socket() -> std::io::Result<PathBuf> {
    let home = std::env::var_os("HOME").ok_or_else(|| std::io::Error::other("HOME is not set"))?;
    Ok(PathBuf::from(home).join("relay-floor.sock"))
}

fn serve() -> std::io::Result<()> {
    let listener = UnixListener::bind(socket()?)?;
    for conn in listener.incoming() {
        let conn = conn?;
        std::thread::spawn(move || -> std::io::Result<()> {
            let mut out = conn.try_clone()?;
            let mut lines = BufReader::new(conn);
            let mut line = Vec::new();
            while lines.read_until(b'\n', &mut line)? > 0 {
                out.write_all(ANSWER)?;
                line.clear();
            }
            Ok(())
        });
    }
    Ok(())
}

fn relay() -> std::io::Result<()> {
    let conn = UnixStream::connect(socket()?)?;
    let mut out = conn.try_clone()?;
    let mut replies = BufReader::new(conn);
    let mut reply = String::new();
    agent_vault_e2e::floor::serve_stdio(|params| {
        out.write_all(format!("{}\n", params["arguments"]).as_bytes())?;
        reply.clear();
        if replies.read_line(&mut reply)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(reply.trim_end().to_string())
    })
}

fn main() -> std::io::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("--serve") {
        serve()
    } else {
        relay()
    }
}
