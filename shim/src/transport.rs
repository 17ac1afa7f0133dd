//! The shim's MCP transport: newline-delimited JSON-RPC on stdin and
//! stdout, as rmcp's `AsyncRwTransport` does it, with one shortcut on the
//! hot path.
//!
//! rmcp decodes every incoming line as an untagged union: the message kind
//! first, then each of its twenty-odd request types in turn until one
//! accepts the `method`. A `tools/call` is the fourteenth, so each call
//! built and threw away thirteen serde errors, and decoding was 29% of the
//! shim's instructions per call (callgrind: 133k instructions per call
//! before, 106k after; docs/BENCHMARKS.md). Here a line whose keys make it
//! a request (`method` and `id`, no `result` or `error`: rmcp's own shape
//! rule) and whose method is `tools/call` is decoded as that request
//! directly, with rmcp's types for its parts. Every other line, and a
//! `tools/call` that does not decode that way, goes through rmcp's codec
//! unchanged, so its errors and its compatibility rules (a leading BOM,
//! ignored non-MCP notifications) stay rmcp's. Framing and error replies
//! follow `AsyncRwTransport`: lines over 16 MiB are dropped, an unparsable
//! line is ignored, and well-formed JSON that is not a message gets an
//! "Invalid Request" reply.

use std::sync::Arc;

use rmcp::RoleServer;
use rmcp::model::{
    CallToolRequest, CallToolRequestMethod, CallToolRequestParams, ClientRequest, ErrorData,
    JsonRpcMessage, JsonRpcRequest, JsonRpcVersion2_0, RequestId,
};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::transport::async_rw::{DEFAULT_MAX_LINE_LENGTH, JsonRpcMessageCodecError};
use serde::de::{IgnoredAny, MapAccess, Visitor};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;

type In = RxJsonRpcMessage<RoleServer>;
type Out = TxJsonRpcMessage<RoleServer>;

const BOM: &[u8] = b"\xEF\xBB\xBF";

pub struct Lines<R, W> {
    read: BufReader<R>,
    line: Vec<u8>,
    max_line: usize,
    /// Dropping the rest of an over-long line (kept here, not in a local:
    /// `receive` is polled in a `select!` and may be cancelled mid-line).
    discarding: bool,
    write: Arc<Mutex<Option<Writer<W>>>>,
    /// An "Invalid Request" reply owed to the peer, sent before the next read.
    owed: Owed,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Owed {
    Nothing,
    Reply,
    Flush,
}

enum Read {
    Line,
    Oversized,
    Eof,
}

/// stdout with its own buffer, so that a send cancelled mid-write leaves
/// its bytes to go out, in order, before the next message's.
struct Writer<W> {
    out: W,
    pending: Vec<u8>,
}

impl<W: AsyncWrite + Unpin> Writer<W> {
    /// Appends one message and its newline; nothing if it cannot be encoded.
    fn queue(&mut self, message: &Out) -> std::io::Result<()> {
        let mark = self.pending.len();
        if let Err(e) = serde_json::to_writer(&mut self.pending, message) {
            self.pending.truncate(mark);
            return Err(e.into());
        }
        self.pending.push(b'\n');
        Ok(())
    }

    async fn drain(&mut self) -> std::io::Result<()> {
        while !self.pending.is_empty() {
            let n = self.out.write(&self.pending).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            self.pending.drain(..n);
        }
        self.out.flush().await
    }
}

async fn locked<W, T>(
    write: &Mutex<Option<Writer<W>>>,
    then: impl AsyncFnOnce(&mut Writer<W>) -> std::io::Result<T>,
) -> std::io::Result<T> {
    let mut guard = write.lock().await;
    match guard.as_mut() {
        Some(w) => then(w).await,
        None => Err(std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            "the transport is closed",
        )),
    }
}

