//! The lease sweeper: every `lease_sweep_interval`, for each profile, it deletes the
//! orphans the profile left (keys whose access list and rollback delete both failed in
//! `CreateApiKey`), then lists the API keys of every org the profile knows
//! (`allowed_org_ids`, `lease_sweep_org_ids`, and the orgs it created leased keys in)
//! and deletes each key whose marker has passed.
//!
//! It never deletes a key without a marker or with a marker in the future ([`super::expired`]
//! decides), unless it is a recorded orphan. A failure (a list or a delete) is logged
//! and counted and the sweep moves on; the next sweep tries again, as the marker is
//! still in Atlas and an orphan stays recorded until its delete succeeds (or answers
//! 404). With a shared store, one replica sweeps a profile per interval (a lock with
//! expiry, see [`crate::store::sweep`]), and a sweep never outlives that lock. Every
//! deletion goes through `key_deleted`, the one place that logs and counts it.
use std::{
    collections::BTreeSet,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use super::audited::{delete_key, DeleteError};
use crate::{
    atlas::{
        client::{AtlasClient, CallContext},
        error::AtlasError,
        Operation,
    },
    audit::AuditLog,
    config::{Config, Profile},
    otel::CallTrace,
    store::sweep::Orphan,
    telemetry::metrics as m,
};

/// Keys listed per Atlas page (the most Atlas allows).
const PAGE_SIZE: u32 = 500;

/// The caller the sweeper's deletions are recorded under.
pub const CALLER: &str = "lease-sweeper";

/// The running sweeper; dropping it stops it.
pub struct Sweeper(tokio::task::JoinHandle<()>);

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts sweeping every `config.lease_sweep_interval`, the first sweep one interval
/// after start (a fleet that restarts does not list every org at once). Each deletion
/// is audited (caller [`CALLER`]) when `audit` is on.
pub fn start(config: &Config, atlas: Arc<AtlasClient>, audit: Option<Arc<AuditLog>>) -> Sweeper {
    let every = config.lease_sweep_interval;
    let timeout = config.request_timeout;
    let profiles: Vec<String> = config.profiles.keys().cloned().collect();
    Sweeper(tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            for profile in &profiles {
                let round = Round {
                    atlas: &atlas,
                    audit: audit.as_ref(),
                    profile,
                    // A little under the interval, so the next tick finds the lock free.
                    hold: every - every / 10,
                    timeout,
                };
                round.sweep().await;
            }
        }
    }))
}

/// One sweep of one profile.
struct Round<'a> {
    atlas: &'a AtlasClient,
    /// The audit trail, when on.
    audit: Option<&'a Arc<AuditLog>>,
    profile: &'a str,
    /// How long the sweep may take (and holds the fleet's lock).
    hold: Duration,
    /// The bound on one Atlas call.
    timeout: Duration,
}

