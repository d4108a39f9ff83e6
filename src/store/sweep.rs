//! The lease sweeper's state: the orgs each profile has created leased keys in, the
//! orphans each profile left (keys whose access list and rollback delete both failed,
//! for the sweeper to delete), and, with a shared store, the lock that lets one replica
//! of a fleet sweep per interval.
//!
//! In process, the orgs and the orphans are a set per profile (the orphans at most
//! [`MAX_ORPHANS`]; past it an orphan is dropped and counted). In the store each is one
//! hash per profile: each field a keyed hash of the org (and key id), each value the org
//! (and key id) sealed under that profile's secret, so key names and values show no id;
//! the orphan hash is bounded the same way, atomically. The lock is `SET NX PX` on
//! one key per profile; it is never released early: it expires, and the fleet sweeps
//! at most once per hold. A store that does not answer never stops a sweep: the replica
//! sweeps with what it knows (a duplicate DELETE answers 404, which the sweeper accepts).
use std::{
    collections::{BTreeSet, HashMap},
    sync::Mutex,
    time::Duration,
};

use redis::AsyncCommands;

use super::{ProfileStore, StoreDown};
use crate::telemetry::metrics as m;

/// Most orphans a profile keeps, in process and in the store.
pub const MAX_ORPHANS: usize = 1024;

/// `HSET KEYS[1] ARGV[1] ARGV[2]` unless the hash holds `ARGV[3]` fields already (and
/// not this one); 1 when the field is set.
const HSET_BOUNDED: &str = r#"
if redis.call("HEXISTS", KEYS[1], ARGV[1]) == 1 or redis.call("HLEN", KEYS[1]) < tonumber(ARGV[3]) then
  redis.call("HSET", KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0
"#;

/// An API key left in Atlas without its access list: the sweeper deletes it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Orphan {
    /// The org the key belongs to.
    pub org_id: String,
    /// The key's id.
    pub api_key_id: String,
}

/// The orphans each profile left, here and in the shared store.
#[derive(Default)]
pub struct Orphans {
    left: Mutex<HashMap<String, BTreeSet<Orphan>>>,
}

impl Orphans {
    /// Hands `orphan` to the sweeper of `profile`; false when no set took it. A set that
    /// refuses it (full, or the store down) is counted and logged.
    pub async fn remember(
        &self,
        profile: &str,
        shared: Option<&ProfileStore>,
        orphan: Orphan,
    ) -> bool {
        let here = {
            let mut left = self.left.lock().expect("not poisoned");
            let set = left.entry(profile.to_string()).or_default();
            set.contains(&orphan) || (set.len() < MAX_ORPHANS && set.insert(orphan.clone()))
        };
        let stored = match shared {
            Some(s) => s.remember_orphan(&orphan).await.unwrap_or(false),
            None => false,
        };
        if !here || (shared.is_some() && !stored) {
            m::lease_orphan_dropped(profile);
            tracing::warn!(profile, org_id = orphan.org_id, api_key_id = orphan.api_key_id, in_process = here, in_store = stored, "an orphaned API key could not be handed to every lease sweeper (set full or store down)");
        }
        here || stored
    }

    /// Every orphan `profile` left: here, and in the store when it answers.
    pub async fn left(&self, profile: &str, shared: Option<&ProfileStore>) -> BTreeSet<Orphan> {
        let mut left = (self.left.lock().expect("not poisoned"))
            .get(profile)
            .cloned()
            .unwrap_or_default();
        if let Some(s) = shared {
            left.extend(s.orphans().await.unwrap_or_default());
        }
        left
    }

    /// Forgets `orphan`: the key is gone from Atlas.
    pub async fn forget(&self, profile: &str, shared: Option<&ProfileStore>, orphan: &Orphan) {
        if let Some(set) = self.left.lock().expect("not poisoned").get_mut(profile) {
            set.remove(orphan);
        }
        if let Some(s) = shared {
            let _ = s.forget_orphan(orphan).await;
        }
    }
}

/// The orgs each profile created leased keys in, here and in the shared store.
#[derive(Default)]
pub struct LeaseOrgs {
    created: Mutex<HashMap<String, BTreeSet<String>>>,
}

impl LeaseOrgs {
    /// Remembers that `profile` creates a leased key in `org` (before the key exists, so
    /// that a crash right after leaves the org known to the fleet).
    pub async fn remember(&self, profile: &str, shared: Option<&ProfileStore>, org: &str) {
        let known = self
            .created
            .lock()
            .expect("not poisoned")
            .entry(profile.to_string())
            .or_default()
            .insert(org.to_string());
        if let (true, Some(s)) = (known, shared) {
            let _ = s.remember_org(org).await;
        }
    }

