#include "libs/kafka/admin.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "libs/kafka/internal/client.h"
#include "libs/kafka/internal/errors.h"
#include "libs/runtime/log.h"

namespace sequences::kafka {
namespace {

class AdminImpl final : public Admin {
 public:
  explicit AdminImpl(internal::KafkaHandle rk) : rk_(std::move(rk)), poller_(rk_.get()) {}
  ~AdminImpl() override { poller_.Stop(); }

  absl::Status EnsureTopics(const std::vector<TopicSpec>& topics, absl::Duration timeout) override {
    std::vector<internal::NewTopicHandle> owned;
    std::vector<rd_kafka_NewTopic_t*> raw;
    char err[512];
    for (const TopicSpec& t : topics) {
      internal::NewTopicHandle nt(rd_kafka_NewTopic_new(t.name.c_str(), t.partitions,
                                                        t.replication_factor, err, sizeof(err)));
      if (nt == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("topic ", t.name, ": ", err));
      }
      for (const auto& [k, v] : t.configs) {
        rd_kafka_NewTopic_set_config(nt.get(), k.c_str(), v.c_str());
      }
      raw.push_back(nt.get());
      owned.push_back(std::move(nt));
    }
    auto options = Options(RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout);
    if (!options.ok()) return options.status();
    internal::QueueHandle queue(rd_kafka_queue_new(rk_.get()));
    rd_kafka_CreateTopics(rk_.get(), raw.data(), raw.size(), options->get(), queue.get());
    internal::EventHandle ev(
        rd_kafka_queue_poll(queue.get(), internal::Ms(timeout + absl::Seconds(1))));
    if (ev == nullptr) return absl::DeadlineExceededError("create topics: no answer in time");
    if (rd_kafka_event_error(ev.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return internal::FromResponseError(rd_kafka_event_error(ev.get()), "create topics");
    }
    size_t n = 0;
    const rd_kafka_topic_result_t** results =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev.get()), &n);
    for (size_t i = 0; i < n; ++i) {
      rd_kafka_resp_err_t e = rd_kafka_topic_result_error(results[i]);
      if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        return internal::FromResponseError(
            e, absl::StrCat("create topic ", rd_kafka_topic_result_name(results[i])));
      }
    }
    // Existing topics must have the partition count we rely on (item keys -> partitions).
    for (const TopicSpec& t : topics) {
      absl::StatusOr<int> count = absl::UnavailableError("not asked");
      // A just-created topic may take a moment to appear in metadata (longer on a busy broker).
      const absl::Time deadline = absl::Now() + timeout;
      do {
        count = PartitionCount(t.name, timeout);
        if (count.ok() || count.status().code() != absl::StatusCode::kNotFound) break;
        absl::SleepFor(absl::Milliseconds(100));
      } while (absl::Now() < deadline);
      if (!count.ok()) return count.status();
      if (*count != t.partitions) {
        return absl::FailedPreconditionError(absl::StrCat("topic ", t.name, " has ", *count,
                                                          " partitions, expected ", t.partitions));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<int> BrokerCount(absl::Duration timeout) override {
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk_.get(), 0, nullptr, &md, internal::Ms(timeout));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (md != nullptr) rd_kafka_metadata_destroy(md);
      return internal::FromResponseError(err, "cluster metadata");
    }
    const int n = md->broker_cnt;
    rd_kafka_metadata_destroy(md);
    return n;
  }

  absl::StatusOr<int> PartitionCount(const std::string& topic, absl::Duration timeout) override {
    return internal::PartitionCountOf(rk_.get(), topic, timeout);
  }

  absl::Status DeleteTopics(const std::vector<std::string>& topics,
                            absl::Duration timeout) override {
    std::vector<internal::DeleteTopicHandle> owned;
    std::vector<rd_kafka_DeleteTopic_t*> raw;
    for (const std::string& t : topics) {
      owned.emplace_back(rd_kafka_DeleteTopic_new(t.c_str()));
      raw.push_back(owned.back().get());
    }
    auto options = Options(RD_KAFKA_ADMIN_OP_DELETETOPICS, timeout);
    if (!options.ok()) return options.status();
    internal::QueueHandle queue(rd_kafka_queue_new(rk_.get()));
    rd_kafka_DeleteTopics(rk_.get(), raw.data(), raw.size(), options->get(), queue.get());
    internal::EventHandle ev(
        rd_kafka_queue_poll(queue.get(), internal::Ms(timeout + absl::Seconds(1))));
    if (ev == nullptr) return absl::DeadlineExceededError("delete topics: no answer in time");
    if (rd_kafka_event_error(ev.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return internal::FromResponseError(rd_kafka_event_error(ev.get()), "delete topics");
    }
    size_t n = 0;
    const rd_kafka_topic_result_t** results =
        rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev.get()), &n);
    for (size_t i = 0; i < n; ++i) {
      rd_kafka_resp_err_t e = rd_kafka_topic_result_error(results[i]);
      if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        return internal::FromResponseError(
            e, absl::StrCat("delete topic ", rd_kafka_topic_result_name(results[i])));
      }
    }
    return absl::OkStatus();
  }

 private:
  absl::StatusOr<internal::AdminOptionsHandle> Options(rd_kafka_admin_op_t op,
                                                       absl::Duration timeout) {
    internal::AdminOptionsHandle options(rd_kafka_AdminOptions_new(rk_.get(), op));
    char err[512];
    if (rd_kafka_AdminOptions_set_request_timeout(options.get(), internal::Ms(timeout), err,
                                                  sizeof(err)) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_AdminOptions_set_operation_timeout(options.get(), internal::Ms(timeout), err,
                                                    sizeof(err)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return absl::InvalidArgumentError(absl::StrCat("admin options: ", err));
    }
    return options;
  }

  internal::KafkaHandle rk_;
  internal::PollThread poller_;
};

