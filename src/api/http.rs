//! etcd's plain-HTTP endpoints on the client URLs, served by the same listener as gRPC (etcd
//! does the same, so `curl http://127.0.0.1:2379/metrics` works against either):
//!
//! - `GET /metrics`: Prometheus text exposition of [`crate::metrics`].
//! - `GET /health`: `200 {"health":"true"}` when this member knows a leader and a
//!   linearizable read completes within 1 s; else `503 {"health":"false"}` (etcd 3.4
//!   `etcdhttp.checkHealth`, which also requires no active alarm and uses a quorum read).
//!
//! tonic's router is an axum `Router`; these routes join it, and the client server accepts
//! HTTP/1.1 next to HTTP/2 (tonic detects the HTTP/2 preface per connection). gRPC requests
//! are all `POST /<service>/<method>`, so the two never collide. The alternative, a second
//! HTTP server behind a content-type switch (etcd's cmux), would need its own listener plumbing
//! for no gain.

use super::Api;
use crate::metrics::{Metrics, Sample, health_json};
use crate::pb::etcdserverpb::RangeRequest;
use crate::watch::actor::{GetWatchCounts, WatchHub};
use actix::Addr;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;
use std::time::Duration;

/// How long `/health`'s linearizable read may take (etcd 3.4: one second).
pub const HEALTH_READ_TIMEOUT: Duration = Duration::from_secs(1);

/// State of the HTTP routes; cheap to clone.
#[derive(Clone)]
pub struct Http {
    api: Api,
    hub: Addr<WatchHub>,
    metrics: Arc<Metrics>,
}

impl Http {
    /// Routes reading from `api` and `hub`, reporting as member `member_id`.
    pub fn new(api: Api, hub: Addr<WatchHub>, member_id: u64) -> Self {
        Http {
            api,
            hub,
            metrics: Arc::new(Metrics::new(member_id)),
        }
    }

    /// tonic routes holding `/metrics` and `/health`; add the gRPC services to them.
    pub fn routes(&self) -> tonic::service::Routes {
        let http = axum::Router::new()
            .route("/metrics", get(metrics))
            .route("/health", get(health))
            .with_state(self.clone());
        // Routes::default() keeps tonic's fallback: an unknown gRPC method → Unimplemented.
        tonic::service::Routes::default()
            .into_axum_router()
            .merge(http)
            .into()
    }

    async fn sample(&self) -> Sample {
        let counts = self.hub.send(GetWatchCounts).await.unwrap_or_default();
        let raft = self.api.raft_status();
        let store = self.api.store_status().await.ok();
        Sample {
            watchers: counts.watchers,
            streams: counts.streams,
            leader_id: raft.leader_id,
            is_leader: raft.is_leader,
            commit_index: raft.commit_index,
            applied_index: store.as_ref().map_or(0, |s| s.applied_index),
            revision: store.as_ref().map_or(0, |s| s.revision),
            db_size_bytes: self.api.db_size_bytes(),
        }
    }

    /// etcd 3.4 `checkHealth` without the alarm check (ferrokv raises no alarms yet).
    async fn healthy(&self) -> bool {
        if self.api.raft_status().leader_id == 0 {
            return false;
        }
        let read = self.api.range(RangeRequest {
            key: b"health".to_vec(),
            ..Default::default()
        });
        matches!(
            tokio::time::timeout(HEALTH_READ_TIMEOUT, read).await,
            Ok(Ok(_))
        )
    }
}

async fn metrics(State(http): State<Http>) -> Response {
    let text = http.metrics.render(&http.sample().await);
    ([(header::CONTENT_TYPE, http.metrics.content_type())], text).into_response()
}

async fn health(State(http): State<Http>) -> Response {
    let healthy = http.healthy().await;
    http.metrics.record_health(healthy);
    let content_type = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    if healthy {
        (StatusCode::OK, content_type, health_json(true)).into_response()
    } else {
        // etcd answers through Go's http.Error, which ends the body with a newline.
        let body = format!("{}\n", health_json(false));
        (StatusCode::SERVICE_UNAVAILABLE, content_type, body).into_response()
    }
}
