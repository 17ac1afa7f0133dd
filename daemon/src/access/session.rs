//! Agent sessions: one per connected shim, with the config whose vaults it
//! sees; capped per uid, forgotten when the shim goes away (its pending
//! requests cancelled and audited).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::AccessError;
use crate::audit::Action;
use crate::clock;
use crate::config::{parse_config, restrict_project};
use crate::devices::random_id;
use crate::events::{self, Decision};
use crate::session::{MAX_SESSIONS_PER_UID, Requester, Session, WATCH_GRACE_MS};
use crate::state::{AppState, Project};

/// Opens a session for a connected shim. A project config arrives as the
/// text the shim read, as its own user, from `config_path`: the daemon
/// never opens a path an agent names, so it can neither be made to read a
/// file of its own through one nor tell whether such a file exists.
pub fn open_session(
    state: &AppState,
    requester: Requester,
    config_path: &str,
    config_text: &str,
    env: HashMap<String, String>,
) -> Result<Arc<Session>, AccessError> {
    let project = if config_path.is_empty() {
        state.default_project.clone()
    } else {
        let path = PathBuf::from(config_path);
        if !path.is_absolute() {
            return Err(AccessError::Invalid(
                "the config path must be absolute".into(),
            ));
        }
        if path == state.default_project.path {
            // The daemon's own config, with the daemon's own rules.
            state.default_project.clone()
        } else {
            // A project's env: references resolve only from the shim's own
            // environment, so a config written by an agent can never make the
            // daemon send the daemon's environment anywhere.
            let lookup = |name: &str| env.get(name).cloned();
            let mut config = parse_config(&path, config_text, &lookup)
                .map_err(|e| AccessError::Config(e.to_string()))?;
            // Only the daemon's own config may relax approval.
            let floor = state
                .project(&state.default_project)
                .and_then(|p| p.config.approval.projects)
                .unwrap_or_default();
            restrict_project(&mut config, &floor)
                .map_err(|e| AccessError::Config(e.to_string()))?;
            state
                .set_project(Project::new(config, Some(requester.uid), &state.shutdown))
                .key()
        }
    };
    let session = Arc::new(Session {
        id: random_id(16),
        requester,
        project,
        opened_ms: clock::now_ms(),
        watched: Default::default(),
    });
    if !state.add_session(session.clone(), MAX_SESSIONS_PER_UID) {
        return Err(AccessError::TooMany(format!(
            "uid {} already has {MAX_SESSIONS_PER_UID} agent sessions open; close some agents (each ends its session when it exits)",
            session.requester.uid
        )));
    }
    Ok(session)
}

/// Forgets sessions whose watch never came within the grace period (a
/// client that opened sessions and walked away), as if they had closed.
pub fn forget_unwatched(state: &AppState, now_ms: i64) {
    for s in state.sessions_unwatched_since(now_ms - WATCH_GRACE_MS) {
        close_session(state, &s, now_ms);
    }
}

/// The shim of a session went away: cancel its pending requests (audited)
/// and forget the session.
pub fn close_session(state: &AppState, session: &Session, now_ms: i64) {
    let cancelled = state
        .broker
        .cancel_session(&session.id, "the agent's MCP client went away");
    for req in &cancelled {
        events::record(
            state,
            &Decision::for_request(req, Action::Cancelled, now_ms),
        );
    }
    state.remove_session(&session.id);
    tracing::info!(session = %session.id, pid = session.requester.pid, cancelled = cancelled.len(), "session closed");
}

pub(super) fn project_of(state: &AppState, session: &Session) -> Result<Arc<Project>, AccessError> {
    state
        .project(&session.project)
        .ok_or(AccessError::UnknownSession)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_capped_per_uid_and_unwatched_ones_are_forgotten()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let (state, _writer) =
            crate::ephemeral_state(dir.path(), crate::config::default_config_text())?;
        let who = |uid| Requester {
            uid,
            ..Default::default()
        };
        let mut first = Vec::new();
        for _ in 0..MAX_SESSIONS_PER_UID {
            first.push(open_session(&state, who(1000), "", "", HashMap::new())?);
        }
        let refused = open_session(&state, who(1000), "", "", HashMap::new());
        assert!(
            matches!(&refused, Err(AccessError::TooMany(m)) if m.contains("uid 1000 already has 256")),
            "{refused:?}"
        );
        // Another uid is not affected.
        assert!(open_session(&state, who(1001), "", "", HashMap::new()).is_ok());
        // One of them opened its watch; the rest never did.
        first[0]
            .watched
            .store(true, std::sync::atomic::Ordering::Release);
        // After the grace of the last one opened (opening 256 can take a
        // few milliseconds on a busy machine).
        let newest = first.iter().map(|s| s.opened_ms).max().unwrap_or_default();
        let later = newest + WATCH_GRACE_MS + 1;
        forget_unwatched(&state, later);
        assert!(state.session(&first[0].id).is_some());
        assert!(state.session(&first[1].id).is_none());
        assert!(open_session(&state, who(1000), "", "", HashMap::new()).is_ok());
        Ok(())
    }
}
