//! The one SQLite database (WAL mode): everything the daemon keeps across
//! a restart. The audit log and its chain head, approval windows, paired
//! devices, passkeys, the TOTP authenticator and the webhook outbox.
//!
//! - [`schema`]: the tables, their migrations, opening a connection;
//! - [`queue`]: the one writer: every change goes through one queue and is
//!   committed in batches, in send order;
//! - [`batch`]: the commands that queue carries and the transaction that
//!   applies a batch of them;
//! - [`reader`]: the read side, on a connection of its own;
//! - one file per table ([`audit`], [`grants`], [`devices`], [`passkeys`],
//!   [`totp`], [`outbox`]): its plain row type and its SQL.
//!
//! Rows are plain data. The module that owns a concept (`grants`,
//! `devices`, `passkeys`, `webhooks`, `audit`) turns its rows into its own
//! types; this module knows none of them, apart from the audit chain, whose
//! hash is computed as each row is inserted.

pub mod audit;
pub mod batch;
pub mod devices;
pub mod grants;
pub mod outbox;
pub mod passkeys;
pub mod queue;
pub mod reader;
pub mod schema;
pub mod totp;

use std::path::PathBuf;

pub use batch::StoreCmd;
pub use queue::{StoreTx, start};
pub use reader::Store;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("audit database {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("audit database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}
