//! Transport limits against the real binary (contract: "Callers, audit trail and transport
//! limits"): one connection cannot take the gateway down with streams, bodies that never
//! end, oversize messages or headers, and connections are capped and must speak HTTP/2
//! within the preface deadline. Health and reflection need no caller authentication, so
//! the floods go there.
mod common;

use std::{
    net::SocketAddr,
    process::Child,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use atlas_grpc_gateway::{emulator::Emulator, pb::atlas_gateway_client::AtlasGatewayClient};
use bytes::Bytes;
use common::{process::*, *};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::Notify,
};
use tonic::Code;
use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};

const HEALTH_CHECK: &str = "/grpc.health.v1.Health/Check";
/// What each flood stream sends of a message it announces as 1,000,000 bytes.
const FLOOD_BYTES_PER_STREAM: usize = 128 * 1024;
const FLOOD_STREAMS: usize = 2_000;

/// A gateway process with extra environment settings, and its emulator.
struct Running {
    _emulator: Emulator,
    _dir: tempfile::TempDir,
    log: std::path::PathBuf,
    child: Child,
    addr: SocketAddr,
}

impl Running {
    async fn start(env: &[(&str, &str)]) -> Running {
        let emulator = Emulator::start(Default::default(), loopback())
            .await
            .unwrap();
        let (dir, log) = log_file();
        let mut cmd = gateway_cmd(&emulator, &log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let addr = wait_serving(&mut child, &log).await;
        Running {
            _emulator: emulator,
            _dir: dir,
            log,
            child,
            addr,
        }
    }

    /// The gateway process's resident set and its peak, in MiB (/proc/PID/status).
    fn rss_mib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib = |field: &str| -> u64 {
            let line = status.lines().find(|l| l.starts_with(field)).unwrap();
            line.split_whitespace().nth(1).unwrap().parse().unwrap()
        };
        (kib("VmRSS:") / 1024, kib("VmHWM:") / 1024)
    }

