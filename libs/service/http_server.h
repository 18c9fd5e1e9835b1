#ifndef SEQUENCES_LIBS_SERVICE_HTTP_SERVER_H_
#define SEQUENCES_LIBS_SERVICE_HTTP_SERVER_H_

// The operations HTTP endpoint of a service (what Prometheus and a load balancer or Kubernetes
// probe call):
//   GET /metrics   200, the Prometheus text exposition (text/plain; version=0.0.4)
//   GET /healthz   200 "ok": the process is alive and answering
//   GET /readyz    200 "ready" when `ready` returns OK; else 503 and its message on one line
//   anything else  404 (a method other than GET or HEAD: 405)
// Served by CivetWeb (linked PRIVATE: no civetweb type appears here) on a few threads of its own.
//
// Thread-safety: `metrics` and `ready` are called on the server's threads, possibly at once.
// Lifetime: the destructor stops the server and waits for calls in flight; what the callbacks
// use must outlive the HttpServer.

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sequences::service {

struct HttpServerOptions {
  // Address to bind: an IPv4 literal ("127.0.0.1" by default; "0.0.0.0" for every interface).
  std::string address = "127.0.0.1";
  // 0: any free port (see HttpServer::port()).
  int port = 0;
  // The body of /metrics. Unset: 404.
  std::function<std::string()> metrics;
  // OK: ready. Otherwise /readyz answers 503 with the status message. Unset: always ready.
  std::function<absl::Status()> ready;
};

class HttpServer {
 public:
  // Binds and starts serving. Unavailable, naming address and port, when the port cannot be
  // bound (taken by another process, or not allowed).
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(HttpServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound port.
  int port() const { return port_; }
  // "http://<address>:<port>".
  std::string url() const;

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl, int port);
  std::unique_ptr<Impl> impl_;
  int port_;
};

}  // namespace sequences::service

#endif  // SEQUENCES_LIBS_SERVICE_HTTP_SERVER_H_
