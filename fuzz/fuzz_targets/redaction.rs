//! Redaction: no value and no encoding of it survives, whatever the read
//! boundaries (see agent_vault_redact::property).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| agent_vault_redact::property::no_value_survives(data));
