//! Caller security at the gRPC listener: TLS, mTLS (rcgen certificates) and static
//! caller bearer tokens. A refused caller never reaches Atlas, and a refused handshake
//! is logged (once per peer and reason) and counted.
mod common;
#[path = "tls/v1_client.rs"]
mod v1_client;

use std::{
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
};

use atlas_grpc_gateway::{
    callers::Caller,
    config::TlsConfig,
    emulator::{Emulator, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET},
    pb::atlas_gateway_client::AtlasGatewayClient,
    secret::Secret,
};
use common::{process::*, *};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tonic::{
    transport::{Certificate, ClientTlsConfig, Endpoint, Identity},
    Code,
};

struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
    client_cert: String,
    client_key: String,
    /// A second caller's certificate and key, from the same CA.
    other_cert: String,
    other_key: String,
}

fn pki() -> Pki {
    // A name of its own per CA: a stranger CA is an unknown issuer, not a look-alike.
    static CAS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CAS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("test CA {n}"));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_key_pem = ca_key.serialize_pem();
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf(vec!["localhost".into(), "127.0.0.1".into()]);
    let (client_cert, client_key) = leaf(vec!["billing-service".into()]);
    let (other_cert, other_key) = leaf(vec!["reports-service".into()]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("server.pem"), server_cert).unwrap();
    std::fs::write(dir.path().join("server.key"), server_key).unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.path().join("ca.key"), ca_key_pem).unwrap();
    std::fs::write(dir.path().join("client.pem"), &client_cert).unwrap();
    std::fs::write(dir.path().join("client.key"), &client_key).unwrap();
    Pki {
        dir,
        ca_pem: ca.pem(),
        client_cert,
        client_key,
        other_cert,
        other_key,
    }
}

async fn tls_client(
    gw: &Gateway,
    pki: &Pki,
    with_identity: bool,
) -> AtlasGatewayClient<tonic::transport::Channel> {
    let identity = with_identity.then_some((pki.client_cert.as_str(), pki.client_key.as_str()));
    tls_client_as(gw.addr, pki, identity).await
}

/// A client of the gateway at `addr` that trusts `pki`'s CA, with this identity if any.
async fn tls_client_as(
    addr: SocketAddr,
    pki: &Pki,
    identity: Option<(&str, &str)>,
) -> AtlasGatewayClient<tonic::transport::Channel> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let ch = Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_lazy();
    AtlasGatewayClient::new(ch)
}

async fn mtls_gateway(pki: &Pki) -> Gateway {
    let dir = pki.dir.path().to_path_buf();
    Gateway::start_with(Default::default(), |c| {
        c.tls = Some(TlsConfig {
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            client_ca: Some(dir.join("ca.pem")),
        });
    })
    .await
}

#[tokio::test]
async fn mtls_callers_have_their_own_idempotency_records() {
    let pki = pki();
    let gw = mtls_gateway(&pki).await;
    let mut req = key_req(DEMO_ORG_ID);
    req.request_id = "0d9a1c44-same-id".into();
    let billing = tls_client(&gw, &pki, true).await;
    let reports = tls_client_as(gw.addr, &pki, Some((&pki.other_cert, &pki.other_key))).await;
    let mut private = Vec::new();
    for mut client in [billing.clone(), billing, reports] {
        let resp = client.create_api_key(req.clone()).await.unwrap();
        private.push(resp.into_inner().api_key.unwrap().private_key);
    }
    assert_eq!(
        private[0], private[1],
        "the same certificate gets its replay"
    );
    assert_ne!(private[0], private[2], "another certificate never does");
    assert_eq!(gw.emulator.counters().api_keys_created, 2);
    gw.stop().await;
}

