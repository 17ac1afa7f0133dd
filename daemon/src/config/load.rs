//! Loading a config file: parse, validate, resolve `env:` references and
//! paths. Every error names the file, the field path and what was expected.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::schema::{ProjectFloor, RawAnchor, RawConfig, RawEvents, RawVault};
use super::{
    AnchorConfig, OPT_IN_EVENTS, Policies, ProjectConfig, SigningSecret, VaultConfig, WebhookConfig,
};
use crate::audit::Action;
use crate::providers::{COMMON_FIELDS, Limits, Settings};
use crate::secret::SecretString;

pub use agent_vault_proto::project::find_config;

pub use crate::providers::EnvLookup;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read the config: {}", agent_vault_proto::words::io_error(.cause))]
    Read {
        file: PathBuf,
        cause: std::io::Error,
    },
    #[error("{file}: {path}: {message}")]
    Invalid {
        file: PathBuf,
        path: String,
        message: String,
    },
}

/// An error at `path` in `file`; serde's wording is made plain
/// (`words::plain_words`: no Rust type names, the closest known setting).
fn invalid(file: &Path, path: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        file: file.to_path_buf(),
        path: path.into(),
        message: agent_vault_proto::words::plain_words(&message.into()),
    }
}

/// serde_path_to_error's path as the file's reader sees it.
fn field_path(path: &serde_path_to_error::Path) -> String {
    match path.to_string().as_str() {
        "." | "?" | "" => "(top level)".into(),
        p => p.to_string(),
    }
}

/// Resolves `"env:NAME"`; other strings are literal. An unset variable
/// yields None (the feature it configures is then off, with a warning).
fn resolve(value: &str, field: &str, file: &Path, env: EnvLookup<'_>) -> Option<SecretString> {
    match value.strip_prefix("env:") {
        Some(name) => {
            let v = env(name);
            if v.is_none() {
                tracing::warn!(file = %file.display(), field, variable = name, "env: reference is not set");
            }
            v.map(SecretString::new)
        }
        None => Some(SecretString::new(value.to_string())),
    }
}

/// Loads and validates one config file. `path` should already be absolute.
pub fn load_config(path: &Path, env: EnvLookup<'_>) -> Result<ProjectConfig, ConfigError> {
    let file = std::fs::canonicalize(path).map_err(|cause| ConfigError::Read {
        file: path.to_path_buf(),
        cause,
    })?;
    let text = std::fs::read_to_string(&file).map_err(|cause| ConfigError::Read {
        file: file.clone(),
        cause,
    })?;
    parse_config(&file, &text, env)
}

