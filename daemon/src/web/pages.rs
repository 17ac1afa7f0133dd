//! Page templates. maud escapes every interpolated string, which is the
//! only way agent-supplied text (names, reasons, client names) reaches HTML.

use maud::{DOCTYPE, Markup, html};

use crate::broker::{Operation, PendingApproval, State};
use crate::clock;
use crate::config::ApprovalFactor;
use crate::db::devices::DeviceRow;
use crate::decisions::window_choices;
use crate::devices::PairRequest;
use crate::grants::Grant;
use crate::passkeys::StoredPasskey;
use crate::vault_id::VaultId;

pub fn layout(title: &str, body: Markup) -> Markup {
    page(title, None, false, body)
}

/// A page that refreshes itself (no JavaScript): used while waiting.
pub fn layout_refresh(title: &str, seconds: u32, body: Markup) -> Markup {
    page(title, Some(seconds), false, body)
}

/// A page with the passkey script (`/static/passkey.js`, which with
/// `/static/device.js` is all the CSP allows): WebAuthn has no form-only
/// equivalent.
pub fn layout_passkey(title: &str, body: Markup) -> Markup {
    page(title, None, true, body)
}

fn page(title: &str, refresh: Option<u32>, script: bool, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                @if let Some(seconds) = refresh {
                    meta http-equiv="refresh" content=(seconds);
                }
                title { (title) " · Agent Vault" }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/device.js" defer {}
                script src="/static/request.js" defer {}
                @if script {
                    script src="/static/passkey.js" defer {}
                }
            }
            body { main { (body) } }
        }
    }
}

pub fn message(title: &str, text: &str, class: &str) -> Markup {
    layout(
        title,
        html! {
            h1 { (title) }
            div.card { p class=(class) { (text) } p { a href="/" { "Dashboard" } } }
        },
    )
}

/// `retry`: the page's own path. A link opened from another app or site
/// arrives without the SameSite=Strict device cookie; following this
/// same-site link sends it.
pub fn not_paired(retry: Option<&str>) -> Markup {
    layout(
        "Not paired",
        html! {
            h1 { "This browser is not paired" }
            @if let Some(path) = retry {
                div.card {
                    p { "If this browser is paired, " a href=(path) { "open the request" } "." }
                }
            }
            div.card {
                p { "Approvals need a paired device. On the machine running agent-vaultd, run:" }
                p { code { "agent-vault pair" } }
                p.muted { "and open the link it prints in this browser. Approval links alone carry no authority." }
            }
        },
    )
}

fn badge(op: Operation) -> Markup {
    match op {
        Operation::Read => html! { span.badge.read { "READ" } },
        Operation::Write => html! { span.badge.write { "WRITE" } },
        Operation::Run => html! { span.badge.run { "RUN" } },
    }
}

fn window_label(m: f64) -> String {
    if m <= 0.0 {
        "Just this once".to_string()
    } else if m >= 60.0 && (m % 60.0) == 0.0 {
        format!("For {} h", m / 60.0)
    } else {
        format!("For {m} min")
    }
}

/// The passkey situation of the device looking at a page: how many usable
/// passkeys it has, or why passkeys cannot work on this daemon.
pub type PasskeyView = Result<usize, String>;

/// A moment for the page: UTC as sent, shown in the device's own time zone
/// by `/static/request.js`.
pub fn when(ms: i64) -> Markup {
    let iso = clock::iso(ms);
    let shown = format!(
        "{} {} UTC",
        &iso[..10.min(iso.len())],
        iso.get(11..19).unwrap_or("")
    );
    html! { time datetime=(iso) { (shown) } }
}

/// Who asks, as the person knows it: the MCP client's name without its
/// version (as the client gives it), else "An agent".
fn asker(mcp_client: &str) -> &str {
    let name = match mcp_client.rsplit_once(' ') {
        Some((name, version)) if version.starts_with(|c: char| c.is_ascii_digit()) => name,
        _ => mcp_client,
    };
    if name.trim().is_empty() {
        "An agent"
    } else {
        name
    }
}

