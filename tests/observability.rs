//! What an operator's tools read from the running binary: the per-call log line (text
//! and JSON) and, with `OTEL_EXPORTER_OTLP_ENDPOINT` set, OpenTelemetry spans exported
//! over OTLP/gRPC to a real receiver.
mod common;
#[path = "observability/scrape.rs"]
mod scrape;
#[path = "observability/strict_json.rs"]
mod strict_json;

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
};

use atlas_grpc_gateway::emulator::{Emulator, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET};
use atlas_grpc_gateway::pb::atlas_gateway_client::AtlasGatewayClient;
use common::{process::wait_serving, *};

const BIN: &str = env!("CARGO_BIN_EXE_atlas-grpc-gateway");

/// The real binary (`serve`) in front of an in-process emulator; stderr in a file.
pub(crate) struct Process {
    child: Child,
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Process {
    async fn start(emulator: &Emulator, args: &[&str], env: &[(&str, &str)]) -> Process {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("gateway.log");
        let mut child = Command::new(BIN)
            .arg("serve")
            .args(args)
            .env_clear()
            .env("MONGODB_ATLAS_BASE_URL", emulator.base_url())
            .env("MONGODB_ATLAS_CLIENT_ID", DEMO_CLIENT_ID)
            .env("MONGODB_ATLAS_CLIENT_SECRET", DEMO_CLIENT_SECRET)
            .env("ATLAS_GATEWAY_LISTEN", "127.0.0.1:0")
            .env("ATLAS_GATEWAY_METRICS_LISTEN", "off")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let addr = wait_serving(&mut child, &log).await;
        Process {
            child,
            addr,
            log,
            _dir: dir,
        }
    }

    /// SIGTERM, wait for a clean exit, return the logs.
    async fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let status = tokio::task::spawn_blocking(move || {
            let status = self.child.wait().unwrap();
            (status, self)
        })
        .await
        .unwrap();
        let (status, this) = status;
        let logs = std::fs::read_to_string(&this.log).unwrap();
        assert!(status.success(), "{status}: {logs}");
        logs
    }
}

/// The digits after the decimal point of a logged number.
fn decimals(number: &str) -> usize {
    number.split_once('.').map_or(0, |(_, d)| d.len())
}

#[tokio::test]
async fn call_durations_are_logged_with_three_decimals_at_most_in_text_and_json() {
    let emulator = Emulator::start(Default::default(), loopback())
        .await
        .unwrap();
    for format in ["text", "json"] {
        let gw = Process::start(
            &emulator,
            &["--log-format", format],
            &[("RUST_LOG", "info")],
        )
        .await;
        let mut client = atlas_grpc_gateway::pb::atlas_gateway_client::AtlasGatewayClient::new(
            channel(gw.addr).await,
        );
        // Export is off here; the caller's trace id still goes to the log line.
        let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
        let meta = [("traceparent", traceparent.as_str())];
        let req = with_meta(link_req(DEMO_ORG_ID), &meta, None);
        client.create_link_token(req).await.unwrap();
        let logs = gw.stop().await;
        let line = logs
            .lines()
            .find(|l| l.contains("call finished"))
            .unwrap_or_else(|| panic!("no per-call line in {logs}"));
        let (latency, upstream) = if format == "json" {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let span = &v["span"];
            assert_eq!(span["trace_id"], TRACE_ID, "{line}");
            (v["latency_ms"].to_string(), span["upstream_ms"].to_string())
        } else {
            let field = |name: &str| {
                let at = line
                    .find(&format!("{name}="))
                    .unwrap_or_else(|| panic!("{name} in {line}"));
                let rest = &line[at + name.len() + 1..];
                rest[..rest.find([' ', '}']).unwrap_or(rest.len())].to_string()
            };
            assert_eq!(field("trace_id"), TRACE_ID, "{line}");
            (field("latency_ms"), field("upstream_ms"))
        };
        for (name, value) in [("latency_ms", &latency), ("upstream_ms", &upstream)] {
            let ms: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("{name}={value} in {line}"));
            assert!(ms > 0.0, "{name}={value}");
            assert!(decimals(value) <= 3, "{format}: {name}={value} in {line}");
        }
    }
}

/// Profiles for the log test: `bad` has a client id Atlas does not know.
const BAD_PROFILE: &str = "[profiles.default]\n[profiles.bad]\nclient_id = \"mdb_sa_id_unknown\"\nclient_secret_env = \"BAD_SECRET\"\n";

/// The per-call JSON line of the call with correlation id `corr`.
fn call_line<'a>(lines: &'a [serde_json::Value], corr: &str) -> &'a serde_json::Value {
    lines
        .iter()
        .find(|v| v["message"] == "call finished" && v["span"]["correlation_id"] == corr)
        .unwrap_or_else(|| panic!("no per-call line for {corr}"))
}

