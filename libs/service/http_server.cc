#include "libs/service/http_server.h"

#include <civetweb.h>

#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace sequences::service {

struct HttpServer::Impl {
  HttpServerOptions options;
  mg_context* ctx = nullptr;

  ~Impl() {
    if (ctx != nullptr) mg_stop(ctx);  // waits for the worker threads
  }

  static void Reply(mg_connection* conn, int code, const char* reason, const char* content_type,
                    const std::string& body, bool head) {
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
              "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
              code, reason, content_type, body.size());
    if (!head) mg_write(conn, body.data(), body.size());
  }

  // One request. Returns the HTTP status (CivetWeb: non-zero means handled).
  int Handle(mg_connection* conn) {
    const mg_request_info* info = mg_get_request_info(conn);
    const std::string method = info->request_method != nullptr ? info->request_method : "";
    const std::string path = info->local_uri != nullptr ? info->local_uri : "";
    const bool head = method == "HEAD";
    constexpr char kText[] = "text/plain; charset=utf-8";
    if (method != "GET" && !head) {
      Reply(conn, 405, "Method Not Allowed", kText, "only GET and HEAD\n", false);
      return 405;
    }
    if (path == "/healthz") {
      Reply(conn, 200, "OK", kText, "ok\n", head);
      return 200;
    }
    if (path == "/readyz") {
      const absl::Status s = options.ready ? options.ready() : absl::OkStatus();
      if (s.ok()) {
        Reply(conn, 200, "OK", kText, "ready\n", head);
        return 200;
      }
      // One line, whatever the reason holds.
      std::string reason = absl::StrReplaceAll(s.message(), {{"\r", " "}, {"\n", " "}});
      if (reason.empty()) reason = "not ready";
      Reply(conn, 503, "Service Unavailable", kText, reason + "\n", head);
      return 503;
    }
    if (path == "/metrics" && options.metrics) {
      Reply(conn, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", options.metrics(), head);
      return 200;
    }
    Reply(conn, 404, "Not Found", kText, "not found: try /metrics, /healthz, /readyz\n", head);
    return 404;
  }

  static int Dispatch(mg_connection* conn, void* self) {
    return static_cast<Impl*>(self)->Handle(conn);
  }
  // CivetWeb's own log lines (bind errors come back through mg_start2's error text).
  static int Quiet(const mg_connection*, const char*) { return 1; }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl, int port)
    : impl_(std::move(impl)), port_(port) {}

HttpServer::~HttpServer() = default;

std::string HttpServer::url() const {
  return absl::StrCat("http://", impl_->options.address, ":", port_);
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions options) {
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("HTTP port ", options.port, " out of range"));
  }
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  const std::string listen = absl::StrCat(impl->options.address, ":", impl->options.port);
  const char* config[] = {"listening_ports",    listen.c_str(), "num_threads", "4",
                          "request_timeout_ms", "10000",        nullptr};
  mg_callbacks callbacks;
  std::memset(&callbacks, 0, sizeof(callbacks));
  callbacks.log_message = &Impl::Quiet;
  mg_init_data init;
  std::memset(&init, 0, sizeof(init));
  init.callbacks = &callbacks;
  init.user_data = impl.get();
  init.configuration_options = config;
  char error_text[256] = {0};
  unsigned error_code = 0;
  mg_error_data error;
  std::memset(&error, 0, sizeof(error));
  error.code = &error_code;
  error.text = error_text;
  error.text_buffer_size = sizeof(error_text);
  impl->ctx = mg_start2(&init, &error);
  if (impl->ctx == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve HTTP on ", listen, " (port ", impl->options.port,
                     " taken or not allowed): ", error_text[0] != 0 ? error_text : "bind failed"));
  }
  mg_set_request_handler(impl->ctx, "/", &Impl::Dispatch, impl.get());
  mg_server_port ports[4];
  std::memset(ports, 0, sizeof(ports));
  const int n = mg_get_server_ports(impl->ctx, 4, ports);
  const int port = n > 0 ? ports[0].port : impl->options.port;
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl), port));
}

}  // namespace sequences::service
