//! Generates the gRPC code for `proto/` at build time with protox (a pure-Rust protobuf
//! compiler) and tonic-prost-build, so a fresh machine needs no system `protoc`.

use std::path::{Path, PathBuf};

fn proto_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read proto/")
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            proto_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
}

fn main() {
    let mut files = Vec::new();
    proto_files(Path::new("proto"), &mut files);
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(&files, ["proto"]).expect("compile proto/ with protox");
    // The JSON gateway: serde impls with the protobuf JSON mapping as etcd's grpc-gateway
    // writes it (proto field names, int64 as strings, bytes as base64, enum names).
    let descriptors = prost::Message::encode_to_vec(&fds);
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors)
        .expect("register descriptors")
        .preserve_proto_field_names()
        .ignore_unknown_fields()
        .build(&[".etcdserverpb", ".mvccpb", ".authpb"])
        .expect("generate JSON mapping");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .generate_default_stubs(true)
        .compile_fds(fds)
        .expect("generate gRPC code");
}
