//! atlas-grpc-gateway: a gRPC sidecar in front of the MongoDB Atlas Admin API.
//!
//! # Layout
//! A call flows `proto/` → [`grpc::service`] (metadata → request → domain call →
//! response) → [`validate`] (all checks, all violations) → [`atlas`] (client,
//! operations, models, auth: OAuth + Digest, retry) → [`grpc::status`] (Atlas error →
//! gRPC status with details). Around it: [`config`] (flags, env, TOML), [`telemetry`]
//! (tracing, metrics), [`otel`] (OpenTelemetry spans, OTLP export), [`server`] (health,
//! reflection, TLS, shutdown), [`idempotency`] (AIP-155), [`secret`] (redaction), [`cli`]
//! (subcommands). [`emulator`] is a dev/test
//! double of Atlas used by `dev`, `emulator` and tests, never by `serve`.
pub mod atlas;
pub mod cli;
pub mod config;
pub mod dev;
pub mod emulator;
pub mod grpc;
pub mod idempotency;
pub mod otel;
pub mod secret;
pub mod server;
pub mod telemetry;
pub mod validate;

/// Generated protobuf types and the tonic service/client for `atlas.gateway.v1`.
pub mod pb {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("atlas.gateway.v1");

    /// Encoded descriptor set (with source info) for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("atlas_gateway_descriptor");

    impl std::fmt::Debug for ApiKey {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("ApiKey")
                .field("id", &self.id)
                .field("desc", &self.desc)
                .field("public_key", &self.public_key)
                .field("private_key", &"[REDACTED]")
                .field("roles", &self.roles)
                .field("links", &self.links)
                .finish()
        }
    }

    impl std::fmt::Debug for CreateLinkTokenResponse {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("CreateLinkTokenResponse")
                .field("link_token", &"[REDACTED]")
                .finish()
        }
    }
}