/// Parses config text as if read from `file` (used by tests and fuzzing).
pub fn parse_config(
    file: &Path,
    text: &str,
    env: EnvLookup<'_>,
) -> Result<ProjectConfig, ConfigError> {
    let value =
        agent_vault_proto::jsonc::parse(text).map_err(|why| invalid(file, "(top level)", why))?;
    let raw: RawConfig = serde_path_to_error::deserialize(value)
        .map_err(|e| invalid(file, field_path(e.path()), e.inner().to_string()))?;
    let dir = file.parent().unwrap_or(Path::new("/"));

    let mut vaults = std::collections::BTreeMap::new();
    for (name, v) in raw.vaults {
        if !agent_vault_proto::project::valid_vault_name(&name) {
            return Err(invalid(
                file,
                format!("vaults.{name}"),
                "expected a vault name of 1 to 64 letters, digits, '_', '-' or '.'",
            ));
        }
        vaults.insert(name.clone(), vault_config(&name, v, file, dir, env)?);
    }

    let mut webhooks = Vec::new();
    for (i, w) in raw.webhooks.into_iter().enumerate() {
        if !(w.url.starts_with("https://") || w.url.starts_with("http://")) {
            return Err(invalid(
                file,
                format!("webhooks[{i}].url"),
                "expected an http:// or https:// URL",
            ));
        }
        let events = match w.events {
            None => None,
            Some(RawEvents::All(s)) if s == "all" => None,
            Some(RawEvents::All(s)) => {
                return Err(invalid(
                    file,
                    format!("webhooks[{i}].events"),
                    format!("expected \"all\" or a list of actions, found \"{s}\""),
                ));
            }
            Some(RawEvents::List(list)) => {
                for e in &list {
                    let known = Action::ALL
                        .iter()
                        .any(|a| a.is_access_outcome() && a.as_str() == e)
                        || OPT_IN_EVENTS.contains(&e.as_str());
                    if !known {
                        return Err(invalid(
                            file,
                            format!("webhooks[{i}].events"),
                            format!(
                                "expected \"approved\", \"denied\", \"auto_approved\", \"audit_anchor\" or \"device_paired\", found \"{e}\""
                            ),
                        ));
                    }
                }
                Some(list)
            }
        };
        let authorization = w
            .authorization
            .as_deref()
            .and_then(|a| resolve(a, "authorization", file, env));
        let secret = match w.secret.as_deref() {
            None => None,
            Some(s) => Some(signing_secret(
                s,
                &format!("webhooks[{i}].secret"),
                file,
                env,
            )?),
        };
        webhooks.push(WebhookConfig {
            url: w.url,
            authorization,
            events,
            secret,
        });
    }

    let approval = raw.approval;
    if !(approval.expire_minutes > 0.0 && approval.expire_minutes <= 1440.0) {
        return Err(invalid(
            file,
            "approval.expireMinutes",
            "expected a number of minutes greater than 0 and at most 1440",
        ));
    }
    if !(1..=600).contains(&approval.wait_seconds) {
        return Err(invalid(
            file,
            "approval.waitSeconds",
            "expected a whole number of seconds from 1 to 600",
        ));
    }
    if let Some(floor) = approval.projects {
        if !(1..=5).contains(&floor.approvers) {
            return Err(invalid(
                file,
                "approval.projects.approvers",
                "expected a number of distinct approving devices from 1 to 5",
            ));
        }
        if !(floor.max_ttl.is_finite() && (0.0..=525_600.0).contains(&floor.max_ttl)) {
            return Err(invalid(
                file,
                "approval.projects.maxTtl",
                "expected a number of minutes between 0 and 525600",
            ));
        }
    }

    if !(1024..=16 * 1024 * 1024).contains(&raw.run.max_output_bytes) {
        return Err(invalid(
            file,
            "run.maxOutputBytes",
            "expected a number of bytes from 1024 to 16777216",
        ));
    }

    let anchor = match raw.audit.and_then(|a| a.anchor) {
        Some(a) => Some(anchor_config(a, file, env)?),
        None => None,
    };

    let ngrok_domain = match raw.ngrok_domain {
        Some(d) if is_domain_name(&d) => Some(d.to_ascii_lowercase()),
        Some(_) => {
            return Err(invalid(
                file,
                "ngrokDomain",
                "expected a domain name reserved in your ngrok account, such as \"vault.example.ngrok.app\"",
            ));
        }
        None => None,
    };
    let public_url = match raw.public_url {
        Some(u) => Some(public_url(&u, file)?),
        None => None,
    };
    if public_url.is_some() && raw.ngrok_auth_token.is_some() {
        return Err(invalid(
            file,
            "publicUrl",
            "ngrokAuthToken is set too: the approval pages are reached either through ngrok or at publicUrl; remove one of them",
        ));
    }

    Ok(ProjectConfig {
        path: file.to_path_buf(),
        vaults,
        port: raw.port,
        ngrok_auth_token: raw
            .ngrok_auth_token
            .as_deref()
            .and_then(|t| resolve(t, "ngrokAuthToken", file, env)),
        ngrok_domain,
        public_url,
        webhooks,
        approval,
        access: raw.access,
        anchor,
        run: raw.run,
    })
}

