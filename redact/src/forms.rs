//! The forms in which a value is looked for: the value itself, and the
//! encodings a command commonly prints it in.
//!
//! - hex, lower and upper case;
//! - base64, standard and URL-safe, with and without padding; and, for a
//!   value inside a larger encoded text (`Authorization: Basic`, an
//!   encoded environment dump, `echo $TOKEN | base64` with its newline),
//!   the characters that depend only on the value, at each of the three
//!   alignments it can have;
//! - URL encoding (percent-encoding of everything but the unreserved
//!   characters, upper and lower case, and the variants that keep `/` or
//!   write a space as `+`);
//! - JSON string escaping: as serde_json and JavaScript write it, with
//!   every non-ASCII character as `\uXXXX` as Python writes it, and with
//!   `/` as `\/` too, as PHP writes it.
//!
//! An encoded form shorter than [`MIN_ENCODED_LEN`] bytes is not looked
//! for: it would match ordinary output too often. The value itself always
//! is, whatever its length.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

/// The shortest encoded form that is looked for.
pub const MIN_ENCODED_LEN: usize = 8;

type Form = Zeroizing<Vec<u8>>;

/// Every form of `value` to look for, the value first, without repeats.
pub fn forms(value: &[u8]) -> Vec<Form> {
    let mut out: Vec<Form> = vec![Zeroizing::new(value.to_vec())];
    let mut add = |form: Vec<u8>| {
        let form = Zeroizing::new(form);
        if form.len() >= MIN_ENCODED_LEN && !out.iter().any(|f| **f == *form) {
            out.push(form);
        }
    };
    add(hex(value, b"0123456789abcdef"));
    add(hex(value, b"0123456789ABCDEF"));
    for engine in [&STANDARD, &URL_SAFE] {
        add(engine.encode(value).into_bytes());
    }
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        add(engine.encode(value).into_bytes());
        for offset in 0..3 {
            add(base64_core(engine, value, offset));
        }
    }
    for upper in [true, false] {
        add(percent(value, upper, b""));
        add(percent(value, upper, b"/"));
        if value.contains(&b' ') {
            let plus: Vec<u8> = percent(value, upper, b" ")
                .into_iter()
                .map(|b| if b == b' ' { b'+' } else { b })
                .collect();
            add(plus);
        }
    }
    if let Ok(text) = std::str::from_utf8(value) {
        let json = json_escaped(text);
        let slashed = json.replace('/', "\\/");
        for j in [json, slashed] {
            add(ascii_json(&j).into_bytes());
            add(j.into_bytes());
        }
    }
    out
}

fn hex(value: &[u8], digits: &[u8; 16]) -> Vec<u8> {
    value
        .iter()
        .flat_map(|b| [digits[usize::from(b >> 4)], digits[usize::from(b & 15)]])
        .collect()
}

/// The characters of the unpadded encoding of `offset` unknown bytes
/// followed by `value` that depend on `value` alone.
fn base64_core(engine: &impl Engine, value: &[u8], offset: usize) -> Vec<u8> {
    let mut input = Zeroizing::new(vec![0u8; offset]);
    input.extend_from_slice(value);
    let encoded = Zeroizing::new(engine.encode(&*input).into_bytes());
    let first = (8 * offset).div_ceil(6);
    let end = (8 * (offset + value.len())) / 6;
    encoded
        .get(first..end.min(encoded.len()))
        .unwrap_or_default()
        .to_vec()
}

/// Percent-encoding of every byte outside RFC 3986's unreserved set and
/// `keep`.
fn percent(value: &[u8], upper: bool, keep: &[u8]) -> Vec<u8> {
    let digits: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut out = Vec::with_capacity(value.len() * 3);
    for &b in value {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') || keep.contains(&b)
        {
            out.push(b);
        } else {
            out.extend_from_slice(&[
                b'%',
                digits[usize::from(b >> 4)],
                digits[usize::from(b & 15)],
            ]);
        }
    }
    out
}

/// The inside of a JSON string holding `text`, as serde_json writes it.
fn json_escaped(text: &str) -> String {
    let quoted = serde_json::Value::String(text.to_string()).to_string();
    let inner = quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or(&quoted);
    inner.to_string()
}

/// `json` with every non-ASCII character written as `\uXXXX` (UTF-16).
fn ascii_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}
