use super::*;

/// A value with characters that every encoding treats specially: `/`, `+`
/// and `?` in URLs, bytes whose base64 differs between the alphabets.
const V: &str = "sk_live/4e>>>C3?9+Hq?x=1";

fn one(name: &str, value: &str) -> Redactor {
    match Redactor::new([(name, value.as_bytes())]) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    }
}

fn text(r: &Redactor, input: &str) -> String {
    String::from_utf8_lossy(&r.redact(input.as_bytes())).into_owned()
}

/// Every encoding of the issue, as other tools print it (the expected
/// texts were made with Python's base64, binascii, urllib and json).
#[test]
fn each_encoding_is_redacted() {
    let r = one("API_KEY", V);
    let cases = [
        ("raw", V.to_string()),
        (
            "hex",
            "736b5f6c6976652f34653e3e3e43333f392b48713f783d31".into(),
        ),
        (
            "HEX",
            "736B5F6C6976652F34653E3E3E43333F392B48713F783D31".into(),
        ),
        ("base64", "c2tfbGl2ZS80ZT4+PkMzPzkrSHE/eD0x".into()),
        ("base64url", "c2tfbGl2ZS80ZT4-PkMzPzkrSHE_eD0x".into()),
        ("percent", "sk_live%2F4e%3E%3E%3EC3%3F9%2BHq%3Fx%3D1".into()),
        (
            "percent lower",
            "sk_live%2f4e%3e%3e%3eC3%3f9%2bHq%3fx%3d1".into(),
        ),
        (
            "percent keeping /",
            "sk_live/4e%3E%3E%3EC3%3F9%2BHq%3Fx%3D1".into(),
        ),
    ];
    for (what, encoded) in cases {
        let out = text(&r, &format!("before {encoded} after"));
        assert_eq!(out, "before [REDACTED:API_KEY] after", "{what}");
    }

    // Padding, with and without.
    let r = one("DB", "db-pass-1234!");
    assert_eq!(text(&r, "x ZGItcGFzcy0xMjM0IQ== y"), "x [REDACTED:DB] y");
    assert_eq!(text(&r, "x ZGItcGFzcy0xMjM0IQ y"), "x [REDACTED:DB] y");

    // JSON: serde/JavaScript, PHP's `\/`, Python's ensure_ascii.
    let r = one("PW", "p\u{e4}ss/\"w\\rd\n");
    for json in [
        r#""p\u00e4ss/\"w\\rd\n""#,
        "\"p\u{e4}ss/\\\"w\\\\rd\\n\"",
        r#""p\u00e4ss\/\"w\\rd\n""#,
    ] {
        assert_eq!(
            text(&r, &format!("{{\"pw\": {json}}}")),
            "{\"pw\": \"[REDACTED:PW]\"}",
            "{json}"
        );
    }
}

/// A value inside a larger encoded text: what remains is at most the two
/// characters that mix it with its neighbours.
#[test]
fn a_value_inside_encoded_text_is_redacted() {
    let r = one("API_KEY", V);
    // `Authorization: Basic base64("user:" + value)`.
    let out = text(
        &r,
        "Authorization: Basic dXNlcjpza19saXZlLzRlPj4+QzM/OStIcT94PTE=",
    );
    assert!(out.starts_with("Authorization: Basic dXNlcj"), "{out}");
    assert!(out.contains("[REDACTED:API_KEY]"), "{out}");
    assert!(
        out.len() < "Authorization: Basic dXNlcj[REDACTED:API_KEY]PTE=".len() + 3,
        "{out}"
    );
    // `printf X%s\n "$KEY" | base64`: one byte before, a newline after.
    let out = text(&r, "WHNrX2xpdmUvNGU+Pj5DMz85K0hxP3g9MQo=");
    assert!(
        out.starts_with("WH") && out.contains("[REDACTED:API_KEY]"),
        "{out}"
    );
    assert!(
        out.len() <= "WH".len() + "[REDACTED:API_KEY]".len() + 4,
        "{out}"
    );
}

