//! The admin service: what `agent-vault` may ask.

use std::io::IsTerminal;

use agent_vault_proto::pb::{self, admin_server::Admin};
use tonic::{Request, Response, Status};

use crate::audit::Action;
use crate::audit::anchor::{self, Anchor};
use crate::broker::{DecideError, Decided, Operation};
use crate::clock;
use crate::decisions::{self, Proof, Refusal};
use crate::events;
use crate::grants::{Grant, RevokeTarget};
use crate::state::AppState;

pub struct AdminService(pub AppState);

fn grant_info(g: &Grant) -> pb::GrantInfo {
    pb::GrantInfo {
        id: g.id.clone(),
        vault: g.vault.name.to_string(),
        config_path: g.vault.config.to_string(),
        scope: g.scope.as_str().into(),
        name: g.name.clone().unwrap_or_default(),
        session_id: g.session.clone().unwrap_or_default(),
        expires_at_ms: g.expires_at_ms,
    }
}

pub fn pending_infos(state: &AppState) -> Vec<pb::PendingInfo> {
    state
        .broker
        .pending()
        .into_iter()
        .map(|r| pb::PendingInfo {
            id: r.id.clone(),
            vault: r.vault.name.to_string(),
            config_path: r.vault.config.to_string(),
            operation: match r.operation {
                Operation::Read => pb::Operation::Read as i32,
                Operation::Write => pb::Operation::Write as i32,
                Operation::Run => pb::Operation::Run as i32,
            },
            command: r.command.as_ref().map(|c| c.shown()).unwrap_or_default(),
            cwd: r
                .command
                .as_ref()
                .map(|c| c.cwd.clone())
                .unwrap_or_default(),
            names: r.names.clone(),
            reason: r.reason.clone(),
            requester: Some(pb::Requester {
                uid: r.session.requester.uid,
                pid: r.session.requester.pid,
                exe: r.session.requester.exe.clone(),
                mcp_client: r.session.requester.mcp_client.clone(),
                session_id: r.session.id.clone(),
                user: r.session.requester.user.clone(),
                cmdline: r.session.requester.cmdline.clone(),
                cwd: r.session.requester.cwd.clone(),
                agent: r.session.requester.agent.clone(),
            }),
            created_at_ms: r.created_ms,
            expires_at_ms: r.expires_ms,
            approval_url: state.approval_url(&r.id),
            previews: r.previews.clone(),
            location: r.location.clone(),
        })
        .collect()
}

fn sorted(uids: &std::collections::HashSet<u32>) -> Vec<u32> {
    let mut v: Vec<u32> = uids.iter().copied().collect();
    v.sort_unstable();
    v
}

