//! atlas-grpc-gateway: a gRPC sidecar in front of the MongoDB Atlas Admin API.
pub mod pb {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("atlas.gateway.v1");
    /// Encoded descriptor set for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("atlas_gateway_descriptor");
}
pub mod emulator;
