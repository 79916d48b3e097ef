//! etcd's plain-HTTP endpoints on the client URLs, served by the same listener as gRPC (etcd
//! does the same, so `curl http://127.0.0.1:2379/metrics` works against either):
//!
//! - `GET /metrics`: Prometheus text exposition of [`crate::metrics`].
//! - `GET /version`: `{"etcdserver":"<v>","etcdcluster":"<major.minor>.0"}` with the etcd
//!   version ferrokv reports (as etcd's `etcdhttp.serveVersion`).
//! - `GET /livez`, `GET /readyz` (etcd 3.5.11+'s checks, [`Probe`]): `200 ok` when every
//!   check passes (`?verbose` lists them as `[+]name ok`), else `503` with the failed ones as
//!   `[-]name failed: reason`; `?exclude=name` skips one; `/readyz/<name>` runs one. livez:
//!   `serializable_read`; readyz: `data_corruption` (no CORRUPT alarm), `serializable_read`,
//!   `linearizable_read`, `non_learner`.
//! - `GET /health`: `200 {"health":"true"}` when no alarm is active, this member knows a
//!   leader and a linearizable read completes within 1 s; else `503 {"health":"false"}` (etcd
//!   3.4 `etcdhttp.checkHealth`).
//! - `GET /debug/pprof/profile?seconds=N[&format=svg]`, only with `--enable-pprof`: a CPU
//!   profile of the process ([`pprof`]). Every other `/debug/pprof/` path, and this one without
//!   the flag, is a 404 with Go's text, as etcd answers.
//! - Any other path: `404 page not found` for plain HTTP, as etcd; a gRPC request
//!   (`content-type: application/grpc…`) for an unknown method gets gRPC's `Unimplemented`
//!   (`200`, `grpc-status: 12`), as tonic would ([`unknown_path`]).
//!
//! - `POST /v3/...` (and `/v3beta/`, `/v3alpha/`): the JSON gateway ([`gateway`]).
//!
//! tonic's router is an axum `Router`; these routes join it, and the client server accepts
//! HTTP/1.1 next to HTTP/2 (tonic detects the HTTP/2 preface per connection). gRPC requests
//! are all `POST /<service>/<method>`, so the two never collide. The alternative, a second
//! HTTP server behind a content-type switch (etcd's cmux), would need its own listener plumbing
//! for no gain.

pub mod gateway;
pub mod pprof;

use super::Api;
use crate::metrics::{Metrics, Sample, health_json};
use crate::pb::etcdserverpb::RangeRequest;
use crate::watch::actor::{GetWatchCounts, WatchHub};
use actix::Addr;
use axum::extract::{RawQuery, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
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
    /// `--enable-pprof`: whether [`pprof::PROFILE_PATH`] is routed.
    pprof: bool,
    /// `--cors`: allowed origins (`*` or empty = any).
    cors: Arc<Vec<String>>,
}

impl Http {
    /// Routes reading from `api` and `hub`, reporting as member `member_id`; with `pprof`
    /// (`--enable-pprof`) also the CPU profile.
    pub fn new(api: Api, hub: Addr<WatchHub>, member_id: u64, pprof: bool) -> Self {
        Http {
            api,
            hub,
            metrics: Arc::new(Metrics::new(member_id)),
            pprof,
            cors: Arc::new(vec!["*".into()]),
        }
    }

    /// With `--cors` origins (etcd's default `*`).
    pub fn with_cors(mut self, origins: Vec<String>) -> Self {
        self.cors = Arc::new(origins);
        self
    }

    /// The origin to answer in `Access-Control-Allow-Origin`, if any (etcd's
    /// `corsHandler`: `*` when any origin is allowed, else the request's own if listed).
    fn cors_origin(&self, request_origin: Option<&str>) -> Option<String> {
        if self.cors.is_empty() || self.cors.iter().any(|o| o == "*") {
            return Some("*".into());
        }
        request_origin
            .filter(|o| self.cors.iter().any(|allowed| allowed == o))
            .map(str::to_owned)
    }