fn device_infos(state: &AppState) -> Vec<pb::DeviceInfo> {
    state
        .devices
        .list()
        .into_iter()
        .map(|d| pb::DeviceInfo {
            id: d.id,
            label: d.label,
            paired_at_ms: d.paired_at_ms,
            last_seen_ms: d.last_seen_ms,
        })
        .collect()
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

impl AdminService {
    /// An admin's change is on disk before the command returns. It already
    /// holds in memory; if it could not be stored, say so.
    async fn durable(&self) -> Result<(), Status> {
        if self.0.store.flush().await {
            Ok(())
        } else {
            Err(Status::unavailable(
                "done for now, but the database could not record it, so it would not survive a restart; see agent-vaultd's log",
            ))
        }
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn hello(
        &self,
        _req: Request<pb::HelloRequest>,
    ) -> Result<Response<pb::HelloReply>, Status> {
        Ok(Response::new(super::agent::hello(&self.0)))
    }

    async fn status(
        &self,
        _req: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusReply>, Status> {
        let s = &self.0;
        let now = clock::now_ms();
        let vaults = s
            .all_projects()
            .iter()
            .flat_map(|p| {
                p.config.vaults.values().map(|v| {
                    let provider = p.providers.get(&v.name);
                    let health = provider.map(|p| p.health()).unwrap_or_default();
                    let (last_error_ms, last_error) = health.last_error.unwrap_or_default();
                    pb::VaultSummary {
                        name: v.name.clone(),
                        config_path: p.config.path.display().to_string(),
                        kind: v.settings.kind().into(),
                        ttl_minutes: v.ttl_minutes.round() as u32,
                        ttl_scope: v.ttl_scope.as_str().into(),
                        writable: v.writable,
                        require: v.factor.as_str().into(),
                        approvers: v.approvers,
                        last_ok_ms: health.last_ok_ms.unwrap_or(0),
                        last_error_ms,
                        last_error,
                        cached_entries: health
                            .cached
                            .map_or(-1, |n| i32::try_from(n).unwrap_or(i32::MAX)),
                        location: provider.map(|p| p.location()).unwrap_or_default(),
                    }
                })
            })
            .collect();
        let devices = device_infos(s);
        let grants = s.grants().active(now).iter().map(grant_info).collect();
        let own = s.project(&s.default_project);
        Ok(Response::new(pb::StatusReply {
            version: agent_vault_proto::VERSION.into(),
            protocol: agent_vault_proto::PROTOCOL_VERSION,
            pid: std::process::id(),
            uptime_ms: s.started.elapsed().as_millis() as u64,
            approval_base_url: s.approval_base(),
            instance: s.instance.clone(),
            local_url: s.local_url.clone(),
            tunnel: s.tunnel(),
            passkeys: match s.passkeys.availability() {
                Ok(rp) => format!("for {rp}"),
                Err(why) => format!("unavailable: {why}"),
            },
            vaults,
            devices,
            pending_count: s.broker.pending().len() as u32,
            grants,
            state_dir: s.paths.state_dir.display().to_string(),
            socket_path: s.paths.socket.display().to_string(),
            agent_uids: sorted(&s.agent_uids),
            admin_uids: sorted(&s.admin_uids),
            webhooks: own.as_ref().map_or(0, |p| p.config.webhooks.len() as u32),
            config_path: own
                .as_ref()
                .map(|p| p.config.path.display().to_string())
                .unwrap_or_default(),
        }))
    }

    async fn stop(&self, req: Request<pb::StopRequest>) -> Result<Response<pb::StopReply>, Status> {
        let peer = super::peer::peer_of(&req)?;
        tracing::info!(uid = peer.uid, "asked to stop (agent-vault stop)");
        self.0.stop.cancel();
        Ok(Response::new(pb::StopReply {
            pid: std::process::id(),
        }))
    }

    async fn import_audit(
        &self,
        req: Request<pb::ImportAuditRequest>,
    ) -> Result<Response<pb::ImportAuditReply>, Status> {
        let peer = super::peer::peer_of(&req)?;
        let r = req.into_inner();
        let events = crate::audit::import::events(&r.source, &r.rows)
            .map_err(|why| Status::invalid_argument(format!("nothing was imported: {why}")))?;
        let mut done = self
            .0
            .reader
            .details_starting(&crate::audit::import::marker(&r.source))
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let (mut imported, mut already) = (0, 0);
        for event in events {
            if !done.insert(event.detail.clone()) {
                already += 1;
            } else {
                imported += 1;
                self.0.store.audit(event);
            }
        }
        self.durable().await?;
        tracing::info!(uid = peer.uid, imported, already, source = %r.source, "imported the prototype's audit rows");
        Ok(Response::new(pb::ImportAuditReply { imported, already }))
    }

    async fn check_vaults(
        &self,
        _req: Request<pb::CheckVaultsRequest>,
    ) -> Result<Response<pb::CheckVaultsReply>, Status> {
        let projects = self.0.all_projects();
        let checks = projects.iter().flat_map(|p| {
            p.config.vaults.values().map(move |v| async move {
                let mut check = pb::VaultCheck {
                    name: v.name.clone(),
                    config_path: p.config.path.display().to_string(),
                    kind: v.settings.kind().into(),
                    ..Default::default()
                };
                let Some(provider) = p.providers.get(&v.name) else {
                    check.error = "this vault has no backend loaded".into();
                    return check;
                };
                check.location = provider.location();
                let started = std::time::Instant::now();
                match provider.check().await {
                    Ok(n) => {
                        check.ok = true;
                        check.names = n as u32;
                    }
                    Err(e) => check.error = e.to_string(),
                }
                check.elapsed_ms = started.elapsed().as_millis() as u32;
                check.notice = provider.notice().unwrap_or_default();
                check
            })
        });
        let vaults = futures_util::future::join_all(checks).await;
        Ok(Response::new(pb::CheckVaultsReply { vaults }))
    }

    async fn pending(
        &self,
        _req: Request<pb::PendingRequest>,
    ) -> Result<Response<pb::PendingReply>, Status> {
        Ok(Response::new(pb::PendingReply {
            pending: pending_infos(&self.0),
        }))
    }

    async fn grants(
        &self,
        _req: Request<pb::GrantsRequest>,
    ) -> Result<Response<pb::GrantsReply>, Status> {
        let grants = self.0.grants().active(clock::now_ms());
        Ok(Response::new(pb::GrantsReply {
            grants: grants.iter().map(grant_info).collect(),
        }))
    }

    async fn revoke(
        &self,
        req: Request<pb::RevokeRequest>,
    ) -> Result<Response<pb::RevokeReply>, Status> {
        let r = req.into_inner();
        let target = if r.all {
            RevokeTarget::All
        } else {
            match r.target.split_once('/') {
                Some((v, n)) if !v.is_empty() && !n.is_empty() => {
                    RevokeTarget::Secret(v.to_string(), n.to_string())
                }
                None if !r.target.is_empty() => RevokeTarget::Vault(r.target.clone()),
                _ => {
                    return Err(Status::invalid_argument(
                        "say what to revoke: --all, VAULT or VAULT/NAME",
                    ));
                }
            }
        };
        let gone = decisions::revoke(&self.0, &target, "");
        self.durable().await?;
        Ok(Response::new(pb::RevokeReply {
            revoked: gone as u32,
        }))
    }

    async fn audit(
        &self,
        req: Request<pb::AuditRequest>,
    ) -> Result<Response<pb::AuditReply>, Status> {
        let limit = match req.get_ref().limit {
            0 => 20,
            n => n.min(10_000),
        };
        // Show what was sent before.
        if !self.0.store.flush().await {
            return Err(Status::unavailable(
                "the latest audit entries could not be stored; see agent-vaultd's log",
            ));
        }
        let reader = self.0.reader.clone();
        let rows = tokio::task::spawn_blocking(move || reader.recent(limit))
            .await
            .map_err(internal)?
            .map_err(internal)?;
        Ok(Response::new(pb::AuditReply {
            rows: rows
                .into_iter()
                .map(|r| pb::AuditRow {
                    id: r.id,
                    timestamp: r.timestamp,
                    secret_name: r.secret_name,
                    reason: r.reason,
                    action: r.action,
                    scope: r.scope,
                    ttl_expires_at: r.ttl_expires_at,
                    vault: r.vault,
                    request_id: r.request_id,
                    requester: match (r.requester_uid, r.requester_pid) {
                        (Some(uid), Some(pid)) => {
                            let client = if r.client_name.is_empty() {
                                "?".into()
                            } else {
                                r.client_name
                            };
                            format!("{client} via {} (pid {pid}, uid {uid})", r.requester_exe)
                        }
                        _ => String::new(),
                    },
                    device_id: r.device_id,
                    operation: r.operation,
                })
                .collect(),
        }))
    }

    async fn audit_verify(
        &self,
        req: Request<pb::AuditVerifyRequest>,
    ) -> Result<Response<pb::AuditVerifyReply>, Status> {
        let anchors: Vec<Anchor> = req
            .into_inner()
            .anchors
            .into_iter()
            .map(|a| Anchor {
                seq: a.seq,
                hash: a.hash,
                time: a.time,
            })
            .collect();
        if !self.0.store.flush().await {
            return Err(Status::unavailable(
                "the latest audit entries could not be stored; see agent-vaultd's log",
            ));
        }
        let positions = anchors
            .iter()
            .filter_map(|a| u64::try_from(a.seq).ok())
            .collect();
        let reader = self.0.reader.clone();
        let v = tokio::task::spawn_blocking(move || reader.verify(&positions))
            .await
            .map_err(internal)?
            .map_err(internal)?;
        let problem = v.problem.or_else(|| {
            anchor::contradiction(&anchors, v.rows_checked as i64, |seq| {
                v.hashes_at.get(&(seq as u64)).cloned()
            })
        });
        Ok(Response::new(pb::AuditVerifyReply {
            ok: problem.is_none(),
            rows_checked: v.rows_checked,
            anchors_checked: if problem.is_none() {
                anchors.len() as u64
            } else {
                0
            },
            problem: problem.unwrap_or_default(),
        }))
    }

    async fn devices(
        &self,
        _req: Request<pb::DevicesRequest>,
    ) -> Result<Response<pb::DevicesReply>, Status> {
        Ok(Response::new(pb::DevicesReply {
            devices: device_infos(&self.0),
        }))
    }

    async fn revoke_device(
        &self,
        req: Request<pb::RevokeDeviceRequest>,
    ) -> Result<Response<pb::RevokeDeviceReply>, Status> {
        let peer = super::peer::peer_of(&req)?;
        let id = req.into_inner().id;
        // An agent user must not be able to leave the daemon with no paired
        // device (and so open the way to a first pairing of its own).
        let keep_one = self.0.agent_uids.contains(&peer.uid);
        let outcome = self.0.devices.revoke(&id, keep_one);
        if outcome == crate::devices::Revoked::LastDevice {
            events::record_plain(
                &self.0,
                Action::Refused,
                &id,
                &format!(
                    "revoking the last paired device refused to agent uid {}",
                    peer.uid
                ),
                None,
            );
            return Err(Status::permission_denied(format!(
                "{id} is the last paired device, and uid {} is also an agent uid: unpairing it here is refused. \
                 Pair another device first (`agent-vault pair`, approved on this one), or run this as an admin that is not an agent user.",
                peer.uid
            )));
        }
        if outcome == crate::devices::Revoked::NoSuchDevice {
            return Err(Status::not_found(format!(
                "no paired device with id {:?}; `agent-vault devices` lists them",
                id.chars().take(40).collect::<String>()
            )));
        }
        self.0.passkeys.remove_device(&id);
        tracing::info!(device = %id, "device revoked");
        events::record_plain(
            &self.0,
            Action::DeviceRevoked,
            &id,
            "revoked with agent-vault devices revoke",
            None,
        );
        self.durable().await?;
        Ok(Response::new(pb::RevokeDeviceReply { revoked: true }))
    }

    async fn decide(
        &self,
        req: Request<pb::DecideRequest>,
    ) -> Result<Response<pb::DecideReply>, Status> {
        let peer = super::peer::peer_of(&req)?;
        let r = req.into_inner();
        let window = r.window_minutes.unwrap_or(f64::MAX);
        let proof = Proof::Terminal { uid: peer.uid };
        let decided = decisions::decide(
            &self.0,
            &r.request_id,
            r.approve,
            proof,
            window,
            clock::now_ms(),
        )
        .await;
        let outcome = match decided {
            Ok((Decided::Final(req), _)) => match req.state() {
                crate::broker::State::Denied { .. } => "denied",
                crate::broker::State::Cancelled { why } => return Err(Status::unavailable(why)),
                _ => "approved",
            },
            Ok((Decided::Partial { .. }, _)) => "partial",
            Err(Refusal::Request(DecideError::NotFound)) => {
                return Err(Status::not_found("no such request (it may have expired)"));
            }
            Err(e @ Refusal::TerminalOff { .. }) => {
                return Err(Status::permission_denied(e.to_string()));
            }
            Err(e) => return Err(Status::failed_precondition(e.to_string())),
        };
        Ok(Response::new(pb::DecideReply {
            outcome: outcome.into(),
        }))
    }

    async fn pair(&self, req: Request<pb::PairRequest>) -> Result<Response<pb::PairReply>, Status> {
        let peer = super::peer::peer_of(&req)?;
        let is_agent = self.0.agent_uids.contains(&peer.uid);
        if req.get_ref().totp {
            // The authenticator's secret goes only where an agent does not
            // see it: to an admin that is not an agent user, or onto the
            // daemon's terminal.
            let on_terminal = is_agent && std::io::stderr().is_terminal();
            if is_agent && !on_terminal {
                return Err(Status::failed_precondition(format!(
                    "uid {} is also an agent uid, so the authenticator's secret is not given here (an agent could copy it). \
                     Run agent-vaultd in a terminal and enroll again: it shows the code there. Or run this as an admin that is not an agent user.",
                    peer.uid
                )));
            }
            let url = self
                .0
                .devices
                .enroll_totp()
                .map_err(|e| Status::failed_precondition(e.to_string()))?;
            events::record_plain(
                &self.0,
                Action::TotpEnrolled,
                "",
                "authenticator app enrolled",
                None,
            );
            self.durable().await?;
            if on_terminal {
                eprintln!("\nScan this with your authenticator app (shown once):\n{url}");
                if let Some(qr) = agent_vault_proto::qr_text(&url) {
                    eprintln!("{qr}");
                }
                return Ok(Response::new(pb::PairReply {
                    shown_on_daemon_terminal: true,
                    ..Default::default()
                }));
            }
            return Ok(Response::new(pb::PairReply {
                url,
                ..Default::default()
            }));
        }
        if self.0.devices.any_paired() || !is_agent {
            // With a device paired, any link needs its approval; with none,
            // an admin that is not an agent user gets a direct one.
            let (token, expires_at_ms, needs_approval) =
                self.0.devices.new_link(clock::now_ms(), !is_agent);
            return Ok(Response::new(pb::PairReply {
                url: format!("{}/pair/{token}", self.0.approval_base()),
                expires_at_ms,
                needs_approval,
                shown_on_daemon_terminal: false,
            }));
        }
        // No device paired, and the caller could be an agent: the first
        // link goes only where the person sees it.
        if !std::io::stderr().is_terminal() {
            events::record_plain(
                &self.0,
                Action::Refused,
                "",
                &format!("first pairing link refused to agent uid {}", peer.uid),
                None,
            );
            return Err(Status::failed_precondition(format!(
                "no device is paired yet, and uid {} is also an agent uid, so the first pairing link is not given here (an agent could claim it). \
                 Run agent-vaultd in a terminal: it shows the link there. Or run `agent-vault pair` as an admin that is not an agent user (SECURITY.md).",
                peer.uid
            )));
        }
        let expires_at_ms = show_first_pairing_link(&self.0);
        Ok(Response::new(pb::PairReply {
            url: String::new(),
            expires_at_ms,
            needs_approval: false,
            shown_on_daemon_terminal: true,
        }))
    }
}

/// Prints a direct pairing link (and its QR code) on the daemon's own
/// terminal, the one place an agent does not see; returns its expiry.
pub fn show_first_pairing_link(state: &AppState) -> i64 {
    let (token, expires, _) = state.devices.new_link(clock::now_ms(), true);
    let url = format!("{}/pair/{token}", state.approval_base());
    eprintln!(
        "\nNo approver device is paired yet. {}",
        agent_vault_proto::pairing_link_text(&url)
    );
    expires
}
