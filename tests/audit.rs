//! The audit trail at the gRPC boundary: a chain over 1,000 concurrent mutating calls
//! verifies, and `audit-verify` names the line where an edit, a deletion, a reordering
//! or an insertion shows; a restart continues the chain; a `begin` that cannot be
//! written refuses the call with AUDIT_UNAVAILABLE and Atlas is never called; no secret
//! the emulator issued reaches the audit file or the logs.
mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use atlas_grpc_gateway::{
    audit::AuditTarget,
    emulator::{Emulator, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET},
    pb::{atlas_gateway_client::AtlasGatewayClient, DeleteApiKeyRequest, ListApiKeysRequest},
};
use common::{process::*, *};
use tonic::Code;

fn audited(path: &Path) -> impl FnOnce(&mut atlas_grpc_gateway::config::Config) {
    let target = AuditTarget::File(path.to_path_buf());
    move |c| c.audit_log = Some(target)
}

/// `audit-verify PATH`: (exit code, stdout).
fn audit_verify(path: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_atlas-grpc-gateway"))
        .arg("audit-verify")
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

fn lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().map(String::from).collect()
}

/// The file's lines with `tamper` applied, written next to `path`: the line number
/// `audit-verify` names (it exits 1).
fn bad_line_after(path: &Path, name: &str, tamper: impl FnOnce(&mut Vec<String>)) -> u64 {
    let mut l = lines(path);
    tamper(&mut l);
    let copy = path.with_file_name(name);
    std::fs::write(&copy, l.join("\n") + "\n").unwrap();
    let (code, out) = audit_verify(&copy);
    assert_eq!(code, 1, "{name}: {out}");
    let n = out
        .strip_prefix("bad: line ")
        .and_then(|r| r.split(':').next());
    n.and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{name}: {out}"))
}

#[tokio::test]
async fn a_thousand_concurrent_calls_chain_and_every_tampering_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let gw = Gateway::start_with(Default::default(), audited(&path)).await;
    let client = gw.client();
    let calls = (0..1000).map(|_| {
        let mut c = client.clone();
        async move { c.create_api_key(key_req(DEMO_ORG_ID)).await.is_ok() }
    });
    assert!(join_all(calls).await.into_iter().all(|ok| ok));
    gw.stop().await;

    assert_eq!(audit_verify(&path), (0, "ok: 2001 records\n".to_string()));
    let l = lines(&path);
    let ends = l.iter().filter(|l| l.contains("\"event\":\"end\"")).count();
    assert_eq!(ends, 1000);
    assert!(l[1..]
        .iter()
        .all(|l| l.contains("\"caller\":\"anonymous\"") && l.contains("\"rpc\":\"CreateApiKey\"")));

    let edit = bad_line_after(&path, "edit", |l| l[9] = l[9].replace(DEMO_ORG_ID, "0"));
    assert_eq!(edit, 11, "an edited line 10 breaks line 11's prev");
    let delete = bad_line_after(&path, "delete", |l| {
        l.remove(9);
    });
    assert_eq!(delete, 10);
    let reorder = bad_line_after(&path, "reorder", |l| l.swap(9, 10));
    assert_eq!(reorder, 10);
    let insert = bad_line_after(&path, "insert", |l| {
        let copy = l[4].clone();
        l.insert(9, copy);
    });
    assert_eq!(insert, 10);
}

#[tokio::test]
async fn a_restart_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let gw = Gateway::start_with(Default::default(), audited(&path)).await;
    let key = create_key(&gw, DEMO_ORG_ID).await;
    let emulator = &gw.emulator;
    let again = Replica::start(emulator, audited(&path)).await;
    let delete = DeleteApiKeyRequest {
        org_id: DEMO_ORG_ID.into(),
        api_key_id: key.id.clone(),
    };
    again.client().delete_api_key(delete).await.unwrap();
    again.stop().await;
    gw.stop().await;
    assert_eq!(audit_verify(&path), (0, "ok: 5 records\n".to_string()));
    let l = lines(&path);
    assert_eq!(
        l.iter()
            .filter(|l| l.contains("\"event\":\"open\""))
            .count(),
        1
    );
    assert!(l[4].contains("\"seq\":4") && l[4].contains(&format!("\"api_key_id\":\"{}\"", key.id)));
}

