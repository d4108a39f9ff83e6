//! Policy: the one place that decides whether a call may go on, in the order a reader
//! checks it: the caller may use the profile, the profile exists, the profile may call
//! the RPC, act on the org, and grant the roles. Runs after validation and before the
//! audit record and any Atlas call. It never authenticates (see `crate::callers`) and
//! never chooses codes or details (see `status`).
use super::status::Failure;
use crate::{callers::CallerIdentity, config::Profile, pb::OrgRole, telemetry::metrics as m};

/// What a call asks to do, as policy sees it.
pub struct Ask<'a> {
    /// Who asks.
    pub caller: &'a CallerIdentity,
    /// The profile it names (or its default).
    pub profile: &'a str,
    /// The RPC (`CreateApiKey`).
    pub method: &'static str,
    /// The org it acts on.
    pub org_id: &'a str,
    /// The roles it would grant (`OrgRole` values; empty unless it creates a key).
    pub roles: &'a [i32],
}

/// The profile the call may use, or why not.
pub fn authorize<'p>(
    ask: &Ask<'_>,
    profile: impl FnOnce(&str) -> Option<&'p Profile>,
) -> Result<&'p Profile, Failure> {
    let deny = |field: &'static str, detail: String| {
        m::policy_denied(ask.caller.name(), field);
        Err(Failure::PolicyDenied {
            caller: ask.caller.name().to_string(),
            field: field.into(),
            detail,
        })
    };
    if let Some(allowed) = &ask.caller.caller().profiles {
        if !allowed.contains(ask.profile) {
            let detail = format!(
                "caller {:?} may not use profile {:?}",
                ask.caller.name(),
                ask.profile
            );
            return deny("x-atlas-profile", detail);
        }
    }
    let profile =
        profile(ask.profile).ok_or_else(|| Failure::UnknownProfile(ask.profile.to_string()))?;
    if profile
        .allowed_rpcs
        .as_ref()
        .is_some_and(|a| !a.contains(ask.method))
    {
        let detail = format!("profile {:?} may not call {}", profile.name, ask.method);
        return deny("rpc", detail);
    }
    if profile
        .allowed_org_ids
        .as_ref()
        .is_some_and(|a| !a.contains(ask.org_id))
    {
        let detail = format!(
            "profile {:?} may not act on org {}",
            profile.name, ask.org_id
        );
        return deny("org_id", detail);
    }
    if let Some(allowed) = &profile.allowed_roles {
        let names = ask.roles.iter().filter_map(|r| OrgRole::try_from(*r).ok());
        if let Some(denied) = names
            .map(|r| r.as_str_name())
            .find(|r| !allowed.contains(*r))
        {
            let detail = format!(
                "profile {:?} may not create API keys with role {denied}",
                profile.name
            );
            return deny("roles", detail);
        }
    }
    Ok(profile)
}
