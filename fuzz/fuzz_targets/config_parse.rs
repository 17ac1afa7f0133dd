//! The config parser: never panics, errors name the file.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| agent_vaultd::fuzz_checks::config_parse(data));