/// One vault: the fields every vault has, then its type's own (each part
/// refusing fields it does not know, with the list of those it does).
fn vault_config(
    name: &str,
    fields: serde_json::Map<String, serde_json::Value>,
    file: &Path,
    dir: &Path,
    env: EnvLookup<'_>,
) -> Result<VaultConfig, ConfigError> {
    let at = |field: &str| match field {
        "" | "." => format!("vaults.{name}"),
        f => format!("vaults.{name}.{f}"),
    };
    let kind = match fields.get("type") {
        Some(serde_json::Value::String(k)) => k.clone(),
        Some(_) => return Err(invalid(file, at("type"), "expected a string")),
        None => {
            return Err(invalid(
                file,
                at("type"),
                format!("missing; expected one of: {}", Settings::TYPES.join(", ")),
            ));
        }
    };
    let Some(own) = Settings::fields(&kind) else {
        return Err(invalid(
            file,
            at("type"),
            format!(
                "unknown vault type \"{kind}\"; {}expected one of: {}",
                agent_vault_proto::words::did_you_mean(&kind, Settings::TYPES)
                    .map(|n| format!("did you mean \"{n}\"? "))
                    .unwrap_or_default(),
                Settings::TYPES.join(", ")
            ),
        ));
    };
    let (mut common, mut specific) = (serde_json::Map::new(), serde_json::Map::new());
    for (k, v) in fields {
        if k == "type" {
            continue;
        } else if COMMON_FIELDS.contains(&k.as_str()) {
            common.insert(k, v);
        } else if own.contains(&k.as_str()) {
            specific.insert(k, v);
        } else {
            let mut known: Vec<&str> = COMMON_FIELDS.to_vec();
            known.extend(own);
            let unknown = format!("unknown setting for a vault of type \"{kind}\"");
            let known_list = format!("The settings it may have: {}.", known.join(", "));
            let message = match agent_vault_proto::words::did_you_mean(&k, &known) {
                Some(near) => format!("{unknown}; did you mean \"{near}\"? {known_list}"),
                None => format!("{unknown}. {known_list}"),
            };
            return Err(invalid(file, at(&k), message));
        }
    }
    let v: RawVault = serde_path_to_error::deserialize(serde_json::Value::Object(common))
        .map_err(|e| invalid(file, at(&e.path().to_string()), e.inner().to_string()))?;
    if !(1..=5).contains(&v.approval.approvers) {
        return Err(invalid(
            file,
            at("approval.approvers"),
            "expected a number of distinct approving devices from 1 to 5",
        ));
    }
    let seconds =
        |field: &str, value: Option<f64>, default: Duration, min: f64, max: f64| match value {
            None => Ok(default),
            Some(s) if s.is_finite() && (min..=max).contains(&s) => Ok(Duration::from_secs_f64(s)),
            Some(_) => Err(invalid(
                file,
                at(field),
                format!("expected a number of seconds from {min} to {max}"),
            )),
        };
    let defaults = Limits::default();
    let limits = Limits {
        timeout: seconds(
            "timeoutSeconds",
            v.timeout_seconds,
            defaults.timeout,
            0.1,
            600.0,
        )?,
        list_cache: seconds(
            "listCacheSeconds",
            v.list_cache_seconds,
            defaults.list_cache,
            0.0,
            86_400.0,
        )?,
    };
    let settings = Settings::parse(&kind, serde_json::Value::Object(specific), dir, env)
        .map_err(|(field, message)| invalid(file, at(&field), message))?;
    if v.writable
        && let Some(why) = settings.cannot_write()
    {
        return Err(invalid(file, at("writable"), why));
    }
    let policies = Policies::parse(v.policies)
        .map_err(|(field, message)| invalid(file, at(&field), message))?;
    Ok(VaultConfig {
        name: name.to_string(),
        settings,
        limits,
        ttl_minutes: v.ttl.0,
        ttl_scope: v.ttl_scope,
        writable: v.writable,
        approvers: v.approval.approvers,
        factor: v.approval.require,
        allow_terminal: v.approval.allow_terminal,
        policies,
    })
}

/// A webhook's `secret`: `whsec_` and base64 inline, `env:NAME` holding
/// that, or `file:PATH` (relative to the config) read at each delivery.
fn signing_secret(
    value: &str,
    field: &str,
    file: &Path,
    env: EnvLookup<'_>,
) -> Result<SigningSecret, ConfigError> {
    if let Some(path) = value.strip_prefix("file:") {
        if path.is_empty() {
            return Err(invalid(file, field, "expected a path after \"file:\""));
        }
        let dir = file.parent().unwrap_or(Path::new("/"));
        return Ok(SigningSecret::File(dir.join(path)));
    }
    let resolved = match value.strip_prefix("env:") {
        Some(name) => env(name).ok_or_else(|| {
            invalid(
                file,
                field,
                format!("the environment variable {name} is not set; set it to the signing secret or remove \"secret\""),
            )
        })?,
        None => value.to_string(),
    };
    crate::webhooks::signature::key(&resolved).map_err(|why| invalid(file, field, why))?;
    Ok(SigningSecret::Value(SecretString::new(resolved)))
}

/// `audit.anchor`: at least one place to write, and a sane schedule.
fn anchor_config(
    a: RawAnchor,
    file: &Path,
    env: EnvLookup<'_>,
) -> Result<AnchorConfig, ConfigError> {
    let dir = file.parent().unwrap_or(Path::new("/"));
    if let Some(url) = &a.ntfy {
        let ok = url::Url::parse(url).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https") && u.host_str().is_some() && u.path().len() > 1
        });
        if !ok {
            return Err(invalid(
                file,
                "audit.anchor.ntfy",
                "expected the URL of an ntfy topic, such as \"https://ntfy.sh/my-private-topic\"",
            ));
        }
    }
    let every_events = a.every_events.unwrap_or(20);
    if !(1..=1_000_000).contains(&every_events) {
        return Err(invalid(
            file,
            "audit.anchor.everyEvents",
            "expected a whole number of audit entries from 1 to 1000000",
        ));
    }
    let every_minutes = a.every_minutes.unwrap_or(5.0);
    if !(every_minutes.is_finite() && (0.05..=1440.0).contains(&every_minutes)) {
        return Err(invalid(
            file,
            "audit.anchor.everyMinutes",
            "expected a number of minutes from 0.05 to 1440",
        ));
    }
    Ok(AnchorConfig {
        file: a.file.filter(|f| !f.is_empty()).map(|f| dir.join(f)),
        ntfy: a.ntfy,
        ntfy_token: a
            .ntfy_token
            .as_deref()
            .and_then(|t| resolve(t, "audit.anchor.ntfyToken", file, env)),
        every_events,
        every_minutes,
    })
}

