//! `agent-vault run --env-file FILE`: a dotenv-style template in which a
//! value `vault://VAULT/NAME` is a reference to a secret, and any other
//! value is passed as it is.
//!
//! ```text
//! # .env.tpl
//! DATABASE_URL=vault://dev/DATABASE_URL
//! export STRIPE_KEY="vault://prod/stripe#secret key"
//! LOG_LEVEL=debug
//! ```

/// One line of the template.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// `KEY=vault://VAULT/NAME`.
    Secret {
        env: String,
        vault: String,
        name: String,
    },
    /// `KEY=value`.
    Plain { env: String, value: String },
}

/// Parses a template; an error names the line and what is wrong.
pub fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let at = |why: &str| format!("line {}: {why}", i + 1);
        let Some((key, value)) = line.split_once('=') else {
            return Err(at("expected KEY=value or KEY=vault://VAULT/NAME"));
        };
        let key = key.trim();
        if !env_name_ok(key) {
            return Err(at(&format!(
                "\"{key}\" is not a valid environment variable name"
            )));
        }
        let value = unquote(value.trim());
        let entry = match value.strip_prefix("vault://") {
            Some(reference) => {
                let Some((vault, name)) = reference
                    .split_once('/')
                    .filter(|(v, n)| !v.is_empty() && !n.is_empty())
                else {
                    return Err(at("expected vault://VAULT/NAME"));
                };
                Entry::Secret {
                    env: key.into(),
                    vault: vault.into(),
                    name: name.into(),
                }
            }
            None => Entry::Plain {
                env: key.into(),
                value: value.into(),
            },
        };
        if out.iter().any(|e: &Entry| e.env() == key) {
            return Err(at(&format!("{key} is set twice")));
        }
        out.push(entry);
    }
    Ok(out)
}

impl Entry {
    pub fn env(&self) -> &str {
        match self {
            Entry::Secret { env, .. } | Entry::Plain { env, .. } => env,
        }
    }
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

/// Whether `s` can name an environment variable.
pub fn env_name_ok(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_plain_values() {
        let t = "# comment\n\nDATABASE_URL=vault://dev/DATABASE_URL\nexport STRIPE=\"vault://prod/stripe#secret key\"\nLOG_LEVEL='debug'\nEMPTY=\n";
        assert_eq!(
            parse(t),
            Ok(vec![
                Entry::Secret {
                    env: "DATABASE_URL".into(),
                    vault: "dev".into(),
                    name: "DATABASE_URL".into()
                },
                Entry::Secret {
                    env: "STRIPE".into(),
                    vault: "prod".into(),
                    name: "stripe#secret key".into()
                },
                Entry::Plain {
                    env: "LOG_LEVEL".into(),
                    value: "debug".into()
                },
                Entry::Plain {
                    env: "EMPTY".into(),
                    value: String::new()
                },
            ])
        );
    }

    #[test]
    fn mistakes_name_their_line() {
        assert_eq!(
            parse("A=1\nnot a line"),
            Err("line 2: expected KEY=value or KEY=vault://VAULT/NAME".into())
        );
        assert_eq!(
            parse("1A=x"),
            Err("line 1: \"1A\" is not a valid environment variable name".into())
        );
        assert_eq!(
            parse("A=vault://dev"),
            Err("line 1: expected vault://VAULT/NAME".into())
        );
        assert_eq!(
            parse("A=vault:///X"),
            Err("line 1: expected vault://VAULT/NAME".into())
        );
        assert_eq!(parse("A=1\nA=2"), Err("line 2: A is set twice".into()));
    }
}
