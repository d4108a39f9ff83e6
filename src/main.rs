//! Binary entry point: everything lives in the library (`atlas_grpc_gateway::cli`).
fn main() -> std::process::ExitCode {
    atlas_grpc_gateway::cli::main()
}
