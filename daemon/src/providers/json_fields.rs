//! `name#key`: one field of a secret whose value is a JSON object, the
//! cloud secret managers' way of keeping several values in one secret
//! (AWS, GCP, Azure). Reading picks the field; writing merges it.

use std::collections::HashMap;
use std::future::Future;

use serde_json::Value;

use super::contract::ProviderError;
use crate::secret::SecretString;

/// A name: the secret, and the field after `#` if any.
pub fn split(name: &str) -> (&str, Option<&str>) {
    match name.split_once('#') {
        Some((secret, key)) => (secret, Some(key)),
        None => (name, None),
    }
}

/// Whether `key` (after `#`) is acceptable: some text, no control
/// characters.
pub fn key_ok(key: Option<&str>) -> bool {
    key.is_none_or(|k| !k.is_empty() && !k.chars().any(char::is_control))
}

fn not_json(vault: &str, name: &str) -> ProviderError {
    ProviderError::Invalid(format!(
        "vault \"{vault}\": the secret of \"{name}\" is not a JSON object, so it has no fields; ask for it without \"#\""
    ))
}

/// The values of `names` from the secrets' current values (`current`:
/// None for a secret that does not exist): a whole secret as stored, a
/// field's string as is and other JSON as text. Names with no secret or
/// no such field are unknown.
pub fn pick(
    vault: &str,
    names: &[String],
    current: &HashMap<&str, Option<SecretString>>,
) -> Result<HashMap<String, SecretString>, ProviderError> {
    let mut values = HashMap::new();
    let mut unknown = Vec::new();
    for name in names {
        let (secret, key) = split(name);
        let Some(Some(text)) = current.get(secret) else {
            unknown.push(name.clone());
            continue;
        };
        let Some(key) = key else {
            values.insert(name.clone(), text.clone());
            continue;
        };
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(text.expose()) else {
            return Err(not_json(vault, name));
        };
        match fields.get(key) {
            Some(Value::String(s)) => {
                values.insert(name.clone(), SecretString::new(s.clone()));
            }
            Some(other) => {
                values.insert(name.clone(), SecretString::new(other.to_string()));
            }
            None => unknown.push(name.clone()),
        }
    }
    if !unknown.is_empty() {
        return Err(ProviderError::UnknownSecret {
            vault: vault.to_string(),
            names: unknown,
        });
    }
    Ok(values)
}

/// The values of `names`, each secret read once (`read`: its current
/// value, None if it does not exist), all at once: one round trip's time.
pub async fn read_all<'a, F>(
    vault: &str,
    names: &'a [String],
    read: impl Fn(&'a str) -> F,
) -> Result<HashMap<String, SecretString>, ProviderError>
where
    F: Future<Output = Result<Option<SecretString>, ProviderError>>,
{
    let mut secrets: Vec<&str> = names.iter().map(|n| split(n).0).collect();
    secrets.sort_unstable();
    secrets.dedup();
    let read = futures_util::future::join_all(secrets.iter().map(|s| read(s))).await;
    let mut current = HashMap::new();
    for (s, r) in secrets.into_iter().zip(read) {
        current.insert(s, r?);
    }
    pick(vault, names, &current)
}

/// The secret to write and its new value when `name` is written as
/// `value` (see [`merged`]; `read` gives the current value when a field
/// is merged).
pub async fn to_write<'a, F>(
    vault: &str,
    name: &'a str,
    value: &SecretString,
    read: impl FnOnce(&'a str) -> F,
) -> Result<(&'a str, SecretString), ProviderError>
where
    F: Future<Output = Result<Option<SecretString>, ProviderError>>,
{
    let (secret, key) = split(name);
    let current = match key {
        Some(_) => read(secret).await?,
        None => None,
    };
    Ok((secret, merged(vault, name, current.as_ref(), value)?))
}

/// The secret's new value when `name` (perhaps `secret#key`) is written
/// as `value`: the value itself, or the current JSON object (a new one if
/// there is none) with the field set.
pub fn merged(
    vault: &str,
    name: &str,
    current: Option<&SecretString>,
    value: &SecretString,
) -> Result<SecretString, ProviderError> {
    let (_, Some(key)) = split(name) else {
        return Ok(value.clone());
    };
    let mut fields = match current {
        None => serde_json::Map::new(),
        Some(t) => match serde_json::from_str::<Value>(t.expose()) {
            Ok(Value::Object(f)) => f,
            _ => return Err(not_json(vault, name)),
        },
    };
    fields.insert(key.to_string(), Value::String(value.expose().to_string()));
    Ok(SecretString::new(Value::Object(fields).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_picked_and_merged_without_echoing_values() {
        let json = SecretString::new(r#"{"user":"web","password":"p-1","port":5432}"#.into());
        let plain = SecretString::new("plain-value-9".into());
        let current = HashMap::from([
            ("db", Some(json.clone())),
            ("key", Some(plain.clone())),
            ("gone", None),
        ]);
        let names: Vec<String> = ["db#password", "db#port", "db", "key"]
            .map(String::from)
            .into();
        let got = pick("v", &names, &current).unwrap_or_default();
        assert_eq!(got["db#password"].expose(), "p-1");
        assert_eq!(got["db#port"].expose(), "5432");
        assert_eq!(got["key"].expose(), "plain-value-9");
        let unknown = pick(
            "v",
            &["db#nope".into(), "gone".into(), "other".into()],
            &current,
        );
        assert!(unknown.is_err_and(|e| e.to_string().contains("db#nope, gone, other")));
        let not_json = pick("v", &["key#x".into()], &current);
        assert!(not_json.is_err_and(|e| !e.to_string().contains("plain-value-9")));

        let m = merged(
            "v",
            "db#password",
            Some(&json),
            &SecretString::new("p-2".into()),
        );
        assert!(m.is_ok_and(
            |m| m.expose() == r#"{"password":"p-2","port":5432,"user":"web"}"#
                || m.expose().contains(r#""password":"p-2""#)
                    && m.expose().contains(r#""user":"web""#)
        ));
        let new = merged("v", "new#k", None, &SecretString::new("v-1".into()));
        assert!(new.is_ok_and(|m| m.expose() == r#"{"k":"v-1"}"#));
        let whole = merged("v", "key", Some(&plain), &SecretString::new("v-2".into()));
        assert!(whole.is_ok_and(|m| m.expose() == "v-2"));
        assert!(merged("v", "key#x", Some(&plain), &SecretString::new("v".into())).is_err());
        assert!(key_ok(None) && key_ok(Some("a b")) && !key_ok(Some("")) && !key_ok(Some("a\n")));
    }
}
