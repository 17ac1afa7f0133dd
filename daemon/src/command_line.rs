//! The command a run approval covers: its arguments and working directory,
//! as the approver reads them and as a window recognises them again.

use sha2::{Digest, Sha256};

/// Limits on a command the agent asks to run.
pub const MAX_ARGS: usize = 256;
pub const MAX_COMMAND_BYTES: usize = 16 * 1024;

/// A command, exactly as it will be run (never through a shell unless the
/// caller names one).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CommandLine {
    pub argv: Vec<String>,
    /// Absolute.
    pub cwd: String,
}

impl CommandLine {
    /// Checks a command the agent sent: a program, within the limits, in
    /// text that reads as what it is, run from an absolute directory.
    pub fn checked(argv: Vec<String>, cwd: String) -> Result<Self, String> {
        if argv.is_empty() || argv[0].is_empty() {
            return Err("the command is empty: give the program and its arguments as a list, such as [\"npm\", \"test\"]".into());
        }
        if argv.len() > MAX_ARGS {
            return Err(format!(
                "the command has {} arguments; the limit is {MAX_ARGS}",
                argv.len()
            ));
        }
        let bytes: usize = argv.iter().map(String::len).sum::<usize>() + cwd.len();
        if bytes > MAX_COMMAND_BYTES {
            return Err(format!(
                "the command is {bytes} bytes long; the limit is {MAX_COMMAND_BYTES}"
            ));
        }
        for a in argv.iter().chain([&cwd]) {
            if a.contains('\0') {
                return Err("the command contains a NUL byte".into());
            }
            if let Some(c) = crate::text::first_unshowable(a) {
                return Err(format!(
                    "the command contains {c}, a control or invisible character that could make it read differently on the approval page; write it in plain text"
                ));
            }
        }
        if !cwd.starts_with('/') {
            return Err(format!(
                "the working directory \"{}\" is not an absolute path",
                crate::text::shown(&cwd, 200)
            ));
        }
        Ok(Self { argv, cwd })
    }

    /// The command as a person reads it: each argument quoted for a POSIX
    /// shell where it needs to be, newlines and tabs written `$'\n'`.
    pub fn shown(&self) -> String {
        self.argv
            .iter()
            .map(|a| quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Identifies the command and directory (windows for a run cover only
    /// the same command in the same directory).
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for part in self.argv.iter().chain([&self.cwd]) {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        h.update((self.argv.len() as u64).to_le_bytes());
        h.finalize()
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,+@%^".contains(&b));
    if plain {
        return arg.to_string();
    }
    if arg.contains(['\n', '\t']) {
        let mut out = String::from("$'");
        for c in arg.chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                c => out.push(c),
            }
        }
        out.push('\'');
        return out;
    }
    format!("'{}'", arg.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(argv: &[&str]) -> Result<CommandLine, String> {
        CommandLine::checked(argv.iter().map(|a| a.to_string()).collect(), "/w".into())
    }

    #[test]
    fn commands_read_as_a_shell_would_run_them() -> Result<(), String> {
        assert_eq!(cmd(&["npm", "test"])?.shown(), "npm test");
        assert_eq!(
            cmd(&["sh", "-c", "echo \"$A\" | wc -c"])?.shown(),
            r#"sh -c 'echo "$A" | wc -c'"#
        );
        assert_eq!(cmd(&["echo", "it's"])?.shown(), r"echo 'it'\''s'");
        assert_eq!(cmd(&["echo", ""])?.shown(), "echo ''");
        assert_eq!(
            cmd(&["sh", "-c", "a\nb\t'c'"])?.shown(),
            r"sh -c $'a\nb\t\'c\''"
        );
        // One argument with a space is not two.
        assert_ne!(
            cmd(&["rm", "a b"])?.digest(),
            cmd(&["rm", "a", "b"])?.digest()
        );
        assert_ne!(
            cmd(&["ls"])?.digest(),
            CommandLine::checked(vec!["ls".into()], "/x".into())?.digest()
        );
        Ok(())
    }

    #[test]
    fn bad_commands_say_what_is_wrong() {
        let e = |r: Result<CommandLine, String>| r.err().unwrap_or_default();
        assert!(e(cmd(&[])).contains("the command is empty"));
        assert!(e(cmd(&["", "x"])).contains("the command is empty"));
        assert!(e(cmd(&["echo", "a\u{202E}b"])).contains("U+202E"));
        assert!(e(cmd(&["echo", "a\rb"])).contains("U+000D"));
        assert!(e(cmd(&["echo", "a\0b"])).contains("NUL"));
        let many: Vec<&str> = vec!["x"; MAX_ARGS + 1];
        assert!(e(cmd(&many)).contains("the limit is 256"));
        assert!(
            e(CommandLine::checked(vec!["ls".into()], "rel/dir".into()))
                .contains("not an absolute path")
        );
    }
}