#[tokio::test]
async fn every_json_line_has_unique_keys_and_each_outcome_its_level() {
    let emulator = Emulator::start(Default::default(), loopback())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("profiles.toml");
    std::fs::write(&config, BAD_PROFILE).unwrap();
    let config = config.to_str().unwrap();
    let gw = Process::start(
        &emulator,
        &["--log-format", "json", "--config", config],
        &[("RUST_LOG", "info"), ("BAD_SECRET", "not-the-secret")],
    )
    .await;
    let mut client = AtlasGatewayClient::new(channel(gw.addr).await);
    let corr = |id: &'static str| [("x-request-id", id)];
    let mut keyed = link_req(DEMO_ORG_ID);
    keyed.request_id = "idem-key-1".into();
    client
        .create_link_token(with_meta(keyed, &corr("ok-1"), None))
        .await
        .unwrap();
    let bad = with_meta(link_req("nope"), &corr("invalid-1"), None);
    client.create_link_token(bad).await.unwrap_err();
    client
        .delete_link_token(with_meta(delete_req(DEMO_ORG_ID), &corr("gone-1"), None))
        .await
        .unwrap();
    client
        .delete_link_token(with_meta(delete_req(DEMO_ORG_ID), &corr("gone-2"), None))
        .await
        .unwrap_err();
    emulator.inject(Fault::once(
        Route::CreateApiKey,
        FaultAction::error(500, "UNEXPECTED_ERROR"),
    ));
    client
        .create_api_key(with_meta(key_req(DEMO_ORG_ID), &corr("internal-1"), None))
        .await
        .unwrap_err();
    let refused = [("x-request-id", "refused-1"), ("x-atlas-profile", "bad")];
    let err = client
        .create_link_token(with_meta(link_req(DEMO_ORG_ID), &refused, None))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "ATLAS_CREDENTIALS_REJECTED", "{err:?}");
    let logs = gw.stop().await;

    for line in logs.lines() {
        strict_json::check(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ok = call_line(&lines, "ok-1");
    assert_eq!(ok["span"]["request_id"], "idem-key-1", "{ok}");
    assert!(ok.get("error").is_none(), "{ok}");
    for (corr, level, reason) in [
        ("ok-1", "INFO", None),
        ("invalid-1", "INFO", Some("INVALID_REQUEST")),
        ("gone-2", "INFO", Some("UNEXPECTED_ERROR")),
        ("internal-1", "ERROR", Some("UNEXPECTED_ERROR")),
        ("refused-1", "ERROR", Some("ATLAS_CREDENTIALS_REJECTED")),
    ] {
        let line = call_line(&lines, corr);
        assert_eq!(line["level"], level, "{line}");
        assert_eq!(line["span"]["reason"].as_str(), reason, "{line}");
        assert_eq!(line["error"].is_string(), reason.is_some(), "{line}");
    }
}

mod otlp {
    //! A real OTLP/gRPC trace receiver: the collector's `TraceService`, served by tonic.
    use opentelemetry_proto::tonic::{
        collector::trace::v1::{
            trace_service_server::{TraceService, TraceServiceServer},
            ExportTraceServiceRequest, ExportTraceServiceResponse,
        },
        common::v1::{any_value::Value, KeyValue},
        trace::v1::Span,
    };
    use tokio::sync::mpsc;
    use tonic::{Request, Response, Status};

    struct Receiver(mpsc::UnboundedSender<ExportTraceServiceRequest>);

    #[tonic::async_trait]
    impl TraceService for Receiver {
        async fn export(
            &self,
            request: Request<ExportTraceServiceRequest>,
        ) -> Result<Response<ExportTraceServiceResponse>, Status> {
            let _ = self.0.send(request.into_inner());
            Ok(Response::new(ExportTraceServiceResponse::default()))
        }
    }

    /// Starts the receiver on a loopback port; returns its endpoint and the exports.
    pub async fn start() -> (String, mpsc::UnboundedReceiver<ExportTraceServiceRequest>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(tonic::transport::Server::builder().serve_with_incoming(
            TraceServiceServer::new(Receiver(tx)),
            tokio_stream::wrappers::TcpListenerStream::new(listener),
        ));
        (endpoint, rx)
    }

    /// Every span received so far, with its resource's attributes.
    pub fn spans(
        rx: &mut mpsc::UnboundedReceiver<ExportTraceServiceRequest>,
    ) -> Vec<(Vec<KeyValue>, Span)> {
        let mut out = Vec::new();
        while let Ok(export) = rx.try_recv() {
            for rs in export.resource_spans {
                let resource = rs.resource.map(|r| r.attributes).unwrap_or_default();
                for ss in rs.scope_spans {
                    out.extend(ss.spans.into_iter().map(|s| (resource.clone(), s)));
                }
            }
        }
        out
    }

    /// An attribute's value as text (strings as they are, numbers formatted).
    pub fn attr(attributes: &[KeyValue], key: &str) -> Option<String> {
        let kv = attributes.iter().find(|kv| kv.key == key)?;
        Some(match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => s.clone(),
            Value::IntValue(i) => i.to_string(),
            Value::BoolValue(b) => b.to_string(),
            other => format!("{other:?}"),
        })
    }
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn a_traced_call_exports_server_and_atlas_attempt_spans_in_the_callers_trace() {
    let (endpoint, mut exports) = otlp::start().await;
    let emulator = Emulator::start(Default::default(), loopback())
        .await
        .unwrap();
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("RUST_LOG", "info"),
    ];
    let gw = Process::start(&emulator, &[], &env).await;
    let mut client = atlas_grpc_gateway::pb::atlas_gateway_client::AtlasGatewayClient::new(
        channel(gw.addr).await,
    );
    // One 429 first: the call makes two Atlas attempts, each its own client span.
    emulator.inject(Fault::once(
        Route::CreateApiKey,
        FaultAction::error_with_retry_after(429, "RATE_LIMITED", "0"),
    ));
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let meta = [
        ("traceparent", traceparent.as_str()),
        ("tracestate", "congo=t61rcWkgMzE"),
    ];
    let key = client
        .create_api_key(with_meta(key_req(DEMO_ORG_ID), &meta, None))
        .await
        .unwrap()
        .into_inner()
        .api_key
        .unwrap();
    // Without a traceparent, the gateway starts a trace of its own.
    let token = client
        .create_link_token(link_req(DEMO_ORG_ID))
        .await
        .unwrap()
        .into_inner()
        .link_token;
    let logs = gw.stop().await; // flushes the exporter before exiting

    let spans = otlp::spans(&mut exports);
    let named = |name: &'static str| spans.iter().filter(move |(_, s)| s.name == name);
    let (resource, server) = named("atlas.gateway.v1.AtlasGateway/CreateApiKey")
        .next()
        .unwrap_or_else(|| panic!("no CreateApiKey server span in {spans:#?}"));
    assert_eq!(
        otlp::attr(resource, "service.name").as_deref(),
        Some("atlas-grpc-gateway")
    );
    assert_eq!(hex(&server.trace_id), TRACE_ID);
    assert_eq!(hex(&server.parent_span_id), PARENT_ID);
    assert_eq!(server.trace_state, "congo=t61rcWkgMzE");
    assert_eq!(server.kind, 2, "SPAN_KIND_SERVER");
    for (key, want) in [
        ("rpc.system", "grpc"),
        ("rpc.service", "atlas.gateway.v1.AtlasGateway"),
        ("rpc.method", "CreateApiKey"),
        ("rpc.grpc.status_code", "0"),
    ] {
        assert_eq!(
            otlp::attr(&server.attributes, key).as_deref(),
            Some(want),
            "{key}"
        );
    }

    let mut attempts: Vec<_> = named("POST /api/atlas/v2/orgs/{orgId}/apiKeys")
        .map(|(_, s)| s)
        .collect();
    attempts.sort_by_key(|s| s.start_time_unix_nano);
    assert_eq!(attempts.len(), 2, "one client span per Atlas attempt");
    for (attempt, (status, error_code)) in attempts
        .iter()
        .zip([("429", Some("RATE_LIMITED")), ("200", None)])
    {
        assert_eq!(hex(&attempt.trace_id), TRACE_ID);
        assert_eq!(
            attempt.parent_span_id, server.span_id,
            "child of the server span"
        );
        assert_eq!(attempt.kind, 3, "SPAN_KIND_CLIENT");
        let a = |k| otlp::attr(&attempt.attributes, k);
        assert_eq!(a("http.request.method").as_deref(), Some("POST"));
        assert_eq!(a("http.response.status_code").as_deref(), Some(status));
        assert_eq!(a("server.address").as_deref(), Some("127.0.0.1"));
        assert_eq!(a("atlas.error_code").as_deref(), error_code);
    }

    let (_, own) = named("atlas.gateway.v1.AtlasGateway/CreateLinkToken")
        .next()
        .expect("a CreateLinkToken server span");
    assert_ne!(hex(&own.trace_id), TRACE_ID);
    assert!(own.parent_span_id.is_empty(), "a root span");

    // No secret in any attribute: credentials, the created key, the link token.
    let secrets = [DEMO_CLIENT_SECRET, &key.private_key, &token];
    for (resource, span) in &spans {
        let text = format!("{resource:?} {:?} {:?}", span.attributes, span.events);
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{secret:.6}... in span {}",
                span.name
            );
        }
    }
    let line = logs
        .lines()
        .find(|l| l.contains("call finished") && l.contains("CreateApiKey"))
        .expect("the per-call line");
    assert!(line.contains(&format!("trace_id={TRACE_ID}")), "{line}");
}

#[test]
fn an_otel_setting_the_build_cannot_honour_stops_start_up_with_one_line() {
    for (name, value) in [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_TRACES_EXPORTER", "zipkin"),
    ] {
        let out = Command::new(BIN)
            .args([
                "serve",
                "--metrics-listen",
                "off",
                "--listen",
                "127.0.0.1:0",
            ])
            .env_clear()
            .env("MONGODB_ATLAS_CLIENT_ID", DEMO_CLIENT_ID)
            .env("MONGODB_ATLAS_CLIENT_SECRET", DEMO_CLIENT_SECRET)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
            .env(name, value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{name}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(name), "{stderr}");
    }
}