    /// tonic routes holding `/metrics`, `/health` and, with `--enable-pprof`,
    /// `/debug/pprof/profile`; add the gRPC services to them.
    pub fn routes(&self) -> tonic::service::Routes {
        let mut http = axum::Router::new()
            .route("/metrics", get(metrics))
            .route("/health", get(health))
            .route("/version", get(version))
            .route("/livez", any(probe_all::<false>))
            .route("/livez/{check}", any(probe_one::<false>))
            .route("/readyz", any(probe_all::<true>))
            .route("/readyz/{check}", any(probe_one::<true>))
            .route("/debug/pprof", any(not_found))
            .route("/debug/pprof/", any(not_found))
            .route("/debug/pprof/{*rest}", any(not_found));
        if self.pprof {
            // A static segment wins over the wildcard above.
            http = http.route(pprof::PROFILE_PATH, get(pprof::profile));
        }
        let http = http
            .merge(gateway::routes())
            .layer(axum::middleware::from_fn_with_state(self.clone(), cors))
            .with_state(self.clone());
        tonic::service::Routes::default()
            .into_axum_router()
            .merge(http)
            .fallback(unknown_path)
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

    /// etcd 3.4 `checkHealth`: no active alarm, a known leader, a linearizable read.
    async fn healthy(&self) -> bool {
        if self.api.raft_status().leader_id == 0 {
            return false;
        }
        match self.api.store_status().await {
            Ok(status) if status.alarms.is_empty() => {}
            _ => return false,
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

/// The two probe endpoints and their checks, in the order they run and are listed (etcd keeps
/// them in a map, so its verbose order varies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Probe {
    Livez,
    Readyz,
}

impl Probe {
    fn of(ready: bool) -> Probe {
        if ready { Probe::Readyz } else { Probe::Livez }
    }

    fn checks(self) -> &'static [&'static str] {
        match self {
            Probe::Livez => &["serializable_read"],
            Probe::Readyz => &[
                "data_corruption",
                "serializable_read",
                "linearizable_read",
                "non_learner",
            ],
        }
    }
}

impl Http {
    /// Runs one named check; `Err` carries etcd's failure text.
    async fn check(&self, name: &str) -> Result<(), String> {
        match name {
            "data_corruption" => {
                let status = self
                    .api
                    .store_status()
                    .await
                    .map_err(|e| e.message().to_string())?;
                let corrupt = crate::pb::etcdserverpb::AlarmType::Corrupt as i32;
                if status.alarms.iter().any(|(_, a)| *a == corrupt) {
                    return Err("alarm activated: CORRUPT".into());
                }
                Ok(())
            }
            "serializable_read" | "linearizable_read" => {
                // etcd's readCheck: keys only, limit 1, no key.
                let read = self.api.range(RangeRequest {
                    keys_only: true,
                    limit: 1,
                    serializable: name == "serializable_read",
                    ..Default::default()
                });
                let timeout = HEALTH_READ_TIMEOUT * 5;
                match tokio::time::timeout(timeout, read).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(e.message().to_string()),
                    Err(_) => Err("etcdserver: request timed out".into()),
                }
            }
            // ferrokv has no learners yet (issue 11): this member always votes.
            "non_learner" => Ok(()),
            other => Err(format!("unknown check {other}")),
        }
    }

    /// etcd's `newHealthHandler` around `runHealthChecks` for `names`.
    async fn probe(&self, method: &Method, names: &[&str], verbose: bool) -> Response {
        if method != Method::GET {
            let headers = [
                (header::ALLOW, "GET"),
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            ];
            return (
                StatusCode::METHOD_NOT_ALLOWED,
                headers,
                "Method Not Allowed\n",
            )
                .into_response();
        }
        let mut report = String::new();
        let mut failed = false;
        for name in names {
            match self.check(name).await {
                Ok(()) => report.push_str(&format!("[+]{name} ok\n")),
                Err(e) => {
                    failed = true;
                    report.push_str(&format!("[-]{name} failed: {e}\n"));
                }
            }
        }
        let headers = [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ];
        if failed {
            // Go's http.Error: the reason and a newline.
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                headers,
                format!("{report}\n"),
            )
                .into_response();
        }
        let body = if verbose {
            format!("{report}ok\n")
        } else {
            "ok\n".into()
        };
        (StatusCode::OK, headers, body).into_response()
    }
}

