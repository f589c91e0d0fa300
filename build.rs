//! Generates the Ray gRPC client from proto/ with protox (no system protoc).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/ray_client.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