/// A FIFO whose reader takes the `open` line and goes away: every later write fails
/// (EPIPE), as root or not, with no timing involved.
#[cfg(unix)]
#[tokio::test]
async fn an_unwritable_begin_refuses_the_call_before_atlas() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("audit.fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut line = String::new();
            let file = std::fs::File::open(fifo).unwrap();
            std::io::BufReader::new(file).read_line(&mut line).unwrap();
            line
        })
    };
    let gw = Gateway::start_with(Default::default(), audited(&fifo)).await;
    let open = tokio::task::spawn_blocking(move || reader.join().unwrap())
        .await
        .unwrap();
    assert!(open.contains("\"event\":\"open\""), "{open}");
    let err = gw
        .client()
        .create_api_key(key_req(DEMO_ORG_ID))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert_eq!(reason(&err), "AUDIT_UNAVAILABLE");
    assert_eq!(
        gw.emulator.counters().total_requests(),
        0,
        "Atlas never called"
    );
    // Reads change nothing and are not audited: they still answer.
    let list = ListApiKeysRequest {
        org_id: DEMO_ORG_ID.into(),
        ..Default::default()
    };
    gw.client().list_api_keys(list).await.unwrap();
    gw.stop().await;
}

/// The binary with `--audit-log`, JSON logs to `log`.
fn audited_process(emulator: &Emulator, audit: &Path, log: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_atlas-grpc-gateway"))
        .arg("serve")
        .arg("--audit-log")
        .arg(audit)
        .env_clear()
        .env("MONGODB_ATLAS_BASE_URL", emulator.base_url())
        .env("MONGODB_ATLAS_CLIENT_ID", DEMO_CLIENT_ID)
        .env("MONGODB_ATLAS_CLIENT_SECRET", DEMO_CLIENT_SECRET)
        .env("ATLAS_GATEWAY_LISTEN", "127.0.0.1:0")
        .env("ATLAS_GATEWAY_LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn no_secret_the_emulator_issued_reaches_the_audit_file_or_the_logs() {
    let emulator = Emulator::start(Default::default(), loopback())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (audit, log): (PathBuf, PathBuf) = (dir.path().join("audit.jsonl"), dir.path().join("log"));
    let mut child = audited_process(&emulator, &audit, &log);
    let addr = wait_serving(&mut child, &log).await;
    let mut client = AtlasGatewayClient::new(channel(addr).await);
    let mut secrets = vec![DEMO_CLIENT_SECRET.to_string()];
    for _ in 0..3 {
        let key = client.create_api_key(key_req(DEMO_ORG_ID)).await.unwrap();
        secrets.push(key.into_inner().api_key.unwrap().private_key);
    }
    let link = client
        .create_link_token(link_req(DEMO_ORG_ID))
        .await
        .unwrap();
    secrets.push(link.into_inner().link_token);
    secrets.extend(emulator.issued_tokens());
    signal(&child, "-TERM");
    let (status, logs) = wait_exit(child, &log).await;
    assert!(status.success(), "{logs}");
    assert!(
        secrets.len() >= 6 && secrets.iter().all(|s| s.len() >= 8),
        "{}",
        secrets.len()
    );
    let trail = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(trail.lines().count(), 9, "open + 4 × (begin, end)");
    assert!(
        logs.contains("\"caller\":\"anonymous\""),
        "the per-call line names the caller"
    );
    for secret in &secrets {
        assert!(
            !trail.contains(secret.as_str()),
            "a secret in the audit file"
        );
        assert!(!logs.contains(secret.as_str()), "a secret in the logs");
    }
}
