//! Secret classification: a vault's `policies`, each for the names that
//! match its glob, saying how those secrets may be used.
//!
//! ```json
//! "policies": [
//!   {"match": "PROD_*", "reveal": false, "approvers": 2, "maxTtl": 5},
//!   {"match": "SENTRY_DSN", "autoApprove": true},
//!   {"match": "ROOT_*", "hidden": true}
//! ]
//! ```
//!
//! The first policy whose `match` fits a name applies to it; what it does
//! not say comes from the vault. `reveal: false` makes a secret use-only
//! (`run_with_secrets`, never `get_secret`), `autoApprove` releases it
//! without asking (reads and runs; writes are always asked), `hidden`
//! keeps it out of listings and answers requests for it as for a name that
//! does not exist, `maxTtl` caps any window, `approvers` and `require` are
//! the vault's `approval` for these names. A project config (which an
//! agent may have written) may only tighten: [`Policies::restrict`].

use super::schema::{ApprovalFactor, RawPolicy};

/// A vault's policies, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policies(Vec<RawPolicy>);

/// How one name may be used: its policy over its vault's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    /// False: use-only (runs, never reads).
    pub reveal: bool,
    pub auto_approve: bool,
    pub hidden: bool,
    /// The longest window, in minutes.
    pub ttl_minutes: f64,
    pub approvers: u32,
    pub factor: ApprovalFactor,
    /// A policy matched: only windows for this name cover it, never one
    /// opened for the whole vault under other rules.
    pub by_policy: bool,
}

/// The vault's own settings, which a policy refines.
#[derive(Debug, Clone, Copy)]
pub struct VaultDefaults {
    pub ttl_minutes: f64,
    pub approvers: u32,
    pub factor: ApprovalFactor,
}

