//! What an audit row records: one closed list of actions, stored by name
//! in the `action` column. The README's list under "Audit log" is checked
//! against it (see the test below).

/// Every action the daemon records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// An approver allowed a request.
    Approved,
    /// An approver refused a request.
    Denied,
    /// A window covered a request (no one was asked).
    AutoApproved,
    /// No one answered within the request's time.
    Expired,
    /// The agent went away, or the daemon stopped, before an answer.
    Cancelled,
    /// A window was ended early.
    Revoked,
    /// Something was refused before any decision: a peer uid that is not
    /// allowed, a passkey assertion that failed, a terminal approval, a
    /// first pairing link or a last-device revocation asked for by an
    /// agent uid.
    Refused,
    /// A device's second factor locked after five failures.
    FactorLocked,
    /// A device was paired.
    Paired,
    /// A device asked to be paired, from a paired device's link.
    PairRequested,
    PairApproved,
    PairDenied,
    DeviceRevoked,
    /// One device of a quorum approved.
    PartialApproval,
    TotpEnrolled,
    TotpReset,
    PasskeyRegistered,
    /// A name the vault does not hold.
    NotFound,
    /// After an approved write's `approved` row: the write's outcome.
    Written,
    WriteFailed,
    /// At start, the log did not match the last anchor in the anchor file.
    AnchorMismatch,
}

impl Action {
    pub const ALL: [Action; 21] = [
        Action::Approved,
        Action::Denied,
        Action::AutoApproved,
        Action::Expired,
        Action::Cancelled,
        Action::Revoked,
        Action::Refused,
        Action::FactorLocked,
        Action::Paired,
        Action::PairRequested,
        Action::PairApproved,
        Action::PairDenied,
        Action::DeviceRevoked,
        Action::PartialApproval,
        Action::TotpEnrolled,
        Action::TotpReset,
        Action::PasskeyRegistered,
        Action::NotFound,
        Action::Written,
        Action::WriteFailed,
        Action::AnchorMismatch,
    ];

    /// The name stored in the `action` column (and sent to webhooks).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Approved => "approved",
            Action::Denied => "denied",
            Action::AutoApproved => "auto_approved",
            Action::Expired => "expired",
            Action::Cancelled => "cancelled",
            Action::Revoked => "revoked",
            Action::Refused => "refused",
            Action::FactorLocked => "factor_locked",
            Action::Paired => "paired",
            Action::PairRequested => "pair_requested",
            Action::PairApproved => "pair_approved",
            Action::PairDenied => "pair_denied",
            Action::DeviceRevoked => "device_revoked",
            Action::PartialApproval => "partial_approval",
            Action::TotpEnrolled => "totp_enrolled",
            Action::TotpReset => "totp_reset",
            Action::PasskeyRegistered => "passkey_registered",
            Action::NotFound => "not_found",
            Action::Written => "written",
            Action::WriteFailed => "write_failed",
            Action::AnchorMismatch => "anchor_mismatch",
        }
    }

    /// The prototype's three outcomes of an access, which are also sent to
    /// webhooks as `secret_access` events.
    pub fn is_access_outcome(self) -> bool {
        matches!(
            self,
            Action::Approved | Action::Denied | Action::AutoApproved
        )
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's list of actions is exactly this enum's, and no two
    /// actions share a name.
    #[test]
    fn the_documented_list_is_the_enum() {
        let readme = include_str!("../../../README.md");
        let list = readme.split("\nActions: ").nth(1).unwrap_or_default();
        let list = &list[..list.find(". One").unwrap_or(0)];
        let documented: std::collections::BTreeSet<&str> = list
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .collect();
        let ours: std::collections::BTreeSet<&str> =
            Action::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(ours.len(), Action::ALL.len());
        assert_eq!(documented, ours);
    }
}
