//! `LogFilter` makes exactly the decisions `EnvFilter` made, and takes `Targets` when it can.
use tracing::{
    callsite::{DefaultCallsite, Identifier},
    field::FieldSet,
    metadata::Kind,
    subscriber::Subscriber,
    Level, Metadata,
};
use tracing_subscriber::{
    filter::{EnvFilter, LevelFilter},
    layer::SubscriberExt,
    Layer, Registry,
};

use super::LogFilter;

/// A callsite's metadata (no fields) for `target` at `level`, a span or an event.
macro_rules! probe {
    ($target:literal, $level:ident, $kind:ident) => {{
        static META: Metadata<'static> = Metadata::new(
            "probe",
            $target,
            Level::$level,
            None,
            None,
            None,
            FieldSet::new(&[], Identifier(&CALLSITE)),
            Kind::$kind,
        );
        static CALLSITE: DefaultCallsite = DefaultCallsite::new(&META);
        &META
    }};
}

/// Spans and events for `target` at every level.
macro_rules! at_every_level {
    ($target:literal) => {
        [
            probe!($target, ERROR, EVENT),
            probe!($target, WARN, EVENT),
            probe!($target, INFO, EVENT),
            probe!($target, DEBUG, EVENT),
            probe!($target, TRACE, EVENT),
            probe!($target, ERROR, SPAN),
            probe!($target, WARN, SPAN),
            probe!($target, INFO, SPAN),
            probe!($target, DEBUG, SPAN),
            probe!($target, TRACE, SPAN),
        ]
    };
}

/// The gateway's own targets, its dependencies', prefixes of one another, odd ones.
fn probes() -> Vec<&'static Metadata<'static>> {
    [
        at_every_level!("atlas_grpc_gateway"),
        at_every_level!("atlas_grpc_gateway::grpc::call"),
        at_every_level!("h2"),
        at_every_level!("h2::codec::framed_read"),
        at_every_level!("h2x"),
        at_every_level!("hyper"),
        at_every_level!("hyper_util::client::legacy"),
        at_every_level!("tower"),
        at_every_level!("Atlas_grpc_gateway"),
        at_every_level!("info"),
        at_every_level!(" info"),
        at_every_level!("rpc"),
        at_every_level!(""),
    ]
    .concat()
}

/// What the filter decides: the max-level hint, and per probe whether it is enabled and
/// the callsite's interest.
fn decisions(filter: impl Layer<Registry> + Send + Sync + 'static) -> Vec<String> {
    let subscriber = tracing_subscriber::registry().with(filter);
    let hint = format!("max level {:?}", subscriber.max_level_hint());
    let per_probe = probes().into_iter().map(|meta| {
        let interest = subscriber.register_callsite(meta);
        let interest = match () {
            () if interest.is_always() => "always",
            () if interest.is_never() => "never",
            () => "sometimes",
        };
        let enabled = subscriber.enabled(meta);
        let (target, level) = (meta.target(), meta.level());
        let kind = if meta.is_span() { "span" } else { "event" };
        format!("{target:?} {level} {kind}: enabled {enabled}, interest {interest}")
    });
    std::iter::once(hint).chain(per_probe).collect()
}

/// What `init_tracing` installed before `LogFilter`: `RUST_LOG` through `EnvFilter`,
/// `info` when unset or invalid.
fn before(spec: Option<&str>) -> EnvFilter {
    spec.and_then(|s| EnvFilter::try_new(s).ok())
        .unwrap_or_else(|| EnvFilter::new("info"))
}

#[test]
fn static_directives_take_targets_with_the_same_decisions_as_env_filter() {
    let is_static = true;
    let is_dynamic = false;
    let table = [
        (None, is_static),
        (Some("info"), is_static),
        (Some("warn"), is_static),
        (Some("INFO"), is_static),
        (Some("Debug"), is_static),
        (Some("3"), is_static),
        (Some("off"), is_static),
        (Some(""), is_static),
        (Some(",,"), is_static),
        (Some("atlas_grpc_gateway=debug,h2=warn"), is_static),
        (Some("trace,hyper=off"), is_static),
        (
            Some("warn,atlas_grpc_gateway::grpc=trace,atlas_grpc_gateway=info"),
            is_static,
        ),
        (Some("info,h2=OFF,h2::codec=debug"), is_static),
        (Some("hyper"), is_static),
        (Some("hyper="), is_static),
        (Some("h2=2,tower=5"), is_static),
        (Some("debug,info"), is_static),
        (Some("h2=trace,h2=warn"), is_static),
        (Some("info,,warn,"), is_static),
        (Some("6"), is_static),
        (Some("a-b.c:d"), is_static),
        (Some("loud"), is_static), // a target at every level
        // Invalid: the `info` fallback.
        (Some("h2=loud"), is_static),
        (Some("=info"), is_static),
        (Some("info, h2=warn"), is_static),
        (Some("a=b=c"), is_static),
        (Some("[rpc"), is_static),
        // Span and field directives, and text Targets is not asked to read.
        (Some("info,[rpc]=debug"), is_dynamic),
        (
            Some("atlas_grpc_gateway[rpc{method=CreateLinkToken}]=trace"),
            is_dynamic,
        ),
        (Some("h2[{stream_id}]=trace"), is_dynamic),
        (Some("[]=info"), is_dynamic),
        (Some("warn, info"), is_dynamic),
        (Some("info "), is_dynamic),
        (Some(" info"), is_dynamic),
        (Some("héllo=debug"), is_dynamic),
        (Some("a}b=info"), is_dynamic),
    ];
    for (spec, want_static) in table {
        let expected = decisions(before(spec));
        let chosen = match LogFilter::parse(spec) {
            LogFilter::Static(targets) => {
                assert!(want_static, "{spec:?} should keep EnvFilter");
                assert_eq!(targets.to_string(), before(spec).to_string(), "{spec:?}");
                decisions(targets)
            }
            LogFilter::Dynamic(env) => {
                assert!(!want_static, "{spec:?} should take Targets");
                decisions(env)
            }
        };
        assert_eq!(chosen, expected, "{spec:?}");
    }
}

#[test]
fn the_decisions_tell_filters_apart() {
    // The comparison above is not vacuous: nearby filters decide differently.
    let pairs = [
        ("info", "warn"),
        ("h2=warn", "h2=debug"),
        ("hyper=off", "hyper"),
        ("trace,info", "info"),
        ("Atlas_grpc_gateway=debug", "atlas_grpc_gateway=debug"),
        ("info", "info,[rpc]=debug"),
    ];
    for (a, b) in pairs {
        assert_ne!(
            decisions(before(Some(a))),
            decisions(before(Some(b))),
            "{a} {b}"
        );
    }
    let info = decisions(before(None));
    assert!(info[0].ends_with("Some(LevelFilter::INFO)"), "{}", info[0]);
    let line = r#""atlas_grpc_gateway" DEBUG event: enabled false, interest never"#;
    assert!(info.iter().any(|d| d == line), "{info:?}");
    let off = LevelFilter::OFF;
    assert!(decisions(before(Some("off")))[0].ends_with(&format!("Some({off:?})")));
}
