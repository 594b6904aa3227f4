// Status mapping, the job token, channels and servers (rpc.h).
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/support/channel_arguments.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "framework/rpc/rpc.h"

namespace hone::rpc {
namespace {

// absl and gRPC both number their codes as google.rpc.Code does (OK = 0 ...
// UNAUTHENTICATED = 16), so a code maps by value; anything outside that range is UNKNOWN.
constexpr int kMaxCanonicalCode = 16;
static_assert(static_cast<int>(absl::StatusCode::kUnauthenticated) == kMaxCanonicalCode &&
                  static_cast<int>(grpc::StatusCode::UNAUTHENTICATED) == kMaxCanonicalCode &&
                  static_cast<int>(absl::StatusCode::kInvalidArgument) ==
                      static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT) &&
                  static_cast<int>(absl::StatusCode::kDeadlineExceeded) ==
                      static_cast<int>(grpc::StatusCode::DEADLINE_EXCEEDED),
              "absl and gRPC status codes no longer share their numbering");

int CanonicalCode(int code) { return code >= 0 && code <= kMaxCanonicalCode ? code : 2 /* UNKNOWN */; }

// Whether two strings are equal, in time that depends only on their lengths (the token's
// length is public: 32 characters).
bool ConstantTimeEquals(const char* a, size_t a_size, const std::string& b) {
  if (a_size != b.size()) return false;
  volatile unsigned char diff = 0;
  for (size_t i = 0; i < a_size; ++i) {
    diff = diff | (static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i]));
  }
  return diff == 0;
}

}  // namespace

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(CanonicalCode(static_cast<int>(status.code()))),
                      std::string(status.message()));
}

absl::Status FromGrpc(const grpc::Status& status, absl::string_view context) {
  if (status.ok()) return absl::OkStatus();
  auto code = static_cast<absl::StatusCode>(CanonicalCode(static_cast<int>(status.error_code())));
  if (context.empty()) return absl::Status(code, status.error_message());
  return absl::Status(code, absl::StrCat(context, ": ", status.error_message()));
}

absl::StatusOr<std::string> RandomToken() {
  unsigned char bytes[16];
  std::FILE* file = std::fopen("/dev/urandom", "rb");
  if (file == nullptr) return absl::InternalError("cannot open /dev/urandom for the job token");
  size_t got = std::fread(bytes, 1, sizeof(bytes), file);
  std::fclose(file);
  if (got != sizeof(bytes)) return absl::InternalError("cannot read 16 bytes from /dev/urandom for the job token");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token;
  token.reserve(2 * sizeof(bytes));
  for (unsigned char b : bytes) {
    token.push_back(kHex[b >> 4]);
    token.push_back(kHex[b & 0xf]);
  }
  return token;
}

grpc::Status CheckToken(const grpc::ServerContext& context, const std::string& token) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(kTokenMetadataKey);
  bool ok = !token.empty() && it != metadata.end() &&
            ConstantTimeEquals(it->second.data(), it->second.size(), token);
  if (ok) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      absl::StrCat("missing or wrong job token (metadata '", kTokenMetadataKey,
                                   "'); is the caller part of this job?"));
}

std::unique_ptr<grpc::ClientContext> MakeClientContext(const std::string& token, double timeout_s) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->AddMetadata(kTokenMetadataKey, token);
  // Clamp before converting: a double outside the clock's range (or NaN) is undefined
  // behaviour in duration_cast.
  constexpr double kMaxTimeout = 10.0 * 365 * 24 * 3600;
  double seconds = std::isnan(timeout_s) ? 0.0 : std::clamp(timeout_s, 0.0, kMaxTimeout);
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::duration_cast<std::chrono::system_clock::duration>(
                            std::chrono::duration<double>(seconds)));
  return context;
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& endpoint, int max_message_bytes) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(max_message_bytes);
  args.SetMaxSendMessageSize(max_message_bytes);
  // An http_proxy in a login shell's environment must not capture rank-to-rank traffic.
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  return grpc::CreateCustomChannel(endpoint, grpc::InsecureChannelCredentials(), args);
}

absl::StatusOr<RunningServer> StartServer(const std::string& host, int port,
                                          const std::vector<grpc::Service*>& services,
                                          int max_message_bytes) {
  // An IPv6 literal needs brackets in an address ("[::1]:50051").
  std::string bracketed = absl::StrContains(host, ':') && !absl::StartsWith(host, "[")
                              ? absl::StrCat("[", host, "]")
                              : host;
  std::string address = absl::StrCat(bracketed, ":", port);
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("cannot serve on ", address, ": port out of range"));
  }
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &bound_port);
  builder.SetMaxReceiveMessageSize(max_message_bytes);
  builder.SetMaxSendMessageSize(max_message_bytes);
  // gRPC sets SO_REUSEPORT by default, which lets a second server bind a port that is
  // already in use and silently split the traffic; a taken port must be an error.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  for (grpc::Service* service : services) builder.RegisterService(service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound_port == 0) {
    if (server != nullptr) server->Shutdown();
    return absl::UnavailableError(
        absl::StrCat("cannot start a gRPC server on ", address, " (address in use or not local?)"));
  }
  RunningServer running;
  running.server = std::move(server);
  running.port = bound_port;
  running.endpoint = absl::StrCat(bracketed, ":", bound_port);
  return running;
}

std::string AnnouncedEndpoint(const std::string& bind_host, int port, const std::string& hostname) {
  const bool wildcard = bind_host == "0.0.0.0" || bind_host == "::" || bind_host == "[::]" || bind_host.empty();
  if (wildcard) return absl::StrCat(hostname, ":", port);
  const bool ipv6_literal = bind_host.find(':') != std::string::npos && bind_host.front() != '[';
  return ipv6_literal ? absl::StrCat("[", bind_host, "]:", port) : absl::StrCat(bind_host, ":", port);
}

}  // namespace hone::rpc
