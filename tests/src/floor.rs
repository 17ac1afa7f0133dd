//! The do-nothing stdio MCP servers of the benchmark's floor rows
//! (`src/bin/mcp-floor.rs`, `src/bin/mcp-relay-floor.rs`): plain blocking
//! std I/O, no runtime, one JSON value parsed per line.

use std::io::{BufRead, Write};

use serde_json::{Value, json};

/// Serves MCP on stdin and stdout until stdin closes: `initialize` and
/// `tools/list` with fixed replies, and every other request as a tool call
/// whose one text block is what `call` returns for the request's params.
pub fn serve_stdio(mut call: impl FnMut(&Value) -> std::io::Result<String>) -> std::io::Result<()> {
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lines() {
        let line = line?;
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let Some(id) = msg.get("id").cloned() else {
            continue; // a notification
        };
        let result = match msg.get("method").and_then(Value::as_str) {
            Some("initialize") => json!({
                "protocolVersion": msg["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "mcp-floor", "version": "0"}
            }),
            // The tool a client calls, so that a client that checks its
            // results against the listed tools (the Python SDK does) finds
            // it and asks for no new list on each call.
            Some("tools/list") => json!({"tools": [{
                "name": "get_secret",
                "inputSchema": {"type": "object"}
            }]}),
            _ => json!({
                "content": [{"type": "text", "text": call(&msg["params"])?}],
                "isError": false
            }),
        };
        let reply = json!({"jsonrpc": "2.0", "id": id, "result": result});
        writeln!(stdout, "{reply}")?;
        stdout.flush()?;
    }
    Ok(())
}
