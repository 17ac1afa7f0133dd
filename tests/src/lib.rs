//! The end-to-end harness: real binaries in temp dirs.
//!
//! - [`Home`]: a state directory, a project directory with a config and an
//!   env file, and the environment that points all three binaries at them.
//! - [`Daemon`]: the real `agent-vaultd`, started and waited for by polling
//!   `agent-vault status` (never a fixed sleep), stopped with SIGTERM.
//! - [`Agent`]: an MCP client (rmcp) driving a real `agent-vault-mcp`.
//! - [`Approver`]: a browser stand-in that pairs through the real pairing
//!   link and approves or denies through the real HTML forms.

mod agent;
mod approver;
pub mod browser;
mod daemon;
pub mod floor;
pub mod hardened;
mod home;
pub mod peers;
mod procfs;
pub mod receiver;
mod requests;

pub use agent::*;
pub use approver::*;
pub use daemon::*;
pub use home::*;
pub use procfs::*;
pub use requests::*;
