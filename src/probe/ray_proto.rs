//! Generated client for the Ray RPCs the probes call (`proto/ray_client.proto`).

#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("ray.rpc");
