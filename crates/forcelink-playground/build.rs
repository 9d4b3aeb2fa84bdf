//! Compiles `proto/pubsub.proto` in pure Rust (protox; the build machines have no `protoc`)
//! into the Pub/Sub API's server side.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/pubsub.proto");
    let fds = protox::compile(["proto/pubsub.proto"], ["proto"])?;
    tonic_prost_build::configure().build_client(false).build_server(true).compile_fds(fds)?;
    Ok(())
}