/// Holds a project config (a file an agent may have written) to what
/// agent-vaultd's own config allows: each vault gets at least the floor's
/// approvers and factor, a window no longer than its cap, and terminal
/// approval only where the floor allows it. A project config may not set
/// the floor itself.
pub fn restrict_project(
    config: &mut ProjectConfig,
    floor: &ProjectFloor,
) -> Result<(), ConfigError> {
    if config.approval.projects.is_some() {
        return Err(invalid(
            &config.path,
            "approval.projects",
            "only agent-vaultd's own config may set this; remove it from the project's config",
        ));
    }
    if config.anchor.is_some() {
        return Err(invalid(
            &config.path,
            "audit",
            "only agent-vaultd's own config may say where the audit log is anchored; remove it from the project's config",
        ));
    }
    if config.public_url.is_some() {
        return Err(invalid(
            &config.path,
            "publicUrl",
            "only agent-vaultd's own config may say where approval pages are opened (a project's config could send your approval links to a page of its own); remove it from the project's config",
        ));
    }
    for (i, hook) in config.webhooks.iter().enumerate() {
        if matches!(hook.secret, Some(SigningSecret::File(_))) {
            return Err(invalid(
                &config.path,
                format!("webhooks[{i}].secret"),
                "a project's config may not name a file for the daemon to read; use \"env:NAME\" instead",
            ));
        }
    }
    for v in config.vaults.values() {
        if let Some((field, message)) = v.settings.project_refusal() {
            return Err(invalid(
                &config.path,
                format!("vaults.{}.{field}", v.name),
                message,
            ));
        }
    }
    for v in config.vaults.values_mut() {
        v.approvers = v.approvers.max(floor.approvers);
        v.factor = v.factor.stronger(floor.require);
        v.ttl_minutes = v.ttl_minutes.min(floor.max_ttl);
        v.allow_terminal = v.allow_terminal && floor.allow_terminal;
        let defaults = v.defaults();
        v.policies.restrict(defaults).map_err(|(field, message)| {
            invalid(&config.path, format!("vaults.{}.{field}", v.name), message)
        })?;
    }
    Ok(())
}

