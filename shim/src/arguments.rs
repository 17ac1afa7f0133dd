//! A tool's arguments that do not fit, said in words: which argument, what
//! it should be, and what the tool takes ("get_secret: \"name\" is missing
//! (the name or ID of the secret). Its arguments: vault, name, reason."),
//! not serde's "failed to deserialize parameters: missing field `name`".
//!
//! Two parts: [`Args`] decodes a tool's arguments noting where a mismatch
//! is (rmcp reports the message as an `isError` result), and [`explained`]
//! names the tool and its arguments from its own input schema.

use std::borrow::Cow;

use agent_vault_proto::words::plain_words;
use rmcp::model::{CallToolResponse, ContentBlock, Tool};
use rmcp::schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

/// rmcp's prefix of an argument error in a tool result.
const RMCP_PREFIX: &str = "failed to deserialize parameters: ";

/// A tool's arguments `T`, whose decoding error names the argument (by its
/// path, such as `secrets[1].value`) in words. Its schema is `T`'s.
pub struct Args<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Args<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_path_to_error::deserialize(d).map(Args).map_err(|e| {
            let at = e.path().to_string();
            let why = shortened(plain_words(&e.inner().to_string()));
            D::Error::custom(if at == "." {
                why
            } else {
                format!("\"{at}\": {why}")
            })
        })
    }
}

/// Longest message kept: serde quotes what it found, which may be a
/// megabyte of text; the agent sent it and needs only its start.
const MAX_MESSAGE: usize = 240;

fn shortened(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    message
}

impl<T: JsonSchema> JsonSchema for Args<T> {
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// `response` with an argument error of `tool` reworded: the tool's name
/// first, a missing argument's description, and the arguments it takes.
/// Every other response is returned as it is.
pub fn explained(response: CallToolResponse, tool: Option<&Tool>) -> CallToolResponse {
    match (response, tool) {
        (CallToolResponse::Complete(mut result), Some(tool)) => {
            let why = match result.content.as_slice() {
                [only] if result.is_error == Some(true) => only
                    .as_text()
                    .and_then(|t| t.text.strip_prefix(RMCP_PREFIX))
                    .map(str::to_string),
                _ => None,
            };
            if let Some(why) = why {
                result.content = vec![ContentBlock::text(words(tool, &why))];
            }
            CallToolResponse::Complete(result)
        }
        (other, _) => other,
    }
}

fn words(tool: &Tool, why: &str) -> String {
    let schema = &tool.input_schema;
    let properties = schema.get("properties").and_then(|p| p.as_object());
    let missing = why
        .strip_prefix('"')
        .and_then(|w| w.strip_suffix("\" is missing; add it"));
    // A missing top-level argument: what it is, from the schema.
    let description = missing.and_then(|field| {
        properties?
            .get(field)?
            .get("description")?
            .as_str()
            .map(|d| lowercase_first(d.trim_end_matches('.')))
    });
    let mut out = match (missing, description) {
        (Some(field), Some(what)) => format!("{}: \"{field}\" is missing: {what}.", tool.name),
        _ => format!("{}: {why}.", tool.name),
    };
    if let Some(properties) = properties {
        let required: Vec<&str> = schema
            .get("required")
            .and_then(|r| r.as_array())
            .map(|r| r.iter().filter_map(|n| n.as_str()).collect())
            .unwrap_or_default();
        // The required ones in the schema's order, then the others.
        let names: Vec<String> = required
            .iter()
            .map(|k| k.to_string())
            .chain(
                properties
                    .keys()
                    .filter(|k| !required.contains(&k.as_str()))
                    .map(|k| format!("{k} (optional)")),
            )
            .collect();
        out.push_str(&format!(" Its arguments: {}.", names.join(", ")));
    }
    out
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, JsonSchema)]
    struct Pair {
        name: String,
        value: String,
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    struct Example {
        /// The vault name.
        vault: String,
        secrets: Vec<Pair>,
        ttl: Option<f64>,
    }

    fn error_of(v: serde_json::Value) -> String {
        match serde_json::from_value::<Args<Example>>(v) {
            Ok(_) => "ok".into(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn names_the_argument_in_words() {
        let ok =
            serde_json::json!({"vault": "v", "secrets": [{"name": "A", "value": "1"}], "ttl": 2});
        let Ok(Args(ok)) = serde_json::from_value::<Args<Example>>(ok) else {
            panic!("a fitting call is decoded");
        };
        let first = ok
            .secrets
            .first()
            .map(|p| (p.name.as_str(), p.value.as_str()));
        assert_eq!(
            (ok.vault.as_str(), first, ok.ttl),
            ("v", Some(("A", "1")), Some(2.0))
        );
        assert_eq!(
            error_of(serde_json::json!({"secrets": []})),
            "\"vault\" is missing; add it"
        );
        assert_eq!(
            error_of(serde_json::json!({"vault": 5, "secrets": []})),
            "\"vault\": expected a string, found the number 5"
        );
        assert_eq!(
            error_of(serde_json::json!({"vault": "v", "secrets": [{"name": "A"}]})),
            "\"secrets[0]\": \"value\" is missing; add it"
        );
        let long = error_of(serde_json::json!({"vault": "v", "secrets": "é".repeat(100_000)}));
        assert!(
            long.starts_with("\"secrets\": expected a list [ … ], found the text \"éé")
                && long.ends_with('…')
                && long.len() < 300,
            "{long}"
        );
        assert_eq!(
            error_of(serde_json::json!({"vault": "v", "secrets": [], "ttl": "5"})),
            "\"ttl\": expected a number, found the text \"5\""
        );
    }

    #[test]
    fn the_schema_is_the_arguments_own() {
        let mut a = SchemaGenerator::default();
        let mut b = SchemaGenerator::default();
        assert_eq!(
            Args::<Example>::json_schema(&mut a),
            Example::json_schema(&mut b)
        );
    }
}
