//! The gRPC edge: the tonic service ([`service`]) that runs every RPC ([`rpcs`], each an
//! [`rpc::Rpc`]) through one path, the per-call envelope ([`call`]) and the error mapper
//! ([`status`]).
pub mod call;
pub mod rpc;
pub mod rpcs;
pub mod service;
pub mod status;