    /// Every org `profile` created leased keys in: here, and in the store when it answers.
    pub async fn created(&self, profile: &str, shared: Option<&ProfileStore>) -> BTreeSet<String> {
        let mut orgs = (self.created.lock().expect("not poisoned"))
            .get(profile)
            .cloned()
            .unwrap_or_default();
        if let Some(s) = shared {
            orgs.extend(s.orgs().await.unwrap_or_default());
        }
        orgs
    }
}

impl ProfileStore {
    fn orgs_key(&self) -> String {
        self.sealer.key("lease-orgs")
    }

    async fn remember_org(&self, org: &str) -> Result<(), StoreDown> {
        let key = self.orgs_key();
        let field = self.sealer.hashed_key("lease-org", &[org.as_bytes()]);
        let value = self.sealer.seal(&field, org.as_bytes());
        let mut c = self.store.conn.clone();
        self.store
            .run("hset", async move {
                c.hset::<_, _, _, ()>(key, field, value).await
            })
            .await
    }

    async fn orgs(&self) -> Result<Vec<String>, StoreDown> {
        Ok(self.opened(self.orgs_key()).await?.collect())
    }

    /// The values of the hash `key` that open under this profile's sealer, as text (what
    /// does not open, or is not UTF-8, is skipped).
    async fn opened(&self, key: String) -> Result<impl Iterator<Item = String> + '_, StoreDown> {
        let mut c = self.store.conn.clone();
        let sealed: HashMap<String, Vec<u8>> = self
            .store
            .run("hgetall", async move { c.hgetall(key).await })
            .await?;
        Ok(sealed
            .into_iter()
            .filter_map(|(field, value)| self.sealer.open(&field, &value))
            .filter_map(|plain| String::from_utf8(plain).ok()))
    }

    fn orphans_key(&self) -> String {
        self.sealer.key("lease-orphans")
    }

    fn orphan_field(&self, o: &Orphan) -> String {
        (self.sealer).hashed_key(
            "lease-orphan",
            &[o.org_id.as_bytes(), o.api_key_id.as_bytes()],
        )
    }

    /// Adds `o` to the profile's orphan hash unless it holds [`MAX_ORPHANS`] already;
    /// true when `o` is in it.
    async fn remember_orphan(&self, o: &Orphan) -> Result<bool, StoreDown> {
        let field = self.orphan_field(o);
        let plain = format!("{} {}", o.org_id, o.api_key_id);
        let value = self.sealer.seal(&field, plain.as_bytes());
        let script = redis::Script::new(HSET_BOUNDED);
        let mut invocation = script.key(self.orphans_key());
        invocation.arg(field).arg(value).arg(MAX_ORPHANS);
        let mut c = self.store.conn.clone();
        let set: i64 = self
            .store
            .run("hset_bounded", async move {
                invocation.invoke_async(&mut c).await
            })
            .await?;
        Ok(set == 1)
    }

    async fn forget_orphan(&self, o: &Orphan) -> Result<(), StoreDown> {
        let (key, field) = (self.orphans_key(), self.orphan_field(o));
        let mut c = self.store.conn.clone();
        self.store
            .run("hdel", async move { c.hdel::<_, _, ()>(key, field).await })
            .await
    }

    async fn orphans(&self) -> Result<Vec<Orphan>, StoreDown> {
        Ok(self
            .opened(self.orphans_key())
            .await?
            .filter_map(|plain| {
                let (org_id, api_key_id) = plain.split_once(' ')?;
                Some(Orphan {
                    org_id: org_id.into(),
                    api_key_id: api_key_id.into(),
                })
            })
            .collect())
    }

    /// True when this replica may sweep `profile` now: it took the fleet's lock for
    /// `hold`, or the store did not answer (every replica sweeps then).
    pub async fn may_sweep(&self, hold: Duration) -> bool {
        let key = self.sealer.key("lease-sweep");
        self.store.set_nx(&key, b"1", hold).await.unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn orphan(n: usize) -> Orphan {
        Orphan {
            org_id: "a".repeat(24),
            api_key_id: format!("{n:024x}"),
        }
    }

    #[tokio::test]
    async fn the_orphan_set_is_bounded_and_forgets_what_is_gone() {
        let orphans = Orphans::default();
        for n in 0..MAX_ORPHANS {
            assert!(orphans.remember("p", None, orphan(n)).await);
        }
        assert!(orphans.remember("p", None, orphan(0)).await, "known");
        assert!(!orphans.remember("p", None, orphan(MAX_ORPHANS)).await);
        assert!(orphans.remember("q", None, orphan(MAX_ORPHANS)).await);
        orphans.forget("p", None, &orphan(0)).await;
        assert_eq!(orphans.left("p", None).await.len(), MAX_ORPHANS - 1);
        assert!(orphans.remember("p", None, orphan(MAX_ORPHANS)).await);
    }
}
