//! Secret-bearing values.
//!
//! [`SecretString`] zeroizes its buffer on drop and prints `[redacted]` from
//! both `Debug` and `Display`, so a value cannot reach a log line, an error
//! string or a panic message by formatting.

use zeroize::Zeroizing;

#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The value itself. Call only where the value must leave the daemon:
    /// the provider write and the gRPC reply to the requesting session.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

/// Read straight into a zeroizing buffer, for backends' answers that
/// carry a value.
impl<'de> serde::Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(SecretString::new)
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::fmt::Display for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The masked preview shown on a write approval: a few characters at each
/// end of a long value, stars between (`sk-****…abc`). Short values show
/// nothing but stars, so a preview never reveals most of a secret.
pub fn mask(value: &SecretString) -> String {
    let chars: Vec<char> = value.expose().chars().collect();
    let n = chars.len();
    if n == 0 {
        return "(empty)".to_string();
    }
    let (head, tail) = if n >= 24 {
        (3, 3)
    } else if n >= 12 {
        (2, 2)
    } else {
        (0, 0)
    };
    let stars = (n - head - tail).min(20);
    let mut out: String = chars[..head].iter().collect();
    out.extend(std::iter::repeat_n('*', stars));
    out.extend(chars[n - tail..].iter());
    format!("{out} ({n} chars)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_formats_the_value() {
        let s = SecretString::new("hunter2".into());
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
    }

    #[test]
    fn masks_hide_most_of_the_value() {
        let long = SecretString::new("sk-abcdefghijklmnopqrstuvwxyz0123".into());
        assert_eq!(mask(&long), "sk-********************123 (33 chars)");
        let short = SecretString::new("hunter2".into());
        assert_eq!(mask(&short), "******* (7 chars)");
        assert_eq!(mask(&SecretString::default()), "(empty)");
    }
}