/// A value split across two reads, at every offset, in every form.
#[test]
fn a_value_split_across_two_reads_at_every_offset() {
    let r = one("API_KEY", V);
    for form in forms(V.as_bytes()) {
        let mut input = b"head ".to_vec();
        input.extend_from_slice(&form);
        input.extend_from_slice(b" tail");
        let whole = r.redact(&input);
        assert_eq!(whole, b"head [REDACTED:API_KEY] tail");
        for cut in 0..=input.len() {
            let mut s = r.stream();
            let mut out = Vec::new();
            s.push(&input[..cut], &mut out);
            assert!(
                !contains(&out, V.as_bytes()),
                "released before the second read"
            );
            s.push(&input[cut..], &mut out);
            s.finish(&mut out);
            assert_eq!(out, whole, "cut at {cut}");
        }
    }
}

/// One byte at a time holds back no more than the longest form.
#[test]
fn a_stream_holds_back_at_most_one_form() {
    let r = one("K", V);
    let longest = forms(V.as_bytes())
        .iter()
        .map(|f| f.len())
        .max()
        .unwrap_or(0);
    let mut s = r.stream();
    let mut out = Vec::new();
    let input = "x".repeat(500);
    for b in input.bytes() {
        s.push(&[b], &mut out);
        assert!(s.held() < longest);
    }
    s.finish(&mut out);
    assert_eq!(out, input.as_bytes());
}

#[test]
fn regex_metacharacters_are_plain_text() {
    let value = r"a.*b[c](d)|e+?^$\1{2}";
    let r = one("RX", value);
    assert_eq!(text(&r, &format!("<{value}>")), "<[REDACTED:RX]>");
    // Nothing that a regex of the value would match.
    assert_eq!(text(&r, "aXXb[c](d)|e"), "aXXb[c](d)|e");
    assert_eq!(text(&r, "e"), "e");
}

/// Where one value contains another, the longer is replaced whole; the
/// shorter alone is still found.
#[test]
fn two_values_where_one_contains_the_other() {
    let pairs: [(&str, &[u8]); 2] = [("SHORT", b"abc123"), ("LONG", b"xxabc123yy")];
    let r = match Redactor::new(pairs) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(text(&r, "1 xxabc123yy 2"), "1 [REDACTED:LONG] 2");
    assert_eq!(text(&r, "1 abc123 2"), "1 [REDACTED:SHORT] 2");
    assert_eq!(text(&r, "xxabc123y"), "xx[REDACTED:SHORT]y");
    // Split at every offset, the same.
    let input = b"a xxabc123yy abc123 b";
    let whole = r.redact(input);
    assert_eq!(whole, b"a [REDACTED:LONG] [REDACTED:SHORT] b");
    for cut in 0..=input.len() {
        let mut s = r.stream();
        let mut out = Vec::new();
        s.push(&input[..cut], &mut out);
        s.push(&input[cut..], &mut out);
        s.finish(&mut out);
        assert_eq!(out, whole, "cut at {cut}");
    }
}

/// Short values are redacted as they are; their encodings, shorter than
/// the floor, are left alone rather than match ordinary output.
#[test]
fn short_values_and_empty_ones() {
    let r = one("PIN", "4711");
    assert_eq!(text(&r, "pin=4711"), "pin=[REDACTED:PIN]");
    // hex "34373131" is 8 long: redacted; base64 "NDcxMQ" is 6: not.
    assert_eq!(text(&r, "34373131 NDcxMQ"), "[REDACTED:PIN] NDcxMQ");
    let empty: [(&str, &[u8]); 1] = [("E", b"")];
    let r = match Redactor::new(empty) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(r.redact(b"anything"), b"anything");
}

#[test]
fn debug_names_secrets_but_never_values() {
    let r = one("API_KEY", V);
    let shown = format!("{r:?}");
    assert!(shown.contains("API_KEY"), "{shown}");
    assert!(!shown.contains("sk_live"), "{shown}");
}

/// Replays the corpus committed under fuzz/corpus/redaction, so what the
/// fuzzer found stays fixed.
#[test]
fn the_committed_fuzz_corpus_passes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/redaction");
    let mut replayed = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if let Ok(data) = std::fs::read(entry.path()) {
            crate::property::no_value_survives(&data);
            replayed += 1;
        }
    }
    assert!(replayed > 0, "the corpus is in the repository");
    crate::property::no_value_survives(b"");
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
