//! `1password`: a 1Password account through the `op` CLI (there is no
//! official Rust SDK), with the prototype's config and semantics:
//!
//! - `list`: the items of the vaults in `vaultIds` (default: every vault
//!   the account can read), by title, with the vault's id as the group;
//! - `get` by title: the item's fields as a JSON object (label → value);
//! - `get` by reference: `op://vault/item/field` (or
//!   `op://vault/item/section/field`), the vault and item by name or id,
//!   limited to the listed vaults;
//! - `set`: creates a `write.category` item (default `login`) titled with
//!   the name in `write.vaultId`, or updates the first concealed field of
//!   the item of that title there.
//!
//! Credentials: `serviceAccountToken` (a reference), given to `op` in its
//! environment only. Without it, `op` uses the person's own sign-in
//! through the 1Password desktop app (unlocked as usual, for example with
//! biometrics), optionally for `account`; that ambient sign-in serves only
//! vaults of agent-vaultd's own config. Values reach `op` on stdin, never
//! in its arguments.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use zeroize::Zeroizing;

use super::contract::{FieldError, Listed, ProviderError};
use super::credential::{Credential, EnvLookup};
use super::onepassword_items::{self as items, FullItem, ListedItem, RawWrite, VaultInfo, Write};
use super::subprocess::{self, Command, RunError};
use crate::secret::SecretString;

/// The fields a `1password` vault may set besides the common ones.
pub const FIELDS: &[&str] = &["serviceAccountToken", "vaultIds", "write", "account"];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSettings {
    service_account_token: Option<String>,
    #[serde(default)]
    vault_ids: Vec<String>,
    write: Option<RawWrite>,
    account: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    token: Option<Credential>,
    vault_ids: Vec<String>,
    write: Option<Write>,
    account: Option<String>,
}

impl Settings {
    pub fn parse(
        fields: serde_json::Value,
        dir: &Path,
        env: EnvLookup<'_>,
    ) -> Result<Self, FieldError> {
        let raw: RawSettings = serde_path_to_error::deserialize(fields)
            .map_err(|e| (e.path().to_string(), e.inner().to_string()))?;
        let token = match raw.service_account_token.as_deref() {
            Some(t) => Some(
                Credential::parse(t, dir, env).map_err(|m| ("serviceAccountToken".into(), m))?,
            ),
            None => None,
        };
        items::check_vault_ids(&raw.vault_ids)?;
        let write = raw.write.map(Write::parse).transpose()?;
        if let Some(a) = &raw.account
            && !items::plain_id(a)
        {
            return Err((
                "account".into(),
                "expected a 1Password account (its sign-in address, such as \"my.1password.com\", or its id)".into(),
            ));
        }
        Ok(Settings {
            token,
            vault_ids: raw.vault_ids,
            write,
            account: raw.account,
        })
    }

    /// Everything that defines where values come from (no credential).
    pub fn definition(&self) -> String {
        format!(
            "{:?}\0{:?}\0{:?}\0{:?}",
            self.token.as_ref().map(Credential::reference),
            self.vault_ids,
            self.write.as_ref().map(|w| (&w.vault_id, &w.category)),
            self.account
        )
    }

    /// What a project's config (a file an agent may write) may not do.
    pub fn project_refusal(&self) -> Option<FieldError> {
        match &self.token {
            None => Some((
                "serviceAccountToken".into(),
                "a project's 1password vault must name its own service account token (\"env:NAME\", from the agent's environment); the 1Password sign-in of agent-vaultd's user serves only vaults of agent-vaultd's own config".into(),
            )),
            Some(c) if c.is_file() => Some((
                "serviceAccountToken".into(),
                "a project's config may not name a file for agent-vaultd to read; use \"env:NAME\"".into(),
            )),
            Some(_) => None,
        }
    }
}

#[derive(Debug)]
pub struct OnePassword {
    vault: String,
    settings: Settings,
}

impl OnePassword {
    pub fn new(vault: String, settings: Settings) -> Self {
        Self { vault, settings }
    }

    pub fn check_name(name: &str) -> Result<(), ProviderError> {
        items::check_name(name)
    }

    /// Whether `name` (a title or a reference) is among `listed`.
    pub fn knows(listed: &[Listed], name: &str) -> bool {
        items::find(listed, name).is_some()
    }

    pub fn location(&self) -> String {
        let vaults = if self.settings.vault_ids.is_empty() {
            "every vault it can read".to_string()
        } else {
            format!("vaults {}", self.settings.vault_ids.join(", "))
        };
        match (&self.settings.token, &self.settings.account) {
            (Some(t), _) => format!("1Password service account ({}), {vaults}", t.reference()),
            (None, Some(a)) => format!("1Password account {a} (desktop app sign-in), {vaults}"),
            (None, None) => format!("1Password desktop app sign-in, {vaults}"),
        }
    }

