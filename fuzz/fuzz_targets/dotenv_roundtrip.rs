//! The dotenv parser and writer: a write reads back exactly and leaves every
//! other key as it was (see agent_vaultd::fuzz_checks).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| agent_vaultd::fuzz_checks::dotenv_roundtrip(data));
