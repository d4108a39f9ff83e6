//! Revocation at stop is final for the calls still running: once the gateway starts
//! revoking its Atlas tokens (after the shutdown grace), each call of the wrapped service
//! ends at once `UNAVAILABLE`, reason `SHUTTING_DOWN`, instead of meeting a revoked
//! token. It owns that answer's timing only; the status is the error mapper's
//! ([`crate::grpc::status::shutting_down`]).
use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::sync::watch;
use tonic::{
    body::Body,
    codegen::{Body as HttpBody, Bytes, StdError},
    server::NamedService,
};
use tower::Service;

use crate::grpc::status::shutting_down;

/// `inner`, whose calls end `SHUTTING_DOWN` once `closing` turns true.
#[derive(Clone)]
pub(super) struct Closing<S> {
    inner: S,
    closing: watch::Receiver<bool>,
}

impl<S> Closing<S> {
    pub(super) fn new(inner: S, closing: watch::Receiver<bool>) -> Self {
        Self { inner, closing }
    }
}

impl<S: NamedService> NamedService for Closing<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<Body>> for Closing<S>
where
    S: Service<http::Request<Body>, Response = http::Response<B>, Error = Infallible>,
    S::Future: Send + 'static,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<StdError>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let call = self.inner.call(request);
        let mut closing = self.closing.clone();
        Box::pin(async move {
            tokio::select! {
                biased;
                Ok(_) = closing.wait_for(|closing| *closing) => Ok(shutting_down().into_http()),
                answer = call => answer.map(|response| response.map(Body::new)),
            }
        })
    }
}
