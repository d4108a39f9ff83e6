//! The gRPC edge: the tonic service ([`service`]), the per-call envelope ([`call`]) and
//! the error mapper ([`status`]).
pub mod call;
pub mod service;
pub mod status;
