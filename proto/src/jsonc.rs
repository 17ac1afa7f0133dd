//! Config files are JSON with comments and trailing commas (JSONC): the
//! prototype's README shows its config that way, and VS Code and Zed write
//! their settings so. Everything else stays strict JSON (no single quotes,
//! no bare keys), so that a file that loads here loads everywhere.

use jsonc_parser::ParseOptions;

fn options() -> ParseOptions {
    ParseOptions {
        allow_comments: true,
        allow_trailing_commas: true,
        allow_loose_object_property_names: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    }
}

/// Parses JSONC text; the error says what is wrong and where (line and
/// column), in words.
pub fn parse(text: &str) -> Result<serde_json::Value, String> {
    match jsonc_parser::parse_to_serde_value::<Option<serde_json::Value>>(text, &options()) {
        Ok(Some(v)) => Ok(v),
        Ok(None) => {
            Err("the file is empty; it should hold a JSON object, such as {\"vaults\": {}}".into())
        }
        Err(e) => Err(format!("not valid JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_trailing_commas_are_accepted() {
        let text = "{\n  // the vaults\n  \"vaults\": { /* none yet */ },\n  \"port\": 9999,\n}\n";
        assert_eq!(
            parse(text),
            Ok(serde_json::json!({"vaults": {}, "port": 9999}))
        );
        // A // inside a string is text, not a comment.
        assert_eq!(
            parse(r#"{"url": "https://example.com/x"}"#),
            Ok(serde_json::json!({"url": "https://example.com/x"}))
        );
    }

    #[test]
    fn other_relaxations_are_refused_with_the_place() {
        for bad in ["{vaults: {}}", "{'vaults': {}}", "{\"port\": 0x10}"] {
            let e = parse(bad).err().unwrap_or_default();
            assert!(e.contains("line 1 column"), "{bad}: {e}");
        }
        assert!(parse("  ").err().unwrap_or_default().contains("empty"));
        let e = parse("{\n\"a\": 1\n\"b\": 2}").err().unwrap_or_default();
        assert!(e.contains("Expected comma on line 2"), "{e}");
    }
}
