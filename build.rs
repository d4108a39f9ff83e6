//! Compiles `proto/` with protox (pure Rust, no system `protoc`) and writes the encoded
//! descriptor set for gRPC server reflection next to the generated code.
use std::{env, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(["atlas/gateway/v1/gateway.proto"])?;

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("atlas_gateway_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Debug for these is written by hand so secrets print as [REDACTED].
        .skip_debug([
            "atlas.gateway.v1.ApiKey",
            "atlas.gateway.v1.CreateLinkTokenResponse",
            "atlas.gateway.v1.ServiceAccountSecret",
        ])
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
