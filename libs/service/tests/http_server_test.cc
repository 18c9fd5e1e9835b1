#include "libs/service/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>

#include "libs/service/metrics_text.h"
#include "tests/support/http.h"

namespace sequences::service {
namespace {

using testing::HttpGet;

std::unique_ptr<HttpServer> StartOrFail(HttpServerOptions options) {
  auto server = HttpServer::Start(std::move(options));
  INFO(server.status().ToString());
  REQUIRE(server.ok());
  return std::move(*server);
}

TEST_CASE(
    "given a service not ready, when /readyz is asked, then 503 with the reason on one line, "
    "and 200 once it is ready") {
  std::atomic<bool> ready{false};
  auto server = StartOrFail({.ready = [&ready] {
    return ready ? absl::OkStatus() : absl::UnavailableError("catching up: lag 42\nsecond line");
  }});
  auto r = HttpGet(server->port(), "/readyz");
  REQUIRE(r.ok());
  CHECK(r->code == 503);
  CHECK(r->body == "catching up: lag 42 second line\n");
  ready = true;
  r = HttpGet(server->port(), "/readyz");
  REQUIRE(r.ok());
  CHECK(r->code == 200);
  CHECK(r->body == "ready\n");
}

TEST_CASE("given a service not ready, when /healthz is asked, then 200: alive is not ready") {
  auto server = StartOrFail({.ready = [] { return absl::UnavailableError("starting"); }});
  auto r = HttpGet(server->port(), "/healthz");
  REQUIRE(r.ok());
  CHECK(r->code == 200);
  CHECK(r->body == "ok\n");
}

TEST_CASE(
    "given metrics, when /metrics is scraped, then the text exposition of the current values") {
  std::atomic<int> fired{3};
  auto server = StartOrFail({.metrics = [&fired] {
    MetricFamily steps{
        .name = "demo_steps_fired_total", .help = "steps fired", .kind = MetricKind::kCounter};
    steps.Add({{"kind", "task"}}, fired.load());
    Histogram h({0.1, 1});
    h.Observe(0.05);
    h.Observe(0.5);
    h.Observe(7);
    MetricFamily lat{
        .name = "demo_lateness_seconds", .help = "lateness", .kind = MetricKind::kHistogram};
    lat.Add({}, h.Value());
    return PrometheusText({steps, lat});
  }});
  auto r = HttpGet(server->port(), "/metrics");
  REQUIRE(r.ok());
  CHECK(r->code == 200);
  INFO(r->body);
  CHECK(r->body.find("# TYPE demo_steps_fired_total counter") != std::string::npos);
  CHECK(r->body.find("demo_steps_fired_total{kind=\"task\"} 3") != std::string::npos);
  CHECK(r->body.find("demo_lateness_seconds_bucket{le=\"0.1\"} 1") != std::string::npos);
  CHECK(r->body.find("demo_lateness_seconds_bucket{le=\"1\"} 2") != std::string::npos);
  CHECK(r->body.find("demo_lateness_seconds_bucket{le=\"+Inf\"} 3") != std::string::npos);
  CHECK(r->body.find("demo_lateness_seconds_count 3") != std::string::npos);
  fired = 4;
  r = HttpGet(server->port(), "/metrics");
  REQUIRE(r.ok());
  CHECK(r->body.find("demo_steps_fired_total{kind=\"task\"} 4") != std::string::npos);
}

TEST_CASE("given the server, when an unknown path or a POST comes, then 404 and 405") {
  auto server = StartOrFail({});
  auto r = HttpGet(server->port(), "/nope");
  REQUIRE(r.ok());
  CHECK(r->code == 404);
  r = HttpGet(server->port(), "/metrics");  // no metrics callback: nothing there
  REQUIRE(r.ok());
  CHECK(r->code == 404);
  r = HttpGet(server->port(), "/healthz", "POST");
  REQUIRE(r.ok());
  CHECK(r->code == 405);
}

TEST_CASE(
    "given a port another socket listens on, when the server starts there, then an error "
    "naming the port") {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  REQUIRE(listen(fd, 1) == 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  auto server = HttpServer::Start({.port = port});
  close(fd);
  REQUIRE_FALSE(server.ok());
  CHECK(absl::IsUnavailable(server.status()));
  CHECK(server.status().message().find(absl::StrCat("127.0.0.1:", port)) !=
        absl::string_view::npos);
}

TEST_CASE("given port 0, when the server starts, then it reports the port it bound") {
  auto server = StartOrFail({});
  CHECK(server->port() > 0);
  CHECK(server->url() == absl::StrCat("http://127.0.0.1:", server->port()));
  auto r = HttpGet(server->port(), "/healthz");
  REQUIRE(r.ok());
  CHECK(r->code == 200);
}

}  // namespace
}  // namespace sequences::service