/// A project vault's directory, short enough for a phone's line: its last
/// two parts ("…/src/shop"), the whole path kept in the folded details.
/// None for a vault of agent-vaultd's own config.
fn project_dir(vault: &VaultId) -> Option<String> {
    vault.owner?;
    let dir = std::path::Path::new(&*vault.config).parent()?;
    let parts: Vec<String> = dir
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(p) => Some(p.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    Some(match parts.as_slice() {
        [] => "/".into(),
        [a] => format!("/{a}"),
        [a, b] => format!("/{a}/{b}"),
        [.., a, b] => format!("…/{a}/{b}"),
    })
}

/// The question, in a line: "claude-code wants DATABASE_URL".
fn question(req: &PendingApproval) -> Markup {
    let what = match req.operation {
        Operation::Read => " wants ",
        Operation::Run => " wants to run a command with ",
        Operation::Write => " wants to save ",
    };
    html! {
        (asker(&req.session.requester.mcp_client)) (what)
        @if req.names.len() == 1 { code { (req.names[0]) } } @else { (req.names.len()) " secrets" }
    }
}

pub fn approval(
    req: &PendingApproval,
    csrf: &str,
    me: &str,
    now_ms: i64,
    passkey: &PasskeyView,
) -> Markup {
    let needs_passkey = req.factor == ApprovalFactor::Passkey;
    let state = req.state();
    let approved_by = req.approved_by();
    let i_approved = approved_by.iter().any(|d| d == me);
    let requester = &req.session.requester;
    let windows = window_choices(req.ttl_minutes);
    let body = html! {
        div.card data-request=(req.id) data-state=(state.as_str()) data-approvals=(approved_by.len()) {
            p.muted {
                (badge(req.operation)) " from vault " code { (req.vault.name) }
                @if let Some(dir) = project_dir(&req.vault) {
                    " in " span title=(req.vault.config) { (dir) }
                }
            }
            h1 { (question(req)) }
            @if req.names.len() > 1 {
                p { @for (i, n) in req.names.iter().enumerate() { @if i > 0 { ", " } code { (n) } } }
            }
            @if req.reason.trim().is_empty() {
                div.reason { small { "The agent gave no reason." } }
            } @else {
                div.reason { small { "Its reason, in its own words:" } (req.reason) }
            }
            @if let Some(command) = &req.command {
                div.command {
                    small { "The command (the agent does not see the values):" }
                    code { (command.shown()) }
                }
                div.row { span.k { "In" } span.v { code { (command.cwd) } } }
            }
            @if req.operation == Operation::Write {
                @for (i, n) in req.names.iter().enumerate() {
                    div.row { span.k { "New value" } span.v { code { (n) "=" (req.previews.get(i).map(String::as_str).unwrap_or("")) } } }
                }
            }
            @match &state {
                State::Pending => {
                    div.row { span.k { "Expires in" } span.v data-expires-in=((req.expires_ms - now_ms).max(0)) { (clock::human(req.expires_ms - now_ms)) } }
                    @if req.approvers_needed > 1 {
                        div.row { span.k { "Approvals" } span.v { (approved_by.len()) " of " (req.approvers_needed) " devices" } }
                    }
                    @if i_approved {
                        p.muted { "You approved. Another paired device must approve too." }
                    }
                    form method="post" action={ "/approve/" (req.id) } {
                        input type="hidden" name="csrf" value=(csrf);
                        @if req.factor == ApprovalFactor::Totp {
                            label for="code" { "Code from your authenticator app (needed to approve)" }
                            input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="10";
                        }
                        @if req.operation.releases_values() {
                            @if let [only] = windows.as_slice() {
                                input type="hidden" name="window" value=(only);
                                p.muted { "Approving gives it " (window_label(*only).to_lowercase()) "." }
                            } @else {
                                label for="window" { @if req.command.is_some() { "Approval window (this command only)" } @else { "Approval window" } }
                                select id="window" name="window" {
                                    @for m in &windows {
                                        option value=(m) { (window_label(*m)) }
                                    }
                                }
                            }
                        }
                        @if needs_passkey {
                            @match passkey {
                                Ok(0) => p.bad { "This vault needs a passkey, and this device has none. " a href="/passkeys" { "Add one" } ", then come back." }
                                Ok(_) => p.muted { "This vault needs your passkey. It signs a digest of exactly this request and the window you chose." }
                                Err(why) => p.bad { "This vault needs a passkey, but " (why) }
                            }
                            p #passkey-status role="status" {}
                        }
                        div.buttons {
                            @if !needs_passkey {
                                button.approve type="submit" name="decision" value="approve" { "Approve" }
                            } @else if matches!(passkey, Ok(n) if *n > 0) {
                                button.approve type="button" #passkey-approve data-request=(req.id) data-csrf=(csrf) { "Approve with passkey" }
                            }
                            button.deny type="submit" name="decision" value="deny" { "Deny" }
                        }
                    }
                }
                State::Recording { .. } => p.muted { "Approved; recording it in the audit log." }
                State::Approved { .. } | State::Written { .. } | State::Delivered => p.ok { "Approved." }
                State::WriteFailed { message, .. } => p.bad { "Approved, but the write failed: " (message) }
                State::Denied { .. } => p.bad { "Denied." }
                State::Expired => p.muted { "This request expired." }
                State::Cancelled { why } => p.muted { "This request was cancelled: " (why) }
            }
        }
        details.card {
            summary { "Who asks, and where" }
            div.row { span.k { "Client" } span.v { (if requester.mcp_client.is_empty() { "unknown" } else { &requester.mcp_client }) } }
            div.row { span.k { "Agent" } span.v { (requester.agent) } }
            div.row { span.k { "Process" } span.v { (requester.exe) " (pid " (requester.pid) ", user " (requester.user) ")" } }
            div.row { span.k { "Directory" } span.v.muted { (requester.cwd) } }
            div.row { span.k { "Project" } span.v.muted { (req.vault.config) } }
            @if !req.location.is_empty() {
                div.row { span.k { "File" } span.v.muted { (req.location) } }
            }
            div.row { span.k { "Asked" } span.v { (when(req.created_ms)) } }
        }
        p { a href="/" { "Dashboard" } }
    };
    if needs_passkey {
        layout_passkey("Approve", body)
    } else {
        layout("Approve", body)
    }
}

/// This device's passkeys, and the button that registers another.
pub fn passkeys(keys: &[StoredPasskey], csrf: &str, passkey: &PasskeyView) -> Markup {
    let body = html! {
        h1 { "Passkeys" }
        div.card {
            p { "Vaults set to " code { "\"require\": \"passkey\"" } " need a passkey of the approving device: your phone's or computer's own (face, fingerprint or PIN), or a security key." }
            @match passkey {
                Err(why) => p.bad { "Passkeys cannot work here: " (why) }
                Ok(_) => {
                    @if keys.is_empty() { p.muted { "This device has no passkey yet." } }
                    @for k in keys {
                        div.row {
                            span.v { code { (k.id.chars().take(12).collect::<String>()) "…" } }
                            span.muted { "added " (when(k.created_ms)) }
                        }
                    }
                    p #passkey-status role="status" {}
                    div.buttons {
                        button.approve type="button" #passkey-register data-csrf=(csrf) { "Add a passkey" }
                    }
                }
            }
        }
        p { a href="/" { "Dashboard" } }
    };
    layout_passkey("Passkeys", body)
}

pub struct Dashboard<'a> {
    pub totp_enrolled: bool,
    pub pending: &'a [std::sync::Arc<PendingApproval>],
    pub pairings: &'a [PairRequest],
    pub grants: &'a [Grant],
    pub devices: &'a [DeviceRow],
    pub me: &'a str,
    pub csrf: &'a str,
    pub now_ms: i64,
}