impl Round<'_> {
    async fn sweep(&self) {
        let Some(profile) = self.atlas.profile(self.profile) else {
            return;
        };
        let shared = self.atlas.shared(self.profile);
        let orgs = known_orgs(
            profile,
            self.atlas.lease_orgs().created(self.profile, shared).await,
        );
        let orphans = self.atlas.orphans().left(self.profile, shared).await;
        if orgs.is_empty() && orphans.is_empty() {
            return;
        }
        // Before the lock is taken: the sweep ends no later than the lock does.
        let ends = Instant::now() + self.hold;
        if let Some(s) = shared {
            if !s.may_sweep(self.hold).await {
                return;
            }
        }
        let request_id = format!("{CALLER}-{}", uuid::Uuid::new_v4());
        let trace = CallTrace::default();
        for orphan in &orphans {
            let ctx = CallContext {
                profile: self.profile,
                org_id: &orphan.org_id,
                request_id: &request_id,
                deadline: ends.min(Instant::now() + self.timeout),
                trace: &trace,
            };
            self.delete_orphan(&ctx, orphan).await;
        }
        for org in &orgs {
            let ctx = CallContext {
                profile: self.profile,
                org_id: org,
                request_id: &request_id,
                deadline: ends.min(Instant::now() + self.timeout),
                trace: &trace,
            };
            self.sweep_org(&ctx).await;
        }
    }

    /// Deletes an orphan, and forgets it once it is gone.
    async fn delete_orphan(&self, ctx: &CallContext<'_>, orphan: &Orphan) {
        let key_id = &orphan.api_key_id;
        match delete_key(self.atlas, self.audit, CALLER, ctx, key_id).await {
            Ok(()) => key_deleted(ctx.profile, ctx.org_id, key_id, Deleted::Orphan),
            // Gone already: deleted by the caller, by hand, or by a replica.
            Err(DeleteError::Atlas(AtlasError::Api(f))) if f.status == 404 => {}
            Err(e) => return failed(ctx, Operation::DeleteApiKey, key_id, &e),
        }
        let shared = self.atlas.shared(self.profile);
        self.atlas
            .orphans()
            .forget(self.profile, shared, orphan)
            .await;
    }

    /// Deletes the expired keys of `ctx.org_id`.
    async fn sweep_org(&self, ctx: &CallContext<'_>) {
        let expired = match expired_keys(self.atlas, ctx).await {
            Ok(keys) => keys,
            Err(e) => return failed(ctx, Operation::ListApiKeys, "", &e),
        };
        for key_id in expired {
            match delete_key(self.atlas, self.audit, CALLER, ctx, &key_id).await {
                Ok(()) => key_deleted(ctx.profile, ctx.org_id, &key_id, Deleted::Expired),
                // Gone already: deleted by hand, or by a replica while the store was down.
                Err(DeleteError::Atlas(AtlasError::Api(f))) if f.status == 404 => {}
                Err(e) => failed(ctx, Operation::DeleteApiKey, &key_id, &e),
            }
        }
    }
}

/// The orgs a profile's sweep visits.
fn known_orgs(profile: &Profile, created: BTreeSet<String>) -> BTreeSet<String> {
    let mut orgs = created;
    orgs.extend(profile.allowed_org_ids.iter().flatten().cloned());
    orgs.extend(profile.lease.lease_sweep_org_ids.iter().cloned());
    orgs
}

/// The ids of the org's keys whose lease has ended, every page read.
async fn expired_keys(
    atlas: &AtlasClient,
    ctx: &CallContext<'_>,
) -> Result<Vec<String>, AtlasError> {
    let now = SystemTime::now();
    let mut expired = Vec::new();
    for page in 1.. {
        let listed = atlas
            .list_api_keys(ctx, ctx.org_id, PAGE_SIZE, page)
            .await?;
        let last = match listed.total_count {
            Some(total) => u64::from(page) * u64::from(PAGE_SIZE) >= u64::from(total),
            None => listed.results.len() < PAGE_SIZE as usize,
        };
        expired.extend(
            listed
                .results
                .into_iter()
                .filter(|k| super::expired(&k.desc, now))
                .map(|k| k.id),
        );
        if last || page == u32::MAX {
            break;
        }
    }
    Ok(expired)
}

/// Why the sweeper deleted a key.
#[derive(Clone, Copy)]
enum Deleted {
    /// Its lease had ended.
    Expired,
    /// `CreateApiKey` left it without its access list and could not delete it.
    Orphan,
}

/// One key deleted by the sweeper: counted (an expired lease) and logged (its audit
/// records are written around the delete, see `super::audited`).
fn key_deleted(profile: &str, org_id: &str, api_key_id: &str, why: Deleted) {
    match why {
        Deleted::Expired => {
            m::lease_expired(profile);
            tracing::info!(
                caller = CALLER,
                profile,
                org_id,
                api_key_id,
                "deleted an API key whose lease had ended"
            );
        }
        Deleted::Orphan => tracing::warn!(
            caller = CALLER,
            profile,
            org_id,
            api_key_id,
            "deleted an orphaned API key (CreateApiKey could not add its access list nor delete it)"
        ),
    }
}

/// A list or a delete failed (or its audit `begin` could not be written): counted and
/// logged; the next sweep tries again.
fn failed(ctx: &CallContext<'_>, op: Operation, api_key_id: &str, e: &dyn std::fmt::Display) {
    m::lease_sweep_error(op.id());
    tracing::warn!(
        caller = CALLER,
        profile = ctx.profile,
        org_id = ctx.org_id,
        api_key_id,
        operation = op.id(),
        error = %e,
        "lease sweep step failed; the next sweep tries again"
    );
}
