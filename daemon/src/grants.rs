//! Approval windows ("grants"): after an approval with a ttl, reads covered
//! by the window go through without asking.
//!
//! Checked in memory in O(1) (at most four hash lookups per name), persisted
//! through the store so a restart keeps them. Expiry is an instant (unix ms)
//! compared with `now`, which every method takes as a parameter.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::TtlScope;
use crate::db::grants::GrantRow;
use crate::vault_id::VaultId;

/// What an approval was given for beyond the vault's name: who asked, the
/// vault's definition as it was shown, and the concrete source its values
/// come from (an env vault: its file's device and inode). A window covers
/// a read only when all three are the same again, so it cannot be ridden
/// by another user, by a changed definition or by a swapped file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Binding {
    pub uid: u32,
    /// The vault definition's fingerprint (`VaultConfig::fingerprint`).
    pub definition: Arc<str>,
    /// The provider's identity of its source (`Provider::identity`).
    pub source: Arc<str>,
}

/// A window's key. The vault enters by config path and name, not by who
/// registered the config: the binding already pins the uid, the definition
/// and the source, so the daemon's own config and a project registration
/// of the same file under the same definition are the same vault.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GrantKey {
    config: Arc<str>,
    vault: Arc<str>,
    binding: Binding,
    /// None: the whole vault.
    name: Option<String>,
    /// Some: only this session.
    session: Option<String>,
    /// Some: only runs of this command (`CommandLine::digest`).
    command: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub id: String,
    pub vault: VaultId,
    pub binding: Binding,
    pub scope: TtlScope,
    /// The secret for scopes secret and session; None for scope vault.
    pub name: Option<String>,
    pub session: Option<String>,
    /// None: a read window, which covers reads and runs. Some: a run
    /// window, which covers runs of this command only
    /// (`CommandLine::digest`).
    pub command: Option<String>,
    pub expires_at_ms: i64,
}

impl Grant {
    /// The window as it is stored.
    pub fn to_row(&self) -> GrantRow {
        GrantRow {
            id: self.id.clone(),
            config_path: self.vault.config.to_string(),
            vault: self.vault.name.to_string(),
            owner_uid: self.vault.owner,
            requester_uid: self.binding.uid,
            definition: self.binding.definition.to_string(),
            source: self.binding.source.to_string(),
            scope: self.scope.as_str().to_string(),
            name: self.name.clone(),
            session: self.session.clone(),
            command: self.command.clone(),
            expires_at_ms: self.expires_at_ms,
        }
    }

    /// A stored window. A scope this build does not know is read as
    /// `secret`, the narrowest.
    pub fn from_row(r: GrantRow) -> Self {
        Self {
            id: r.id,
            vault: VaultId::owned(&r.config_path, &r.vault, r.owner_uid),
            binding: Binding {
                uid: r.requester_uid,
                definition: r.definition.into(),
                source: r.source.into(),
            },
            scope: TtlScope::parse(&r.scope).unwrap_or(TtlScope::Secret),
            name: r.name,
            session: r.session,
            command: r.command,
            expires_at_ms: r.expires_at_ms,
        }
    }

    fn key(&self) -> GrantKey {
        GrantKey {
            config: self.vault.config.clone(),
            vault: self.vault.name.clone(),
            binding: self.binding.clone(),
            name: self.name.clone(),
            session: self.session.clone(),
            command: self.command.clone(),
        }
    }
}

/// What a window would have to cover.
#[derive(Debug, Clone, Copy)]
pub struct Want<'a> {
    pub name: &'a str,
    pub session: &'a str,
    /// For a run, the command's digest (`CommandLine::digest`).
    pub run: Option<&'a str>,
    /// Whether a window for the whole vault counts: not for a name under a
    /// policy of its own, which such a window was not approved under.
    pub whole_vault: bool,
}

impl<'a> Want<'a> {
    /// A read of `name` by `session`, any window counting.
    pub fn read(name: &'a str, session: &'a str) -> Self {
        Self {
            name,
            session,
            run: None,
            whole_vault: true,
        }
    }
}

#[derive(Debug, Default)]
pub struct Grants {
    by_key: HashMap<GrantKey, Grant>,
}

/// What `revoke` ends.
#[derive(Debug, Clone)]
pub enum RevokeTarget {
    All,
    /// Every window on vaults with this name (any config).
    Vault(String),
    /// Windows covering this secret: secret/session windows for it, and the
    /// vault's vault-wide windows (which also cover it).
    Secret(String, String),
    Id(String),
}

