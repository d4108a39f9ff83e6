//! A profile's lease settings (`default_key_ttl`, `max_key_ttl`, `lease_sweep_org_ids`)
//! from its file section, checked: each lease at least [`lease::MIN_TTL`], the default
//! within the maximum, every org a 24-hex id. What a lease is: [`crate::lease`].
use std::{collections::BTreeSet, time::Duration};

use super::{err, parse_duration, ConfigError, FileProfile};
use crate::{lease, validate};

/// How one profile leases the keys it creates, and the orgs its sweeper always visits.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct LeasePolicy {
    /// The lease of a key whose call sets no `ttl`; `None`: such keys do not expire.
    #[serde(with = "super::secs_opt")]
    pub default_key_ttl: Option<Duration>,
    /// The longest lease a call may ask for; `None`: no bound.
    #[serde(with = "super::secs_opt")]
    pub max_key_ttl: Option<Duration>,
    /// Orgs swept besides `allowed_org_ids` and the orgs leased keys were created in.
    pub lease_sweep_org_ids: BTreeSet<String>,
}

pub(super) fn lease_policy(name: &str, fp: &FileProfile) -> Result<LeasePolicy, ConfigError> {
    let ttl = |field: &str, value: &Option<String>| -> Result<Option<Duration>, ConfigError> {
        let Some(v) = value else { return Ok(None) };
        match parse_duration(v) {
            Some(d) if d >= lease::MIN_TTL => Ok(Some(d)),
            _ => err(format!(
                "profiles.{name}.{field} must be a duration of at least {} such as 15m or 24h (got {v:?})",
                humantime::format_duration(lease::MIN_TTL)
            )),
        }
    };
    let default_key_ttl = ttl("default_key_ttl", &fp.default_key_ttl)?;
    let max_key_ttl = ttl("max_key_ttl", &fp.max_key_ttl)?;
    if let (Some(default), Some(max)) = (default_key_ttl, max_key_ttl) {
        if default > max {
            return err(format!(
                "profiles.{name}.default_key_ttl ({}) is longer than max_key_ttl ({})",
                humantime::format_duration(default),
                humantime::format_duration(max)
            ));
        }
    }
    let orgs = fp.lease_sweep_org_ids.clone().unwrap_or_default();
    if let Some(bad) = orgs.iter().find(|o| !validate::is_org_id(o)) {
        return err(format!(
            "profiles.{name}.lease_sweep_org_ids: {bad:?} is not a 24-hex org id"
        ));
    }
    Ok(LeasePolicy {
        default_key_ttl,
        max_key_ttl,
        lease_sweep_org_ids: orgs,
    })
}
