//! The gRPC side of the rpc bench: a hand-written service (a `prost::Message` and tonic's
//! generic server and client, what `tonic-build` would generate for
//! `service Echo { rpc Echo(Msg) returns (Msg); }`), so no `protoc` is needed.

use std::convert::Infallible;
use std::task::{Context, Poll};

use tonic::codegen::{BoxFuture, Service, http};

/// The gRPC message: one integer, as small as the CapTP one.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Msg {
    #[prost(uint64, tag = "1")]
    pub n: u64,
}

pub const GRPC_PATH: &str = "/gobs.bench.Echo/Echo";

/// What `tonic-build` would generate for `service Echo { rpc Echo(Msg) returns (Msg); }`.
#[derive(Clone)]
pub struct EchoServer;

impl tonic::server::NamedService for EchoServer {
    const NAME: &'static str = "gobs.bench.Echo";
}

struct EchoUnary;

impl tonic::server::UnaryService<Msg> for EchoUnary {
    type Response = Msg;
    type Future = BoxFuture<tonic::Response<Msg>, tonic::Status>;
    fn call(&mut self, request: tonic::Request<Msg>) -> Self::Future {
        Box::pin(async move { Ok(tonic::Response::new(request.into_inner())) })
    }
}

impl<B> Service<http::Request<B>> for EchoServer
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() == GRPC_PATH {
            Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
                Ok(grpc.unary(EchoUnary, req).await)
            })
        } else {
            Box::pin(async move {
                let mut r = http::Response::new(tonic::body::Body::default());
                r.headers_mut().insert(
                    "grpc-status",
                    http::HeaderValue::from(tonic::Code::Unimplemented as i32),
                );
                Ok(r)
            })
        }
    }
}

pub type GrpcClient = tonic::client::Grpc<tonic::transport::Channel>;

pub async fn grpc_round_trip(client: &GrpcClient) {
    let mut client = client.clone();
    client.ready().await.unwrap();
    let reply: tonic::Response<Msg> = client
        .unary(
            tonic::Request::new(Msg { n: 42 }),
            http::uri::PathAndQuery::from_static(GRPC_PATH),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap();
    assert_eq!(reply.into_inner().n, 42);
}

/// `calls` unary calls in flight at once on the one HTTP/2 connection.
pub async fn grpc_concurrent(client: &GrpcClient, calls: u64) {
    futures_util::future::join_all((0..calls).map(|_| grpc_round_trip(client))).await;
}