    async fn metrics(&self) -> String {
        let at = logged_addr(&self.log, "metrics_listen").expect("metrics address logged");
        let resp = reqwest::get(format!("http://{at}/metrics")).await.unwrap();
        resp.text().await.unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw HTTP/2 connection (the `h2` crate: no gRPC client limits in the way).
async fn h2_connection(addr: SocketAddr) -> h2::client::SendRequest<Bytes> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (send, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    send
}

/// Opens a gRPC stream to `path` and sends `prefix` (no end of stream).
async fn open_stream(
    send: &h2::client::SendRequest<Bytes>,
    path: &str,
) -> (h2::client::ResponseFuture, h2::SendStream<Bytes>) {
    let mut send = send.clone().ready().await.unwrap();
    let request = http::Request::post(path)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    send.send_request(request, false).unwrap()
}

/// The 5-byte gRPC message prefix announcing `len` bytes.
fn grpc_prefix(len: u32) -> Bytes {
    let mut prefix = vec![0u8];
    prefix.extend_from_slice(&len.to_be_bytes());
    Bytes::from(prefix)
}

/// Sends `len` bytes as flow control allows them, never buffering more than granted.
async fn send_granted(stream: &mut h2::SendStream<Bytes>, len: usize) {
    let mut left = len;
    while left > 0 {
        stream.reserve_capacity(left);
        let granted = std::future::poll_fn(|cx| stream.poll_capacity(cx))
            .await
            .expect("capacity")
            .expect("the stream stays open");
        stream
            .send_data(Bytes::from(vec![b'x'; granted]), false)
            .unwrap();
        left -= granted;
    }
}

/// The gRPC status of a raw stream's answer (headers, else trailers).
async fn grpc_status(response: h2::client::ResponseFuture) -> String {
    let response = response.await.unwrap();
    if let Some(s) = response.headers().get("grpc-status") {
        return s.to_str().unwrap().to_string();
    }
    let mut body = response.into_body();
    while body.data().await.is_some() {}
    let trailers = body.trailers().await.unwrap().expect("trailers");
    trailers["grpc-status"].to_str().unwrap().to_string()
}

async fn health_ok(addr: SocketAddr) -> bool {
    let mut health = HealthClient::new(channel(addr).await);
    let check = health.check(HealthCheckRequest::default()).await;
    check.is_ok_and(|r| r.into_inner().status == 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_flood_on_one_connection_keeps_memory_bounded_and_others_served() {
    let gw = Running::start(&[]).await;
    let flood = h2_connection(gw.addr).await;
    // One whole call first: the gateway's SETTINGS (its stream limit) are in by then.
    let (response, mut stream) = open_stream(&flood, HEALTH_CHECK).await;
    stream.send_data(grpc_prefix(0), true).unwrap();
    assert_eq!(grpc_status(response).await, "0");
    let taken = flood.current_max_send_streams().min(FLOOD_STREAMS);

    let done = Arc::new((AtomicUsize::new(0), Notify::new()));
    let mut streams = Vec::new();
    for _ in 0..FLOOD_STREAMS {
        let (flood, done) = (flood.clone(), Arc::clone(&done));
        streams.push(tokio::spawn(async move {
            let (response, mut stream) = open_stream(&flood, HEALTH_CHECK).await;
            stream.send_data(grpc_prefix(1_000_000), false).unwrap();
            send_granted(&mut stream, FLOOD_BYTES_PER_STREAM).await;
            done.0.fetch_add(1, Ordering::SeqCst);
            done.1.notify_one();
            (response, stream)
        }));
    }
    // Every stream the gateway takes has sent its bytes: with the connection window far
    // below the total, the gateway has read all but the last window of them.
    while done.0.load(Ordering::SeqCst) < taken {
        done.1.notified().await;
    }
    let served = tokio::time::timeout(Duration::from_secs(2), health_ok(gw.addr)).await;
    let (rss, peak) = gw.rss_mib();
    eprintln!(
        "flood: {taken} streams taken of {FLOOD_STREAMS}; gateway RSS {rss} MiB (peak {peak} MiB)"
    );
    assert_eq!(
        served.ok(),
        Some(true),
        "another caller is served within 2 s"
    );
    assert!(
        rss < 150,
        "RSS {rss} MiB under a {FLOOD_STREAMS}-stream flood"
    );
    for s in streams {
        s.abort();
    }
}

#[tokio::test]
async fn a_request_body_that_never_ends_is_deadline_exceeded() {
    let gw = Running::start(&[("ATLAS_GATEWAY_REQUEST_TIMEOUT", "1s")]).await;
    let conn = h2_connection(gw.addr).await;
    let (response, mut stream) = open_stream(&conn, HEALTH_CHECK).await;
    stream.send_data(grpc_prefix(100), false).unwrap();
    stream
        .send_data(Bytes::from_static(b"half"), false)
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(60), grpc_status(response))
        .await
        .expect("the gateway answers a body that never ends");
    assert_eq!(status, (Code::DeadlineExceeded as i32).to_string());
}

#[tokio::test]
async fn an_oversize_request_message_is_refused_before_any_service_sees_it() {
    let gw = Running::start(&[("ATLAS_GATEWAY_MAX_REQUEST_BYTES", "65536")]).await;
    let ch = channel(gw.addr).await;
    let big = "s".repeat(100 * 1024);
    let health = HealthClient::new(ch.clone())
        .check(HealthCheckRequest {
            service: big.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(health.code(), Code::OutOfRange, "{health:?}");
    let mut req = key_req(DEMO_ORG_ID);
    req.desc = big;
    let gateway = AtlasGatewayClient::new(ch.clone())
        .create_api_key(req)
        .await
        .unwrap_err();
    assert_eq!(gateway.code(), Code::OutOfRange, "{gateway:?}");
    // Under the limit: served as before.
    let small = HealthClient::new(ch)
        .check(HealthCheckRequest {
            service: "s".repeat(60 * 1024),
        })
        .await
        .unwrap_err();
    assert_eq!(small.code(), Code::NotFound, "unknown service: {small:?}");
}

#[tokio::test]
async fn a_header_list_over_the_limit_is_refused() {
    let gw = Running::start(&[("ATLAS_GATEWAY_MAX_HEADER_LIST_BYTES", "8192")]).await;
    let check = |size: usize| {
        let ch = gw.addr;
        async move {
            let mut req = tonic::Request::new(HealthCheckRequest::default());
            let value = "v".repeat(size);
            req.metadata_mut()
                .insert("x-padding", value.parse().unwrap());
            HealthClient::new(channel(ch).await).check(req).await
        }
    };
    assert!(check(4 * 1024).await.is_ok(), "under the limit");
    let refused = check(12 * 1024).await.unwrap_err();
    assert_ne!(refused.code(), Code::Ok);
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_at_once_and_counted() {
    let gw = Running::start(&[
        ("ATLAS_GATEWAY_MAX_CONNECTIONS", "8"),
        ("ATLAS_GATEWAY_METRICS_LISTEN", "127.0.0.1:0"),
    ])
    .await;
    let mut open = Vec::new();
    for _ in 0..8 {
        let conn = h2_connection(gw.addr).await;
        let (response, mut stream) = open_stream(&conn, HEALTH_CHECK).await;
        stream.send_data(grpc_prefix(0), true).unwrap();
        assert_eq!(grpc_status(response).await, "0", "served under the cap");
        open.push(conn);
    }
    let mut ninth = TcpStream::connect(gw.addr).await.unwrap();
    let _ = ninth.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(60), ninth.read(&mut buf))
        .await
        .expect("the ninth connection is closed, not left waiting");
    assert!(read.is_err() || read.unwrap() == 0, "closed at once");
    let text = gw.metrics().await;
    assert!(
        text.contains("atlas_gateway_connections_refused_total 1"),
        "{text}"
    );
    // A closed connection frees its place.
    drop(open.pop());
    eventually("a new connection is served again", || health_ok(gw.addr)).await;
}

#[tokio::test]
async fn a_connection_that_never_sends_the_preface_is_closed() {
    let gw = Running::start(&[("ATLAS_GATEWAY_PREFACE_TIMEOUT", "1s")]).await;
    let mut silent = TcpStream::connect(gw.addr).await.unwrap();
    let mut seen = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(60), silent.read_to_end(&mut seen)).await;
    assert!(closed.is_ok(), "still open: the gateway waits forever");
    assert!(seen.is_empty(), "nothing is sent to a silent connection");
    assert!(health_ok(gw.addr).await);
}
