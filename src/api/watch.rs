//! `etcdserverpb.Watch`: one bidirectional stream carrying many watches (etcd v3rpc
//! `watchServer`).
//!
//! Each stream gets an id and an outgoing queue at the `WatchHub`; a task forwards the
//! client's create / cancel / progress requests to the hub and closes the stream at the hub
//! when the client ends it or goes away. The outgoing side takes the hub's responses, fills
//! in the full response header (cluster id, member id, raft term) and, for watches created
//! with `fragment`, splits a response at or above the size limit into fragments
//! ([`crate::watch::fragment`]).

use super::{Api, error};
use crate::pb::etcdserverpb::{
    WatchRequest, WatchResponse, watch_request::RequestUnion, watch_server::Watch,
};
use crate::watch::actor::{
    CancelWatch, CloseStream, CreateWatch, OpenStream, RequestProgress, StreamSink, WatchHub,
};
use crate::watch::fragment;
use actix::Addr;
use futures::{Stream, StreamExt as _};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status, Streaming};

/// The Watch service; see the module docs.
pub struct WatchService {
    api: Api,
    hub: Addr<WatchHub>,
    fragment_limit_bytes: usize,
}

impl WatchService {
    /// Serves Watch through `hub`, headers from `api`. A fragmenting watch gets responses
    /// below `fragment_limit_bytes` (etcd: `--max-request-bytes` + 512 KiB gRPC overhead).
    pub fn new(api: Api, hub: Addr<WatchHub>, fragment_limit_bytes: usize) -> Self {
        Self {
            api,
            hub,
            fragment_limit_bytes,
        }
    }
}

impl WatchService {
    /// Opens one watch stream at the hub fed by `inbound` (create / cancel / progress
    /// requests, in order); the stream is closed at the hub when `inbound` ends. Returns the
    /// responses, headers filled in, fragmented where the watch asked for it. Used by the gRPC
    /// `Watch` and by the JSON gateway's `/v3/watch`. Errors: `Unavailable` "etcdserver:
    /// server stopped" when the hub is gone.
    pub async fn open(
        &self,
        inbound: impl Stream<Item = WatchRequest> + Send + 'static,
    ) -> Result<ResponseStream, Status> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let stream = self
            .hub
            .send(OpenStream(StreamSink {
                tx,
                queued: queued.clone(),
            }))
            .await
            .map_err(|_| error::stopped())?;
        let hub = self.hub.clone();
        tokio::spawn(async move {
            let mut inbound = std::pin::pin!(inbound);
            while let Some(req) = inbound.next().await {
                match req.request_union {
                    Some(RequestUnion::CreateRequest(request)) => {
                        hub.do_send(CreateWatch { stream, request })
                    }
                    Some(RequestUnion::CancelRequest(c)) => hub.do_send(CancelWatch {
                        stream,
                        watch_id: c.watch_id,
                    }),
                    Some(RequestUnion::ProgressRequest(_)) => hub.do_send(RequestProgress(stream)),
                    None => {}
                }
            }
            hub.do_send(CloseStream(stream));
        });
        let api = self.api.clone();
        let limit = self.fragment_limit_bytes;
        let out = UnboundedReceiverStream::new(rx).flat_map(move |out| {
            queued.fetch_sub(1, Ordering::AcqRel);
            let mut response = out.response;
            let revision = response.header.map_or(0, |h| h.revision);
            response.header = Some(api.header(revision));
            let parts = if out.fragment {
                fragment::split(response, limit)
            } else {
                vec![response]
            };
            futures::stream::iter(parts.into_iter().map(Ok))
        });
        Ok(Box::pin(out))
    }
}

/// The responses of one watch stream.
pub type ResponseStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Watch for WatchService {
    async fn watch(
        &self,
        request: Request<Streaming<WatchRequest>>,
    ) -> Result<Response<ResponseStream>, Status> {
        // Ends on the client's end of stream or a transport error (client gone).
        let inbound = futures::stream::unfold(request.into_inner(), |mut s| async move {
            match s.message().await {
                Ok(Some(m)) => Some((m, s)),
                _ => None,
            }
        });
        Ok(Response::new(self.open(inbound).await?))
    }
}
