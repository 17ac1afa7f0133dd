//! The property the fuzz target (`fuzz/fuzz_targets/redaction.rs`) checks,
//! kept here so that the unit tests replay seeds on stable Rust: whatever
//! the values, the text around them and the read boundaries, no value and
//! no encoding of it survives in the output, and streaming gives the same
//! output as one pass.
//!
//! The input is split at 0xFF bytes: the first byte sets the read sizes,
//! the parts before the last are the values (brackets removed, so that no
//! value can overlap a `[REDACTED:…]` marker), and each byte of the last
//! part below 0x20 inserts one encoding of one value, the others are text.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

use crate::{MIN_ENCODED_LEN, Redactor, marker};

/// The encodings this check inserts and looks for, made independently of
/// the engine's own list.
fn encodings(v: &[u8]) -> Vec<Vec<u8>> {
    let hex_lower: String = v.iter().map(|b| format!("{b:02x}")).collect();
    let hex_upper: String = v.iter().map(|b| format!("{b:02X}")).collect();
    let percent: String = v
        .iter()
        .map(|&b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let mut out = vec![
        v.to_vec(),
        hex_lower.into_bytes(),
        hex_upper.into_bytes(),
        STANDARD.encode(v).into_bytes(),
        STANDARD_NO_PAD.encode(v).into_bytes(),
        URL_SAFE.encode(v).into_bytes(),
        URL_SAFE_NO_PAD.encode(v).into_bytes(),
        percent.into_bytes(),
    ];
    if let Ok(s) = std::str::from_utf8(v)
        && let Ok(json) = serde_json::to_string(s)
    {
        out.push(json.as_bytes()[1..json.len() - 1].to_vec());
    }
    out
}

pub fn no_value_survives(data: &[u8]) {
    let Some((&sizes, rest)) = data.split_first() else {
        return;
    };
    let mut parts: Vec<&[u8]> = rest.split(|b| *b == 0xFF).collect();
    let text_seed = parts.pop().unwrap_or_default();
    let values: Vec<Vec<u8>> = parts
        .iter()
        .take(4)
        .map(|p| {
            p.iter()
                .copied()
                .filter(|b| !matches!(b, b'[' | b']'))
                .collect::<Vec<u8>>()
        })
        .filter(|v| !v.is_empty())
        .collect();
    let names: Vec<String> = (0..values.len()).map(|i| format!("V{i}")).collect();
    let Ok(redactor) = Redactor::new(
        names
            .iter()
            .map(String::as_str)
            .zip(values.iter().map(Vec::as_slice)),
    ) else {
        panic!("the matcher could not be built");
    };
    let encoded: Vec<Vec<Vec<u8>>> = values.iter().map(|v| encodings(v)).collect();

    let mut input = Vec::new();
    for &b in text_seed {
        if b < 0x20 && !values.is_empty() {
            let forms = &encoded[usize::from(b) % values.len()];
            input.extend_from_slice(&forms[usize::from(b / 4) % forms.len()]);
        } else {
            input.push(b);
        }
    }

    // Read sizes cycle through 1..=sizes%32+1.
    let mut out = Vec::new();
    let mut stream = redactor.stream();
    let (mut at, mut size) = (0, 1);
    while at < input.len() {
        let end = (at + size).min(input.len());
        stream.push(&input[at..end], &mut out);
        at = end;
        size = size % (usize::from(sizes) % 32 + 1) + 1;
    }
    stream.finish(&mut out);
    assert_eq!(
        out,
        redactor.redact(&input),
        "streaming and one pass differ"
    );

    // Between markers, no value and no encoding of it (long enough to be
    // looked for) survives.
    let markers: Vec<Vec<u8>> = names.iter().map(|n| marker(n).into_bytes()).collect();
    for segment in segments(&out, &markers) {
        for (v, forms) in values.iter().zip(&encoded) {
            for form in forms {
                if (form == v || form.len() >= MIN_ENCODED_LEN)
                    && segment.windows(form.len()).any(|w| w == form.as_slice())
                {
                    panic!("an encoding of a value survived");
                }
            }
        }
    }
}

/// `out` cut at each marker.
fn segments<'a>(out: &'a [u8], markers: &[Vec<u8>]) -> Vec<&'a [u8]> {
    let mut segs = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < out.len() {
        if let Some(m) = markers.iter().find(|m| out[i..].starts_with(m)) {
            segs.push(&out[start..i]);
            i += m.len();
            start = i;
        } else {
            i += 1;
        }
    }
    segs.push(&out[start..]);
    segs
}
