//! OpenTelemetry tracing: continues the caller's W3C trace (`traceparent`/`tracestate`
//! in gRPC metadata) with one server span per RPC and one client span per Atlas HTTP
//! attempt, exported over OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set. The other standard `OTEL_*` variables
//! apply (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`,
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_*`, `OTEL_SDK_DISABLED`).
//!
//! Span attributes are set here and only here, from a fixed list of semantic-convention
//! names plus `atlas.operation` and `atlas.error_code`: never a secret, token, key, org
//! id, request body or header value. Off (the default), no tracer exists and no span or
//! context is ever built; the caller's trace id, when it sends one, still goes to the log.
use std::{borrow::Cow, sync::OnceLock};

use opentelemetry::{
    propagation::{Extractor, TextMapPropagator},
    trace::{Span as _, SpanKind, Status, TraceContextExt, TraceId, Tracer as _},
    Context, KeyValue,
};
use opentelemetry_sdk::{
    propagation::TraceContextPropagator,
    trace::{SdkTracer, SdkTracerProvider},
    Resource,
};
use tonic::{metadata::MetadataMap, Code};

use crate::pb::atlas_gateway_server::SERVICE_NAME;

static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// The installed exporter; [`Exporter::shutdown`] flushes the spans still queued.
pub struct Exporter(Option<SdkTracerProvider>);

impl Exporter {
    /// Exports what is queued and stops the exporter (bounded by `OTEL_BSP_EXPORT_TIMEOUT`).
    pub async fn shutdown(self) {
        if let Some(provider) = self.0 {
            let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            if let Ok(Err(e)) = done {
                tracing::warn!("OpenTelemetry: spans lost at shutdown: {e}");
            }
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Reads the `OTEL_*` variables and, when an OTLP endpoint is set, installs the exporter.
/// A setting this build cannot honour stops start-up with one line (values not echoed:
/// endpoints and headers may carry credentials).
pub fn init() -> Result<Exporter, String> {
    if env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Ok(Exporter(None));
    }
    match env("OTEL_TRACES_EXPORTER").as_deref() {
        None | Some("otlp") => {}
        Some("none") => return Ok(Exporter(None)),
        Some(_) => {
            return Err("OTEL_TRACES_EXPORTER: only \"otlp\" or \"none\" is supported".into())
        }
    }
    let Some(endpoint) =
        env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"))
    else {
        return Ok(Exporter(None));
    };
    let protocol =
        env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"));
    if protocol.is_some_and(|p| p != "grpc") {
        return Err("OTEL_EXPORTER_OTLP_PROTOCOL: the gateway exports OTLP over gRPC only: set it to \"grpc\" (or unset) and point OTEL_EXPORTER_OTLP_ENDPOINT at the collector's gRPC port (4317)".into());
    }
    if endpoint.starts_with("https://") {
        return Err("OTEL_EXPORTER_OTLP_ENDPOINT: TLS to the collector is not built in; send to a local collector agent over http:// (for example http://127.0.0.1:4317)".into());
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .map_err(|_| "OTEL_EXPORTER_OTLP_*: cannot set up the OTLP/gRPC exporter: check the endpoint (http://host:port), OTEL_EXPORTER_OTLP_HEADERS and OTEL_EXPORTER_OTLP_TIMEOUT".to_string())?;
    let mut resource = Resource::builder()
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    let named = env("OTEL_SERVICE_NAME").is_some()
        || env("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|a| a.contains("service.name="));
    if !named {
        resource = resource.with_service_name("atlas-grpc-gateway");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = opentelemetry::trace::TracerProvider::tracer(&provider, "atlas-grpc-gateway");
    // A second init (tests running several gateways in one process) keeps the first.
    let _ = TRACER.set(tracer);
    Ok(Exporter(Some(provider)))
}

/// gRPC metadata as a W3C trace-context carrier.
struct Metadata<'a>(&'a MetadataMap);

impl Extractor for Metadata<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|k| match k {
                tonic::metadata::KeyRef::Ascii(k) => Some(k.as_str()),
                tonic::metadata::KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

/// The trace of one RPC: the trace id for the log line and, when exporting, the
/// context holding the server span. A clone shares the span (for work the call spawns).
#[derive(Clone, Default)]
pub struct CallTrace {
    trace_id: Option<TraceId>,
    cx: Option<Context>,
}

impl CallTrace {
    /// Continues the caller's trace (if it sent `traceparent`) with a server span
    /// (`enduser.id`: the caller's name).
    pub fn start(metadata: &MetadataMap, method: &'static str, caller: &str) -> Self {
        let tracer = TRACER.get();
        if tracer.is_none() && metadata.get("traceparent").is_none() {
            return Self::default();
        }
        let parent = TraceContextPropagator::new().extract(&Metadata(metadata));
        let Some(tracer) = tracer else {
            let remote = parent.span().span_context().clone();
            let trace_id = remote.is_valid().then(|| remote.trace_id());
            return Self { trace_id, cx: None };
        };
        let span = tracer
            .span_builder(format!("{SERVICE_NAME}/{method}"))
            .with_kind(SpanKind::Server)
            .with_attributes([
                KeyValue::new("rpc.system", "grpc"),
                KeyValue::new("rpc.service", SERVICE_NAME),
                KeyValue::new("rpc.method", method),
                KeyValue::new("enduser.id", caller.to_string()),
            ])
            .start_with_context(tracer, &parent);
        let trace_id = Some(span.span_context().trace_id());
        Self {
            trace_id,
            cx: Some(parent.with_span(span)),
        }
    }

    /// The trace id, when there is a trace (ours, or the caller's when not exporting).
    pub fn trace_id(&self) -> Option<TraceId> {
        self.trace_id
    }

    /// Ends the server span with the call's gRPC code.
    pub fn finish(&self, code: Code) {
        let Some(cx) = &self.cx else { return };
        let span = cx.span();
        span.set_attribute(KeyValue::new("rpc.grpc.status_code", code as i64));
        // Semantic conventions: these codes are server errors; the others are the
        // caller's (unset status).
        let server_error = matches!(
            code,
            Code::Unknown
                | Code::DeadlineExceeded
                | Code::Unimplemented
                | Code::Internal
                | Code::Unavailable
                | Code::DataLoss
        );
        if server_error {
            span.set_status(Status::error(format!("{code:?}")));
        }
        span.end();
    }

    /// A client span for one Atlas HTTP attempt (a no-op when not exporting).
    pub fn atlas_attempt(&self, op: crate::atlas::Operation, base: &reqwest::Url) -> AtlasAttempt {
        let (Some(cx), Some(tracer)) = (&self.cx, TRACER.get()) else {
            return AtlasAttempt(None);
        };
        let method = op.method();
        let template = op.template();
        let mut attributes = vec![
            KeyValue::new("http.request.method", method.as_str().to_string()),
            KeyValue::new("url.template", template),
            KeyValue::new("atlas.operation", op.id()),
        ];
        if let Some(host) = base.host_str() {
            attributes.push(KeyValue::new("server.address", host.to_string()));
        }
        if let Some(port) = base.port_or_known_default() {
            attributes.push(KeyValue::new("server.port", i64::from(port)));
        }
        let span = tracer
            .span_builder(format!("{method} {template}"))
            .with_kind(SpanKind::Client)
            .with_attributes(attributes)
            .start_with_context(tracer, cx);
        AtlasAttempt(Some(AttemptSpan { span, status: None }))
    }
}

struct AttemptSpan {
    span: opentelemetry_sdk::trace::Span,
    status: Option<u16>,
}

/// One Atlas HTTP attempt's client span; it ends when dropped. An attempt that never
/// got a status line ends as an error (`error.type` = `no_response`).
pub struct AtlasAttempt(Option<AttemptSpan>);

impl AtlasAttempt {
    /// Atlas answered with `status`.
    pub fn status(&mut self, status: u16) {
        if let Some(a) = &mut self.0 {
            a.status = Some(status);
            a.span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
            if status >= 400 {
                a.span
                    .set_attribute(KeyValue::new("error.type", status.to_string()));
                a.span.set_status(Status::error(status.to_string()));
            }
        }
    }

    /// The `errorCode` of Atlas's error body (an enum-like name such as `RATE_LIMITED`).
    pub fn error_code(&mut self, code: Option<&str>) {
        if let (Some(a), Some(code)) = (&mut self.0, code) {
            a.span
                .set_attribute(KeyValue::new("atlas.error_code", code.to_string()));
        }
    }
}

impl Drop for AtlasAttempt {
    fn drop(&mut self) {
        if let Some(a) = &mut self.0 {
            if a.status.is_none() {
                a.span
                    .set_attribute(KeyValue::new("error.type", "no_response"));
                a.span
                    .set_status(Status::error(Cow::Borrowed("no response")));
            }
            a.span.end();
        }
    }
}
