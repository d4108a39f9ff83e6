use std::collections::HashMap;

use super::*;

fn env(pairs: &[(&str, &str)]) -> MapEnv {
    MapEnv(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
    )
}

fn load(args: &ServeArgs, toml: Option<&str>, e: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_parts(args, toml, "test.toml", &env(e))
}

const SA: &[(&str, &str)] = &[
    ("MONGODB_ATLAS_CLIENT_ID", "mdb_sa_id_x"),
    ("MONGODB_ATLAS_CLIENT_SECRET", "s3cret"),
];

#[test]
fn defaults_from_atlas_cli_env_names() {
    let c = load(&ServeArgs::default(), None, SA).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:50051");
    assert_eq!(c.api_version, "2023-01-01");
    let p = &c.profiles["default"];
    assert_eq!(p.base_url, "https://cloud.mongodb.com");
    assert_eq!(p.token_url, "https://cloud.mongodb.com/api/oauth/token");
    assert!(
        matches!(&p.credentials, Credentials::ServiceAccount { client_id, .. } if client_id == "mdb_sa_id_x")
    );
    assert_eq!(c.metrics_listen, None);
    assert_eq!(c.shutdown_grace, Duration::from_secs(20));
}

#[test]
fn api_key_env_names_both_spellings() {
    for (pubk, privk) in [
        (
            "MONGODB_ATLAS_PUBLIC_API_KEY",
            "MONGODB_ATLAS_PRIVATE_API_KEY",
        ),
        ("MONGODB_ATLAS_PUBLIC_KEY", "MONGODB_ATLAS_PRIVATE_KEY"),
    ] {
        let c = load(
            &ServeArgs::default(),
            None,
            &[(pubk, "abcdefgh"), (privk, "priv")],
        )
        .unwrap();
        assert!(
            matches!(&c.profiles["default"].credentials, Credentials::ApiKey { public_key, .. } if public_key == "abcdefgh")
        );
    }
}

#[test]
fn flags_win_over_file_and_file_over_defaults() {
    let toml = r#"
        listen = "127.0.0.1:7000"
        api_version = "2024-05-30"
        base_url = "https://file.example"
        shutdown_grace = "5s"
    "#;
    let args = ServeArgs {
        listen: Some("127.0.0.1:7001".parse().unwrap()),
        ..ServeArgs::default()
    };
    let c = load(&args, Some(toml), SA).unwrap();
    assert_eq!(c.listen.port(), 7001);
    assert_eq!(c.api_version, "2024-05-30");
    assert_eq!(c.profiles["default"].base_url, "https://file.example");
    assert_eq!(c.shutdown_grace, Duration::from_secs(5));
}

#[test]
fn named_profiles_with_policy() {
    let toml = r#"
        default_profile = "billing"
        [profiles.billing]
        client_id_env = "B_ID"
        client_secret_env = "B_SECRET"
        allowed_org_ids = ["5f1a0c2b3d4e5f6a7b8c9d0e"]
        allowed_roles = ["ORG_MEMBER"]
    "#;
    let c = load(
        &ServeArgs::default(),
        Some(toml),
        &[("B_ID", "id"), ("B_SECRET", "sec")],
    )
    .unwrap();
    assert_eq!(c.default_profile, "billing");
    assert_eq!(c.profiles.len(), 1);
    assert!(c.profiles["billing"]
        .allowed_roles
        .as_ref()
        .unwrap()
        .contains("ORG_MEMBER"));
}

