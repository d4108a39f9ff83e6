use std::collections::HashMap;

use crate::config::{Config, MapEnv, ServeArgs};

const PROFILES: &str = r#"
[profiles.billing]
client_id = "b"
client_secret_env = "S"
[profiles.ops]
client_id = "o"
client_secret_env = "S"
"#;

fn load(args: &ServeArgs, callers: &str) -> Result<Config, String> {
    let env = MapEnv(HashMap::from([
        ("MONGODB_ATLAS_CLIENT_ID".to_string(), "id".to_string()),
        ("MONGODB_ATLAS_CLIENT_SECRET".into(), "s3cret".into()),
        ("S".into(), "s3cret".into()),
        ("TOKEN_A".into(), "tok3n-a".into()),
    ]));
    let text = format!("{callers}\n{PROFILES}");
    Config::from_parts(args, Some(&text), "t.toml", &env).map_err(|e| e.to_string())
}

#[test]
fn callers_bind_profiles_and_default_to_the_first() {
    let c = load(
        &ServeArgs::default(),
        "caller_token_envs = [\"TOKEN_A\"]\n[callers.billing-app]\ntoken_env = \"TOKEN_A\"\nprofiles = [\"billing\", \"ops\"]",
    )
    .unwrap();
    let flat = &c.callers[0];
    assert_eq!(
        (flat.name.as_str(), flat.flat, &flat.profiles),
        ("TOKEN_A", true, &None)
    );
    let app = &c.callers[1];
    assert_eq!(app.default_profile.as_deref(), Some("billing"));
    assert!(app.profiles.as_ref().unwrap().contains("ops"));
    let every = load(
        &ServeArgs::default(),
        "[callers.x]\ntoken_env = \"TOKEN_A\"\nprofiles = [\"*\"]",
    )
    .unwrap();
    assert_eq!(
        (
            &every.callers[0].profiles,
            &every.callers[0].default_profile
        ),
        (&None, &None)
    );
}

#[test]
fn bad_callers_are_one_line_without_the_token() {
    let cases = [
        ("[callers.x]\nprofiles = [\"billing\"]", "needs token_env or mtls_identity"),
        ("[callers.x]\ntoken_env = \"TOKEN_A\"", "profiles is required"),
        ("[callers.x]\ntoken_env = \"TOKEN_A\"\nprofiles = [\"nope\"]", "not under [profiles]"),
        ("[callers.x]\ntoken_env = \"NOT_SET\"\nprofiles = [\"ops\"]", "NOT_SET"),
        ("[callers.x]\ntoken_env = \"TOKEN_A\"\nprofiles = [\"ops\"]\ndefault_profile = \"billing\"", "not one of its profiles"),
        ("[callers.x]\nmtls_identity = \"spiffe://a/b\"\nprofiles = [\"ops\"]", "needs an mTLS listener"),
        ("[callers.anonymous]\ntoken_env = \"TOKEN_A\"\nprofiles = [\"ops\"]", "caller name"),
        ("[callers.x]\ntoken_env = \"TOKEN_A\"\nprofiles = [\"ops\"]\nsecret = 1", "unknown field"),
    ];
    for (toml, expect) in cases {
        let msg = load(&ServeArgs::default(), toml).unwrap_err();
        assert!(msg.contains(expect), "{msg:?} should mention {expect:?}");
        assert!(!msg.contains("tok3n") && !msg.contains('\n'), "{msg:?}");
    }
}

#[test]
fn plaintext_tokens_on_a_network_need_tls_or_the_opt_out() {
    let args = ServeArgs {
        listen: Some("0.0.0.0:50051".parse().unwrap()),
        ..ServeArgs::default()
    };
    let tokens = "[callers.x]\ntoken_env = \"TOKEN_A\"\nprofiles = [\"ops\"]";
    let msg = load(&args, tokens).unwrap_err();
    assert!(
        msg.contains("without TLS") && msg.contains("--allow-plaintext-caller-tokens"),
        "{msg}"
    );
    assert!(
        msg.contains("ATLAS_GATEWAY_ALLOW_PLAINTEXT_CALLER_TOKENS=true"),
        "{msg}"
    );
    let opted = ServeArgs {
        allow_plaintext_caller_tokens: Some(true),
        ..args.clone()
    };
    assert!(load(&opted, tokens).unwrap().allow_plaintext_caller_tokens);
    let on_loopback = load(&ServeArgs::default(), tokens).unwrap();
    assert!(!on_loopback.allow_plaintext_caller_tokens);
}