#[tokio::test]
async fn mtls_accepts_only_callers_with_a_certificate_from_the_ca() {
    let pki = pki();
    let dir = pki.dir.path().to_path_buf();
    let gw = mtls_gateway(&pki).await;
    let mut ok = tls_client(&gw, &pki, true).await;
    ok.create_link_token(link_req(DEMO_ORG_ID)).await.unwrap();

    let mut anonymous = tls_client(&gw, &pki, false).await;
    let err = anonymous
        .create_link_token(link_req(DEMO_ORG_ID))
        .await
        .unwrap_err();
    assert!(
        format!("{err:?}").contains("CertificateRequired"),
        "the handshake is refused: {err:?}"
    );

    let err = gw
        .client()
        .create_link_token(link_req(DEMO_ORG_ID))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.code(),
            Code::Unavailable | Code::Unknown | Code::Internal
        ),
        "plaintext is refused: {err:?}"
    );
    assert_eq!(
        gw.emulator.counters().link_tokens_created,
        1,
        "refused callers never reach Atlas"
    );

    // The healthcheck subcommand (Docker HEALTHCHECK, exec probes) speaks mTLS when told to.
    let addr = gw.addr.to_string();
    let healthcheck = |extra: Vec<std::path::PathBuf>, flags: &'static [&'static str]| {
        let addr = addr.clone();
        tokio::task::spawn_blocking(move || {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_atlas-grpc-gateway"));
            cmd.args(["healthcheck", "--addr", &addr]).env_clear();
            for (flag, path) in flags.iter().zip(&extra) {
                cmd.arg(flag).arg(path);
            }
            cmd.output().unwrap().status.code()
        })
    };
    let (ca, cert, key) = (
        dir.join("ca.pem"),
        dir.join("client.pem"),
        dir.join("client.key"),
    );
    let mtls = healthcheck(
        vec![ca.clone(), cert, key],
        &["--tls-ca", "--tls-cert", "--tls-key"],
    );
    assert_eq!(mtls.await.unwrap(), Some(0));
    let no_identity = healthcheck(vec![ca], &["--tls-ca"]);
    assert_eq!(no_identity.await.unwrap(), Some(1), "no client certificate");
    assert_eq!(
        healthcheck(vec![], &[]).await.unwrap(),
        Some(1),
        "plaintext"
    );
    gw.stop().await;
}

#[tokio::test]
async fn caller_tokens_gate_the_gateway_but_not_health() {
    let gw = Gateway::start_with(Default::default(), |c| {
        c.callers = vec![Caller::flat(
            "CALLER_TOKEN_APP",
            Secret::new("caller-token-1"),
        )]
    })
    .await;
    let err = gw
        .client()
        .create_link_token(link_req(DEMO_ORG_ID))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(reason(&err), "CALLER_UNAUTHENTICATED");
    let req = with_meta(
        link_req(DEMO_ORG_ID),
        &[("authorization", "Bearer nope")],
        None,
    );
    let err = gw.client().create_link_token(req).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(reason(&err), "CALLER_NOT_ALLOWED");
    assert_eq!(gw.emulator.counters().total_requests(), 0);
    let req = with_meta(
        link_req(DEMO_ORG_ID),
        &[("authorization", "Bearer caller-token-1")],
        None,
    );
    gw.client().create_link_token(req).await.unwrap();

    let mut health = tonic_health::pb::health_client::HealthClient::new(channel(gw.addr).await);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(status.into_inner().status, 1);
    gw.stop().await;
}