/// `publicUrl`: an http(s) origin (a host, maybe a port; no path, query,
/// or user name), returned without its trailing slash. The pages link to
/// each other from the root, so a proxy must serve them there.
fn public_url(text: &str, file: &Path) -> Result<String, ConfigError> {
    let wrong = |why: &str| {
        invalid(
            file,
            "publicUrl",
            format!(
                "{why}; expected the address your phone opens the approval pages at, such as \"https://laptop.tail1234.ts.net\" (tailscale serve) or your reverse proxy's https:// address, with nothing after the host"
            ),
        )
    };
    let url = url::Url::parse(text.trim())
        .map_err(|_| wrong(&format!("{text:?} is not a web address")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(wrong(&format!(
            "{text:?} is not an http:// or https:// address"
        )));
    }
    if url.host().is_none() {
        return Err(wrong(&format!("{text:?} has no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(wrong("a user name or password does not belong in it"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(wrong(&format!(
            "{text:?} has a path: the pages must be served at the root of their host"
        )));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// A DNS name of dot-separated labels (letters, digits, inner hyphens).
fn is_domain_name(s: &str) -> bool {
    s.len() <= 253
        && s.contains('.')
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && !s
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
}

/// The config the daemon writes when none exists: one env vault beside it.
pub fn default_config_text() -> &'static str {
    concat!(
        "{\n",
        "  \"vaults\": {\n",
        "    \"local\": { \"type\": \"env\", \"file\": \"secrets.env\", \"ttl\": 0, \"writable\": true }\n",
        "  },\n",
        "  \"port\": 9999\n",
        "}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn err_of(text: &str) -> String {
        match parse_config(Path::new("/p/agent-vault.config.json"), text, &no_env) {
            Err(e) => e.to_string(),
            Ok(_) => "ok".into(),
        }
    }

    #[test]
    fn reads_the_prototype_format() {
        let text = r#"{
          "vaults": {
            "dev": {"type": "1password", "serviceAccountToken": "env:OP_DEV_TOKEN", "vaultIds": ["abc"], "ttl": 15},
            "local": {"type": "env", "file": ".env.secrets", "ttl": 30, "ttlScope": "vault", "writable": true}
          },
          "ngrokAuthToken": "env:NGROK_AUTHTOKEN",
          "port": 9999,
          "webhooks": [{"url": "https://logs.example.com/e", "authorization": "env:KEY", "events": ["denied"]},
                       {"url": "http://127.0.0.1:1/x", "events": "all"}]
        }"#;
        let env = |k: &str| (k == "KEY").then(|| "Bearer t".to_string());
        let cfg = parse_config(Path::new("/p/agent-vault.config.json"), text, &env);
        let cfg = match cfg {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let local = &cfg.vaults["local"];
        assert_eq!(local.settings.file(), Some(Path::new("/p/.env.secrets")));
        assert_eq!(local.ttl_scope, super::super::TtlScope::Vault);
        assert!(local.writable);
        assert_eq!(cfg.vaults["dev"].settings.kind(), "1password");
        assert_eq!(cfg.port, Some(9999));
        assert!(cfg.ngrok_auth_token.is_none());
        assert_eq!(
            cfg.webhooks[0].authorization.as_ref().map(|a| a.expose()),
            Some("Bearer t")
        );
        assert!(cfg.webhooks[0].wants("denied") && !cfg.webhooks[0].wants("approved"));
        assert!(cfg.webhooks[1].wants("approved"));
        assert_eq!(cfg.approval.wait_seconds, 50);
    }

    #[test]
    fn typos_are_refused_with_the_closest_setting() {
        for (text, said) in [
            (
                r#"{"vaults":{"dev":{"type":"env","file":"x","writeable":true}}}"#,
                "vaults.dev.writeable: unknown setting for a vault of type \"env\"; did you mean \"writable\"?",
            ),
            (
                r#"{"vaults":{"dev":{"type":"env","file":"x","tll":5}}}"#,
                "vaults.dev.tll: unknown setting for a vault of type \"env\"; did you mean \"ttl\"?",
            ),
            (
                r#"{"vaults":{},"prot":9999}"#,
                "prot: unknown setting \"prot\"; did you mean \"port\"?",
            ),
            (
                r#"{"vaults":{},"webhooks":[{"url":"https://x.example","event":"all"}]}"#,
                "webhooks[0].event: unknown setting \"event\"; did you mean \"events\"?",
            ),
            (
                r#"{"vaults":{},"approval":{"waitSecond":5}}"#,
                "approval.waitSecond: unknown setting \"waitSecond\"; did you mean \"waitSeconds\"?",
            ),
            (
                r#"{"vaults":{},"access":{"agent":["me"]}}"#,
                "access.agent: unknown setting \"agent\"; did you mean \"agents\"?",
            ),
        ] {
            let e = err_of(text);
            assert!(e.contains(said), "{e}");
        }
    }

    #[test]
    fn comments_and_trailing_commas_load() {
        let text = r#"{
          // the prototype's README writes its config with comments
          "vaults": {
            "local": { "type": "env", "file": ".env.secrets", "ttl": 30 }, /* thirty minutes */
          },
          "port": 9999,
        }"#;
        let cfg = parse_config(Path::new("/p/agent-vault.config.json"), text, &no_env);
        assert!(cfg.is_ok_and(|c| c.port == Some(9999) && c.vaults.len() == 1));
        let e = err_of("{\n  \"vaults\": {}\n  \"port\": 1\n}");
        assert!(
            e.contains("(top level): not valid JSON: Expected comma on line 2"),
            "{e}"
        );
    }

    #[test]
    fn messages_name_no_rust_types() {
        for text in [
            r#"{"vaults":{"dev":{"type":"env","file":"x","ttl":"five"}}}"#,
            r#"{"vaults":{},"port":"9999"}"#,
            r#"{"vaults":{},"port":70000}"#,
            r#"{"vaults":{},"approval":{"waitSeconds":1.5}}"#,
            r#"{"vaults":{"dev":{"type":"env","file":"x","timeoutSeconds":"x"}}}"#,
            r#"{"vaults":[]}"#,
            r#"{"vaults":{"dev":{"type":"env","file":"x","writable":"yes"}}}"#,
            r#"{"vaults":{},"webhooks":{}}"#,
            r#"[]"#,
        ] {
            let e = err_of(text);
            assert!(e != "ok", "{text}");
            for rust in [
                "f64", "u16", "u32", "u64", "struct", "Raw", "`", "?:", "enum ",
            ] {
                assert!(!e.contains(rust), "{text}: {e}");
            }
        }
        assert!(
            err_of(r#"{"vaults":{},"port":"9999"}"#).ends_with(
                "port: expected a whole number from 0 to 65535, found the text \"9999\""
            )
        );
    }

    #[test]
    fn errors_name_file_field_and_expectation() {
        let e = err_of(r#"{"vaults":{"dev":{"type":"env","file":"x","ttlScope":"forever"}}}"#);
        assert!(
            e.starts_with(
                "/p/agent-vault.config.json: vaults.dev.ttlScope: unknown value \"forever\". The values allowed here: secret, vault, session."
            ),
            "{e}"
        );
        let e = err_of(r#"{"vaults":{"dev":{"type":"env","file":""}}}"#);
        assert!(e.contains("vaults.dev.file: expected the path"), "{e}");
        // The prototype's default file.
        assert_eq!(err_of(r#"{"vaults":{"dev":{"type":"env"}}}"#), "ok");
        let e = err_of(r#"{"vaults":{"dev":{"type":"env","file":"x","ttl":-1}}}"#);
        assert!(
            e.contains("vaults.dev.ttl: expected a number of minutes"),
            "{e}"
        );
        let e = err_of(r#"{"vaults":{"dev":{"type":"vault9","file":"x"}}}"#);
        assert!(
            e.contains(
                "vaults.dev.type: unknown vault type \"vault9\"; expected one of: env, 1password"
            ),
            "{e}"
        );
        // A typo is refused with the fields the vault may have, whether it
        // is one every vault has or one of its type's.
        let e = err_of(r#"{"vaults":{"dev":{"type":"env","file":"x","writeable":true}}}"#);
        assert!(
            e.contains("vaults.dev.writeable: unknown setting for a vault of type \"env\"; did you mean \"writable\"? The settings it may have: type, ttl,"),
            "{e}"
        );
        let e = err_of(
            r#"{"vaults":{"dev":{"type":"1password","serviceAccountToken":"env:T","vaultIds":["a"],"adress":"x"}}}"#,
        );
        assert!(
            e.contains("vaults.dev.adress: unknown setting for a vault of type \"1password\". The settings it may have:"),
            "{e}"
        );
        let e = err_of(
            r#"{"vaults":{"dev":{"type":"1password","serviceAccountToken":"ops_literal"}}}"#,
        );
        assert!(
            e.contains("vaults.dev.serviceAccountToken: expected a reference"),
            "{e}"
        );
        let e = err_of(
            r#"{"vaults":{"bw":{"type":"bitwarden","accessToken":"env:T","writable":true}}}"#,
        );
        assert!(
            e.contains("vaults.bw.writable: a bitwarden vault cannot be writable"),
            "{e}"
        );
        let e = err_of(r#"{"vaults":{"dev":{"type":"env","file":"x","timeoutSeconds":0}}}"#);
        assert!(
            e.contains("vaults.dev.timeoutSeconds: expected a number of seconds"),
            "{e}"
        );
        let e = err_of(r#"{"vaults":{}, "port": "x"}"#);
        assert!(e.contains("port: expected a whole number"), "{e}");
        let e = err_of(r#"{"vaults":{"a b":{"type":"env","file":"x"}}}"#);
        assert!(e.contains("vaults.a b: expected a vault name"), "{e}");
        let e = err_of(r#"{"vaults":{},"webhooks":[{"url":"ftp://x"}]}"#);
        assert!(e.contains("webhooks[0].url"), "{e}");
        let e = err_of(r#"{"vaults":{"v":{"type":"env","file":"f","approval":{"approvers":9}}}}"#);
        assert!(e.contains("vaults.v.approval.approvers: expected"), "{e}");
        let e = err_of(
            r#"{"vaults":{"v":{"type":"env","file":"f","approval":{"require":"fingerprint"}}}}"#,
        );
        assert!(
            e.contains("vaults.v.approval.require: unknown value \"fingerprint\""),
            "{e}"
        );
        for bad in [
            "1.2.3.4",
            "https://x.ngrok.app",
            "x",
            "a..b",
            "-a.b",
            "a b.c",
        ] {
            let e = err_of(&format!(r#"{{"vaults":{{}},"ngrokDomain":"{bad}"}}"#));
            assert!(
                e.contains("ngrokDomain: expected a domain name"),
                "{bad}: {e}"
            );
        }
        for (bad, why) in [
            ("laptop.tail1234.ts.net", "is not a web address"),
            (
                "ftp://laptop.example",
                "is not an http:// or https:// address",
            ),
            ("https://user:pw@laptop.example", "a user name or password"),
            ("https://laptop.example/vault", "has a path"),
            ("https://laptop.example/?a=1", "has a path"),
        ] {
            let e = err_of(&format!(r#"{{"vaults":{{}},"publicUrl":"{bad}"}}"#));
            assert!(e.contains("publicUrl: ") && e.contains(why), "{bad}: {e}");
        }
        let e = err_of(
            r#"{"vaults":{},"publicUrl":"https://a.example","ngrokAuthToken":"env:NGROK_AUTHTOKEN"}"#,
        );
        assert!(e.contains("either through ngrok or at publicUrl"), "{e}");
        let e =
            err_of(r#"{"vaults":{"q":{"type":"env","policies":[{"match":"A*","maxTtl":-5}]}}}"#);
        assert!(
            e.contains("vaults.q.policies[0].maxTtl: expected a number of minutes"),
            "{e}"
        );
        let e =
            err_of(r#"{"vaults":{"q":{"type":"env","policies":[{"match":"A*","reveel":false}]}}}"#);
        assert!(
            e.contains(
                "vaults.q.policies[0].reveel: unknown setting \"reveel\"; did you mean \"reveal\"?"
            ),
            "{e}"
        );
        let e = err_of(r#"{"vaults":{},"run":{"maxOutputBytes":10}}"#);
        assert!(
            e.contains("run.maxOutputBytes: expected a number of bytes"),
            "{e}"
        );
        let e = err_of(r#"{"vaults":{},"run":{"maxOutput":10}}"#);
        assert!(
            e.contains(
                "run.maxOutput: unknown setting \"maxOutput\"; did you mean \"maxOutputBytes\"?"
            ),
            "{e}"
        );
        let e = err_of(r#"{"vaults":{},"approval":{"waitSeconds":0}}"#);
        assert!(e.contains("approval.waitSeconds"), "{e}");
        let e = err_of("{");
        assert!(e.contains("/p/agent-vault.config.json"), "{e}");
    }

    #[test]
    fn a_project_gets_at_least_the_floor() -> Result<(), ConfigError> {
        let text = r#"{"vaults":{
            "weak":{"type":"env","file":"f","ttl":600,"approval":{"allowTerminal":true}},
            "strong":{"type":"env","file":"f","ttl":5,"approval":{"approvers":3,"require":"passkey"}}}}"#;
        let mut cfg = parse_config(Path::new("/p/agent-vault.config.json"), text, &no_env)?;
        let floor = ProjectFloor {
            approvers: 2,
            require: super::super::ApprovalFactor::Totp,
            max_ttl: 30.0,
            allow_terminal: false,
        };
        restrict_project(&mut cfg, &floor)?;
        let weak = &cfg.vaults["weak"];
        assert_eq!(weak.approvers, 2);
        assert_eq!(weak.factor, super::super::ApprovalFactor::Totp);
        assert_eq!(weak.ttl_minutes, 30.0);
        assert!(!weak.allow_terminal);
        // Asking for more is kept.
        let strong = &cfg.vaults["strong"];
        assert_eq!(strong.approvers, 3);
        assert_eq!(strong.factor, super::super::ApprovalFactor::Passkey);
        assert_eq!(strong.ttl_minutes, 5.0);
        // A project cannot set the floor.
        let mut own = parse_config(
            Path::new("/p/agent-vault.config.json"),
            r#"{"vaults":{},"approval":{"projects":{"allowTerminal":true}}}"#,
            &no_env,
        )?;
        let e = restrict_project(&mut own, &floor)
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("approval.projects: only agent-vaultd's own config")),
            "{e:?}"
        );
        // Nor where the approval links lead.
        let mut redirecting = parse_config(
            Path::new("/p/agent-vault.config.json"),
            r#"{"vaults":{},"publicUrl":"https://attacker.example/"}"#,
            &no_env,
        )?;
        assert_eq!(
            redirecting.public_url.as_deref(),
            Some("https://attacker.example")
        );
        let e = restrict_project(&mut redirecting, &floor)
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("publicUrl: only agent-vaultd's own config")),
            "{e:?}"
        );
        let e = err_of(r#"{"vaults":{},"approval":{"projects":{"maxTtl":-1}}}"#);
        assert!(e.contains("approval.projects.maxTtl"), "{e}");
        let e = err_of(r#"{"vaults":{},"approval":{"projects":{"maxTTL":1}}}"#);
        assert!(
            e.contains(
                "approval.projects.maxTTL: unknown setting \"maxTTL\"; did you mean \"maxTtl\"?"
            ),
            "{e}"
        );
        Ok(())
    }

    #[test]
    fn webhook_secrets_anchors_and_opt_in_events() -> Result<(), ConfigError> {
        let file = Path::new("/p/agent-vault.config.json");
        let text = r#"{"vaults":{},
            "audit":{"anchor":{"file":"../anchors.jsonl","ntfy":"https://ntfy.sh/t0p1c","ntfyToken":"env:NT"}},
            "webhooks":[
              {"url":"https://a.example/e","secret":"env:WH"},
              {"url":"https://b.example/e","secret":"file:hook.secret","events":["denied","audit_anchor"]}]}"#;
        let env = |k: &str| match k {
            "WH" => Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string()),
            "NT" => Some("tk_x".to_string()),
            _ => None,
        };
        let cfg = parse_config(file, text, &env)?;
        let anchor = cfg.anchor.as_ref().map(|a| {
            (
                a.file.clone(),
                a.every_events,
                a.every_minutes,
                a.ntfy_token.as_ref().map(|t| t.expose().to_string()),
            )
        });
        assert_eq!(
            anchor,
            Some((
                Some(PathBuf::from("/p/../anchors.jsonl")),
                20,
                5.0,
                Some("tk_x".into())
            ))
        );
        // Prototype receivers get only the prototype's events.
        assert!(cfg.webhooks[0].wants("approved") && !cfg.webhooks[0].wants("audit_anchor"));
        assert!(cfg.webhooks[1].wants("audit_anchor") && !cfg.webhooks[1].wants("approved"));
        assert!(matches!(
            &cfg.webhooks[1].secret,
            Some(SigningSecret::File(p)) if p == Path::new("/p/hook.secret")
        ));
        // A project may neither anchor nor make the daemon read a file.
        let floor = ProjectFloor::default();
        let e = restrict_project(&mut cfg.clone(), &floor)
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("audit: only agent-vaultd's own config")));
        let mut project = cfg.clone();
        project.anchor = None;
        let e = restrict_project(&mut project, &floor)
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("webhooks[1].secret") && e.contains("env:NAME")),
            "{e:?}"
        );
        // Nor may a project's vault make it read a credential file, or use
        // the daemon's own 1Password sign-in.
        let floor_check = |text: &str| {
            let mut p = parse_config(Path::new("/p/agent-vault.config.json"), text, &no_env)
                .map_err(|e| e.to_string())?;
            restrict_project(&mut p, &floor).map_err(|e| e.to_string())
        };
        let file_token = floor_check(
            r#"{"vaults":{"op":{"type":"1password","serviceAccountToken":"file:/etc/shadow"}}}"#,
        );
        assert!(
            file_token
                .as_ref()
                .is_err_and(|e| e.contains("vaults.op.serviceAccountToken")
                    && e.contains("may not name a file")),
            "{file_token:?}"
        );
        let ambient = floor_check(r#"{"vaults":{"op":{"type":"1password"}}}"#);
        assert!(
            ambient
                .as_ref()
                .is_err_and(|e| e.contains("serves only vaults of agent-vaultd's own config")),
            "{ambient:?}"
        );
        assert!(
            floor_check(r#"{"vaults":{"op":{"type":"1password","serviceAccountToken":"env:T"}}}"#)
                .is_ok()
        );
        // Bad secrets and schedules say what is expected.
        for (text, field) in [
            (
                r#"{"vaults":{},"webhooks":[{"url":"https://a.example","secret":"hunter2"}]}"#,
                "webhooks[0].secret: expected \"whsec_\"",
            ),
            (
                r#"{"vaults":{},"webhooks":[{"url":"https://a.example","secret":"env:UNSET"}]}"#,
                "UNSET is not set",
            ),
            (
                r#"{"vaults":{},"audit":{"anchor":{"everyEvents":0}}}"#,
                "audit.anchor.everyEvents",
            ),
            (
                r#"{"vaults":{},"audit":{"anchor":{"ntfy":"ntfy.sh/x"}}}"#,
                "audit.anchor.ntfy",
            ),
            (
                r#"{"vaults":{},"audit":{"anchors":{}}}"#,
                "audit.anchors: unknown setting \"anchors\"; did you mean \"anchor\"?",
            ),
        ] {
            let e = err_of(text);
            assert!(e.contains(field), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
        Ok(())
    }

    #[test]
    fn the_default_config_is_valid() {
        let cfg = parse_config(Path::new("/s/config.json"), default_config_text(), &no_env);
        assert!(cfg.is_ok());
    }
}