/// The query's `verbose` flag and `exclude` names (repeated or comma-separated, as etcd's
/// `getQuerySet`).
fn probe_query(query: Option<&str>) -> (bool, Vec<String>) {
    let mut verbose = false;
    let mut exclude = Vec::new();
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "verbose" => verbose = true,
            "exclude" => exclude.extend(v.split(',').filter(|s| !s.is_empty()).map(String::from)),
            _ => {}
        }
    }
    (verbose, exclude)
}

/// `/livez` (`READY = false`) or `/readyz`: every check but the `?exclude=`d ones.
async fn probe_all<const READY: bool>(
    State(http): State<Http>,
    method: Method,
    RawQuery(query): RawQuery,
) -> Response {
    let (verbose, exclude) = probe_query(query.as_deref());
    let names: Vec<&str> = Probe::of(READY)
        .checks()
        .iter()
        .copied()
        .filter(|c| !exclude.iter().any(|e| e == c))
        .collect();
    http.probe(&method, &names, verbose).await
}

/// `/livez/<check>` or `/readyz/<check>`: that check alone; 404 for a check the probe lacks.
async fn probe_one<const READY: bool>(
    State(http): State<Http>,
    axum::extract::Path(check): axum::extract::Path<String>,
    method: Method,
    RawQuery(query): RawQuery,
) -> Response {
    match Probe::of(READY).checks().iter().find(|c| **c == check) {
        Some(name) => {
            let (verbose, _) = probe_query(query.as_deref());
            http.probe(&method, &[name], verbose).await
        }
        None => not_found().await,
    }
}

/// etcd's `/version`: the server's etcd version and the cluster version (major.minor.0).
async fn version() -> Response {
    let server = super::maintenance::REPORTED_VERSION;
    let cluster = server
        .rsplit_once('.')
        .map_or(server.to_string(), |(mm, _)| format!("{mm}.0"));
    let body = serde_json::json!({ "etcdserver": server, "etcdcluster": cluster }).to_string();
    let content_type = [(header::CONTENT_TYPE, "application/json")];
    (StatusCode::OK, content_type, body).into_response()
}

/// etcd's `corsHandler` around the plain-HTTP endpoints: the three `Access-Control-Allow-*`
/// headers for an allowed origin, and `200` with no body for any `OPTIONS` (a browser's
/// preflight). gRPC requests never pass through it; neither do unknown paths (etcd's 404s
/// carry the headers too; a browser needs them only on endpoints that exist).
async fn cors(
    State(http): State<Http>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let origin = http.cors_origin(
        request
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok()),
    );
    let mut response = if request.method() == Method::OPTIONS {
        StatusCode::OK.into_response()
    } else {
        next.run(request).await
    };
    if let Some(origin) = origin
        && let Ok(origin) = axum::http::HeaderValue::from_str(&origin)
    {
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            axum::http::HeaderValue::from_static("POST, GET, OPTIONS, PUT, DELETE"),
        );
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            axum::http::HeaderValue::from_static("accept, content-type, authorization"),
        );
    }
    response
}

/// Requests no route matched: gRPC ones answered as tonic does (`Unimplemented`), the rest
/// with Go's plain 404 (etcd's HTTP mux).
pub async fn unknown_path(request: axum::extract::Request) -> Response {
    let grpc = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if grpc {
        tonic::Status::unimplemented("").into_http()
    } else {
        not_found().await
    }
}

/// Go's `http.NotFound`, which etcd answers for paths it does not serve.
async fn not_found() -> Response {
    let content_type = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    (StatusCode::NOT_FOUND, content_type, "404 page not found\n").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(content_type: Option<&str>) -> Response {
        let mut request = axum::http::Request::post("/etcdserverpb.Nope/Nothing");
        if let Some(ct) = content_type {
            request = request.header(header::CONTENT_TYPE, ct);
        }
        unknown_path(request.body(axum::body::Body::empty()).unwrap()).await
    }

    #[tokio::test]
    async fn unknown_grpc_methods_are_unimplemented_and_other_paths_404() {
        let grpc = answer(Some("application/grpc+proto")).await;
        assert_eq!(grpc.status(), StatusCode::OK);
        assert_eq!(grpc.headers()["grpc-status"], "12");
        for ct in [None, Some("text/plain"), Some("application/json")] {
            assert_eq!(answer(ct).await.status(), StatusCode::NOT_FOUND, "{ct:?}");
        }
    }
}