impl Policies {
    /// Checks parsed policies; the error is (field, message), the field
    /// relative to `policies`.
    pub fn parse(raw: Vec<RawPolicy>) -> Result<Self, (String, String)> {
        for (i, p) in raw.iter().enumerate() {
            let at = |f: &str| format!("policies[{i}].{f}");
            if p.pattern.is_empty() || p.pattern.len() > 256 {
                return Err((
                    at("match"),
                    "expected a name or a glob of 1 to 256 characters (`*` for any run of characters, `?` for one)".into(),
                ));
            }
            if let Some(t) = p.max_ttl
                && !(t.is_finite() && (0.0..=525_600.0).contains(&t))
            {
                return Err((
                    at("maxTtl"),
                    "expected a number of minutes between 0 and 525600".into(),
                ));
            }
            if let Some(n) = p.approvers
                && !(1..=5).contains(&n)
            {
                return Err((
                    at("approvers"),
                    "expected a number of distinct approving devices from 1 to 5".into(),
                ));
            }
        }
        Ok(Self(raw))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The rule for `name`.
    pub fn rule(&self, name: &str, vault: VaultDefaults) -> Rule {
        let base = Rule {
            reveal: true,
            auto_approve: false,
            hidden: false,
            ttl_minutes: vault.ttl_minutes,
            approvers: vault.approvers,
            factor: vault.factor,
            by_policy: false,
        };
        let Some(p) = self.0.iter().find(|p| glob(&p.pattern, name)) else {
            return base;
        };
        Rule {
            reveal: p.reveal.unwrap_or(true),
            auto_approve: p.auto_approve.unwrap_or(false),
            hidden: p.hidden.unwrap_or(false),
            ttl_minutes: p
                .max_ttl
                .map_or(base.ttl_minutes, |m| m.min(base.ttl_minutes)),
            approvers: p.approvers.unwrap_or(base.approvers),
            factor: p.require.unwrap_or(base.factor),
            by_policy: true,
        }
    }

    /// Holds a project config's policies to tightening: `autoApprove` is
    /// refused (the error is (field, message)); fewer approvers or a weaker
    /// factor than the vault's are raised to the vault's.
    pub fn restrict(&mut self, vault: VaultDefaults) -> Result<(), (String, String)> {
        for (i, p) in self.0.iter_mut().enumerate() {
            if p.auto_approve == Some(true) {
                return Err((
                    format!("policies[{i}].autoApprove"),
                    "only agent-vaultd's own config may release secrets without asking; remove it from the project's config".into(),
                ));
            }
            p.approvers = Some(p.approvers.unwrap_or(1).max(vault.approvers));
            p.require = Some(p.require.unwrap_or(vault.factor).stronger(vault.factor));
        }
        Ok(())
    }
}

impl Rule {
    /// The rule in words, for `list_secrets` (empty when it is the plain
    /// default: reveal after one device's approval).
    pub fn words(&self) -> String {
        let mut w = Vec::new();
        if !self.reveal {
            w.push("use-only: run_with_secrets".to_string());
        }
        if self.auto_approve {
            w.push("auto-approved".to_string());
        } else {
            if self.approvers > 1 {
                w.push(format!("needs {} approvers", self.approvers));
            }
            match self.factor {
                ApprovalFactor::Device => {}
                ApprovalFactor::Totp => w.push("needs an authenticator code".into()),
                ApprovalFactor::Passkey => w.push("needs a passkey".into()),
            }
        }
        w.join(", ")
    }
}

/// Whether `name` matches `pattern`: `*` any run of characters, `?` one
/// character, anything else itself.
pub fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // The classic two-pointer match with backtracking to the last `*`.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policies(json: &str) -> Policies {
        let raw: Vec<RawPolicy> = serde_json::from_str(json).unwrap_or_default();
        Policies::parse(raw).unwrap_or_default()
    }

    const VAULT: VaultDefaults = VaultDefaults {
        ttl_minutes: 30.0,
        approvers: 1,
        factor: ApprovalFactor::Device,
    };

    #[test]
    fn globs_match_names() {
        for (p, n, m) in [
            ("*", "ANY", true),
            ("PROD_*", "PROD_DB", true),
            ("PROD_*", "PROD_", true),
            ("PROD_*", "DEV_DB", false),
            ("*_KEY", "STRIPE_KEY", true),
            ("*_KEY", "STRIPE_KEYS", false),
            ("A?C", "ABC", true),
            ("A?C", "AC", false),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("prod/db#password", "prod/db#password", true),
            ("prod/*", "prod/db#password", true),
        ] {
            assert_eq!(glob(p, n), m, "{p} {n}");
        }
    }

    #[test]
    fn the_first_matching_policy_applies_over_the_vault() {
        let p = policies(
            r#"[{"match": "PROD_*", "reveal": false, "approvers": 2, "maxTtl": 5},
                {"match": "PROD_DB", "autoApprove": true},
                {"match": "SENTRY_*", "autoApprove": true, "maxTtl": 600},
                {"match": "ROOT_*", "hidden": true, "require": "passkey"}]"#,
        );
        let prod = p.rule("PROD_DB", VAULT);
        assert_eq!(
            prod,
            Rule {
                reveal: false,
                auto_approve: false,
                hidden: false,
                ttl_minutes: 5.0,
                approvers: 2,
                factor: ApprovalFactor::Device,
                by_policy: true,
            }
        );
        assert_eq!(
            prod.words(),
            "use-only: run_with_secrets, needs 2 approvers"
        );
        let sentry = p.rule("SENTRY_DSN", VAULT);
        assert!(sentry.auto_approve && sentry.reveal);
        assert_eq!(sentry.ttl_minutes, 30.0, "maxTtl only ever caps");
        assert_eq!(sentry.words(), "auto-approved");
        let root = p.rule("ROOT_PW", VAULT);
        assert!(root.hidden);
        assert_eq!(root.words(), "needs a passkey");
        let plain = p.rule("OTHER", VAULT);
        assert!(!plain.by_policy && plain.reveal && plain.words().is_empty());
    }

    #[test]
    fn a_project_may_only_tighten() {
        let mut p = policies(
            r#"[{"match": "A*", "approvers": 1, "require": "device"}, {"match": "B", "hidden": true}]"#,
        );
        let vault = VaultDefaults {
            approvers: 2,
            factor: ApprovalFactor::Totp,
            ..VAULT
        };
        assert_eq!(p.restrict(vault), Ok(()));
        let a = p.rule("AB", vault);
        assert_eq!((a.approvers, a.factor), (2, ApprovalFactor::Totp));
        assert!(p.rule("B", vault).hidden);
        let mut auto =
            policies(r#"[{"match": "X", "hidden": false}, {"match": "A*", "autoApprove": true}]"#);
        let e = auto.restrict(vault).err().unwrap_or_default();
        assert_eq!(e.0, "policies[1].autoApprove");
        assert!(e.1.contains("only agent-vaultd's own config"));
    }

    #[test]
    fn bad_policies_say_what_is_wrong() {
        let bad = |json: &str| {
            let raw: Vec<RawPolicy> = serde_json::from_str(json).unwrap_or_default();
            Policies::parse(raw).err().unwrap_or_default()
        };
        assert_eq!(bad(r#"[{"match": ""}]"#).0, "policies[0].match");
        assert_eq!(bad(r#"[{"maxTtl": -1}]"#).0, "policies[0].maxTtl");
        assert_eq!(bad(r#"[{}, {"approvers": 9}]"#).0, "policies[1].approvers");
        assert!(serde_json::from_str::<Vec<RawPolicy>>(r#"[{"revael": false}]"#).is_err());
    }
}