// Collects librdkafka's "Enabling feature X" debug lines (logged during API version negotiation,
// before the connection is up).
struct FeatureProbe {
  absl::Mutex mu;
  std::vector<std::string> features ABSL_GUARDED_BY(mu);
  // The first authentication failure (SASL credentials refused, TLS handshake failed): no retry
  // can succeed, so the probe reports it at once instead of waiting out the connect timeout.
  std::string auth_error ABSL_GUARDED_BY(mu);
};

}  // namespace

absl::StatusOr<std::unique_ptr<Admin>> Admin::Create(const ClientConfig& config) {
  if (absl::Status s = ValidateSecurity(config.security); !s.ok()) return s;
  auto rk = internal::NewClient(RD_KAFKA_PRODUCER, internal::AdminProperties(config));
  if (!rk.ok()) return rk.status();
  return std::make_unique<AdminImpl>(std::move(*rk));
}

absl::StatusOr<std::vector<std::string>> ProbeBrokerFeatures(const ClientConfig& config) {
  if (absl::Status s = ValidateSecurity(config.security); !s.ok()) return s;
  FeatureProbe probe;
  internal::Properties props = internal::AdminProperties(config);
  props["debug"] = "feature,protocol";
  auto rk = internal::NewClient(
      RD_KAFKA_PRODUCER, props,
      [](rd_kafka_conf_t* conf, void* opaque) {
        rd_kafka_conf_set_opaque(conf, opaque);
        rd_kafka_conf_set_log_cb(conf, [](const rd_kafka_t* rk, int, const char*, const char* buf) {
          constexpr absl::string_view kMarker = "Enabling feature ";
          absl::string_view line(buf);
          size_t at = line.find(kMarker);
          if (at == absl::string_view::npos) return;
          auto* p = static_cast<FeatureProbe*>(rd_kafka_opaque(rk));
          absl::MutexLock lock(&p->mu);
          std::string feature(line.substr(at + kMarker.size()));
          if (std::find(p->features.begin(), p->features.end(), feature) == p->features.end()) {
            p->features.push_back(std::move(feature));
          }
        });
        rd_kafka_conf_set_error_cb(conf, [](rd_kafka_t* rk, int err, const char* reason, void*) {
          Log(LogLevel::kWarning, "kafka", reason,
              {{"client", rd_kafka_name(rk)},
               {"error", rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err))}});
          if (err != RD_KAFKA_RESP_ERR__AUTHENTICATION && err != RD_KAFKA_RESP_ERR__SSL) return;
          auto* p = static_cast<FeatureProbe*>(rd_kafka_opaque(rk));
          absl::MutexLock lock(&p->mu);
          if (p->auth_error.empty()) p->auth_error = reason;
        });
      },
      &probe);
  if (!rk.ok()) return rk.status();
  // A metadata request makes librdkafka connect and negotiate API versions. Short requests until
  // the connect timeout, so that a refused login ends the wait early.
  const absl::Time deadline = absl::Now() + config.connect_timeout;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
  while (true) {
    const rd_kafka_metadata_t* md = nullptr;
    const absl::Duration left = std::max(deadline - absl::Now(), absl::Milliseconds(1));
    err = rd_kafka_metadata(rk->get(), 0, nullptr, &md,
                            internal::Ms(std::min(left, absl::Milliseconds(500))));
    if (md != nullptr) rd_kafka_metadata_destroy(md);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || absl::Now() >= deadline) break;
    rd_kafka_poll(rk->get(), 0);  // serves the error callback
    absl::MutexLock lock(&probe.mu);
    if (!probe.auth_error.empty()) {
      return absl::UnauthenticatedError(absl::StrCat("Kafka at ", config.bootstrap_servers,
                                                     " refused this client: ", probe.auth_error));
    }
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return internal::FromResponseError(
        err, absl::StrCat("connect to Kafka at ", config.bootstrap_servers));
  }
  // The metadata answer came over a connection whose versions were negotiated and logged.
  absl::MutexLock lock(&probe.mu);
  if (probe.features.empty()) {
    return absl::UnavailableError(absl::StrCat("Kafka at ", config.bootstrap_servers,
                                               ": no protocol feature negotiation seen"));
  }
  return probe.features;
}

const std::vector<std::string>& RequiredBrokerFeatures() {
  static const auto* kRequired =
      new std::vector<std::string>{"MsgVer2", "IdempotentProducer", "BrokerGroupCoordinator"};
  return *kRequired;
}

}  // namespace sequences::kafka
