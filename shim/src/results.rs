//! What a tool call answers when it does not return values: the message
//! for an error, an unreachable daemon, or a protocol mismatch.

use rmcp::ErrorData;
use rmcp::model::{CallToolResult, ContentBlock};
use tonic::{Code, Status};

/// Why a call did not return its result.
pub enum Failure {
    /// An MCP protocol error (version mismatch).
    Protocol(ErrorData),
    /// A tool result with isError.
    Tool(CallToolResult),
}

impl From<Failure> for Result<CallToolResult, ErrorData> {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Protocol(e) => Err(e),
            Failure::Tool(r) => Ok(r),
        }
    }
}

pub fn text_error(msg: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(msg.into())])
}

pub fn unreachable_msg(e: &dyn std::fmt::Display) -> String {
    format!(
        "agent-vaultd is unreachable: {e}. Ask the user to start it (`agent-vaultd`) or to check `agent-vault status`, then call again."
    )
}

/// The text for a gRPC error: the daemon's message already says what to do.
pub fn status_result(s: &Status) -> CallToolResult {
    match s.code() {
        Code::Unavailable | Code::Unknown | Code::Cancelled => text_error(format!(
            "{} This is retryable: call again with the same arguments.",
            unreachable_msg(&s.message())
        )),
        _ => text_error(s.message()),
    }
}
