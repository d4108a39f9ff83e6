//! atlas-grpc-gateway: a gRPC sidecar in front of the MongoDB Atlas Admin API.
//!
//! # Layout
//! A call flows `proto/` → [`grpc::service`] (one path for every RPC: metadata →
//! validation → policy → idempotency → Atlas call → response; each RPC an
//! [`grpc::rpc::Rpc`] in [`grpc::rpcs`]) → [`validate`] (all checks, all violations) → [`atlas`] (client,
//! operations, models, auth: OAuth + Digest, retry) → [`grpc::status`] (Atlas error →
//! gRPC status with details). Around it: [`config`] (flags, env, TOML), [`telemetry`]
//! (tracing, metrics), [`otel`] (OpenTelemetry spans, OTLP export), [`server`] (health,
//! reflection, shutdown, signals), [`tls`] (the TLS listener, refused handshakes), [`listen`] (accepting on the listeners it runs itself), [`idempotency`] (AIP-155), [`page_token`]
//! (AIP-158), [`lease`] (API keys that expire by themselves: the marker and the
//! sweeper), [`callers`] (who calls, bound to which profiles), [`audit`] (the
//! tamper-evident audit trail), [`store`] (fleet mode: state shared through Redis), [`secret`] (redaction),
//! [`cli`] (subcommands).
//!
//! # Features
//! `emulator` (on by default): the `emulator` module, a dev/test double of Atlas, and
//! the `dev` module, used by the `dev` and `emulator` subcommands and the tests, never by
//! `serve`. Production builds leave it out (`cargo build --release --no-default-features`,
//! as the Dockerfile does), and with it axum and the Digest server side.
pub mod atlas;
pub mod audit;
pub mod callers;
pub mod cli;
pub mod config;
#[cfg(feature = "emulator")]
pub mod dev;
#[cfg(feature = "emulator")]
pub mod emulator;
pub mod grpc;
pub mod idempotency;
pub mod lease;
pub mod listen;
pub mod otel;
pub mod page_token;
pub mod secret;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod validate;

/// Generated protobuf types and the tonic service/client for `atlas.gateway.v1`.
pub mod pb {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("atlas.gateway.v1");

    /// The RPCs of `AtlasGateway`, as a profile's `allowed_rpcs` names them.
    pub const RPC_NAMES: [&str; 9] = [
        "CreateLinkToken",
        "DeleteLinkToken",
        "CreateApiKey",
        "DeleteApiKey",
        "ListApiKeys",
        "CreateServiceAccount",
        "DeleteServiceAccount",
        "ListServiceAccounts",
        "RotateServiceAccountSecret",
    ];

    /// Encoded descriptor set (with source info) for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("atlas_gateway_descriptor");

    #[cfg(test)]
    #[test]
    fn rpc_names_are_the_service_methods() {
        use prost::Message as _;
        let set = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap();
        let methods: Vec<String> = set
            .file
            .iter()
            .flat_map(|f| &f.service)
            .filter(|s| s.name() == "AtlasGateway")
            .flat_map(|s| s.method.iter().map(|m| m.name().to_string()))
            .collect();
        assert_eq!(methods, RPC_NAMES);
    }

    impl std::fmt::Debug for ApiKey {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("ApiKey")
                .field("id", &self.id)
                .field("desc", &self.desc)
                .field("public_key", &self.public_key)
                .field("private_key", &"[REDACTED]")
                .field("roles", &self.roles)
                .field("links", &self.links)
                .field("access_list_ips", &self.access_list_ips)
                .field("expire_time", &self.expire_time)
                .finish()
        }
    }

    impl std::fmt::Debug for ServiceAccountSecret {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("ServiceAccountSecret")
                .field("id", &self.id)
                .field("secret", &"[REDACTED]")
                .field("expire_time", &self.expire_time)
                .field("create_time", &self.create_time)
                .field("masked_secret_value", &self.masked_secret_value)
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
