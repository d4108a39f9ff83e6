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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::{Config, MapEnv, ServeArgs};
    use super::*;

    fn load(args: &ServeArgs, toml: &str) -> Result<Config, ConfigError> {
        let env = MapEnv(HashMap::from([
            (
                "MONGODB_ATLAS_CLIENT_ID".to_string(),
                "mdb_sa_id_x".to_string(),
            ),
            (
                "MONGODB_ATLAS_CLIENT_SECRET".to_string(),
                "s3cret".to_string(),
            ),
        ]));
        Config::from_parts(args, Some(toml), "test.toml", &env)
    }

    const ORG: &str = "5f1a0c2b3d4e5f6a7b8c9d0e";

    #[test]
    fn lease_settings_per_profile_and_the_sweep_interval() {
        let toml = format!(
            "lease_sweep_interval = \"5m\"\n[profiles.default]\ndefault_key_ttl = \"1h\"\nmax_key_ttl = \"1d\"\nlease_sweep_org_ids = [\"{ORG}\"]\n"
        );
        let c = load(&ServeArgs::default(), &toml).unwrap();
        let lease = &c.profiles["default"].lease;
        assert_eq!(lease.default_key_ttl, Some(Duration::from_secs(3600)));
        assert_eq!(lease.max_key_ttl, Some(Duration::from_secs(86400)));
        assert_eq!(lease.lease_sweep_org_ids, BTreeSet::from([ORG.to_string()]));
        assert_eq!(c.lease_sweep_interval, Duration::from_secs(300));
        let flag = ServeArgs {
            lease_sweep_interval: Some("30s".into()),
            ..ServeArgs::default()
        };
        assert_eq!(
            load(&flag, &toml).unwrap().lease_sweep_interval,
            Duration::from_secs(30)
        );
        let none = load(&ServeArgs::default(), "").unwrap();
        assert_eq!(none.lease_sweep_interval, Duration::from_secs(60));
        assert_eq!(none.profiles["default"].lease.default_key_ttl, None);
    }

    #[test]
    fn bad_lease_settings_are_one_line_each() {
        for (toml, says) in [
            (
                "[profiles.default]\ndefault_key_ttl = \"30s\"",
                "default_key_ttl",
            ),
            ("[profiles.default]\nmax_key_ttl = \"soon\"", "max_key_ttl"),
            (
                "[profiles.default]\ndefault_key_ttl = \"2h\"\nmax_key_ttl = \"1h\"",
                "longer than max_key_ttl",
            ),
            (
                "[profiles.default]\nlease_sweep_org_ids = [\"nope\"]",
                "lease_sweep_org_ids",
            ),
            ("lease_sweep_interval = \"0s\"", "lease_sweep_interval"),
        ] {
            let e = load(&ServeArgs::default(), toml).unwrap_err().to_string();
            assert!(e.contains(says), "{toml}: {e}");
        }
    }
}