    /// What values come from: the account (a digest of the token, or the
    /// desktop sign-in) and the vaults.
    pub fn identity(&self) -> String {
        let who = match (&self.settings.token, &self.settings.account) {
            (Some(t), _) => format!("token:{}", t.digest()),
            (None, a) => format!("desktop:{}", a.as_deref().unwrap_or("")),
        };
        format!("1password:{who}:{}", self.settings.vault_ids.join(","))
    }

    fn unavailable(&self, why: impl Into<String>) -> ProviderError {
        ProviderError::Unavailable {
            vault: self.vault.clone(),
            why: why.into(),
        }
    }

    /// The child's whole environment: the daemon's PATH and HOME (where
    /// `op` keeps its settings), and the vault's own credential.
    fn child_env(&self) -> Result<Vec<(String, String)>, ProviderError> {
        let mut env = Vec::new();
        for key in [
            "PATH",
            "HOME",
            "XDG_CONFIG_HOME",
            "XDG_RUNTIME_DIR",
            "TMPDIR",
        ] {
            if let Some(v) = std::env::var_os(key) {
                env.push((key.to_string(), v.to_string_lossy().into_owned()));
            }
        }
        if !env.iter().any(|(k, _)| k == "PATH") {
            env.push(("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()));
        }
        match &self.settings.token {
            Some(t) => {
                let token = t.read().map_err(|why| ProviderError::Unauthorized {
                    vault: self.vault.clone(),
                    why: format!(
                        "its serviceAccountToken ({}) cannot be used: {why}",
                        t.reference()
                    ),
                })?;
                env.push((
                    "OP_SERVICE_ACCOUNT_TOKEN".into(),
                    token.expose().to_string(),
                ));
            }
            None => env.push(("OP_BIOMETRIC_UNLOCK_ENABLED".into(), "true".into())),
        }
        if let Some(a) = &self.settings.account {
            env.push(("OP_ACCOUNT".into(), a.clone()));
        }
        Ok(env)
    }

    /// Runs `op` with `args` (and `--format=json`), returning its stdout.
    async fn op(
        &self,
        args: &[&str],
        stdin: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
        let mut env = self.child_env()?;
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        args.push("--format=json".into());
        let out = subprocess::run(Command {
            program: "op",
            args,
            env: std::mem::take(&mut env),
            stdin,
        })
        .await;
        // The token was in `env`; it is gone with the child's copy.
        let out = match out {
            Ok(o) => o,
            Err(RunError::NotFound) => {
                return Err(ProviderError::NotConfigured {
                    vault: self.vault.clone(),
                    why: "the 1Password CLI (`op`) is not installed on agent-vaultd's PATH; install it (https://developer.1password.com/docs/cli/get-started/), then call again".into(),
                });
            }
            Err(RunError::Io(e)) => {
                return Err(self.unavailable(format!("running `op` failed: {e}")));
            }
        };
        if out.success {
            return Ok(out.stdout);
        }
        Err(self.classify(&out.stderr))
    }

    /// Turns `op`'s error (`[ERROR] 2024/01/02 03:04:05 message`) into a
    /// typed error. `op` never prints values in its errors.
    fn classify(&self, stderr: &str) -> ProviderError {
        let line = stderr
            .lines()
            .find_map(|l| l.strip_prefix("[ERROR] "))
            .map(|l| l.splitn(3, ' ').nth(2).unwrap_or(l))
            .unwrap_or_else(|| stderr.trim());
        let why: String = line.chars().filter(|c| !c.is_control()).take(300).collect();
        let lower = why.to_ascii_lowercase();
        let vault = self.vault.clone();
        if lower.contains("(401)")
            || lower.contains("unauthorized")
            || lower.contains("invalid token")
            || lower.contains("not currently signed in")
            || lower.contains("authentication")
        {
            ProviderError::Unauthorized { vault, why }
        } else if lower.contains("(403)")
            || lower.contains("forbidden")
            || lower.contains("permission")
        {
            ProviderError::Forbidden { vault, why }
        } else if lower.contains("(429)")
            || lower.contains("too many requests")
            || lower.contains("rate limit")
        {
            self.unavailable(format!(
                "1Password is rate-limiting this account ({why}); wait a minute"
            ))
        } else if lower.contains("isn't an item")
            || lower.contains("isn't a field")
            || lower.contains("not found")
        {
            ProviderError::NotFound { vault, why }
        } else {
            self.unavailable(why)
        }
    }

    fn json<T: for<'de> Deserialize<'de>>(&self, bytes: &[u8]) -> Result<T, ProviderError> {
        serde_json::from_slice(bytes).map_err(|e| {
            self.unavailable(format!(
                "`op` printed something other than the JSON expected ({})",
                e.classify() as u8
            ))
        })
    }

    async fn vault_ids(&self) -> Result<Vec<String>, ProviderError> {
        if !self.settings.vault_ids.is_empty() {
            return Ok(self.settings.vault_ids.clone());
        }
        let out = self.op(&["vault", "list"], None).await?;
        let vaults: Vec<VaultInfo> = self.json(&out)?;
        Ok(vaults.into_iter().map(|v| v.id).collect())
    }

    async fn items(&self, vault_id: &str) -> Result<Vec<Listed>, ProviderError> {
        let flag = format!("--vault={vault_id}");
        let out = self.op(&["item", "list", &flag], None).await?;
        let listed: Vec<ListedItem> = self.json(&out)?;
        Ok(listed.into_iter().map(|i| i.into_listed("")).collect())
    }

    pub async fn list(&self) -> Result<Vec<Listed>, ProviderError> {
        let ids = self.vault_ids().await?;
        let lists = futures_util::future::join_all(ids.iter().map(|id| self.items(id))).await;
        let mut all = Vec::new();
        for l in lists {
            all.extend(l?);
        }
        Ok(all)
    }

    /// The values of `names`, each found in `listed` (a title, or a
    /// reference whose vault and item are listed).
    pub async fn get(
        &self,
        names: &[String],
        listed: &[Listed],
    ) -> Result<HashMap<String, SecretString>, ProviderError> {
        let unknown: Vec<String> = names
            .iter()
            .filter(|n| items::find(listed, n).is_none())
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(ProviderError::UnknownSecret {
                vault: self.vault.clone(),
                names: unknown,
            });
        }
        let mut values = HashMap::new();
        for name in names {
            let Some(item) = items::find(listed, name) else {
                continue;
            };
            let value = match items::parse_reference(name) {
                Some((_, _, field)) => {
                    // Canonical ids: the vault and item as listed.
                    let reference = format!("op://{}/{}/{field}", item.group, item.id);
                    let out = self.op(&["read", "--no-newline", &reference], None).await?;
                    let text = std::str::from_utf8(&out).map_err(|_| {
                        self.unavailable("`op read` printed a value that is not UTF-8")
                    })?;
                    SecretString::new(text.to_string())
                }
                None => self.fields_json(item).await?,
            };
            values.insert(name.clone(), value);
        }
        Ok(values)
    }

    /// An item's fields as a JSON object (see `FullItem::fields_json`).
    async fn fields_json(&self, item: &Listed) -> Result<SecretString, ProviderError> {
        let vault_flag = format!("--vault={}", item.group);
        let out = self
            .op(&["item", "get", &item.id, &vault_flag], None)
            .await?;
        let full: FullItem = self.json(&out)?;
        Ok(full.fields_json())
    }

    pub async fn set(&self, writes: &[(String, SecretString)]) -> Result<(), ProviderError> {
        let Some(w) = &self.settings.write else {
            return Err(items::write_not_set(&self.vault));
        };
        let existing = self.items(&w.vault_id).await?;
        let vault_flag = format!("--vault={}", w.vault_id);
        for (name, value) in writes {
            match existing.iter().find(|l| &l.name == name) {
                Some(item) => {
                    let out = self
                        .op(&["item", "get", &item.id, &vault_flag], None)
                        .await?;
                    let mut full: serde_json::Value = self.json(&out)?;
                    if !items::set_concealed(&mut full, value) {
                        return Err(
                            self.unavailable("`op item get` printed an item without fields")
                        );
                    }
                    let body = Zeroizing::new(full.to_string().into_bytes());
                    self.op(&["item", "edit", &item.id, &vault_flag], Some(body))
                        .await?;
                }
                None => {
                    let item = items::new_item(name, w, value);
                    let body = Zeroizing::new(item.to_string().into_bytes());
                    self.op(&["item", "create", &vault_flag, "-"], Some(body))
                        .await?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prototype_fields_load_and_a_typo_does_not() {
        let env = |_: &str| None;
        let ok = serde_json::json!({
            "serviceAccountToken": "env:OP_SERVICE_ACCOUNT_TOKEN",
            "vaultIds": ["abc123"],
            "write": {"vaultId": "abc123", "category": "api credential"}
        });
        let s = Settings::parse(ok, Path::new("/p"), &env).map_err(|e| e.1);
        assert!(
            s.as_ref().is_ok_and(|s| s
                .write
                .as_ref()
                .is_some_and(|w| w.category == "API_CREDENTIAL")),
            "{s:?}"
        );
        let typo = serde_json::json!({"serviceAccountToken": "env:T", "vaultIDs": ["a"]});
        let e = Settings::parse(typo, Path::new("/p"), &env).err();
        assert!(
            e.as_ref().is_some_and(|(_, m)| m.contains("vaultIDs")),
            "{e:?}"
        );
        let literal = serde_json::json!({"serviceAccountToken": "ops_abc"});
        let e = Settings::parse(literal, Path::new("/p"), &env).err();
        assert!(e.is_some_and(|(p, _)| p == "serviceAccountToken"));
    }
}