impl Grants {
    pub fn insert(&mut self, grant: Grant) {
        self.by_key.insert(grant.key(), grant);
    }

    /// Whether a live window lets the asking session have the name it
    /// wants from `vault`, as bound by `binding`: a read window covers
    /// reads and runs, a run window only runs of its own command; a window
    /// for the whole vault counts only where `want.whole_vault` allows.
    pub fn covers(&self, vault: &VaultId, binding: &Binding, want: &Want<'_>, now_ms: i64) -> bool {
        let live = |name: Option<&str>, session: Option<&str>, command: Option<&str>| {
            let key = GrantKey {
                config: vault.config.clone(),
                vault: vault.name.clone(),
                binding: binding.clone(),
                name: name.map(str::to_string),
                session: session.map(str::to_string),
                command: command.map(str::to_string),
            };
            self.by_key
                .get(&key)
                .is_some_and(|g| g.expires_at_ms > now_ms)
        };
        let any = |command: Option<&str>| {
            live(Some(want.name), None, command)
                || live(Some(want.name), Some(want.session), command)
                || (want.whole_vault
                    && (live(None, None, command) || live(None, Some(want.session), command)))
        };
        any(None) || want.run.is_some_and(|c| any(Some(c)))
    }

    /// Live windows, soonest expiry first.
    pub fn active(&self, now_ms: i64) -> Vec<Grant> {
        let mut out: Vec<Grant> = self
            .by_key
            .values()
            .filter(|g| g.expires_at_ms > now_ms)
            .cloned()
            .collect();
        out.sort_by(|a, b| a.expires_at_ms.cmp(&b.expires_at_ms).then(a.id.cmp(&b.id)));
        out
    }

    /// Removes and returns the windows matching `target`.
    pub fn revoke(&mut self, target: &RevokeTarget) -> Vec<Grant> {
        let matches = |g: &Grant| match target {
            RevokeTarget::All => true,
            RevokeTarget::Vault(v) => &*g.vault.name == v,
            RevokeTarget::Secret(v, n) => {
                &*g.vault.name == v && (g.name.is_none() || g.name.as_deref() == Some(n))
            }
            RevokeTarget::Id(id) => &g.id == id,
        };
        let keys: Vec<GrantKey> = self
            .by_key
            .values()
            .filter(|g| matches(g))
            .map(Grant::key)
            .collect();
        keys.iter().filter_map(|k| self.by_key.remove(k)).collect()
    }

