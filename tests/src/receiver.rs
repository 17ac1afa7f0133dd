//! An HTTP endpoint on loopback for what the daemon sends out: webhook
//! events and ntfy messages. It records every POST (path, headers, body)
//! and serves them back on GET, so that `agent-vault audit verify --anchor
//! URL` can read them:
//!
//! - `GET /<topic>/json?...` answers like ntfy's poll API
//!   (<https://docs.ntfy.sh/subscribe/api/>): an `open` line, then one JSON
//!   line per message posted to `/<topic>` (`id`, `time`, `event`,
//!   `topic`, `message`). This is a local stand-in for ntfy.sh, written
//!   from its public documentation; ntfy itself does not run here.
//! - `GET /<path>` answers with the bodies posted to `/<path>`, one per
//!   line (a receiver's log of webhook events).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One recorded POST.
#[derive(Debug, Clone)]
pub struct Posted {
    pub path: String,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Posted {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[derive(Default)]
struct Inner {
    posted: Vec<Posted>,
    /// Answer 500 to this many POSTs first.
    fail: usize,
}

/// The running endpoint; stopped when dropped.
pub struct Receiver {
    pub port: u16,
    inner: Arc<Mutex<Inner>>,
    task: tokio::task::JoinHandle<()>,
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Receiver {
    /// Listens on 127.0.0.1 (`port` 0 picks one).
    pub async fn start(port: u16) -> Result<Self> {
        Self::start_failing(port, 0).await
    }

    /// Like [`Receiver::start`], answering the first `fail` POSTs with 500.
    pub async fn start_failing(port: u16, fail: usize) -> Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let port = listener.local_addr()?.port();
        let inner = Arc::new(Mutex::new(Inner {
            posted: Vec::new(),
            fail,
        }));
        let task = tokio::spawn(serve(listener, inner.clone()));
        Ok(Self { port, inner, task })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Everything posted so far, oldest first.
    pub fn posted(&self) -> Vec<Posted> {
        lock(&self.inner).posted.clone()
    }

    /// Everything posted to `path`.
    pub fn posted_to(&self, path: &str) -> Vec<Posted> {
        self.posted()
            .into_iter()
            .filter(|p| p.path == path)
            .collect()
    }

    /// Stops listening (and frees the port).
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, inner: Arc<Mutex<Inner>>) {
    while let Ok((sock, _)) = listener.accept().await {
        tokio::spawn(handle(sock, inner.clone()));
    }
}

async fn handle(mut sock: tokio::net::TcpStream, inner: Arc<Mutex<Inner>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head_end, len) = loop {
        let Ok(n) = sock.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (i + 4, len);
        }
    };
    while buf.len() < head_end + len {
        let Ok(n) = sock.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.lines();
    let mut request_line = lines.next().unwrap_or("").split_whitespace();
    let method = request_line.next().unwrap_or("").to_string();
    let target = request_line.next().unwrap_or("").to_string();
    let path = target.split('?').next().unwrap_or("").to_string();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let (code, body) = if method == "POST" {
        let mut r = lock(&inner);
        if r.fail > 0 {
            r.fail -= 1;
            (500, String::new())
        } else {
            r.posted.push(Posted {
                path,
                headers,
                body: buf[head_end..].to_vec(),
            });
            (200, "{}".to_string())
        }
    } else {
        (200, answer_get(&path, &lock(&inner).posted))
    };
    let _ = sock
        .write_all(
            format!(
                "HTTP/1.1 {code} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await;
}

fn answer_get(path: &str, posted: &[Posted]) -> String {
    if let Some(topic_path) = path.strip_suffix("/json") {
        let topic = topic_path.trim_start_matches('/');
        let mut out =
            serde_json::json!({"id": "open", "event": "open", "topic": topic}).to_string();
        out.push('\n');
        for (i, p) in posted.iter().filter(|p| p.path == topic_path).enumerate() {
            let line = serde_json::json!({
                "id": format!("m{i}"),
                "time": 1_700_000_000 + i,
                "event": "message",
                "topic": topic,
                "title": p.header("title"),
                "priority": p.header("priority").parse::<u8>().unwrap_or(3),
                "message": p.text(),
            });
            out.push_str(&line.to_string());
            out.push('\n');
        }
        return out;
    }
    posted
        .iter()
        .filter(|p| p.path == path)
        .map(|p| p.text() + "\n")
        .collect()
}
