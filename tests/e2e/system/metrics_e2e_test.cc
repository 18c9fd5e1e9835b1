// Both services scraped by a real Prometheus server (Debian's `prometheus`): the key series exist
// and move as the system works, readiness is what /readyz says, and a taken HTTP port stops a
// service at start with an error naming it. If deploy/prometheus/alerts.yml exists, Prometheus
// loads it and every rule evaluates without error.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/e2e/system/system_harness.h"
#include "tests/support/http.h"

namespace sequences::testing {
namespace {

namespace pb = google::protobuf;

constexpr char kPrometheus[] = "/usr/bin/prometheus";
constexpr absl::Duration kDeadline = absl::Seconds(30);

std::string AlertRules() {
  return absl::StrCat(SEQUENCES_SOURCE_DIR, "/deploy/prometheus/alerts.yml");
}

// A Prometheus server scraping the two services every second, on a free port and a temp dir.
class Prometheus {
 public:
  Prometheus(int api_port, int executor_port) : dir_(TempDir("prometheus-e2e")), port_(FreePort()) {
    std::string config = absl::StrCat(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n", "scrape_configs:\n",
        "  - job_name: sequence-api\n    static_configs:\n      - targets: ['127.0.0.1:", api_port,
        "']\n", "  - job_name: step-executor\n    static_configs:\n      - targets: ['127.0.0.1:",
        executor_port, "']\n");
    if (std::filesystem::exists(AlertRules())) {
      absl::StrAppend(&config, "rule_files:\n  - ", AlertRules(), "\n");
    }
    std::ofstream(dir_ + "/prometheus.yml") << config;
    REQUIRE(std::filesystem::exists(kPrometheus));  // deploy/local/install-deps.sh installs it
    auto p = ChildProcess::Start({kPrometheus, "--config.file=" + dir_ + "/prometheus.yml",
                                  "--storage.tsdb.path=" + dir_ + "/data",
                                  absl::StrCat("--web.listen-address=127.0.0.1:", port_)},
                                 dir_ + "/prometheus.log");
    INFO(p.status().ToString());
    REQUIRE(p.ok());
    process_ = std::move(*p);
    const absl::Time end = absl::Now() + kDeadline;
    while (absl::Now() < end) {
      auto r = HttpGet(port_, "/-/ready");
      if (r.ok() && r->code == 200) return;
      absl::SleepFor(absl::Milliseconds(100));
    }
    INFO(process_->Log());
    FAIL("prometheus did not become ready");
  }
  ~Prometheus() {
    if (process_ != nullptr) process_->Terminate(absl::Seconds(5));
  }

  // GET <path> of the HTTP API, parsed. An error string when the call or the parse fails.
  std::optional<pb::Struct> Api(const std::string& path, std::string* error) {
    auto r = HttpGet(port_, path);
    if (!r.ok() || r->code != 200) {
      *error = r.ok() ? absl::StrCat(r->code, " ", r->body) : r.status().ToString();
      return std::nullopt;
    }
    pb::Struct out;
    if (!pb::util::JsonStringToMessage(r->body, &out).ok()) {
      *error = "not JSON: " + r->body;
      return std::nullopt;
    }
    return out;
  }

  // The value of the single sample an instant query returns; nullopt when it returns none.
  std::optional<double> Query(const std::string& expr) {
    std::string error;
    std::optional<pb::Struct> s = Api("/api/v1/query?query=" + UrlEncode(expr), &error);
    if (!s.has_value()) return std::nullopt;
    const pb::Value& result = s->fields().at("data").struct_value().fields().at("result");
    if (result.list_value().values_size() == 0) return std::nullopt;
    const pb::Value& value =
        result.list_value().values(0).struct_value().fields().at("value").list_value().values(1);
    return std::stod(value.string_value());
  }

  // Polls `expr` until `ok(value)`; the last value seen (nullopt: never a sample).
  template <typename F>
  std::optional<double> WaitFor(const std::string& expr, F ok) {
    const absl::Time end = absl::Now() + kDeadline;
    std::optional<double> v;
    while (absl::Now() < end) {
      v = Query(expr);
      if (v.has_value() && ok(*v)) return v;
      absl::SleepFor(absl::Milliseconds(200));
    }
    return v;
  }

  ChildProcess& process() { return *process_; }

