//! Configuration as the binary reads it (`serve --check-config`): flag > environment >
//! TOML file for every setting, as one table, and the start-up refusal of a network
//! listener without caller authentication and of settings that void a guarantee of the
//! shared store or of idempotency.
use std::{
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

const BIN: &str = env!("CARGO_BIN_EXE_atlas-grpc-gateway");

/// One setting: how a flag, a variable and the file say it, three distinct values, and
/// where `--check-config` shows it.
struct Row {
    flag: &'static str,
    env: &'static str,
    /// The TOML for a value (`{}`), e.g. `listen = "{}"`.
    file: &'static str,
    values: [&'static str; 3], // flag, env, file
    /// JSON pointer into the printed config and how each value is printed.
    pointer: &'static str,
    shown: [&'static str; 3],
}

const fn row(
    flag: &'static str,
    env: &'static str,
    file: &'static str,
    values: [&'static str; 3],
    pointer: &'static str,
    shown: [&'static str; 3],
) -> Row {
    Row {
        flag,
        env,
        file,
        values,
        pointer,
        shown,
    }
}

const ROWS: &[Row] = &[
    row(
        "--listen",
        "ATLAS_GATEWAY_LISTEN",
        r#"listen = "{}""#,
        ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"],
        "/listen",
        ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"],
    ),
    row(
        "--metrics-listen",
        "ATLAS_GATEWAY_METRICS_LISTEN",
        r#"metrics_listen = "{}""#,
        ["127.0.0.1:11", "127.0.0.1:12", "127.0.0.1:13"],
        "/metrics_listen",
        ["127.0.0.1:11", "127.0.0.1:12", "127.0.0.1:13"],
    ),
    row(
        "--log-format",
        "ATLAS_GATEWAY_LOG_FORMAT",
        r#"log_format = "{}""#,
        ["json", "text", "json"],
        "/log_format",
        ["json", "text", "json"],
    ),
    row(
        "--atlas-base-url",
        "MONGODB_ATLAS_BASE_URL",
        r#"base_url = "{}""#,
        [
            "https://flag.example",
            "https://env.example",
            "https://file.example",
        ],
        "/profiles/default/base_url",
        [
            "https://flag.example",
            "https://env.example",
            "https://file.example",
        ],
    ),
    row(
        "--token-url",
        "MONGODB_ATLAS_TOKEN_URL",
        r#"token_url = "{}""#,
        [
            "https://flag.example/t",
            "https://env.example/t",
            "https://file.example/t",
        ],
        "/profiles/default/token_url",
        [
            "https://flag.example/t",
            "https://env.example/t",
            "https://file.example/t",
        ],
    ),
    row(
        "--api-version",
        "ATLAS_GATEWAY_API_VERSION",
        r#"api_version = "{}""#,
        ["2023-01-01", "2024-01-01", "2025-01-01"],
        "/api_version",
        ["2023-01-01", "2024-01-01", "2025-01-01"],
    ),
    row(
        "--client-id",
        "MONGODB_ATLAS_CLIENT_ID",
        "[profiles.default]\nclient_id = \"{}\"",
        ["flag-id", "env-id", "file-id"],
        "/profiles/default/credentials/client_id",
        ["flag-id", "env-id", "file-id"],
    ),
    row(
        "--shutdown-grace",
        "ATLAS_GATEWAY_SHUTDOWN_GRACE",
        r#"shutdown_grace = "{}""#,
        ["1s", "2s", "3s"],
        "/shutdown_grace",
        ["1000ms", "2000ms", "3000ms"],
    ),
    row(
        "--idempotency-window",
        "ATLAS_GATEWAY_IDEMPOTENCY_WINDOW",
        r#"idempotency_window = "{}""#,
        ["6m", "7m", "8m"],
        "/idempotency_window",
        ["360000ms", "420000ms", "480000ms"],
    ),
    row(
        "--request-timeout",
        "ATLAS_GATEWAY_REQUEST_TIMEOUT",
        r#"request_timeout = "{}""#,
        ["11s", "12s", "13s"],
        "/request_timeout",
        ["11000ms", "12000ms", "13000ms"],
    ),
    row(
        "--max-call-duration",
        "ATLAS_GATEWAY_MAX_CALL_DURATION",
        r#"max_call_duration = "{}""#,
        ["1m 30s", "2m", "3m"],
        "/max_call_duration",
        ["90000ms", "120000ms", "180000ms"],
    ),
    row(
        "--max-concurrency",
        "ATLAS_GATEWAY_MAX_CONCURRENCY",
        "max_concurrency = {}",
        ["1", "2", "3"],
        "/max_concurrency",
        ["1", "2", "3"],
    ),
    row(
        "--allow-unauthenticated-network",
        "ATLAS_GATEWAY_ALLOW_UNAUTHENTICATED_NETWORK",
        "allow_unauthenticated_network = {}",
        ["false", "true", "false"],
        "/allow_unauthenticated_network",
        ["false", "true", "false"],
    ),
    row(
        "--tls-cert",
        "ATLAS_GATEWAY_TLS_CERT",
        "[tls]\ncert = \"{}\"\nkey = \"k.pem\"",
        ["flag.pem", "env.pem", "file.pem"],
        "/tls/cert",
        ["flag.pem", "env.pem", "file.pem"],
    ),
];

fn check_config(args: &[&str], env: &[(&str, &str)], file: Option<&str>) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--check-config"]).args(args).env_clear();
    cmd.env("MONGODB_ATLAS_CLIENT_SECRET", "s3cret");
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(text) = file {
        let path = dir.path().join("gateway.toml");
        std::fs::write(&path, text).unwrap();
        cmd.arg("--config").arg(path);
    }
    cmd.output().unwrap()
}

fn shown(out: &Output, pointer: &str) -> String {
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{e}: {text}{}", String::from_utf8_lossy(&out.stderr)));
    match v.pointer(pointer) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => panic!("{pointer} not in {v}"),
    }
}

#[test]
fn flags_beat_environment_beats_file_for_every_setting() {
    for r in ROWS {
        let file = r.file.replace("{}", r.values[2]);
        let mut env = vec![(r.env, r.values[1])];
        if r.env == "ATLAS_GATEWAY_TLS_CERT" {
            env.push(("ATLAS_GATEWAY_TLS_KEY", "k.pem"));
        }
        let mut flags = vec![r.flag, r.values[0]];
        if r.flag == "--tls-cert" {
            flags.extend(["--tls-key", "k.pem"]);
        }
        let id = [("MONGODB_ATLAS_CLIENT_ID", "base-id")];
        let base: &[(&str, &str)] = if r.env == "MONGODB_ATLAS_CLIENT_ID" {
            &[]
        } else {
            &id
        };
        let with = |extra: &[(&'static str, &'static str)]| [base, extra].concat();
        let cases = [
            (vec![], with(&[]), 2, "file alone"),
            (vec![], with(&env), 1, "environment over file"),
            (
                flags.clone(),
                with(&env),
                0,
                "flag over environment and file",
            ),
        ];
        for (args, env, want, what) in cases {
            let out = check_config(&args, &env, Some(&file));
            assert_eq!(
                out.status.code(),
                Some(0),
                "{} {what}: {}",
                r.flag,
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(shown(&out, r.pointer), r.shown[want], "{} {what}", r.flag);
        }
    }
}

#[test]
fn a_network_listener_without_caller_authentication_refuses_to_start() {
    let sa = [
        ("MONGODB_ATLAS_CLIENT_ID", "id"),
        ("ATLAS_GATEWAY_LISTEN", "0.0.0.0:50051"),
    ];
    let out = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .envs(sa)
        .env("MONGODB_ATLAS_CLIENT_SECRET", "s3cret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    for names in [
        "loopback",
        "[callers.NAME]",
        "mTLS",
        "--allow-unauthenticated-network",
        "ATLAS_GATEWAY_ALLOW_UNAUTHENTICATED_NETWORK=true",
    ] {
        assert!(stderr.contains(names), "{names} not in {stderr}");
    }
    assert!(!stderr.contains("s3cret"));

    // The three ways that do start: loopback, caller authentication, explicit opt-out.
    let loopback = check_config(&["--listen", "[::1]:50051"], &sa[..1], None);
    let opt_out_env = check_config(
        &[],
        &[
            sa[0],
            sa[1],
            ("ATLAS_GATEWAY_ALLOW_UNAUTHENTICATED_NETWORK", "true"),
        ],
        None,
    );
    let opt_out_flag = check_config(&["--allow-unauthenticated-network"], &sa, None);
    // Bearer tokens in clear on a network: refused (exit 64, one line naming TLS and
    // the opt-out) unless opted out, as a mesh that encrypts pod traffic would.
    let plaintext = check_config(
        &[],
        &[sa[0], sa[1], ("APP_TOKEN", "t")],
        Some("caller_token_envs = [\"APP_TOKEN\"]"),
    );
    let said = String::from_utf8_lossy(&plaintext.stderr);
    assert_eq!(plaintext.status.code(), Some(64), "{said}");
    assert!(
        said.contains("TLS") && said.contains("--allow-plaintext-caller-tokens"),
        "{said}"
    );
    assert_eq!(said.trim().lines().count(), 1, "{said}");
    let opted_in = ("ATLAS_GATEWAY_ALLOW_PLAINTEXT_CALLER_TOKENS", "true");
    let tokens = check_config(
        &[],
        &[sa[0], sa[1], ("APP_TOKEN", "t"), opted_in],
        Some("caller_token_envs = [\"APP_TOKEN\"]"),
    );
    let mtls = check_config(
        &[
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
            "--tls-client-ca",
            "ca.pem",
        ],
        &sa,
        None,
    );
    for (out, what) in [
        (loopback, "loopback"),
        (opt_out_env, "env opt-out"),
        (opt_out_flag, "flag opt-out"),
        (tokens, "caller tokens"),
        (mtls, "mTLS"),
    ] {
        assert_eq!(
            out.status.code(),
            Some(0),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // TLS without client certificates does not authenticate callers.
    let tls_only = check_config(&["--tls-cert", "c.pem", "--tls-key", "k.pem"], &sa, None);
    assert_eq!(tls_only.status.code(), Some(64));
}

/// Environment variables for one run.
type Env<'a> = &'a [(&'a str, &'a str)];

#[test]
fn settings_that_would_void_a_store_or_idempotency_guarantee_refuse_to_start() {
    let store = "ATLAS_GATEWAY_SHARED_STORE";
    let window = "ATLAS_GATEWAY_IDEMPOTENCY_WINDOW";
    let longest = ("ATLAS_GATEWAY_MAX_CALL_DURATION", "5m");
    let refused: [(Env, &str); 5] = [
        (
            &[(store, "rediss://gw:pw-1@redis.internal:6380/0#insecure")],
            "#insecure",
        ),
        (
            &[(store, "redis://gw:pw-1@redis.internal:6379/0")],
            "--allow-plaintext-shared-store",
        ),
        (
            &[(store, "redis://gw:pw-1@10.1.2.3:6379/0")],
            "ATLAS_GATEWAY_ALLOW_PLAINTEXT_SHARED_STORE=true",
        ),
        (&[(window, "0s")], "idempotency_window"),
        (&[(window, "5m 4s"), longest], "max_call_duration + 5s"),
    ];
    for (env, names) in refused {
        let env = [&[("MONGODB_ATLAS_CLIENT_ID", "id")], env].concat();
        let out = check_config(&[], &env, None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{env:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(names), "{names} not in {stderr}");
        assert!(
            !stderr.contains("pw-1") && !stderr.contains("s3cret"),
            "{stderr}"
        );
    }
    let id = ("MONGODB_ATLAS_CLIENT_ID", "id");
    let plaintext = (store, "redis://10.1.2.3:6379/0");
    let accepted: [(&[&str], Env); 5] = [
        (&[], &[id, (store, "redis://localhost:6379/0")]),
        (&[], &[id, (store, "rediss://gw:pw@redis.internal:6380/0")]),
        (
            &[],
            &[
                id,
                plaintext,
                ("ATLAS_GATEWAY_ALLOW_PLAINTEXT_SHARED_STORE", "true"),
            ],
        ),
        (&["--allow-plaintext-shared-store"], &[id, plaintext]),
        (&[], &[id, (window, "5m 5s"), longest]),
    ];
    for (args, env) in accepted {
        let out = check_config(args, env, None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?} {env:?}: {stderr}");
    }
}

/// Every way the CLI prints to stdout, with the pipe's reader gone before it writes (as
/// when `serve --check-config | head -1` has read its line): the process ends at once and
/// quietly, status 0, never a "failed printing to stdout" panic (status 101).
#[test]
fn printing_into_a_closed_pipe_exits_quietly() {
    let cases: [&[&str]; 5] = [
        &["serve", "--check-config"],
        &["dev", "--listen", "127.0.0.1:0", "--metrics-listen", "off"],
        &["emulator", "--listen", "127.0.0.1:0"],
        &["--help"],
        &["--version"],
    ];
    for args in cases {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut child = Command::new(BIN)
            .args(args)
            .env_clear()
            .env("MONGODB_ATLAS_CLIENT_ID", "mdb_sa_id_x")
            .env("MONGODB_ATLAS_CLIENT_SECRET", "s3cret")
            .stdout(writer)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // `dev` and `emulator` would serve on if the write error went unnoticed.
        let give_up = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > give_up {
                child.kill().unwrap();
                panic!("{args:?} kept running with nobody reading its output");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}
