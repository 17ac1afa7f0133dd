//! 1Password's item model, shared by the two ways agent-vault reaches a
//! 1Password account (the `op` CLI, `onepassword`, and a Connect server,
//! `onepassword_connect`): the names an agent uses (an item's title, or an
//! `op://vault/item/field` reference), the item JSON both print, what a
//! get by title returns, and how a write changes an item.

use serde::Deserialize;
use serde_json::Value;

use super::contract::{FieldError, Listed, ProviderError};
use crate::secret::SecretString;

/// A vault or account id as given in a config: no path, no option.
pub fn plain_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('-')
        && s.chars().all(|c| !c.is_control() && c != '/')
}

/// The config's `vaultIds`.
pub fn check_vault_ids(ids: &[String]) -> Result<(), FieldError> {
    match ids.iter().position(|id| !plain_id(id)) {
        Some(i) => Err((
            format!("vaultIds[{i}]"),
            "expected a 1Password vault id or name".into(),
        )),
        None => Ok(()),
    }
}

/// The config's `write` section, as the prototype had it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawWrite {
    vault_id: String,
    category: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Write {
    pub vault_id: String,
    /// As item JSON spells it (`LOGIN`, `API_CREDENTIAL`).
    pub category: String,
}

impl Write {
    pub fn parse(w: RawWrite) -> Result<Self, FieldError> {
        if !plain_id(&w.vault_id) {
            return Err((
                "write.vaultId".into(),
                "expected the id of the 1Password vault that new items go to".into(),
            ));
        }
        let category = w
            .category
            .unwrap_or_else(|| "login".into())
            .trim()
            .to_ascii_uppercase()
            .replace([' ', '-'], "_");
        if category.is_empty()
            || !category
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b == b'_')
        {
            return Err((
                "write.category".into(),
                "expected a 1Password item category, such as \"login\", \"password\" or \"api credential\"".into(),
            ));
        }
        Ok(Write {
            vault_id: w.vault_id,
            category,
        })
    }
}

/// The prototype's message for a write to a vault without `write`.
pub fn write_not_set(vault: &str) -> ProviderError {
    ProviderError::NotConfigured {
        vault: vault.to_string(),
        why: "1Password write config not set. Add a 'write' section to your vault config with 'vaultId' and optionally 'category'.".into(),
    }
}

/// `op://vault/item/field` (or `.../section/field`, with `?...` kept)
/// split into its vault, its item and the rest.
pub fn parse_reference(name: &str) -> Option<(&str, &str, &str)> {
    let rest = name.strip_prefix("op://")?;
    let mut parts = rest.splitn(3, '/');
    let (v, i, f) = (parts.next()?, parts.next()?, parts.next()?);
    let path = f.split('?').next().unwrap_or("");
    let ok = !v.is_empty()
        && !i.is_empty()
        && !path.is_empty()
        && path.split('/').count() <= 2
        && !path.split('/').any(str::is_empty);
    ok.then_some((v, i, f))
}

pub fn check_name(name: &str) -> Result<(), ProviderError> {
    if name.starts_with('-') {
        return Err(ProviderError::InvalidName(format!(
            "\"{name}\" is not an item title or an op:// reference"
        )));
    }
    if name.starts_with("op://") && parse_reference(name).is_none() {
        return Err(ProviderError::InvalidName(format!(
            "\"{name}\" is not a valid reference: expected op://vault/item/field or op://vault/item/section/field"
        )));
    }
    Ok(())
}

/// The listed item `name` (a title, or a reference whose vault, by id or
/// name, and item, by id or title, are listed) stands for.
pub fn find<'a>(listed: &'a [Listed], name: &str) -> Option<&'a Listed> {
    match parse_reference(name) {
        Some((v, i, _)) => listed
            .iter()
            .find(|l| (l.group == v || l.group_name == v) && (l.id == i || l.name == i)),
        None => listed.iter().find(|l| l.name == name),
    }
}

/// One item as listed (`op item list`, Connect's item list).
#[derive(Deserialize)]
pub struct ListedItem {
    id: String,
    title: String,
    vault: VaultRef,
}

#[derive(Deserialize)]
struct VaultRef {
    id: String,
    #[serde(default)]
    name: String,
}

impl ListedItem {
    /// `vault_name`: the vault's name where the listing leaves it out.
    pub fn into_listed(self, vault_name: &str) -> Listed {
        Listed {
            name: self.title,
            group: self.vault.id,
            id: self.id,
            group_name: if self.vault.name.is_empty() {
                vault_name.to_string()
            } else {
                self.vault.name
            },
        }
    }
}

/// A vault as listed.
#[derive(Deserialize)]
pub struct VaultInfo {
    pub id: String,
    #[serde(default)]
    pub name: String,
}

/// A field of a full item; its value never printed.
#[derive(Deserialize)]
struct Field {
    #[serde(default)]
    id: String,
    #[serde(default)]
    label: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    section: Option<SectionRef>,
    value: Option<SecretString>,
}

