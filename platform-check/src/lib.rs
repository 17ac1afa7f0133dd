//! See Cargo.toml: compiles the macOS module on its own.
#[cfg(target_os = "macos")]
#[path = "../../daemon/src/procinfo/macos.rs"]
pub mod macos;
