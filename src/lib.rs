//! ferrokv: a distributed key-value store that speaks etcd's v3 API.
pub mod pb;
pub mod mvcc;
