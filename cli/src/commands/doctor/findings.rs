//! What `doctor` found: each check's area, how much it matters, what it
//! saw and the fix.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    /// Worth knowing; nothing to fix.
    Note,
    /// Works, but not as well as it could.
    Warn,
    /// Stops requests from working: exit status 1.
    Fail,
}

impl Level {
    pub fn word(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Note => "note",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        }
    }
}

#[derive(Debug)]
pub struct Finding {
    pub area: &'static str,
    pub level: Level,
    pub what: String,
    pub fix: Option<String>,
}

#[derive(Default)]
pub struct Findings(pub Vec<Finding>);

impl Findings {
    pub fn add(&mut self, area: &'static str, level: Level, what: impl Into<String>) {
        self.0.push(Finding {
            area,
            level,
            what: what.into(),
            fix: None,
        });
    }

    pub fn problem(
        &mut self,
        area: &'static str,
        level: Level,
        what: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.0.push(Finding {
            area,
            level,
            what: what.into(),
            fix: Some(fix.into()),
        });
    }
}
