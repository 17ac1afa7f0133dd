//! Webhook signatures in the form of the Standard Webhooks specification
//! (<https://www.standardwebhooks.com>): the secret is `whsec_` followed by
//! base64 of 24 to 64 random bytes; each delivery carries `webhook-id`,
//! `webhook-timestamp` (Unix seconds) and `webhook-signature`, which is
//! `v1,` and base64 of HMAC-SHA256 over `id.timestamp.body`. Receivers
//! verify with any Standard Webhooks library and deduplicate by id.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// The key bytes of a `whsec_…` secret, or what is wrong with it (in words
/// for the config error, never containing the secret).
pub fn key(secret: &str) -> Result<Zeroizing<Vec<u8>>, &'static str> {
    const EXPECTED: &str = "expected \"whsec_\" followed by base64 of 24 to 64 random bytes (make one with: echo whsec_$(openssl rand -base64 32))";
    let b64 = secret.trim().strip_prefix("whsec_").ok_or(EXPECTED)?;
    let bytes = STANDARD
        .decode(b64)
        .or_else(|_| STANDARD_NO_PAD.decode(b64))
        .map_err(|_| EXPECTED)?;
    let bytes = Zeroizing::new(bytes);
    if !(24..=64).contains(&bytes.len()) {
        return Err(EXPECTED);
    }
    Ok(bytes)
}

/// The `webhook-signature` header value for one delivery.
pub fn sign(key: &[u8], id: &str, timestamp_secs: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length; this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's own example (the reference libraries' test
    /// vector): this secret, id, timestamp and body give this signature.
    #[test]
    fn matches_the_specification_example() -> Result<(), &'static str> {
        let k = key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
        let sig = sign(
            &k,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        Ok(())
    }

    #[test]
    fn refuses_secrets_that_are_not_whsec_base64() {
        assert!(key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(key("whsec_not base64!").is_err());
        assert!(key("whsec_c2hvcnQ=").is_err(), "5 bytes is too short");
        let e = key("whsec_%%").err().unwrap_or_default();
        assert!(e.contains("openssl rand"), "{e}");
    }
}
