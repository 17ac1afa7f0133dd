//! The benchmark's floor for "one process per agent session": a stdio MCP
//! server that does no work at all. It answers `initialize`, `tools/list`
//! and every `tools/call` with a fixed text, on plain blocking std I/O (no
//! runtime, no daemon hop), so 50 of these measure what the client and 50
//! processes sharing the cores cost by themselves.

use std::io::{BufRead, Write};

use serde_json::{Value, json};

fn main() -> std::io::Result<()> {
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
            Some("tools/list") => json!({"tools": []}),
            _ => json!({"content": [{"type": "text", "text": "floor"}], "isError": false}),
        };
        let reply = json!({"jsonrpc": "2.0", "id": id, "result": result});
        writeln!(stdout, "{reply}")?;
        stdout.flush()?;
    }
    Ok(())
}
