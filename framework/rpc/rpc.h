// framework/rpc: what every gRPC service and client of Hone shares (DESIGN.md §2, §3, §9).
//
//  * Batch <-> proto. Tensors travel as raw little-endian bytes with dtype and shape, never
//    as repeated scalars: a step's batch is tens of MiB and a per-element encoding would
//    cost more than the step's compute. Decoding is the trust boundary (a message may come
//    from a buggy or mismatched peer), so it validates everything and never crashes.
//  * absl::Status <-> grpc::Status. Modules speak absl::Status; the wire speaks gRPC codes.
//    The two code sets coincide numerically, so mapping keeps the code and message: a
//    worker's INVALID_ARGUMENT reaches the controller as INVALID_ARGUMENT.
//  * The job token. gRPC 1.51 on plaintext cannot use AuthMetadataProcessor (it works only
//    with secure server credentials), and its experimental server interceptors cannot stop
//    a call before the handler runs (Hijack is client-only; ModifySendStatus rewrites the
//    status only after the handler has done its work), so authentication is one function,
//    CheckToken, that every handler calls first. The token is shared over MPI at start-up and sent in
//    the "x-hone-token" metadata entry of every call. It keeps stray clients (another
//    job's controller on a shared node, a port scanner) out; it is not encryption.
//  * Channels and servers with explicit message limits (gRPC's 4 MiB default is far below
//    one step's batch) and deadlines on every call, so a hung worker becomes an error.
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/server.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "framework/data/batch.h"
#include "proto/hone.pb.h"

namespace hone::rpc {

// ---- Tensors and batches on the wire ----
//
// Wire dtype names (hone.proto): "float32", "float64", "bfloat16", "float16", "int64",
// "int32", "uint8", "bool". Data is numel * itemsize bytes, row-major, little-endian;
// bfloat16 and float16 travel as their raw 16-bit patterns, so they round-trip exactly.

// Encodes `tensor` under `name`. Only CPU tensors (INVALID_ARGUMENT otherwise, as for an
// undefined tensor or a dtype outside the list above); non-contiguous ones are made
// contiguous first. A 0-dim tensor encodes with an empty shape.
absl::Status TensorToProto(const std::string& name, const torch::Tensor& tensor, proto::Tensor* out);

// Decodes a tensor (a fresh CPU tensor that owns its memory). INVALID_ARGUMENT naming the
// tensor when the dtype is unknown, a dim is negative, the element count overflows, the
// data's byte length != numel * itemsize, or a bool byte is not 0 or 1. Never crashes on
// any input.
absl::StatusOr<torch::Tensor> TensorFromProto(const proto::Tensor& msg);

// Encodes every column and the meta map (columns in name order). Fails only when a tensor
// cannot be encoded (an unsupported dtype).
absl::Status BatchToProto(const Batch& batch, proto::Batch* out);

// Decodes a batch. INVALID_ARGUMENT (naming the column) for a malformed tensor, a tensor
// with zero dims, a column whose row count != rows, or two columns of one kind with the
// same name; also for negative `rows`, or rows != 0 with no column at all (a Batch cannot
// hold that). Never crashes on any input.
absl::StatusOr<Batch> BatchFromProto(const proto::Batch& msg);

// ---- Status mapping ----

// Same code and message. OK maps to OK.
grpc::Status ToGrpc(const absl::Status& status);
// Same code; message "<context>: <message>" (just the message when `context` is empty),
// so the caller's error says which call on which worker failed. OK maps to OK.
absl::Status FromGrpc(const grpc::Status& status, absl::string_view context);

// ---- The job token ----

// A fresh job token: 32 lowercase hex characters (128 bits) from /dev/urandom.
// INTERNAL when /dev/urandom cannot be read; never falls back to a weaker source.
absl::StatusOr<std::string> RandomToken();

// The metadata key the token travels under (gRPC metadata keys are lowercase).
inline constexpr char kTokenMetadataKey[] = "x-hone-token";

// The check every handler runs first:
//   grpc::Status s = rpc::CheckToken(*context, token_); if (!s.ok()) return s;
// UNAUTHENTICATED ("missing or wrong job token ...") unless the request's metadata carries
// exactly `token`. Comparison time does not depend on where the tokens differ. An empty
// `token` (a server started without one) rejects every call rather than accepting all.
grpc::Status CheckToken(const grpc::ServerContext& context, const std::string& token);

// ---- Client and server plumbing ----

// A client context carrying `token` and a deadline `timeout_s` seconds from now. Every
// call needs one (a ClientContext is single-use). A timeout <= 0 makes the call fail at
// once with DEADLINE_EXCEEDED; absurdly large ones are capped at ten years.
std::unique_ptr<grpc::ClientContext> MakeClientContext(const std::string& token, double timeout_s);

// An insecure channel to `endpoint` ("host:port") with send and receive limits of
// `max_message_bytes` (gRPC's default receive limit of 4 MiB is far too small for a
// step's batch). HTTP proxies from the environment are ignored: workers talk to each
// other directly inside the cluster. The channel connects lazily, on the first call.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& endpoint, int max_message_bytes);

// A running server and where it listens. `endpoint` is "host:port" with the real port
// ("[host]:port" for an IPv6 literal), ready to hand to MakeChannel on another rank.
struct RunningServer {
  std::unique_ptr<grpc::Server> server;
  std::string endpoint;
  int port = 0;
};

// Starts a server on host:port (port 0: a free port chosen by the OS) with `services`
// registered (not owned: they must outlive the server) and receive/send limits of
// `max_message_bytes`. Port reuse (SO_REUSEPORT, on by default in gRPC) is switched off,
// so a port held by another process is an error instead of two servers sharing it.
// UNAVAILABLE naming host:port when the server cannot bind or start.
absl::StatusOr<RunningServer> StartServer(const std::string& host, int port,
                                          const std::vector<grpc::Service*>& services,
                                          int max_message_bytes);

// The endpoint other ranks should dial for a server bound to `bind_host`:`port`. A
// wildcard bind (0.0.0.0, ::) listens on every interface but is no address to dial, so it
// is announced as `hostname` (a multi-node job: each worker names its own node); any
// other host is announced as bound.
std::string AnnouncedEndpoint(const std::string& bind_host, int port, const std::string& hostname);

}  // namespace hone::rpc
