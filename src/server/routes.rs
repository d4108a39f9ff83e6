//! Routing of one server's gRPC requests to its services by the `/<package.Service>/`
//! prefix of the path; any other path answers UNIMPLEMENTED, as gRPC servers do. It
//! stands in for tonic's axum-based router, so the production binary carries no web
//! framework.
//!
//! It reads nothing but the path: authentication, limits and deadlines belong to the
//! services and to the server around them. The server clones the router for every
//! request, so the table sits behind an `Arc`: a clone is one reference count, not a
//! boxed copy of every service.
use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use tonic::{
    body::Body,
    codegen::{Body as HttpBody, Bytes, StdError},
    server::NamedService,
    Status,
};
use tower::{
    util::{BoxCloneSyncService, Oneshot},
    Service, ServiceExt as _,
};

/// A boxed gRPC service as the server calls it.
type Grpc = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, Infallible>;

/// The services of one server, each under its full name (`atlas.gateway.v1.AtlasGateway`).
#[derive(Clone)]
pub struct Routes {
    table: Arc<Table>,
}

#[derive(Clone)]
struct Table {
    services: Vec<(&'static str, Grpc)>,
    unimplemented: Grpc,
}

impl Routes {
    /// No services yet: every call answers UNIMPLEMENTED.
    pub fn new() -> Self {
        let unimplemented = tower::service_fn(|request: http::Request<Body>| {
            let status = Status::unimplemented(unknown(request.uri().path()));
            let (parts, ()) = status.into_http::<()>().into_parts();
            std::future::ready(Ok(http::Response::from_parts(parts, Body::empty())))
        });
        let table = Table {
            services: Vec::new(),
            unimplemented: Grpc::new(unimplemented),
        };
        Self {
            table: Arc::new(table),
        }
    }

    /// Serves `service` under its [`NamedService::NAME`].
    pub fn add<S, B>(mut self, service: S) -> Self
    where
        S: Service<http::Request<Body>, Response = http::Response<B>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<StdError>,
    {
        let service = service.map_response(|response| response.map(Body::new));
        let table = Arc::make_mut(&mut self.table);
        table.services.push((S::NAME, Grpc::new(service)));
        self
    }

    fn route(&self, path: &str) -> &Grpc {
        let name = service_name(path);
        let table = &*self.table;
        table
            .services
            .iter()
            .find(|(service, _)| Some(*service) == name)
            .map_or(&table.unimplemented, |(_, grpc)| grpc)
    }
}

/// The `package.Service` of a `/package.Service/Method` path.
fn service_name(path: &str) -> Option<&str> {
    path.strip_prefix('/')
        .and_then(|p| p.split_once('/'))
        .map(|(name, _method)| name)
}

/// The UNIMPLEMENTED message for a path no service serves, as gRPC servers word it;
/// the caller's text is cut to 64 characters.
fn unknown(path: &str) -> String {
    let cut = |text: &str| text.chars().take(64).collect::<String>();
    match service_name(path) {
        Some(name) => format!("unknown service {}", cut(name)),
        None => format!("malformed method path {:?}", cut(path)),
    }
}

impl Service<http::Request<Body>> for Routes {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Oneshot<Grpc, http::Request<Body>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Each call waits for its own service's readiness (`oneshot`).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        self.route(request.uri().path()).clone().oneshot(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A service that answers 200 with its own name in `x-service`.
    #[derive(Clone)]
    struct Echo<const N: usize>;

    impl NamedService for Echo<1> {
        const NAME: &'static str = "pkg.One";
    }
    impl NamedService for Echo<2> {
        const NAME: &'static str = "pkg.Two";
    }

    impl<const N: usize> Service<http::Request<Body>> for Echo<N>
    where
        Self: NamedService,
    {
        type Response = http::Response<Body>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<http::Response<Body>, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<Body>) -> Self::Future {
            let mut response = http::Response::new(Body::empty());
            response
                .headers_mut()
                .insert("x-service", http::HeaderValue::from_static(Self::NAME));
            std::future::ready(Ok(response))
        }
    }

    async fn answer(path: &str) -> http::Response<Body> {
        let mut routes = Routes::new().add(Echo::<1>).add(Echo::<2>);
        let request = http::Request::post(path).body(Body::empty()).unwrap();
        routes.call(request).await.unwrap()
    }

    #[tokio::test]
    async fn each_call_reaches_the_service_its_path_names() {
        for (path, service) in [("/pkg.One/Get", "pkg.One"), ("/pkg.Two/Get", "pkg.Two")] {
            assert_eq!(answer(path).await.headers()["x-service"], service);
        }
    }

    #[tokio::test]
    async fn unknown_services_and_odd_paths_are_unimplemented() {
        let status = Status::from_header_map(answer("/pkg.Three/Get").await.headers()).unwrap();
        assert_eq!(status.message(), "unknown service pkg.Three");
        for path in [
            "/pkg.Three/Get",
            "/pkg.One",
            "/",
            "/pkg.On/Get",
            "/pkg.One.x/Get",
        ] {
            let response = answer(path).await;
            assert_eq!(response.status(), http::StatusCode::OK, "{path}");
            assert_eq!(response.headers()["grpc-status"], "12", "{path}");
            let status = Status::from_header_map(response.headers()).unwrap();
            let message = status.message();
            assert!(
                message.starts_with("unknown service") || message.starts_with("malformed"),
                "{path}: {message}"
            );
            assert!(!response.headers().contains_key("x-service"), "{path}");
        }
    }
}
