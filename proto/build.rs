//! Compiles the gRPC contract with protox (pure Rust), so no system protoc is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/agent_vault.proto");
    let fds = protox::compile(["proto/agent_vault.proto"], ["proto"])?;
    // Messages that carry secret values or tokens get a hand-written Debug
    // that redacts them (see lib.rs), so no `{:?}` can ever print a value.
    tonic_prost_build::configure()
        .skip_debug([
            ".agentvault.v1.SecretValue",
            ".agentvault.v1.SecretWrite",
            ".agentvault.v1.OpenSessionRequest",
        ])
        .compile_fds(fds)?;
    Ok(())
}
