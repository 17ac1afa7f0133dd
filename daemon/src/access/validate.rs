//! The checks a request passes before anyone is asked: an operation this
//! build knows, a reason a person can read, valid and distinct names
//! within the limits, a writable vault and plain values for a write. A
//! request that fails one changes nothing.

use agent_vault_proto::pb;

use super::{AccessError, MAX_NAME_BYTES, MAX_NAMES, MAX_REASON_BYTES, MAX_VALUE_BYTES};
use crate::broker::Operation;
use crate::command_line::CommandLine;
use crate::config::VaultConfig;
use crate::providers::Provider;
use crate::secret::SecretString;

/// A request that passed every check (its values print as `[redacted]`).
#[derive(Debug)]
pub struct Checked {
    pub operation: Operation,
    pub reason: String,
    /// The names read or written, in the order given.
    pub names: Vec<String>,
    /// For a write, the values, by name.
    pub writes: Vec<(String, SecretString)>,
    /// For a run, the command.
    pub command: Option<CommandLine>,
}

/// Checks `req` against the vault it names.
pub fn check(
    vault: &VaultConfig,
    provider: &Provider,
    req: pb::AccessRequest,
) -> Result<Checked, AccessError> {
    let operation = match pb::Operation::try_from(req.operation) {
        Ok(pb::Operation::Write) => Operation::Write,
        Ok(pb::Operation::Read) => Operation::Read,
        Ok(pb::Operation::Run) => Operation::Run,
        Err(_) => {
            return Err(AccessError::Invalid(
                "unknown operation; if the shim is newer than agent-vaultd, restart agent-vaultd"
                    .into(),
            ));
        }
    };
    // A run's command speaks for itself; a reason is still shown if given.
    if req.reason.trim().is_empty() && operation != Operation::Run {
        return Err(AccessError::Invalid(
            "a reason is required: say why you need this, for the human who approves".into(),
        ));
    }
    check_text("the reason", &req.reason, MAX_REASON_BYTES)?;
    let mut command = None;
    let (names, writes) = match operation {
        Operation::Read => {
            check_names(provider, &req.names)?;
            (req.names, Vec::new())
        }
        Operation::Run => {
            let run = req.run.unwrap_or_default();
            command = Some(CommandLine::checked(run.argv, run.cwd).map_err(AccessError::Invalid)?);
            check_names(provider, &req.names)?;
            (req.names, Vec::new())
        }
        Operation::Write => {
            if !vault.writable {
                return Err(AccessError::NotWritable(vault.name.clone()));
            }
            let names: Vec<String> = req.writes.iter().map(|w| w.name.clone()).collect();
            check_names(provider, &names)?;
            let mut writes = Vec::new();
            for w in req.writes {
                if w.value.len() > MAX_VALUE_BYTES {
                    return Err(AccessError::Invalid(format!(
                        "the value for {} is {} bytes; the limit is {MAX_VALUE_BYTES}",
                        w.name,
                        w.value.len()
                    )));
                }
                if w.value.contains('\0') {
                    return Err(AccessError::Invalid(format!(
                        "the value for {} contains a NUL byte",
                        w.name
                    )));
                }
                writes.push((w.name, SecretString::new(w.value)));
            }
            (names, writes)
        }
    };
    Ok(Checked {
        operation,
        reason: req.reason,
        names,
        writes,
        command,
    })
}

fn check_text(what: &str, s: &str, max: usize) -> Result<(), AccessError> {
    if s.len() > max {
        return Err(AccessError::Invalid(format!(
            "{what} is {} bytes; the limit is {max}",
            s.len()
        )));
    }
    if let Some(c) = crate::text::first_unshowable(s) {
        return Err(AccessError::Invalid(format!(
            "{what} contains {c}, a control or invisible character that could make it read differently on the approval page; write it in plain text"
        )));
    }
    Ok(())
}

