//! One module per command; each takes the admin client and where its
//! answer goes ([`crate::output::Out`]).

pub mod approve;
pub mod audit;
pub mod config;
pub mod devices;
pub mod doctor;
pub mod get;
pub mod grants;
pub mod import_audit;
pub mod init;
pub mod logs;
pub mod mcp_config;
pub mod pair;
pub mod pending;
pub mod run;
pub mod set;
pub mod status;
pub mod stop;

/// The admin service of agent-vaultd, over its socket.
pub type Admin = agent_vault_proto::pb::admin_client::AdminClient<tonic::transport::Channel>;
