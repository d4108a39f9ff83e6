use std::io::BufReader;

use super::{verify::verify, *};

fn entry(caller: &str) -> Entry {
    Entry {
        caller: caller.into(),
        rpc: "DeleteApiKey",
        org_id: "o".into(),
        ..Entry::default()
    }
}

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[tokio::test]
async fn begin_and_end_chain_and_a_reopen_continues() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let target = AuditTarget::File(path.clone());
    let log = AuditLog::open(&target).unwrap();
    let pending = log.begin(entry("lease-sweeper")).await.unwrap();
    let object = ObjectIds {
        api_key_id: "k1".into(),
        ..ObjectIds::default()
    };
    pending
        .end(Outcome {
            code: "OK",
            object,
            ..Outcome::default()
        })
        .await;
    drop(log);
    let log = AuditLog::open(&target).unwrap();
    drop(log.begin(entry("a")).await.unwrap()); // dropped: end CANCELLED, queued
    let after = log.begin(entry("b")).await.unwrap(); // written after the queued end
    after
        .end(Outcome {
            code: "OK",
            ..Outcome::default()
        })
        .await;
    let written = lines(&path);
    assert_eq!(written.len(), 7, "{written:?}");
    assert!(written[4].contains("\"CANCELLED\"") && written[4].contains("\"caller\":\"a\""));
    let first: serde_json::Value = serde_json::from_str(&written[0]).unwrap();
    assert_eq!(
        (first["event"].as_str(), first["seq"].as_u64()),
        (Some("open"), Some(0))
    );
    assert_eq!(first["prev"].as_str(), Some(writer::GENESIS));
    let end: serde_json::Value = serde_json::from_str(&written[2]).unwrap();
    assert_eq!(
        (end["caller"].as_str(), end["api_key_id"].as_str()),
        (Some("lease-sweeper"), Some("k1"))
    );
    let file = std::fs::File::open(&path).unwrap();
    assert_eq!(verify(BufReader::new(file)), Ok(7));
}

#[test]
fn verify_names_the_first_bad_line() {
    let bad = |text: &str| verify(text.as_bytes()).unwrap_err().line;
    assert_eq!(bad("{\"seq\":0,\"event\":\"begin\",\"prev\":\"00\"}\n"), 1);
    assert_eq!(bad("not json\n"), 1);
    let open = format!(
        "{{\"seq\":0,\"event\":\"open\",\"prev\":\"{}\"}}",
        writer::GENESIS
    );
    assert_eq!(verify(format!("{open}\n").as_bytes()), Ok(1));
    assert_eq!(bad(&format!("{open}\n{open}\n")), 2);
    assert_eq!(bad(&open), 1, "no newline: a torn line");
}

#[test]
fn an_unwritable_open_line_refuses_to_start() {
    #[cfg(target_os = "linux")]
    {
        let e = AuditLog::open(&AuditTarget::File("/dev/full".into())).unwrap_err();
        assert!(e.to_string().contains("/dev/full"), "{e}");
    }
    let e = AuditLog::open(&AuditTarget::File("/nonexistent-dir/a.jsonl".into())).unwrap_err();
    assert!(e.to_string().contains("/nonexistent-dir/a.jsonl"), "{e}");
}