pub fn dashboard(d: &Dashboard<'_>) -> Markup {
    let body = html! {
        h1 { "Agent Vault" }
        h2 { "Pending requests" }
        @if d.pending.is_empty() { p.muted { "Nothing is waiting." } }
        @for r in d.pending {
            div.card {
                div { (badge(r.operation)) " " code { (r.vault.name) } " · " (r.names.join(", ")) }
                div.reason { small { "The agent's own words:" } (r.reason) }
                div.muted { (r.session.requester.describe()) }
                p { a href={ "/approve/" (r.id) } { "Review" } }
            }
        }
        @if !d.pairings.is_empty() {
            h2 { "Devices asking to pair" }
            @for p in d.pairings {
                div.card {
                    div { "A browser labelled " code { (p.label) } " wants to become an approver." }
                    div.muted { "Asked " (when(p.created_ms)) }
                    form method="post" action={ "/pairings/" (p.id) } {
                        input type="hidden" name="csrf" value=(d.csrf);
                        div.buttons {
                            button.approve type="submit" name="decision" value="approve" { "Approve" }
                            button.deny type="submit" name="decision" value="deny" { "Deny" }
                        }
                    }
                }
            }
        }
        h2 { "Active approval windows" }
        @if d.grants.is_empty() { p.muted { "None." } }
        @for g in d.grants {
            div.card {
                div.row {
                    span.v {
                        code { (g.vault.name) }
                        @if let Some(n) = &g.name { " / " code { (n) } } @else { " (whole vault)" }
                        @if g.session.is_some() { " · this session only" }
                    }
                    span.muted { (clock::human(g.expires_at_ms - d.now_ms)) " left" }
                }
                form method="post" action="/grants/revoke" {
                    input type="hidden" name="csrf" value=(d.csrf);
                    input type="hidden" name="id" value=(g.id);
                    div.buttons { button.small type="submit" { "Revoke" } }
                }
            }
        }
        @if d.totp_enrolled {
            h2 { "Authenticator app" }
            div.card {
                p.muted { "An authenticator app is enrolled. Resetting it lets `agent-vault pair --totp` enroll a new one." }
                form method="post" action="/totp/reset" {
                    input type="hidden" name="csrf" value=(d.csrf);
                    div.buttons { button.small type="submit" { "Reset authenticator" } }
                }
            }
        }
        h2 { "Passkeys" }
        div.card {
            p { a href="/passkeys" { "Manage this device's passkeys" } }
        }
        h2 { "Paired devices" }
        div.card {
            @for dev in d.devices {
                div.row {
                    span.v { (dev.label) @if dev.id == d.me { " (this browser)" } }
                    span.muted { "since " (when(dev.paired_at_ms)) }
                }
            }
        }
    };
    layout_refresh("Dashboard", 10, body)
}

pub fn pair_start(token: &str) -> Markup {
    layout(
        "Pair",
        html! {
            h1 { "Pair this browser" }
            div.card {
                p { "This browser will be able to approve or deny secret requests from AI agents." }
                form method="post" action={ "/pair/" (token) } {
                    label for="label" { "Name this device" }
                    input id="label" name="label" maxlength="60" value="My phone";
                    // Filled by /static/device.js: the device proof.
                    input type="hidden" name="proof" value="";
                    noscript { p.bad { "On an http:// address this page needs JavaScript to pair." } }
                    div.buttons { button.approve type="submit" { "Pair" } }
                }
            }
        },
    )
}

pub fn pair_waiting() -> Markup {
    layout_refresh(
        "Waiting",
        3,
        html! {
            h1 { "Waiting for approval" }
            div.card {
                p { "Another device is already paired. Approve this pairing on it (its dashboard lists the request); this page then finishes by itself." }
            }
        },
    )
}