#[test]
fn bad_configuration_is_one_clear_line_without_secrets() {
    type Case<'a> = (Option<&'a str>, &'a [(&'a str, &'a str)], &'a str);
    let cases: Vec<Case> = vec![
        (None, &[], "has no Atlas credentials"),
        (None, &[("MONGODB_ATLAS_CLIENT_ID", "x")], "no client secret"),
        (None, &[("MONGODB_ATLAS_CLIENT_SECRET", "s3cret")], "no client id"),
        (None, &[("MONGODB_ATLAS_PUBLIC_API_KEY", "x")], "both a public and a private key"),
        (Some("listen = 5"), SA, "invalid config file test.toml"),
        (Some("nope = 1"), SA, "unknown field"),
        (Some("api_version = \"v2\""), SA, "--api-version"),
        (Some("base_url = \"ftp://x\""), SA, "http(s) URL"),
        (Some("base_url = \"https://u:s3cret@x\""), SA, "must not contain credentials"),
        (Some("base_url = \"ht!tp://u:s3cret@\""), SA, "<redacted>"),
        (Some("shutdown_grace = \"soon\""), SA, "shutdown_grace"),
        (Some("max_concurrency = 0"), SA, "max_concurrency"),
        (Some("default_profile = \"x\""), SA, "default_profile"),
        (Some("[profiles.p]\nclient_id = \"a\"\nclient_secret_env = \"S\"\nallowed_roles = [\"ORG_BOSS\"]"), &[("S", "s3cret")], "allowed_roles"),
        (Some("[profiles.p]\nclient_id = \"a\"\nclient_secret_env = \"S\"\nallowed_org_ids = [\"x\"]"), &[("S", "s3cret")], "allowed_org_ids"),
        (Some("[profiles.p]\nclient_id = \"a\"\nclient_secret_env = \"S\"\nallowed_rpcs = [\"DropOrg\"]"), &[("S", "s3cret")], "allowed_rpcs"),
        (Some("caller_token_envs = [\"MISSING\"]"), SA, "MISSING"),
    ];
    for (toml, e, expect) in cases {
        let msg = load(&ServeArgs::default(), toml, e)
            .unwrap_err()
            .to_string();
        assert!(msg.contains(expect), "{msg:?} should mention {expect:?}");
        assert!(!msg.contains("s3cret") && !msg.contains('\n'), "{msg:?}");
    }
}

#[test]
fn effective_config_prints_redacted() {
    let c = load(&ServeArgs::default(), None, SA).unwrap();
    let printed = serde_json::to_string(&c).unwrap();
    assert!(
        printed.contains("[REDACTED]") && !printed.contains("s3cret"),
        "{printed}"
    );
    assert!(!format!("{c:?}").contains("s3cret"));
}

#[test]
fn durations() {
    assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
    assert_eq!(parse_duration("20s"), Some(Duration::from_secs(20)));
    assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
    assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
    assert_eq!(parse_duration("15"), Some(Duration::from_secs(15)));
    assert_eq!(parse_duration("1h 30m"), Some(Duration::from_secs(5400)));
    assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86400)));
    assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
    for bad in ["", "s", "-1s", "99999999999999999999", "soon"] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
}

#[test]
fn shared_store_from_env_or_file_printed_without_its_password() {
    let args = ServeArgs {
        shared_store: Some("rediss://gw:hunter2@redis.internal:6380/2".into()),
        ..ServeArgs::default()
    };
    let c = load(&args, None, SA).unwrap();
    let store = c.shared_store.as_ref().unwrap();
    assert_eq!(store.prefix, "atlas-gw");
    assert_eq!(
        store.url.expose(),
        "rediss://gw:hunter2@redis.internal:6380/2"
    );
    let shown = serde_json::to_string(&c).unwrap();
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(
        shown.contains("rediss://gw:***@redis.internal:6380/2"),
        "{shown}"
    );
    let file = "shared_store = \"redis://127.0.0.1:6379\"\nshared_store_prefix = \"team-a\"";
    let c = load(&ServeArgs::default(), Some(file), SA).unwrap();
    assert_eq!(c.shared_store.unwrap().prefix, "team-a");
    assert!(load(&ServeArgs::default(), None, SA)
        .unwrap()
        .shared_store
        .is_none());
    for (url, prefix) in [
        ("http://r:1", None),
        ("redis://:pw@", None),
        ("redis://r", Some("a{b}")),
    ] {
        let args = ServeArgs {
            shared_store: Some(url.into()),
            shared_store_prefix: prefix.map(String::from),
            ..ServeArgs::default()
        };
        let e = load(&args, None, SA).unwrap_err().to_string();
        assert!(!e.contains("pw@"), "{e}");
    }
}
