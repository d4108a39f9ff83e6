//! One profile from its file section, the flags and the environment: which Atlas
//! credentials it uses (flag > environment > file; the default profile also reads the
//! Atlas CLI / Terraform variable names) and its policy. Secrets only ever come from
//! the environment and are wrapped in [`Secret`] at once.
use super::{
    check_url, err, lease::lease_policy, positive, ConfigError, Credentials, Env, FileProfile,
    Profile, DEFAULT_PROFILE,
};
use crate::{secret::Secret, validate};

pub(super) struct ProfileDefaults<'a> {
    pub(super) base_url: &'a str,
    pub(super) token_url: Option<&'a str>,
    pub(super) revoke_url: Option<&'a str>,
    pub(super) client_id_flag: Option<&'a str>,
}

pub(super) fn build_profile(
    name: &str,
    fp: FileProfile,
    d: &ProfileDefaults<'_>,
    env: &dyn Env,
) -> Result<Profile, ConfigError> {
    let is_default = name == DEFAULT_PROFILE;
    let lease = lease_policy(name, &fp)?;
    let base_url = match fp.base_url {
        Some(u) => check_url(&format!("profiles.{name}.base_url"), &u)?,
        None => d.base_url.to_string(),
    };
    // The profile's own URL, else the top-level one, else `{base_url}{path}`.
    let endpoint =
        |field: &str, own: Option<String>, top: Option<&str>, path: &str| match (own, top) {
            (Some(u), _) => check_url(&format!("profiles.{name}.{field}"), &u),
            (None, Some(u)) => Ok(u.to_string()),
            (None, None) => Ok(format!("{base_url}{path}")),
        };
    let token_url = endpoint("token_url", fp.token_url, d.token_url, "/api/oauth/token")?;
    let revoke_url = endpoint(
        "revoke_url",
        fp.revoke_url,
        d.revoke_url,
        "/api/oauth/revoke",
    )?;
    // flag > environment > file. The default profile reads --client-id and the Atlas CLI
    // / Terraform variable names first (clap folds MONGODB_ATLAS_CLIENT_ID into the
    // flag), then its file settings; other profiles have only their file settings.
    let standard = |names: &[&str]| -> Option<String> {
        is_default
            .then(|| names.iter().find_map(|v| env.var(v)))
            .flatten()
    };
    let file_env = |var: &Option<String>| var.as_deref().and_then(|v| env.var(v));
    let client_id = is_default
        .then(|| d.client_id_flag.map(String::from))
        .flatten()
        .or_else(|| standard(&["MONGODB_ATLAS_CLIENT_ID"]))
        .or(fp.client_id)
        .or_else(|| file_env(&fp.client_id_env));
    let client_secret =
        standard(&["MONGODB_ATLAS_CLIENT_SECRET"]).or_else(|| file_env(&fp.client_secret_env));
    let public_key = standard(&["MONGODB_ATLAS_PUBLIC_API_KEY", "MONGODB_ATLAS_PUBLIC_KEY"])
        .or(fp.public_key)
        .or_else(|| file_env(&fp.public_key_env));
    let private_key = standard(&["MONGODB_ATLAS_PRIVATE_API_KEY", "MONGODB_ATLAS_PRIVATE_KEY"])
        .or_else(|| file_env(&fp.private_key_env));
    let hint = if is_default {
        "set MONGODB_ATLAS_CLIENT_ID and MONGODB_ATLAS_CLIENT_SECRET (service account) or MONGODB_ATLAS_PUBLIC_API_KEY and MONGODB_ATLAS_PRIVATE_API_KEY (API key)".to_string()
    } else {
        format!("set client_id(_env) and client_secret_env, or public_key(_env) and private_key_env, under [profiles.{name}]")
    };
    // A service account wins when both kinds are complete (it is Atlas's recommended method).
    let credentials = match (client_id, client_secret, public_key, private_key) {
        (Some(id), Some(secret), _, _) => Credentials::ServiceAccount {
            client_id: id,
            client_secret: Secret::new(secret),
        },
        (_, _, Some(public), Some(private)) => Credentials::ApiKey {
            public_key: public,
            private_key: Secret::new(private),
        },
        (Some(_), None, _, _) => {
            return err(format!(
                "profile {name:?}: a client id is set but no client secret; {hint}"
            ))
        }
        (None, Some(_), _, _) => {
            return err(format!(
                "profile {name:?}: a client secret is set but no client id; {hint}"
            ))
        }
        (_, _, Some(_), None) | (_, _, None, Some(_)) => {
            return err(format!(
                "profile {name:?}: API keys need both a public and a private key; {hint}"
            ))
        }
        _ => return err(format!("profile {name:?} has no Atlas credentials; {hint}")),
    };
    if let Some(orgs) = &fp.allowed_org_ids {
        if let Some(bad) = orgs.iter().find(|o| !validate::is_org_id(o)) {
            return err(format!(
                "profiles.{name}.allowed_org_ids: {bad:?} is not a 24-hex org id"
            ));
        }
    }
    if let Some(roles) = &fp.allowed_roles {
        if let Some(bad) = roles
            .iter()
            .find(|r| crate::pb::OrgRole::from_str_name(r).is_none_or(|v| v as i32 == 0))
        {
            return err(format!(
                "profiles.{name}.allowed_roles: {bad:?} is not an Atlas org role (e.g. ORG_MEMBER)"
            ));
        }
    }
    if let Some(rpcs) = &fp.allowed_rpcs {
        if let Some(bad) = rpcs
            .iter()
            .find(|r| !crate::pb::RPC_NAMES.contains(&r.as_str()))
        {
            return err(format!(
                "profiles.{name}.allowed_rpcs: {bad:?} is not an RPC of this gateway (one of {})",
                crate::pb::RPC_NAMES.join(", ")
            ));
        }
    }
    Ok(Profile {
        name: name.to_string(),
        base_url,
        token_url,
        revoke_url,
        credentials,
        allowed_org_ids: fp.allowed_org_ids,
        allowed_roles: fp.allowed_roles,
        allowed_rpcs: fp.allowed_rpcs,
        max_in_flight: positive(
            &format!("profiles.{name}.max_in_flight"),
            fp.max_in_flight.unwrap_or(256),
        )?,
        lease,
    })
}