 private:
  std::string dir_;
  int port_;
  std::unique_ptr<ChildProcess> process_;
};

void Enroll(ApiProcess& api, const std::string& sequence, const std::string& item_id) {
  v1::EnrollRequest req;
  req.set_parent(sequence);
  v1::EnrollItem* item = req.mutable_item();
  item->set_entity_kind(v1::ENTITY_KIND_DEAL);
  item->set_item_id(item_id);
  item->set_owner_id("u1");
  item->set_request_id("enroll-" + item_id);
  (*item->mutable_merge_data())["person.first_name"] = FirstName(item_id);
  v1::EnrollmentResponse resp;
  grpc::Status s = api.enrollments().Enroll(CallAs(kCompany).get(), req, &resp);
  INFO(s.error_message());
  REQUIRE(s.ok());
}

std::string Show(const std::optional<double>& v) {
  return v.has_value() ? absl::StrCat(*v) : "no sample";
}

TEST_CASE(
    "given both services scraped by Prometheus, when enrollments fire their first step, "
    "then the series exist and move") {
  System sys({"--http_port=0"}, {"--http_port=0"});
  const absl::StatusOr<int> api_http =
      sys.api().process().WaitForPort("http server listening", "url", absl::Seconds(10));
  const absl::StatusOr<int> executor_http =
      sys.executor().WaitForPort("http server listening", "url", absl::Seconds(10));
  REQUIRE(api_http.ok());
  REQUIRE(executor_http.ok());
  Prometheus prom(*api_http, *executor_http);
  const std::string name = CreateSequence(sys.api(), "create-metrics", {ActivityStep("call", 0)});

  // Ready, as Prometheus sees it and as /readyz says.
  auto ready = prom.WaitFor("sequences_executor_ready", [](double v) { return v == 1; });
  INFO("executor ready: " << Show(ready) << "\n" << sys.executor().Log());
  REQUIRE(ready == 1.0);
  auto readyz = HttpGet(*executor_http, "/readyz");
  REQUIRE(readyz.ok());
  CHECK(readyz->code == 200);
  readyz = HttpGet(*api_http, "/readyz");
  REQUIRE(readyz.ok());
  CHECK(readyz->code == 200);
  CHECK(prom.WaitFor("sequences_api_broker_reachable", [](double v) { return v == 1; }) == 1.0);
  CHECK(prom.WaitFor("sequences_executor_owned_partitions", [](double v) { return v > 0; })
            .value_or(0) > 0);
  CHECK(prom.WaitFor("sequences_api_read_model_lag_records", [](double v) { return v >= 0; })
            .has_value());
  CHECK(prom.WaitFor("count(sequences_executor_input_lag_records)", [](double v) { return v > 0; })
            .value_or(0) > 0);
  CHECK(prom.WaitFor("sequences_executor_rocksdb_size_bytes", [](double v) { return v >= 0; })
            .has_value());
  CHECK(prom.WaitFor("sum(sequences_executor_transactions_total{result=\"commit\"})",
                     [](double v) { return v >= 0; })
            .has_value());

  // Each enrollment moves the API's Enroll count and, once its first step fires, the executor's
  // fired count (task: the step is an activity) and its lateness histogram.
  for (int n = 1; n <= 2; ++n) {
    Enroll(sys.api(), name, absl::StrCat("deal-", n));
    auto enrolls =
        prom.WaitFor("sum(sequences_api_rpc_requests_total{method=\"Enroll\",code=\"OK\"})",
                     [n](double v) { return v >= n; });
    INFO("Enroll calls: " << Show(enrolls));
    CHECK(enrolls.value_or(0) >= n);
    auto fired = prom.WaitFor("sequences_executor_steps_fired_total{kind=\"task\"}",
                              [n](double v) { return v >= n; });
    INFO("steps fired: " << Show(fired) << "\n" << sys.executor().Log());
    CHECK(fired.value_or(0) >= n);
    auto late = prom.WaitFor("sequences_executor_step_lateness_seconds_count",
                             [n](double v) { return v >= n; });
    CHECK(late.value_or(0) >= n);
  }
  CHECK(prom.WaitFor("sum(sequences_api_rpc_duration_seconds_count{method=\"Enroll\"})",
                     [](double v) { return v >= 2; })
            .value_or(0) >= 2);
  CHECK(prom.WaitFor("sequences_executor_transaction_duration_seconds_count",
                     [](double v) { return v >= 2; })
            .value_or(0) >= 2);
  // Once the executor's transactions are folded, the read model is caught up again (the lag counts
  // records, not the transaction markers after them).
  auto lag = prom.WaitFor("sequences_api_read_model_lag_records", [](double v) { return v == 0; });
  INFO("read model lag: " << Show(lag));
  CHECK(lag == 0.0);

  // Every metric the alert rules and the dashboard may use (deploy/prometheus/metrics.txt, which
  // deploy/tests checks them against) is exported by one of the services, with its type.
  {
    auto api_text = HttpGet(*api_http, "/metrics");
    auto executor_text = HttpGet(*executor_http, "/metrics");
    REQUIRE(api_text.ok());
    REQUIRE(executor_text.ok());
    const std::string scraped = absl::StrCat(api_text->body, "\n", executor_text->body);
    std::ifstream listed(absl::StrCat(SEQUENCES_SOURCE_DIR, "/deploy/prometheus/metrics.txt"));
    REQUIRE(listed.good());
    int checked = 0;
    for (std::string line; std::getline(listed, line);) {
      if (line.empty() || line[0] == '#') continue;
      std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
      REQUIRE(parts.size() >= 2);
      INFO("metrics.txt lists " << parts[0] << " (" << parts[1] << ")");
      CHECK(absl::StrContains(scraped, absl::StrCat("# TYPE ", parts[0], " ", parts[1], "\n")));
      ++checked;
    }
    CHECK(checked >= 16);
  }

  // The alert rules, when the tree has them, load and evaluate without error.
  if (std::filesystem::exists(AlertRules())) {
    const absl::Time end = absl::Now() + kDeadline;
    std::string problems = "no rules";
    while (absl::Now() < end) {
      std::string error;
      std::optional<pb::Struct> rules = prom.Api("/api/v1/rules", &error);
      if (!rules.has_value()) {
        problems = error;
        absl::SleepFor(absl::Milliseconds(200));
        continue;
      }
      problems.clear();
      int count = 0;
      for (const pb::Value& g :
           rules->fields().at("data").struct_value().fields().at("groups").list_value().values()) {
        for (const pb::Value& r : g.struct_value().fields().at("rules").list_value().values()) {
          ++count;
          const auto& f = r.struct_value().fields();
          const std::string health = f.at("health").string_value();
          if (health != "ok") {
            absl::StrAppend(&problems, f.at("name").string_value(), ": ", health, " ",
                            f.count("lastError") ? f.at("lastError").string_value() : "", "\n");
          }
        }
      }
      if (count == 0) problems = "no rules loaded";
      if (problems.empty()) break;
      absl::SleepFor(absl::Milliseconds(200));
    }
    INFO(problems << prom.process().Log());
    CHECK(problems.empty());
  }
}

TEST_CASE(
    "given an HTTP port already taken, when a service starts with it, then it exits "
    "non-zero naming the port") {
  // The holder binds a port of the system's choosing and says which.
  auto holder = ChildProcess::Start(
      {"/usr/bin/python3", "-c",
       "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(); "
       "print('{\"msg\":\"listening\",\"port\":\"%d\"}' % s.getsockname()[1], flush=True); "
       "time.sleep(60)"},
      TempDir("port-holder") + "/log");
  REQUIRE(holder.ok());
  const absl::StatusOr<int> taken = (*holder)->WaitForPort("listening", "port", absl::Seconds(10));
  REQUIRE(taken.ok());
  const std::string dir = TempDir("port-taken");
  const std::string prefix = UniqueName("port-taken") + ".";
  const std::vector<std::vector<std::string>> services = {
      {ServiceBinary("step-executor"), "--data_dir=" + dir + "/executor"},
      {ServiceBinary("sequence-api"), "--data_dir=" + dir + "/api", "--auth_token=t",
       "--listen=127.0.0.1:0"}};
  for (std::vector<std::string> argv : services) {
    argv.push_back("--bootstrap_servers=" + Bootstrap());
    argv.push_back("--topic_prefix=" + prefix);
    argv.push_back("--partitions=3");
    argv.push_back(absl::StrCat("--http_port=", *taken));
    auto p = ChildProcess::Start(argv, dir + "/service.log");
    REQUIRE(p.ok());
    const absl::Time end = absl::Now() + absl::Seconds(30);
    while ((*p)->Running() && absl::Now() < end) absl::SleepFor(absl::Milliseconds(50));
    INFO(argv[0] << "\n" << (*p)->Log());
    CHECK_FALSE((*p)->Running());
    const int code = (*p)->Terminate(absl::Seconds(5));
    CHECK(code != 0);
    CHECK(code < 128);  // exited by itself, not killed
    CHECK((*p)->Log().find(absl::StrCat("127.0.0.1:", *taken)) != std::string::npos);
  }
}

}  // namespace
}  // namespace sequences::testing
