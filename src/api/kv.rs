//! `etcdserverpb.KV`: Range, Put, DeleteRange, Txn, Compact (etcd KV service semantics).

use super::{Api, validate};
use crate::mvcc::Response as Applied;
use crate::pb::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest,
    PutResponse, RangeRequest, RangeResponse, ResponseHeader, TxnRequest, TxnResponse,
    kv_server::Kv,
};
use crate::pb::peerpb::internal_request::Request as Internal;
use tonic::{Request, Response, Status};

/// The KV service; see the module docs.
pub struct KvService {
    api: Api,
}

impl KvService {
    /// Serves KV through `api`.
    pub fn new(api: Api) -> Self {
        Self { api }
    }

    /// Replaces the header the store filled (revision only) with a full one.
    fn header(&self, partial: Option<ResponseHeader>) -> Option<ResponseHeader> {
        self.api.full_header(partial)
    }

    async fn apply(&self, request: Internal) -> Result<Applied, Status> {
        self.api.apply(request).await
    }
}

fn unexpected(what: &str) -> Status {
    Status::internal(format!("unexpected apply result for {what}"))
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn range(
        &self,
        request: Request<RangeRequest>,
    ) -> Result<Response<RangeResponse>, Status> {
        let request = request.into_inner();
        validate::range(&request)?;
        let mut response = self.api.range(request).await?;
        response.header = self.header(response.header);
        Ok(Response::new(response))
    }

    async fn put(&self, request: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        let request = request.into_inner();
        validate::put(&request)?;
        match self.apply(Internal::Put(request)).await? {
            Applied::Put(mut r) => {
                r.header = self.header(r.header);
                Ok(Response::new(r))
            }
            _ => Err(unexpected("put")),
        }
    }

    async fn delete_range(
        &self,
        request: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        let request = request.into_inner();
        validate::delete_range(&request)?;
        match self.apply(Internal::DeleteRange(request)).await? {
            Applied::DeleteRange(mut r) => {
                r.header = self.header(r.header);
                Ok(Response::new(r))
            }
            _ => Err(unexpected("delete range")),
        }
    }

    async fn txn(&self, request: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        let request = request.into_inner();
        validate::txn(&request, self.api.max_txn_ops())?;
        match self.apply(Internal::Txn(request)).await? {
            Applied::Txn(mut r) => {
                r.header = self.header(r.header);
                Ok(Response::new(r))
            }
            _ => Err(unexpected("txn")),
        }
    }

    async fn compact(
        &self,
        request: Request<CompactionRequest>,
    ) -> Result<Response<CompactionResponse>, Status> {
        match self
            .apply(Internal::Compaction(request.into_inner()))
            .await?
        {
            Applied::Compaction(mut r) => {
                r.header = self.header(r.header);
                Ok(Response::new(r))
            }
            _ => Err(unexpected("compaction")),
        }
    }
}
