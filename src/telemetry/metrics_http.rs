//! The Prometheus scrape endpoint: `GET /metrics` (and `HEAD`) over HTTP/1.1 on the
//! metrics listener; 405 for other methods there, 404 for every other path. Plain hyper
//! (already in the tree through tonic), so the production binary needs no web framework.
//!
//! It only renders what the recorder holds: it must never record a metric, and it reads
//! nothing of a request but its method and path.
use std::convert::Infallible;

use http_body_util::Full;
use hyper::{
    body::Bytes, header, server::conn::http1, service::service_fn, Method, Request, Response,
    StatusCode,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

/// The Prometheus text exposition format.
const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Answers scrapes on `listener` for as long as the process runs.
pub(super) async fn serve(listener: TcpListener, handle: PrometheusHandle) {
    loop {
        let (stream, _peer) = crate::listen::accept(&listener, "metrics").await;
        let handle = handle.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                std::future::ready(Ok::<_, Infallible>(answer(&request, &handle)))
            });
            // The timer turns on hyper's header read timeout (30 s) against idle half-requests.
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(error = %e, "a metrics connection ended with an error");
            }
        });
    }
}

fn answer<B>(request: &Request<B>, handle: &PrometheusHandle) -> Response<Full<Bytes>> {
    let response = Response::builder();
    let response = match (request.method(), request.uri().path()) {
        (&Method::GET | &Method::HEAD, "/metrics") => {
            return response
                .header(header::CONTENT_TYPE, EXPOSITION)
                .body(Full::new(Bytes::from(handle.render())))
                .expect("a static header is valid");
        }
        (_, "/metrics") => response
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .header(header::ALLOW, "GET, HEAD"),
        _ => response.status(StatusCode::NOT_FOUND),
    };
    response
        .body(Full::default())
        .expect("a static header is valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(method: Method, path: &str) -> StatusCode {
        let handle = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap();
        answer(&request, &handle.handle()).status()
    }

    #[test]
    fn only_get_and_head_of_metrics_are_answered() {
        assert_eq!(status(Method::GET, "/metrics"), StatusCode::OK);
        assert_eq!(status(Method::HEAD, "/metrics"), StatusCode::OK);
        assert_eq!(
            status(Method::POST, "/metrics"),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(status(Method::GET, "/"), StatusCode::NOT_FOUND);
        assert_eq!(status(Method::GET, "/metrics/x"), StatusCode::NOT_FOUND);
    }
}
