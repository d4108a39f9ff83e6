//! The gRPC edge: the tonic service ([`service`]) that runs every RPC ([`rpcs`], each an
//! [`rpc::Rpc`]) through one path, the per-call envelope ([`call`]), every policy check
//! ([`policy`]), the audit records of a call ([`audited`]) and the error mapper
//! ([`status`]).
pub mod audited;
pub mod call;
pub mod policy;
pub mod rpc;
pub mod rpcs;
pub mod service;
pub mod status;