    /// Drops expired windows; returns their ids (to delete from the store).
    pub fn prune(&mut self, now_ms: i64) -> Vec<String> {
        let mut gone = Vec::new();
        self.by_key.retain(|_, g| {
            let keep = g.expires_at_ms > now_ms;
            if !keep {
                gone.push(g.id.clone());
            }
            keep
        });
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound() -> Binding {
        Binding {
            uid: 1000,
            definition: "def".into(),
            source: "file 1:2".into(),
        }
    }

    fn grant(
        id: &str,
        vault: &VaultId,
        scope: TtlScope,
        name: Option<&str>,
        session: Option<&str>,
        exp: i64,
    ) -> Grant {
        Grant {
            id: id.into(),
            vault: vault.clone(),
            binding: bound(),
            scope,
            name: name.map(Into::into),
            session: session.map(Into::into),
            command: None,
            expires_at_ms: exp,
        }
    }

    #[test]
    fn scopes_cover_what_they_say() {
        let dev = VaultId::new("/a/agent-vault.config.json", "dev");
        let other_dev = VaultId::new("/b/agent-vault.config.json", "dev");
        let mut g = Grants::default();
        g.insert(grant("1", &dev, TtlScope::Secret, Some("A"), None, 1_000));
        assert!(g.covers(&dev, &bound(), &Want::read("A", "s1"), 999));
        assert!(
            !g.covers(&dev, &bound(), &Want::read("A", "s1"), 1_000),
            "expiry is exclusive"
        );
        assert!(!g.covers(&dev, &bound(), &Want::read("B", "s1"), 0));
        assert!(
            !g.covers(&other_dev, &bound(), &Want::read("A", "s1"), 0),
            "another project's dev vault"
        );

        g.insert(grant(
            "2",
            &dev,
            TtlScope::Session,
            Some("B"),
            Some("s1"),
            1_000,
        ));
        assert!(g.covers(&dev, &bound(), &Want::read("B", "s1"), 0));
        assert!(!g.covers(&dev, &bound(), &Want::read("B", "s2"), 0));

        g.insert(grant("3", &other_dev, TtlScope::Vault, None, None, 1_000));
        assert!(g.covers(&other_dev, &bound(), &Want::read("ANY", "s9"), 0));
        assert_eq!(g.active(0).len(), 3);
        assert_eq!(g.active(1_000).len(), 0);
    }

    #[test]
    fn revoke_and_prune() {
        let dev = VaultId::new("/a", "dev");
        let prod = VaultId::new("/a", "prod");
        let mut g = Grants::default();
        g.insert(grant("1", &dev, TtlScope::Secret, Some("A"), None, 10));
        g.insert(grant("2", &dev, TtlScope::Secret, Some("B"), None, 10));
        g.insert(grant("3", &prod, TtlScope::Vault, None, None, 20));
        assert_eq!(
            g.revoke(&RevokeTarget::Secret("dev".into(), "A".into()))
                .len(),
            1
        );
        assert!(!g.covers(&dev, &bound(), &Want::read("A", "s"), 0));
        assert!(g.covers(&dev, &bound(), &Want::read("B", "s"), 0));
        assert_eq!(
            g.revoke(&RevokeTarget::Secret("prod".into(), "Z".into()))
                .len(),
            1,
            "vault-wide window covers Z"
        );
        assert_eq!(g.prune(15), vec!["2".to_string()]);
        assert!(g.active(0).is_empty());
    }

    #[test]
    fn a_window_covers_only_what_it_was_bound_to() {
        let dev = VaultId::new("/a", "dev");
        let mut g = Grants::default();
        g.insert(grant("1", &dev, TtlScope::Vault, None, None, 10));
        assert!(g.covers(&dev, &bound(), &Want::read("A", "s"), 0));
        let other_uid = Binding {
            uid: 1001,
            ..bound()
        };
        let other_file = Binding {
            source: "file 1:3".into(),
            ..bound()
        };
        let other_definition = Binding {
            definition: "def2".into(),
            ..bound()
        };
        for b in [other_uid, other_file, other_definition] {
            assert!(!g.covers(&dev, &b, &Want::read("A", "s"), 0), "{b:?}");
        }
        // The same file under the same definition, registered by the same
        // user as a project, is the same vault.
        let project = VaultId::owned("/a", "dev", Some(1000));
        assert!(g.covers(&project, &bound(), &Want::read("A", "s"), 0));
    }

    /// A read window covers runs; a run window covers only runs of its own
    /// command, and no reads.
    #[test]
    fn run_windows_cover_their_command_only() {
        let dev = VaultId::new("/a", "dev");
        let mut g = Grants::default();
        g.insert(Grant {
            command: Some("c1".into()),
            ..grant("1", &dev, TtlScope::Secret, Some("A"), None, 10)
        });
        assert!(g.covers(
            &dev,
            &bound(),
            &Want {
                run: Some("c1"),
                ..Want::read("A", "s")
            },
            0
        ));
        assert!(!g.covers(
            &dev,
            &bound(),
            &Want {
                run: Some("c2"),
                ..Want::read("A", "s")
            },
            0
        ));
        assert!(
            !g.covers(&dev, &bound(), &Want::read("A", "s"), 0),
            "a read"
        );
        g.insert(grant("2", &dev, TtlScope::Secret, Some("B"), None, 10));
        assert!(g.covers(
            &dev,
            &bound(),
            &Want {
                run: Some("c2"),
                ..Want::read("B", "s")
            },
            0
        ));
        assert!(g.covers(&dev, &bound(), &Want::read("B", "s"), 0));
    }

    /// A window for the whole vault does not cover a name under a policy
    /// of its own; one for that name does.
    #[test]
    fn whole_vault_windows_do_not_cover_names_under_a_policy() {
        let dev = VaultId::new("/a", "dev");
        let mut g = Grants::default();
        g.insert(grant("1", &dev, TtlScope::Vault, None, None, 10));
        let strict = Want {
            whole_vault: false,
            ..Want::read("PROD_DB", "s")
        };
        assert!(g.covers(&dev, &bound(), &Want::read("PROD_DB", "s"), 0));
        assert!(!g.covers(&dev, &bound(), &strict, 0));
        g.insert(grant(
            "2",
            &dev,
            TtlScope::Secret,
            Some("PROD_DB"),
            None,
            10,
        ));
        assert!(g.covers(&dev, &bound(), &strict, 0));
    }
}