impl<R, W> Lines<R, W>
where
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    pub fn new(read: R, write: W) -> Self {
        Self {
            read: BufReader::new(read),
            line: Vec::new(),
            max_line: DEFAULT_MAX_LINE_LENGTH,
            discarding: false,
            write: Arc::new(Mutex::new(Some(Writer {
                out: write,
                pending: Vec::new(),
            }))),
            owed: Owed::Nothing,
        }
    }

    #[cfg(test)]
    fn with_max_line(mut self, max: usize) -> Self {
        self.max_line = max;
        self
    }

    /// One `\n`-terminated line into `self.line`, never longer than
    /// `max_line`. Cancel-safe: bytes are moved from the reader's buffer to
    /// `self.line` and consumed with no await in between.
    async fn read_line(&mut self) -> std::io::Result<Read> {
        loop {
            let available = self.read.fill_buf().await?;
            if available.is_empty() {
                // An unterminated last line is not a message.
                return Ok(Read::Eof);
            }
            let newline = available.iter().position(|b| *b == b'\n');
            let take = newline.map_or(available.len(), |i| i + 1);
            let mut done = None;
            if self.discarding {
                self.discarding = newline.is_none();
            } else if self.line.len().saturating_add(take) > self.max_line {
                self.line.clear();
                self.discarding = newline.is_none();
                done = Some(Read::Oversized);
            } else {
                self.line.extend_from_slice(&available[..take]);
                if newline.is_some() {
                    done = Some(Read::Line);
                }
            }
            self.read.consume(take);
            if let Some(done) = done {
                return Ok(done);
            }
        }
    }

    /// Sends the owed reply. Cancel-safe: the reply is queued once, and a
    /// cancelled write leaves the rest queued.
    async fn pay_owed(&mut self) -> std::io::Result<()> {
        let owed = &mut self.owed;
        locked(&self.write, async |w| {
            if *owed == Owed::Reply {
                w.queue(&Out::error(
                    ErrorData::invalid_request("Invalid request", None),
                    None,
                ))?;
                *owed = Owed::Flush;
            }
            w.drain().await?;
            *owed = Owed::Nothing;
            Ok(())
        })
        .await
    }
}

/// Where a line failed to decode, without serde's message: that quotes
/// the offending input ("invalid type: string \"…\""), which may be a
/// value an agent is storing.
fn where_(e: &serde_json::Error) -> String {
    format!("{:?} error at column {}", e.classify(), e.column())
}

/// Decodes one line (without its `\n` and `\r`): `Ok(None)` for a line
/// rmcp ignores (a non-MCP notification).
fn decode(line: &[u8]) -> Result<Option<In>, JsonRpcMessageCodecError> {
    if let Some(message) = tool_call(line) {
        return Ok(Some(message));
    }
    use tokio_util::codec::Decoder;
    let mut framed = bytes::BytesMut::with_capacity(line.len() + 1);
    framed.extend_from_slice(line);
    framed.extend_from_slice(b"\n");
    rmcp::transport::async_rw::JsonRpcMessageCodec::<In>::default().decode(&mut framed)
}

/// The shortcut: a `tools/call` request, or `None` for anything else (which
/// then takes rmcp's path, errors and all).
///
/// rmcp reads a request's `params._meta` into the request's extensions and
/// the rest of `params` into the params type (whose own `_meta` is then
/// absent); this does the same without serde's flatten buffers. The tests
/// compare both paths on every shape of call.
fn tool_call(line: &[u8]) -> Option<In> {
    #[derive(serde::Deserialize)]
    struct Call {
        jsonrpc: JsonRpcVersion2_0,
        id: RequestId,
        #[serde(rename = "method")]
        _method: CallToolRequestMethod,
        params: CallToolRequestParams,
    }
    let line = line.strip_prefix(BOM).unwrap_or(line);
    let keys: Keys = serde_json::from_slice(line).ok()?;
    if !keys.is_tool_call() {
        return None;
    }
    let Call {
        jsonrpc,
        id,
        mut params,
        ..
    } = serde_json::from_slice(line).ok()?;
    let meta = params.meta.take();
    let mut request = CallToolRequest::new(params);
    if let Some(meta) = meta {
        request.extensions.insert(meta);
    }
    Some(JsonRpcMessage::Request(JsonRpcRequest {
        jsonrpc,
        id,
        request: ClientRequest::from(request),
    }))
}

