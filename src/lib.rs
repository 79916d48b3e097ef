//! ferrokv: a distributed key-value store that speaks etcd's v3 API.
pub mod config;
pub mod pb;