#[derive(Deserialize)]
struct SectionRef {
    #[serde(default)]
    id: String,
}

#[derive(Deserialize)]
struct Section {
    #[serde(default)]
    id: String,
    #[serde(default)]
    label: String,
}

/// A full item (`op item get`, Connect's item), as far as values go.
#[derive(Deserialize)]
pub struct FullItem {
    #[serde(default)]
    fields: Vec<Field>,
    #[serde(default)]
    sections: Vec<Section>,
}

impl FullItem {
    /// What a get by title returns: the fields as a JSON object, label →
    /// value, empty ones left out (the prototype's answer).
    pub fn fields_json(&self) -> SecretString {
        let mut map = serde_json::Map::new();
        for f in &self.fields {
            let Some(v) = &f.value else { continue };
            if v.expose().is_empty() {
                continue;
            }
            let key = [&f.label, &f.id, &f.kind]
                .into_iter()
                .find(|k| !k.is_empty())
                .map_or("value", |k| k.as_str());
            map.insert(key.to_string(), Value::String(v.expose().to_string()));
        }
        SecretString::new(Value::Object(map).to_string())
    }

    /// The field a reference's rest (`field` or `section/field`) names, by
    /// label or id, as 1Password resolves references.
    pub fn field(&self, rest: &str) -> Option<SecretString> {
        let path = rest.split('?').next().unwrap_or(rest);
        let (section, field) = match path.split_once('/') {
            Some((s, f)) => (Some(s), f),
            None => (None, path),
        };
        let in_section = |f: &Field| match section {
            None => true,
            Some(s) => {
                let id = f.section.as_ref().map_or("", |r| r.id.as_str());
                id == s
                    || self
                        .sections
                        .iter()
                        .any(|sec| sec.id == id && sec.label == s)
            }
        };
        self.fields
            .iter()
            .find(|f| (f.label == field || f.id == field) && in_section(f))
            .and_then(|f| f.value.clone())
    }
}

fn concealed_field(value: &SecretString) -> Value {
    serde_json::json!({
        "id": "password",
        "type": "CONCEALED",
        "purpose": "PASSWORD",
        "label": "password",
        "value": value.expose(),
    })
}

/// Sets an item's first concealed field (or its `password` field; else a
/// new one) to `value`, keeping the rest. `false`: not an item.
pub fn set_concealed(item: &mut Value, value: &SecretString) -> bool {
    let Some(fields) = item.get_mut("fields").and_then(Value::as_array_mut) else {
        return false;
    };
    let target = fields
        .iter()
        .position(|f| f["type"] == "CONCEALED")
        .or_else(|| fields.iter().position(|f| f["id"] == "password"));
    match target {
        Some(i) => fields[i]["value"] = value.expose().into(),
        None => fields.push(concealed_field(value)),
    }
    true
}

/// A new item titled `title` holding `value` in a concealed field.
pub fn new_item(title: &str, write: &Write, value: &SecretString) -> Value {
    serde_json::json!({
        "title": title,
        "category": write.category,
        "vault": {"id": write.vault_id},
        "fields": [concealed_field(value)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed() -> Vec<Listed> {
        vec![Listed {
            name: "GitHub".into(),
            group: "vlt1".into(),
            id: "itm1".into(),
            group_name: "Private".into(),
        }]
    }

    #[test]
    fn references_and_titles_are_matched_against_the_listing() {
        let l = listed();
        for known in [
            "GitHub",
            "op://Private/GitHub/token",
            "op://vlt1/itm1/sec/token",
        ] {
            assert!(find(&l, known).is_some(), "{known}");
        }
        for unknown in [
            "github",
            "op://Other/GitHub/token",
            "op://Private/Gitlab/token",
        ] {
            assert!(find(&l, unknown).is_none(), "{unknown}");
        }
        assert!(check_name("op://a/b").is_err());
        assert!(check_name("op://a/b/c/d/e").is_err());
        assert!(check_name("--vault=x").is_err());
        assert!(check_name("op://a/b/c?attribute=otp").is_ok());
    }

    #[test]
    fn fields_by_label_id_and_section() -> Result<(), serde_json::Error> {
        let item: FullItem = serde_json::from_value(serde_json::json!({
            "sections": [{"id": "s1", "label": "Database"}],
            "fields": [
                {"id": "username", "label": "username", "type": "STRING", "value": "app"},
                {"id": "f2", "label": "password", "type": "CONCEALED", "value": "top", "section": {"id": "s1"}},
                {"id": "notes", "label": "notes", "type": "STRING", "value": ""}
            ]
        }))?;
        let v = |r: &str| item.field(r).map(|s| s.expose().to_string());
        assert_eq!(v("username").as_deref(), Some("app"));
        assert_eq!(v("Database/password").as_deref(), Some("top"));
        assert_eq!(v("s1/f2").as_deref(), Some("top"));
        assert_eq!(v("Other/password"), None);
        assert_eq!(
            item.fields_json().expose(),
            r#"{"password":"top","username":"app"}"#
        );
        Ok(())
    }
}
