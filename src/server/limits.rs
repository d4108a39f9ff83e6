//! The HTTP/2 limits of the gRPC server (contract: "Transport limits"), for every
//! service alike, health and reflection included: streams per connection, hyper's
//! local-reset flood guard, the header list, HTTP/2 keepalive pings, and a request body
//! that must have fully arrived within `request_timeout` (else `DEADLINE_EXCEEDED`).
//! The message size limit is set on each service (`max_decoding_message_size`), the
//! connection limits in `crate::listen`. It never reads a request's content.
use std::{
    future::Future,
    pin::Pin,
    task::{ready, Context, Poll},
    time::Duration,
};

use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use tonic::{body::Body, codegen::Bytes, transport::Server, Status};
use tower::{layer::util::Identity, layer::util::Stack, Layer, Service};

use crate::config::TransportLimits;

/// The server builder with the HTTP/2 limits and the request-body deadline.
pub(super) fn builder(
    limits: &TransportLimits,
    request_timeout: Duration,
) -> Server<Stack<BodyDeadlineLayer, Identity>> {
    Server::builder()
        .max_concurrent_streams(limits.max_concurrent_streams)
        .http2_max_local_error_reset_streams(Some(limits.max_local_error_reset_streams))
        .http2_max_header_list_size(limits.max_header_list_bytes)
        .http2_keepalive_interval(Some(limits.http2_keepalive_interval))
        .http2_keepalive_timeout(Some(limits.http2_keepalive_timeout))
        .layer(BodyDeadlineLayer(request_timeout))
}

/// Gives every request body a deadline, `request_timeout` after its headers.
#[derive(Clone, Copy)]
pub(super) struct BodyDeadlineLayer(Duration);

impl<S> Layer<S> for BodyDeadlineLayer {
    type Service = BodyDeadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BodyDeadline {
            inner,
            timeout: self.0,
        }
    }
}

/// A service whose requests' bodies end `DEADLINE_EXCEEDED` when they have not fully
/// arrived by their deadline.
#[derive(Clone)]
pub(super) struct BodyDeadline<S> {
    inner: S,
    timeout: Duration,
}

impl<S> Service<http::Request<Body>> for BodyDeadline<S>
where
    S: Service<http::Request<Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let at = Instant::now() + self.timeout;
        self.inner.call(request.map(|body| {
            Body::new(DeadlineBody {
                body,
                at,
                timer: None,
            })
        }))
    }
}

/// A request body with a deadline. The timer is armed only when the body is not all
/// there at once (a unary call's message usually is): no timer per call.
struct DeadlineBody {
    body: Body,
    at: Instant,
    timer: Option<Pin<Box<Sleep>>>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let at = this.at;
        let timer = (this.timer).get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(Some(Err(Status::deadline_exceeded(
            "the request did not fully arrive within request_timeout",
        ))))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
