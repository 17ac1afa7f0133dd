//! The benchmark's floor for "one process per agent session": a stdio MCP
//! server that does no work at all. It answers `initialize`, `tools/list`
//! and every `tools/call` with a fixed text, on plain blocking std I/O (no
//! runtime, no daemon hop), so 50 of these measure what the client and 50
//! processes sharing the cores cost by themselves.

fn main() -> std::io::Result<()> {
    agent_vault_e2e::floor::serve_stdio(|_| Ok("floor".into()))
}