/// The gateway binary serving mTLS from `pki`, metrics on, JSON logs to `log`.
fn mtls_process(pki: &Pki, emulator: &Emulator, log: &Path) -> Child {
    let dir = pki.dir.path();
    Command::new(env!("CARGO_BIN_EXE_atlas-grpc-gateway"))
        .arg("serve")
        .env_clear()
        .env("MONGODB_ATLAS_BASE_URL", emulator.base_url())
        .env("MONGODB_ATLAS_CLIENT_ID", DEMO_CLIENT_ID)
        .env("MONGODB_ATLAS_CLIENT_SECRET", DEMO_CLIENT_SECRET)
        .env("ATLAS_GATEWAY_LISTEN", "127.0.0.1:0")
        .env("ATLAS_GATEWAY_METRICS_LISTEN", "127.0.0.1:0")
        .env("ATLAS_GATEWAY_LOG_FORMAT", "json")
        .env("ATLAS_GATEWAY_TLS_CERT", dir.join("server.pem"))
        .env("ATLAS_GATEWAY_TLS_KEY", dir.join("server.key"))
        .env("ATLAS_GATEWAY_TLS_CLIENT_CA", dir.join("ca.pem"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// The value of a Prometheus sample line `name{labels} value`, if present.
fn sample(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test]
async fn refused_handshakes_are_logged_once_per_peer_and_reason_and_all_counted() {
    let stranger = pki(); // certificates from another CA
    let pki = pki();
    let emulator = Emulator::start(Default::default(), loopback())
        .await
        .unwrap();
    let log = pki.dir.path().join("gateway.log");
    let child = mtls_process(&pki, &emulator, &log);
    let mut addrs = None;
    eventually("the gateway logs its addresses", || {
        addrs = logged_addr(&log, "listen").zip(logged_addr(&log, "metrics_listen"));
        std::future::ready(addrs.is_some())
    })
    .await;
    let (addr, metrics) = addrs.unwrap();
    let mut ok = tls_client_as(addr, &pki, Some((&pki.client_cert, &pki.client_key))).await;
    ok.create_link_token(link_req(DEMO_ORG_ID)).await.unwrap();
    for _ in 0..3 {
        let unknown_ca = Some((stranger.client_cert.as_str(), stranger.client_key.as_str()));
        for identity in [None, unknown_ca] {
            let mut refused = tls_client_as(addr, &pki, identity).await;
            assert!(refused
                .create_link_token(link_req(DEMO_ORG_ID))
                .await
                .is_err());
        }
    }
    v1_client::v1_handshakes(pki.dir.path(), addr).await;
    let expected = [
        ("no_client_certificate", 3),
        ("unknown_ca", 3),
        ("bad_certificate", 2),
    ];
    let url = format!("http://{metrics}/metrics");
    let series =
        |reason: &str| format!("atlas_gateway_tls_handshake_failures_total{{reason=\"{reason}\"}}");
    eventually("every refusal is counted", || {
        let url = url.clone();
        async move {
            let text = reqwest::get(url).await.unwrap().text().await.unwrap();
            expected
                .iter()
                .all(|(r, n)| sample(&text, &series(r)) == Some(*n))
        }
    })
    .await;
    // SIGTERM: the gateway flushes its batched log lines at exit.
    signal(&child, "-TERM");
    let (status, logs) = wait_exit(child, &log).await;
    assert_eq!(status.code(), Some(0), "{logs}");
    let refused: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("refused a TLS handshake"))
        .collect();
    assert_eq!(
        refused.len(),
        expected.len(),
        "one line per peer and reason: {refused:#?}"
    );
    let texts = [
        ("no_client_certificate", "peer sent no certificates"),
        ("unknown_ca", "UnknownIssuer"),
        ("bad_certificate", "UnsupportedCertVersion"),
    ];
    for (reason, _) in &expected {
        let line = refused
            .iter()
            .find(|l| l.contains(&format!("\"reason\":\"{reason}\"")))
            .unwrap_or_else(|| panic!("no line for {reason}: {refused:#?}"));
        assert!(line.contains("\"level\":\"WARN\""), "{line}");
        assert!(line.contains("\"peer\":\"127.0.0.1:"), "{line}");
        let text = texts.iter().find(|(r, _)| r == reason).unwrap().1;
        assert!(line.contains(text), "the rustls reason: {line}");
    }
    for content in ["BEGIN CERTIFICATE", "billing-service", "legacy-v1"] {
        assert!(
            !logs.contains(content),
            "no certificate content in logs: {content}"
        );
    }
}