/// Which top-level keys a message has, and whether its method is
/// `tools/call`. A method that is not a string fails this (and so takes
/// rmcp's path, which rejects it).
#[derive(Default)]
struct Keys {
    tool_call: bool,
    method: bool,
    id: bool,
    result: bool,
    error: bool,
    repeated: bool,
}

impl Keys {
    fn is_tool_call(&self) -> bool {
        self.method && self.tool_call && self.id && !self.result && !self.error && !self.repeated
    }
}

#[derive(serde::Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum Key {
    Method,
    Id,
    Result,
    Error,
    #[serde(other)]
    Other,
}

/// A string, compared with `tools/call` without being copied.
struct IsToolCall(bool);

impl<'de> serde::Deserialize<'de> for IsToolCall {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IsToolCall;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a method name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<IsToolCall, E> {
                use rmcp::model::ConstString;
                Ok(IsToolCall(v == CallToolRequestMethod::VALUE))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> serde::Deserialize<'de> for Keys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeysVisitor;
        impl<'de> Visitor<'de> for KeysVisitor {
            type Value = Keys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON-RPC message")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                let mut keys = Keys::default();
                while let Some(key) = map.next_key::<Key>()? {
                    let seen = match key {
                        Key::Method => {
                            keys.tool_call = map.next_value::<IsToolCall>()?.0;
                            std::mem::replace(&mut keys.method, true)
                        }
                        Key::Id => std::mem::replace(&mut keys.id, true),
                        Key::Result => std::mem::replace(&mut keys.result, true),
                        Key::Error => std::mem::replace(&mut keys.error, true),
                        Key::Other => false,
                    };
                    keys.repeated |= seen;
                    if !matches!(key, Key::Method) {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(keys)
            }
        }
        d.deserialize_map(KeysVisitor)
    }
}

impl<R, W> Transport<RoleServer> for Lines<R, W>
where
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: Out,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let write = self.write.clone();
        async move {
            locked(&write, async |w| {
                w.queue(&item)?;
                w.drain().await
            })
            .await
        }
    }

    async fn receive(&mut self) -> Option<In> {
        loop {
            if self.owed != Owed::Nothing && self.pay_owed().await.is_err() {
                return None;
            }
            match self.read_line().await {
                Ok(Read::Line) => {}
                Ok(Read::Oversized) => {
                    tracing::error!(
                        max_line_length = self.max_line,
                        "an incoming message exceeded the maximum line length; dropped"
                    );
                    continue;
                }
                Ok(Read::Eof) => return None,
                Err(e) => {
                    tracing::error!(error = %e, "reading stdin failed");
                    return None;
                }
            }
            let line = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let decoded = if line.is_empty() {
                Ok(None)
            } else {
                decode(line)
            };
            self.line.clear();
            match decoded {
                Ok(Some(message)) => return Some(message),
                Ok(None) => {}
                Err(JsonRpcMessageCodecError::Serde(e)) => {
                    use serde_json::error::Category;
                    if matches!(e.classify(), Category::Data | Category::Io) {
                        // Well-formed JSON that is not a message: a protocol
                        // error, answered. Unparsable input is ignored (as
                        // every official SDK does: no reply storms).
                        tracing::debug!(
                            at = %where_(&e),
                            "an incoming message is not JSON-RPC"
                        );
                        self.owed = Owed::Reply;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "decoding stdin failed");
                    return None;
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.write.lock().await.take();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::RequestMetaObject;
    use tokio::io::AsyncReadExt;

    /// rmcp's own decoding of a line: what `decode` must agree with.
    fn by_rmcp(line: &[u8]) -> Result<Option<In>, JsonRpcMessageCodecError> {
        use tokio_util::codec::Decoder;
        let mut framed = bytes::BytesMut::from(line);
        framed.extend_from_slice(b"\n");
        rmcp::transport::async_rw::JsonRpcMessageCodec::<In>::default().decode(&mut framed)
    }

    /// A decoded message as JSON, with where its `_meta` went: the request's
    /// extensions (as rmcp puts it) or the params (serialising would hide
    /// the difference).
    fn observe(m: &Result<Option<In>, JsonRpcMessageCodecError>) -> String {
        match m {
            Ok(Some(msg)) => {
                let placed = match msg {
                    JsonRpcMessage::Request(JsonRpcRequest {
                        request: ClientRequest::CallToolRequest(r),
                        ..
                    }) => format!(
                        " ext={:?} params_meta={:?}",
                        r.extensions.get::<RequestMetaObject>(),
                        r.params.meta
                    ),
                    _ => String::new(),
                };
                format!("{}{placed}", serde_json::to_value(msg).unwrap_or_default())
            }
            Ok(None) => "ignored".into(),
            Err(JsonRpcMessageCodecError::Serde(e)) => format!("error {:?}", e.classify()),
            Err(e) => format!("error {e}"),
        }
    }

    const CALL: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get_secret","arguments":{"vault":"v","name":"N","reason":"r"}}}"#;

    #[test]
    fn the_shortcut_decodes_a_call_as_rmcp_does() {
        let taken = [
            CALL.to_string(),
            r#"{"jsonrpc":"2.0","id":"abc","method":"tools/call","params":{"name":"t"}}"#.into(),
            r#"{"params":{"arguments":{"n":1.5,"big":18446744073709551616,"neg":-3,"s":"\u00e9\n","a":[1,{"b":null}]},"name":"t"},"method":"tools/call","id":1,"jsonrpc":"2.0"}"#.into(),
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"t","_meta":{"progressToken":"p1","x":{"y":2}}}}"#.into(),
            r#"{"jsonrpc":"2.0","id":3,"method":"tools\/call","params":{"name":"t"},"extra":[1,2]}"#.into(),
            format!("\u{feff}{CALL}"),
        ];
        for line in &taken {
            assert!(tool_call(line.as_bytes()).is_some(), "not taken: {line}");
            let (ours, theirs) = (decode(line.as_bytes()), by_rmcp(line.as_bytes()));
            assert!(
                observe(&theirs).contains("tools/call"),
                "{line}: {}",
                observe(&theirs)
            );
            assert_eq!(observe(&ours), observe(&theirs), "{line}");
        }
        // The meta went into the extensions, not the params, on both paths.
        assert!(observe(&decode(taken[3].as_bytes())).contains("ext=Some"));
        assert!(observe(&decode(taken[3].as_bytes())).contains("params_meta=None"));
    }

    #[test]
    fn everything_else_takes_rmcps_path_with_rmcps_outcome() {
        let left = [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/whatever"}"#,
            // Shapes that are not a call request, by rmcp's rule.
            r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"t"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"},"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"},"error":null}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"t"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"tools/call","params":{"name":"t"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/call","params":{"name":"t"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":7,"params":{"name":"t"}}"#,
            // Calls the typed decoding refuses.
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[1]}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"t"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":[1]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","name":"u"}}"#,
            // Not messages at all.
            r#"{"foo":1}"#,
            r#"[1,2]"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call""#,
            "not json",
        ];
        for line in left {
            assert!(tool_call(line.as_bytes()).is_none(), "taken: {line}");
            assert_eq!(
                observe(&decode(line.as_bytes())),
                observe(&by_rmcp(line.as_bytes())),
                "{line}"
            );
        }
        let bad = [0xff_u8, b'{', b'}'];
        assert!(tool_call(&bad).is_none());
        assert_eq!(observe(&decode(&bad)), observe(&by_rmcp(&bad)));
    }

    #[test]
    fn a_decoding_error_is_logged_without_the_input_it_quotes() -> Result<(), String> {
        // rmcp's untagged decoding reports "unrecognized JSON-RPC message";
        // serde itself quotes what it rejects, and the log must not.
        let e = match serde_json::from_str::<u32>(r#""s3cr3t""#) {
            Err(e) => e,
            Ok(n) => return Err(format!("decoded {n}")),
        };
        assert!(
            e.to_string().contains("s3cr3t"),
            "the control: serde quotes"
        );
        let logged = where_(&e);
        assert!(!logged.contains("s3cr3t"), "{logged}");
        assert_eq!(logged, "Data error at column 8");
        Ok(())
    }

    /// A transport on in-memory pipes: (transport, agent's writer, agent's reader).
    fn pipes(
        capacity: usize,
    ) -> (
        Lines<tokio::io::DuplexStream, tokio::io::DuplexStream>,
        tokio::io::DuplexStream,
        tokio::io::DuplexStream,
    ) {
        let (agent_out, shim_in) = tokio::io::duplex(1 << 16);
        let (shim_out, agent_in) = tokio::io::duplex(capacity);
        (Lines::new(shim_in, shim_out), agent_out, agent_in)
    }

    fn method(m: &In) -> String {
        match m {
            JsonRpcMessage::Request(r) => r.request.method().to_string(),
            JsonRpcMessage::Notification(_) => "notification".into(),
            _ => "other".into(),
        }
    }

    #[tokio::test]
    async fn lines_arrive_whole_in_order_and_bad_ones_are_dropped() -> std::io::Result<()> {
        let (t, mut agent_out, mut agent_in) = pipes(1 << 16);
        let mut t = t.with_max_line(200);
        let long = format!(
            r#"{{"jsonrpc":"2.0","id":9,"method":"tools/list","params":{{"pad":"{}"}}}}"#,
            "x".repeat(300)
        );
        let input = format!(
            "{CALL}\r\n\n{long}\nnot json\n{{\"foo\":1}}\n{{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"tools/list\"}}\n{{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/call\",\"params\":{{\"name\":\"t\"}}"
        );
        // In two pieces, split inside the first line, the second after the
        // transport has read the first.
        let writer = tokio::spawn(async move {
            let (a, b) = input.split_at(40);
            agent_out.write_all(a.as_bytes()).await?;
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            agent_out.write_all(b.as_bytes()).await
        });
        let first = t.receive().await.map(|m| method(&m));
        assert_eq!(first.as_deref(), Some("tools/call"));
        writer.await.map_err(std::io::Error::other)??;
        // The over-long line and the unparsable one are dropped; the
        // well-formed non-message is answered; the last line, with no
        // newline before EOF, is not a message.
        let second = t.receive().await.map(|m| method(&m));
        assert_eq!(second.as_deref(), Some("tools/list"));
        assert!(t.receive().await.is_none());
        let mut replies = String::new();
        t.write.lock().await.take();
        agent_in.read_to_string(&mut replies).await?;
        let replies: Vec<serde_json::Value> = replies
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?;
        assert_eq!(replies.len(), 1, "{replies:?}");
        assert_eq!(replies[0]["error"]["code"], -32600);
        Ok(())
    }

    #[tokio::test]
    async fn a_send_cancelled_mid_write_still_goes_out_whole_before_the_next() -> std::io::Result<()>
    {
        // stdout holds 16 bytes: a reply is longer, so its send blocks.
        let (mut t, _agent_out, mut agent_in) = pipes(16);
        let reply =
            |id: i64| Out::response(rmcp::model::ServerResult::empty(()), RequestId::Number(id));
        let cancelled =
            tokio::time::timeout(std::time::Duration::from_millis(50), t.send(reply(1))).await;
        assert!(cancelled.is_err(), "the first send should have blocked");
        let second = tokio::spawn(t.send(reply(2)));
        let mut out = Vec::new();
        let mut buf = [0u8; 64];
        while out.iter().filter(|b| **b == b'\n').count() < 2 {
            let n = agent_in.read(&mut buf).await?;
            assert!(n > 0, "stdout closed early");
            out.extend_from_slice(&buf[..n]);
        }
        second.await.map_err(std::io::Error::other)??;
        let ids: Vec<serde_json::Value> = String::from_utf8_lossy(&out)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).map(|v| v["id"].clone()))
            .collect::<Result<_, _>>()?;
        assert_eq!(ids, [1, 2]);
        Ok(())
    }
}