fn check_names(provider: &Provider, names: &[String]) -> Result<(), AccessError> {
    if names.is_empty() {
        return Err(AccessError::Invalid("no secret names were given".into()));
    }
    if names.len() > MAX_NAMES {
        return Err(AccessError::Invalid(format!(
            "{} names in one call; the limit is {MAX_NAMES}",
            names.len()
        )));
    }
    for (i, n) in names.iter().enumerate() {
        check_text("a secret name", n, MAX_NAME_BYTES)?;
        provider.check_name(n)?;
        if names[..i].contains(n) {
            return Err(AccessError::Invalid(format!("the name {n} is given twice")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(names: &[&str], reason: &str) -> pb::AccessRequest {
        pb::AccessRequest {
            vault: "ro".into(),
            operation: pb::Operation::Read as i32,
            names: names.iter().map(|n| n.to_string()).collect(),
            reason: reason.into(),
            ..Default::default()
        }
    }

    fn write(vault: &str, name: &str, value: &str) -> pb::AccessRequest {
        pb::AccessRequest {
            vault: vault.into(),
            operation: pb::Operation::Write as i32,
            writes: vec![pb::SecretWrite {
                name: name.into(),
                value: value.into(),
            }],
            reason: "rotate".into(),
            ..Default::default()
        }
    }

    /// Each way a request can be wrong is refused with what to fix; a
    /// good one passes with its names in order, and its values stay out of
    /// `Debug`.
    #[test]
    fn requests_are_checked_before_anyone_is_asked() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let (state, _writer) = crate::ephemeral_state(
            dir.path(),
            r#"{"vaults": {"ro": {"type": "env", "file": "a.env"},
                           "rw": {"type": "env", "file": "b.env", "writable": true}}}"#,
        )?;
        let project = state.project(&state.default_project).ok_or("no project")?;
        let checked = |req: pb::AccessRequest| {
            let (cfg, provider, _) = project.vault(&req.vault.clone()).ok_or("no vault")?;
            check(cfg, provider, req).map_err(|e| e.to_string())
        };
        let refused = |req: pb::AccessRequest| checked(req).err().unwrap_or_default();

        let ok = checked(read(&["B", "A"], "deploy"))?;
        assert_eq!(
            (ok.operation, ok.names),
            (Operation::Read, vec!["B".into(), "A".into()])
        );

        let mut unknown = read(&["A"], "deploy");
        unknown.operation = 7;
        assert!(refused(unknown).starts_with("unknown operation"));
        let mut run = read(&["A"], "deploy");
        run.operation = pb::Operation::Run as i32;
        assert!(refused(run.clone()).contains("the command is empty"));
        run.run = Some(pb::RunCommand {
            argv: vec!["make".into(), "deploy".into()],
            cwd: "/srv/app".into(),
        });
        let ok = checked(run.clone())?;
        assert_eq!(ok.operation, Operation::Run);
        assert_eq!(ok.command.map(|c| c.shown()), Some("make deploy".into()));
        run.run = Some(pb::RunCommand {
            argv: vec!["make".into()],
            cwd: "srv".into(),
        });
        assert!(refused(run).contains("not an absolute path"));
        assert!(refused(read(&["A"], "  ")).contains("a reason is required"));
        assert!(refused(read(&["A"], "ok\u{202e}txt")).contains("control or invisible"));
        assert!(
            refused(read(&["A"], &"r".repeat(MAX_REASON_BYTES + 1))).contains("the limit is 4096")
        );
        assert!(refused(read(&[], "deploy")).contains("no secret names"));
        assert!(refused(read(&["A", "A"], "deploy")).contains("the name A is given twice"));
        let many: Vec<String> = (0..=MAX_NAMES).map(|i| format!("N{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(refused(read(&many, "deploy")).contains("101 names in one call"));
        assert!(refused(read(&["not a name"], "deploy")).contains("invalid name \"not a name\""));

        assert!(refused(write("ro", "A", "v")).contains("not writable"));
        assert!(refused(write("rw", "A", "a\0b")).contains("NUL byte"));
        assert!(
            refused(write("rw", "A", &"v".repeat(MAX_VALUE_BYTES + 1))).contains("the limit is")
        );
        let w = checked(write("rw", "TOKEN", "s3cret-value"))?;
        assert_eq!(w.names, vec!["TOKEN".to_string()]);
        assert!(!format!("{w:?}").contains("s3cret-value"));
        Ok(())
    }
}
