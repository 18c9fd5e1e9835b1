#include "tests/bench/system_bench.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "libs/domain/envelope.h"
#include "libs/domain/send_limits.h"
#include "libs/domain/sequence.h"
#include "libs/kafka/admin.h"
#include "libs/kafka/consumer.h"
#include "libs/kafka/producer.h"
#include "libs/service/topics.h"
#include "tests/bench/kafka_baselines.h"
#include "tests/support/process.h"

namespace sequences::bench {
namespace {

using sequences::testing::ChildProcess;

struct Env {
  SystemOptions options;
  std::string prefix;
  service::Topics topics;
  std::string group;
};

absl::StatusOr<Env> NewEnv(const SystemOptions& options, const std::string& name) {
  std::filesystem::create_directories(options.work_dir);
  Env env{options, absl::StrCat("bench.", name, ".", absl::ToUnixMillis(absl::Now()), "."), {}, ""};
  env.topics = service::Topics::WithPrefix(env.prefix);
  env.group = env.prefix + "executor";
  auto admin = kafka::Admin::Create({.bootstrap_servers = options.bootstrap});
  if (!admin.ok()) return admin.status();
  if (auto s = service::EnsureTopics(**admin, env.topics, options.partitions, absl::Seconds(30));
      !s.ok()) {
    return s;
  }
  return env;
}

v1::Step Activity(const std::string& id, v1::DelayUnit unit, int amount) {
  v1::Step s;
  s.set_id(id);
  s.mutable_delay()->set_unit(unit);
  s.mutable_delay()->set_amount(amount);
  s.mutable_activity()->set_activity_type("call");
  s.mutable_activity()->set_subject("Call");
  s.mutable_activity()->mutable_assignee()->set_item_owner(true);
  return s;
}

v1::Step Email(const std::string& id, int delay_minutes, bool automatic) {
  v1::Step s;
  s.set_id(id);
  s.mutable_delay()->set_unit(v1::DELAY_UNIT_MINUTES);
  s.mutable_delay()->set_amount(delay_minutes);
  v1::EmailStep* e = s.mutable_email();
  e->mutable_sender()->set_item_owner(true);
  e->set_subject("Following up, {{person.first_name}}");
  e->set_body("Hi {{person.first_name}}, did you have a chance to look at our offer?");
  e->set_send_automatically(automatic);
  return s;
}

// Creates the sequence through the domain decider (so it is exactly what the API would write);
// with `senders`, automated sending is switched on and each sender grants consent.
absl::Status PublishSequence(const Env& env, const std::string& id,
                             const std::vector<v1::Step>& steps,
                             const std::vector<std::string>& senders = {}) {
  std::vector<v1::SequenceCommand> commands;
  v1::SequenceCommand cmd;
  cmd.set_company_id("bench");
  cmd.set_sequence_id(id);
  cmd.set_request_id(id);
  cmd.set_actor_user_id("u1");
  auto* create = cmd.mutable_create();
  create->set_name("bench");
  create->set_owner_id("u1");
  create->set_entity_kind(v1::ENTITY_KIND_DEAL);
  create->mutable_settings()->set_default_time_zone("UTC");
  for (const auto& s : steps) *create->add_steps() = s;
  commands.push_back(cmd);
  if (!senders.empty()) {
    v1::SequenceCommand on = cmd;
    on.set_request_id(id + "-automated");
    on.mutable_switch_automated_sending()->set_enabled(true);
    commands.push_back(on);
  }
  for (const std::string& user : senders) {
    v1::SequenceCommand consent = cmd;
    consent.set_request_id(absl::StrCat(id, "-consent-", user));
    consent.set_actor_user_id(user);
    consent.mutable_grant_consent()->set_user_id(user);
    commands.push_back(consent);
  }
  auto producer = kafka::Producer::Create({.client = {.bootstrap_servers = env.options.bootstrap}});
  if (!producer.ok()) return producer.status();
  domain::SequenceState state;
  for (const v1::SequenceCommand& c : commands) {
    auto events = domain::DecideSequence(state, c, absl::Now());
    if (!events.ok()) return events.status();
    for (const auto& e : *events) {
      state = domain::EvolveSequence(std::move(state), e);
      auto r = (*producer)->Send({env.topics.sequence_events, id, e.SerializeAsString()});
      if (!r.ok()) return r.status();
    }
  }
  return absl::OkStatus();
}

kafka::Record Enroll(const Env& env, const std::string& sequence_id, int64_t i,
                     const std::string& owner = "u1") {
  v1::Envelope e;
  std::string item = absl::StrCat("bench/deal/", i);
  e.set_event_id(absl::StrCat(env.prefix, "enroll-", i));
  e.set_company_id("bench");
  e.set_correlation_id(absl::StrCat("req-", i));
  *e.mutable_occurred_at() = domain::ToProto(absl::Now());
  auto* r = e.mutable_enroll_requested();
  r->set_request_id(absl::StrCat("req-", i));
  r->set_sequence_id(sequence_id);
  r->set_sequence_version(1);
  r->set_item_key(item);
  r->set_entity_kind(v1::ENTITY_KIND_DEAL);
  r->set_owner_id(owner);
  r->mutable_recipient()->set_email(absl::StrCat("p", i, "@example.com"));
  r->mutable_time_zones()->set_recipient("UTC");
  (*r->mutable_merge_data())["person.first_name"] = "Ada";
  return {env.topics.enrollment_events, item, e.SerializeAsString()};
}

absl::StatusOr<std::unique_ptr<ChildProcess>> StartExecutor(const Env& env,
                                                            const std::string& instance) {
  std::string dir = absl::StrCat(env.options.work_dir, "/", env.prefix, instance);
  if (env.options.system == "kafka-streams") {
    // The peer's run.sh execs the JVM: the child's pid is the JVM's (memory, kill -9). Static
    // membership by instance id, as the executor.
    return ChildProcess::Start(
        {absl::StrCat(env.options.peers_dir, "/kafka-streams/run.sh"),
         absl::StrCat("--bootstrap=", env.options.bootstrap),
         absl::StrCat("--topic_prefix=", env.prefix), absl::StrCat("--instance_id=", instance),
         absl::StrCat("--state_dir=", dir)},
        dir + ".log");
  }
  if (env.options.system != "executor") {
    return absl::InvalidArgumentError(absl::StrCat("unknown system ", env.options.system));
  }
  std::vector<std::string> args = {
      absl::StrCat(env.options.build_dir, "/services/step-executor/step-executor"),
      absl::StrCat("--bootstrap_servers=", env.options.bootstrap),
      absl::StrCat("--topic_prefix=", env.prefix), absl::StrCat("--group_id=", env.group),
      absl::StrCat("--instance_id=", instance), absl::StrCat("--data_dir=", dir),
      absl::StrCat("--partitions=", env.options.partitions),
      absl::StrCat("--processing_guarantee=", env.options.processing_guarantee),
      // Every second: the batch sizes of a run are read from its last metrics line.
      "--metrics_interval=1s"};
  args.insert(args.end(), env.options.executor_flags.begin(), env.options.executor_flags.end());
  return ChildProcess::Start(args, dir + ".log");
}

// Peak and current resident memory of a process, in MiB.
Figures Memory(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  Figures f;
  std::string line;
  while (std::getline(in, line)) {
    for (const char* key : {"VmHWM:", "VmRSS:"}) {
      if (line.rfind(key, 0) == 0) {
        double kb = 0;
        if (absl::SimpleAtod(absl::StripAsciiWhitespace(line.substr(6, line.size() - 9)), &kb)) {
          f[std::string(key) == "VmHWM:" ? "peak_rss_mib" : "rss_mib"] = kb / 1024.0;
        }
      }
    }
  }
  return f;
}

// CPU seconds (user + system, all threads) a process has used so far, or -1 if unknown.
double CpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command (which may hold spaces) in parentheses: state is field 3, utime
  // and stime are fields 14 and 15.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::vector<std::string> fields = absl::StrSplit(stat.substr(close + 2), ' ');
  double utime = 0, stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtod(fields[11], &utime) ||
      !absl::SimpleAtod(fields[12], &stime)) {
    return -1;
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Reads a topic (read_committed) from the beginning in a thread and records, for every record
// whose payload matches, the wall time it became visible and the record's due time.
class Watcher {
 public:
  using Match = std::function<std::optional<absl::Time>(const v1::Envelope&)>;  // due time

  Watcher(const Env& env, std::string topic, Match match) : match_(std::move(match)) {
    thread_ = std::thread([this, env, topic] { Run(env, topic); });
  }
  ~Watcher() {
    stop_ = true;
    thread_.join();
  }
  // Waits until `n` matching records were seen; false on timeout, or as soon as `process` (if
  // given) has exited.
  bool WaitFor(int64_t n, absl::Duration timeout, ChildProcess* process = nullptr) {
    absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      {
        absl::MutexLock lock(&mu_);
        auto enough = [this, n]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
          return static_cast<int64_t>(seen_.size()) >= n;
        };
        if (mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(1))) return true;
      }
      if (process != nullptr && !process->Running()) return false;
    }
    return false;
  }
  int64_t count() {
    absl::MutexLock lock(&mu_);
    return static_cast<int64_t>(seen_.size());
  }
  // (visible, due) pairs so far.
  std::vector<std::pair<absl::Time, absl::Time>> seen() {
    absl::MutexLock lock(&mu_);
    return seen_;
  }

 private:
  void Run(const Env& env, const std::string& topic) {
    auto consumer =
        kafka::Consumer::Create({.client = {.bootstrap_servers = env.options.bootstrap}});
    if (!consumer.ok()) return;
    std::vector<kafka::TopicPartitionOffset> assignment;
    for (int p = 0; p < env.options.partitions; ++p) {
      assignment.push_back({topic, p, kafka::kOffsetBeginning});
    }
    if (!(*consumer)->Assign(assignment).ok()) return;
    std::set<std::string> ids;
    while (!stop_) {
      auto batch = (*consumer)->PollBatch(5000, absl::Milliseconds(50));
      if (!batch.ok()) continue;
      absl::Time now = absl::Now();
      for (const auto& m : *batch) {
        v1::Envelope e;
        if (m.eof || !e.ParseFromString(m.value)) continue;
        std::optional<absl::Time> due = match_(e);
        if (!due.has_value() || !ids.insert(e.event_id()).second) continue;
        absl::MutexLock lock(&mu_);
        seen_.push_back({now, *due});
      }
    }
  }

  Match match_;
  std::atomic<bool> stop_{false};
  absl::Mutex mu_;
  std::vector<std::pair<absl::Time, absl::Time>> seen_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

Watcher::Match TaskOf(const std::string& step_id) {
  return [step_id](const v1::Envelope& e) -> std::optional<absl::Time> {
    if (!e.has_task_created() || e.task_created().step_id() != step_id) return std::nullopt;
    return domain::FromProto(e.occurred_at());
  };
}

Watcher::Match ExecutedOf(const std::string& step_id) {
  return [step_id](const v1::Envelope& e) -> std::optional<absl::Time> {
    if (!e.has_step_executed() || e.step_executed().step_id() != step_id) return std::nullopt;
    return domain::FromProto(e.step_executed().due_at());
  };
}

// A task of `step_id` fired by a timer, with the due time its cause names: the causation id of a
// timer's effects is "<enrollment_id>/<step_id>/due@<unix micros>" (the executor's and the
// peers').
Watcher::Match TaskDueOf(const std::string& step_id) {
  return [step_id](const v1::Envelope& e) -> std::optional<absl::Time> {
    if (!e.has_task_created() || e.task_created().step_id() != step_id) return std::nullopt;
    size_t at = e.causation_id().rfind("/due@");
    int64_t micros = 0;
    if (at == std::string::npos || !absl::SimpleAtoi(e.causation_id().substr(at + 5), &micros)) {
      return std::nullopt;
    }
    return absl::FromUnixMicros(micros);
  };
}

// An email of `step_id` handed to the mailer, with the time its step came due.
Watcher::Match EmailOf(const std::string& step_id) {
  return [step_id](const v1::Envelope& e) -> std::optional<absl::Time> {
    if (!e.has_email_send() || e.email_send().step_id() != step_id) return std::nullopt;
    return domain::FromProto(e.email_send().scheduled_at());
  };
}

Watcher::Match Started() {
  return [](const v1::Envelope& e) -> std::optional<absl::Time> {
    if (!e.has_enrollment_started()) return std::nullopt;
    return domain::FromProto(e.occurred_at());
  };
}

// Per-second counts of visible times, from the first.
std::vector<double> PerSecond(const std::vector<std::pair<absl::Time, absl::Time>>& seen) {
  if (seen.empty()) return {};
  absl::Time first = absl::InfiniteFuture();
  for (const auto& s : seen) first = std::min(first, s.first);
  std::vector<double> out;
  for (const auto& s : seen) {
    size_t i = static_cast<size_t>(absl::ToDoubleSeconds(s.first - first));
    if (out.size() <= i) out.resize(i + 1, 0);
    out[i] += 1;
  }
  return out;
}

Figures Rate(const std::vector<std::pair<absl::Time, absl::Time>>& seen, absl::Time from) {
  absl::Time last = from;
  for (const auto& s : seen) last = std::max(last, s.first);
  double secs = std::max(1e-9, absl::ToDoubleSeconds(last - from));
  return {{"records", static_cast<double>(seen.size())},
          {"seconds", secs},
          {"records_per_s", seen.size() / secs}};
}

Figures Lateness(const std::vector<std::pair<absl::Time, absl::Time>>& seen,
                 std::vector<double>* samples) {
  Histogram h;
  for (const auto& [visible, due] : seen) h.Add(visible - due);
  if (samples != nullptr) *samples = h.samples_ms();
  return h.Summary("lateness_ms");
}

// The batch sizes the executor chose, from the last metrics line of its log (empty for a peer
// or before the first line): batches committed, their mean and largest size (the larger of
// inputs and due steps), and the limit the next batch had.
Figures BatchSizes(const SystemOptions& options, ChildProcess& exec) {
  if (options.system != "executor") return {};
  const std::string log = exec.Log();
  const size_t line = log.rfind("\"msg\":\"metrics\"");
  if (line == std::string::npos) return {};
  auto number = [&](absl::string_view key) -> double {
    // The snapshot is a JSON string inside the log line: its quotes are escaped.
    const std::string needle = absl::StrCat(key, "\\\":");
    const size_t at = log.find(needle, line);
    if (at == std::string::npos) return -1;
    const size_t from = at + needle.size();
    const size_t to = log.find_first_of(",}", from);
    double v = -1;
    return absl::SimpleAtod(log.substr(from, to - from), &v) ? v : -1;
  };
  const double batches = number("batches");
  Figures f{{"batches", batches},
            {"largest_batch", number("largest_batch")},
            {"batch_limit", number("batch_limit")}};
  if (batches > 0) f["batch_mean"] = number("batch_size_sum") / batches;
  return f;
}

// Where the executor's memory was (its metrics lines, one a second: process_memory and
// rocksdb_memory) at the sample with the largest resident set, and the largest of each part over
// the run; MiB. Empty for a peer or a log without those figures. `series`: every sample of each
// part, in order.
Figures MemoryParts(const SystemOptions& options, ChildProcess& exec,
                    std::map<std::string, std::vector<double>>* series) {
  if (options.system != "executor") return {};
  const std::string log = exec.Log();
  // The snapshot is a JSON string inside the log line: its quotes are escaped.
  const std::vector<std::pair<std::string, std::string>> parts = {
      {"rss", "rss"},
      {"rss_anon", "rss_anon"},
      {"rss_file", "rss_file"},
      {"heap_allocated", "heap_allocated"},
      {"heap_active", "heap_active"},
      {"heap_dirty", "heap_dirty"},
      {"heap_metadata", "heap_metadata"},
      {"cache_usage", "rocksdb_cache_usage"},
      {"cache_pinned", "rocksdb_cache_pinned"},
      {"memtables", "rocksdb_memtables"},
      {"table_readers", "rocksdb_table_readers"}};
  Figures at_peak;
  Figures largest;
  double peak = -1;
  int samples = 0;
  for (size_t line = log.find("\"msg\":\"metrics\""); line != std::string::npos;
       line = log.find("\"msg\":\"metrics\"", line + 1)) {
    const size_t end = log.find('\n', line);
    const std::string text = log.substr(line, end == std::string::npos ? end : end - line);
    Figures f;
    for (const auto& [key, name] : parts) {
      const std::string needle = absl::StrCat("\\\"", key, "\\\":");
      const size_t at = text.find(needle);
      if (at == std::string::npos) continue;
      const size_t from = at + needle.size();
      double v = 0;
      if (absl::SimpleAtod(text.substr(from, text.find_first_of(",}", from) - from), &v)) {
        f[name] = v / (1 << 20);
      }
    }
    if (!f.contains("rss") || f["rss"] <= 0) continue;
    ++samples;
    for (const auto& [name, v] : f) {
      largest[name] = std::max(largest[name], v);
      (*series)[absl::StrCat(name, "_mib")].push_back(v);
    }
    if (f["rss"] > peak) {
      peak = f["rss"];
      at_peak = f;
    }
  }
  Figures out;
  if (samples == 0) return out;
  out["memory_samples"] = samples;
  for (const auto& [name, v] : at_peak) out[absl::StrCat("at_peak_", name, "_mib")] = v;
  for (const auto& [name, v] : largest) out[absl::StrCat("max_", name, "_mib")] = v;
  return out;
}

}  // namespace

std::string FigureName(const SystemOptions& options, const std::string& what) {
  return options.system == "executor" ? absl::StrCat("executor-", what)
                                      : absl::StrCat("peer-", options.system, "-", what);
}

absl::StatusOr<std::vector<Result>> ExecutorThroughput(const SystemOptions& options,
                                                       int64_t count) {
  auto env = NewEnv(options, "throughput");
  if (!env.ok()) return env.status();
  // The second step holds every enrollment in the state for a month (memory, recovery).
  if (auto s = PublishSequence(
          *env, "seq",
          {Activity("s1", v1::DELAY_UNIT_MINUTES, 0), Activity("s2", v1::DELAY_UNIT_DAYS, 30)});
      !s.ok()) {
    return s;
  }
  std::vector<kafka::Record> records;
  for (int64_t i = 0; i < count; ++i) records.push_back(Enroll(*env, "seq", i));
  auto load = Load(options.bootstrap, records);
  if (!load.ok()) return load.status();

  std::vector<Result> results;
  Watcher tasks(*env, env->topics.task_events, TaskOf("s1"));
  absl::Time start = absl::Now();
  auto exec = StartExecutor(*env, "a");
  if (!exec.ok()) return exec.status();
  if (!tasks.WaitFor(count, absl::Minutes(30), exec->get())) {
    return absl::DeadlineExceededError(absl::StrCat("throughput: ", tasks.count(), " of ", count,
                                                    " first steps; executor log:\n",
                                                    (*exec)->Log().substr(0, 4000)));
  }
  auto seen = tasks.seen();
  absl::Time first = absl::InfiniteFuture();
  for (const auto& s : seen) first = std::min(first, s.first);
  Figures f = Rate(seen, first);
  f["startup_to_first_s"] = absl::ToDoubleSeconds(first - start);
  // The median second (the last, partial one left out): the steady rate, without the start's
  // ramp (a JVM's warm-up, say).
  std::vector<double> per_second = PerSecond(seen);
  if (per_second.size() > 2) {
    std::vector<double> full(per_second.begin(), per_second.end() - 1);
    std::sort(full.begin(), full.end());
    f["median_per_s"] = full[full.size() / 2];
  }
  for (const auto& [k, v] : BatchSizes(options, **exec)) f[k] = v;
  Figures mem = Memory((*exec)->pid());
  mem["enrollments"] = static_cast<double>(count);
  std::map<std::string, std::vector<double>> memory_series;
  for (const auto& [k, v] : MemoryParts(options, **exec, &memory_series)) mem[k] = v;
  // CPU the process used from its start until every first step was visible: what the work
  // costs, whatever share of the shared machine it got.
  if (double cpu = CpuSeconds((*exec)->pid()); cpu >= 0) {
    f["cpu_s"] = cpu;
    f["cpu_ms_per_enrollment"] = 1000 * cpu / static_cast<double>(count);
  }
  results.push_back({FigureName(options, "throughput"), f, {{"throughput_per_s", per_second}}});
  results.push_back({FigureName(options, "memory"), mem, std::move(memory_series)});

  // Recovery: kill -9 while holding every enrollment; one more enrollment arrives; how long from
  // the restart until it fires.
  (*exec)->Kill();
  auto producer = kafka::Producer::Create({.client = {.bootstrap_servers = options.bootstrap}});
  if (!producer.ok()) return producer.status();
  if (auto r = (*producer)->Send(Enroll(*env, "seq", count)); !r.ok()) return r.status();
  absl::Time restart = absl::Now();
  exec = StartExecutor(*env, "a");
  if (!exec.ok()) return exec.status();
  if (!tasks.WaitFor(count + 1, absl::Minutes(10), exec->get())) {
    return absl::DeadlineExceededError("recovery: the executor did not fire again in 10 min");
  }
  absl::Time fired = absl::InfinitePast();
  for (const auto& s : tasks.seen()) fired = std::max(fired, s.first);
  results.push_back({FigureName(options, "recovery"),
                     {{"enrollments_held", static_cast<double>(count)},
                      {"restart_to_fire_s", absl::ToDoubleSeconds(fired - restart)}},
                     {}});
  (*exec)->Terminate();
  if (!options.replay || options.system != "executor") return results;

  // Replay: executor-events folded into an empty directory, against a raw consume.
  auto raw = RawConsume(options.bootstrap, env->topics.executor_events);
  if (!raw.ok()) return raw.status();
  results.push_back({"kafka-raw-consume", *raw, {}});
  // Each binary in turn, `replay_repeats` times: the median wall time, and the CPU time the
  // process used (all threads; reaped children's usage), what the fold costs whatever share of
  // the machine it got.
  struct Replayer {
    std::string name;
    std::string binary;
    std::vector<std::string> flags;
    std::vector<double> seconds = {};
    std::vector<double> cpu_seconds = {};
  };
  const std::string binary =
      absl::StrCat(options.build_dir, "/services/step-executor/step-executor");
  std::vector<Replayer> replayers = {{"executor-replay", binary, {}}};
  if (!options.replay_baseline.empty()) {
    replayers.push_back({"executor-replay@baseline", options.replay_baseline, {}});
    // The same build folding on the reading thread alone: what the folder threads add.
    replayers.push_back({"executor-replay@fold_threads=0", binary, {"--fold_threads=0"}});
    // And the baseline's (before/after on one thread).
    replayers.push_back(
        {"executor-replay@baseline,fold_threads=0", options.replay_baseline, {"--fold_threads=0"}});
  }
  auto children_cpu = [] {
    rusage u{};
    getrusage(RUSAGE_CHILDREN, &u);
    return absl::ToDoubleSeconds(absl::DurationFromTimeval(u.ru_utime) +
                                 absl::DurationFromTimeval(u.ru_stime));
  };
  std::string first_digest;
  for (int round = 0; round < std::max(1, options.replay_repeats); ++round) {
    for (Replayer& r : replayers) {
      std::string replay_dir = absl::StrCat(options.work_dir, "/", env->prefix, "replay");
      const double cpu0 = children_cpu();
      absl::Time t0 = absl::Now();
      std::vector<std::string> argv = {
          r.binary, "replay", absl::StrCat("--bootstrap_servers=", options.bootstrap),
          absl::StrCat("--topic_prefix=", env->prefix), absl::StrCat("--data_dir=", replay_dir)};
      argv.insert(argv.end(), r.flags.begin(), r.flags.end());
      auto replay = ChildProcess::Start(argv, replay_dir + ".log");
      if (!replay.ok()) return replay.status();
      while ((*replay)->Running()) absl::SleepFor(absl::Milliseconds(20));
      r.seconds.push_back(absl::ToDoubleSeconds(absl::Now() - t0));
      r.cpu_seconds.push_back(children_cpu() - cpu0);
      // Every binary and every round must rebuild the same state.
      const std::string log = (*replay)->Log();
      const size_t at = log.find("{\"digest\":\"");
      if (at == std::string::npos) {
        return absl::InternalError(
            absl::StrCat(r.name, " printed no digest:\n", log.substr(0, 4000)));
      }
      const std::string digest = log.substr(at + 11, 16);
      if (first_digest.empty()) first_digest = digest;
      if (digest != first_digest) {
        return absl::InternalError(absl::StrCat(r.name, " rebuilt digest ", digest, ", not ",
                                                first_digest, " like the first replay"));
      }
    }
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  for (const Replayer& r : replayers) {
    const double secs = median(r.seconds);
    const double cpu = median(r.cpu_seconds);
    results.push_back({r.name,
                       {{"records", (*raw)["records"]},
                        {"seconds", secs},
                        {"records_per_s", (*raw)["records"] / secs},
                        {"cpu_s", cpu},
                        {"cpu_us_per_record", 1e6 * cpu / (*raw)["records"]}},
                       {{"seconds", r.seconds}, {"cpu_seconds", r.cpu_seconds}}});
  }
  return results;
}

absl::StatusOr<std::vector<Result>> ExecutorScaleout(const SystemOptions& options, int64_t count,
                                                     int instances) {
  auto env = NewEnv(options, absl::StrCat("scaleout", instances));
  if (!env.ok()) return env.status();
  if (auto s = PublishSequence(
          *env, "seq",
          {Activity("s1", v1::DELAY_UNIT_MINUTES, 0), Activity("s2", v1::DELAY_UNIT_DAYS, 30)});
      !s.ok()) {
    return s;
  }
  std::vector<kafka::Record> records;
  for (int64_t i = 0; i < count; ++i) records.push_back(Enroll(*env, "seq", i));
  auto load = Load(options.bootstrap, records);
  if (!load.ok()) return load.status();
  Watcher tasks(*env, env->topics.task_events, TaskOf("s1"));
  // All instances start together, as a deployment scaled to N would after a restart; the group
  // splits the partitions between them.
  std::vector<std::unique_ptr<ChildProcess>> execs;
  for (int i = 0; i < instances; ++i) {
    auto exec = StartExecutor(*env, std::string(1, static_cast<char>('a' + i)));
    if (!exec.ok()) return exec.status();
    execs.push_back(std::move(*exec));
  }
  if (!tasks.WaitFor(count, absl::Minutes(30), execs.front().get())) {
    return absl::DeadlineExceededError(
        absl::StrCat("scaleout: ", tasks.count(), " of ", count, " first steps"));
  }
  auto seen = tasks.seen();
  absl::Time first = absl::InfiniteFuture();
  for (const auto& s : seen) first = std::min(first, s.first);
  Figures f = Rate(seen, first);
  f["instances"] = instances;
  std::vector<double> per_second = PerSecond(seen);
  if (per_second.size() > 2) {
    std::vector<double> full(per_second.begin(), per_second.end() - 1);
    std::sort(full.begin(), full.end());
    f["median_per_s"] = full[full.size() / 2];
  }
  double cpu = 0;
  for (const auto& e : execs) cpu += std::max(0.0, CpuSeconds(e->pid()));
  f["cpu_s"] = cpu;
  f["cpu_ms_per_enrollment"] = 1000 * cpu / static_cast<double>(count);
  for (auto& e : execs) e->Terminate();
  return std::vector<Result>{{absl::StrCat(FigureName(options, "scaleout"), "@", instances),
                              f,
                              {{"throughput_per_s", per_second}}}};
}

absl::StatusOr<std::vector<Result>> ExecutorTimerBurst(const SystemOptions& options,
                                                       int64_t count) {
  auto env = NewEnv(options, "burst");
  if (!env.ok()) return env.status();
  // Every enrollment's first step is due at the same local time (UTC), far enough ahead that all
  // of them have started by then.
  absl::Time at = absl::Now() + absl::Seconds(60 + count / 4000);
  absl::CivilMinute m = absl::ToCivilMinute(at, absl::UTCTimeZone()) + 1;
  absl::Time due = absl::FromCivil(m, absl::UTCTimeZone());
  v1::Step s1 = Activity("s1", v1::DELAY_UNIT_MINUTES, 0);
  s1.mutable_at_time()->set_hours(m.hour());
  s1.mutable_at_time()->set_minutes(m.minute());
  if (auto s = PublishSequence(*env, "seq", {s1, Activity("s2", v1::DELAY_UNIT_DAYS, 30)});
      !s.ok()) {
    return s;
  }
  std::vector<kafka::Record> records;
  for (int64_t i = 0; i < count; ++i) records.push_back(Enroll(*env, "seq", i));
  if (auto load = Load(options.bootstrap, records); !load.ok()) return load.status();
  Watcher started(*env, env->topics.executor_events, Started());
  Watcher tasks(*env, env->topics.task_events, TaskOf("s1"));
  auto exec = StartExecutor(*env, "a");
  if (!exec.ok()) return exec.status();
  bool all_started =
      options.system == "executor"
          ? started.WaitFor(count, due - absl::Now(), exec->get())
          // A peer writes no executor events; it logs how many enrollments it holds every 5 s.
          : (*exec)->WaitForLog(absl::StrCat("\"detail\":\"enrolled=", count, " "),
                                due - absl::Now());
  if (!tasks.WaitFor(count, absl::Minutes(30), exec->get())) {
    return absl::DeadlineExceededError(
        absl::StrCat("burst: ", tasks.count(), " of ", count, " fired in 30 min"));
  }
  auto seen = tasks.seen();
  std::vector<double> samples;
  Figures f = Rate(seen, due);
  // Lateness against the shared due instant (the watcher's second is the decision time).
  std::vector<std::pair<absl::Time, absl::Time>> against_due;
  Histogram commit;
  for (const auto& [visible, decided] : seen) {
    against_due.push_back({visible, due});
    commit.Add(visible - decided);
  }
  for (const auto& [k, v] : Lateness(against_due, &samples)) f[k] = v;
  for (const auto& [k, v] : commit.Summary("decided_to_visible_ms")) f[k] = v;
  f["all_started_before_due"] = all_started ? 1 : 0;
  for (const auto& [k, v] : BatchSizes(options, **exec)) f[k] = v;
  (*exec)->Terminate();
  return std::vector<Result>{{FigureName(options, "timer-burst"),
                              f,
                              {{"throughput_per_s", PerSecond(seen)}, {"lateness_ms", samples}}}};
}

absl::StatusOr<std::vector<Result>> ExecutorLateness(const SystemOptions& options, double rate,
                                                     double seconds) {
  auto env = NewEnv(options, "lateness");
  if (!env.ok()) return env.status();
  if (auto s = PublishSequence(
          *env, "seq",
          {Activity("s1", v1::DELAY_UNIT_MINUTES, 1), Activity("s2", v1::DELAY_UNIT_DAYS, 30)});
      !s.ok()) {
    return s;
  }
  // The executor's StepExecuted names the due time; a peer writes no executor events, so its
  // tasks are matched by the due time their causation id names.
  Watcher executed(
      *env, options.system == "executor" ? env->topics.executor_events : env->topics.task_events,
      options.system == "executor" ? ExecutedOf("s1") : TaskDueOf("s1"));
  auto a = StartExecutor(*env, "a");
  if (!a.ok()) return a.status();
  if (!(*a)->WaitForLog("\"msg\":\"running\"", absl::Minutes(1))) {
    return absl::UnavailableError(absl::StrCat(options.system, " did not start"));
  }
  auto producer = kafka::Producer::Create(
      {.client = {.bootstrap_servers = options.bootstrap}, .linger = absl::Milliseconds(5)});
  if (!producer.ok()) return producer.status();
  const int64_t total = static_cast<int64_t>(rate * seconds);
  absl::Time begin = absl::Now();
  // Steps come due from begin + 1 min for `seconds`: a third steady, then a second instance
  // joins (rebalance), then instance a is killed and restarted.
  absl::Time fire_begin = begin + absl::Minutes(1);
  absl::Time join_at = fire_begin + absl::Seconds(seconds / 3);
  absl::Time kill_at = fire_begin + absl::Seconds(2 * seconds / 3);
  std::thread feeder([&] {
    for (int64_t i = 0; i < total; ++i) {
      absl::Time due = begin + absl::Seconds(i / rate);
      absl::Time now = absl::Now();
      if (due > now) absl::SleepFor(due - now);
      (void)(*producer)->SendAsync(Enroll(*env, "seq", i), [](auto) {});
    }
  });
  std::unique_ptr<ChildProcess> b;
  absl::SleepFor(join_at - absl::Now());
  auto started_b = StartExecutor(*env, "b");
  if (started_b.ok()) b = std::move(*started_b);
  absl::SleepFor(kill_at - absl::Now());
  Figures batches = BatchSizes(options, **a);  // steady, then sharing the load with b
  (*a)->Kill();
  {
    // The killed incarnation's log stays readable (the join, seen from a) as a.log.1.
    const std::string log = absl::StrCat(env->options.work_dir, "/", env->prefix, "a.log");
    std::error_code ignored;
    std::filesystem::rename(log, log + ".1", ignored);
  }
  a = StartExecutor(*env, "a");
  feeder.join();
  bool done = executed.WaitFor(total, absl::Minutes(10));
  auto seen = executed.seen();
  std::vector<std::pair<absl::Time, absl::Time>> steady, rebalance, restart;
  for (const auto& s : seen) {
    if (s.second < join_at) {
      steady.push_back(s);
    } else if (s.second < kill_at) {
      rebalance.push_back(s);
    } else {
      restart.push_back(s);
    }
  }
  std::vector<Result> results;
  std::vector<double> samples;
  Figures f = Lateness(steady, &samples);
  f["rate_per_s"] = rate;
  f["fired"] = static_cast<double>(seen.size());
  f["expected"] = static_cast<double>(total);
  f["all_fired"] = done ? 1 : 0;
  for (const auto& [k, v] : batches) f[k] = v;
  results.push_back({FigureName(options, "lateness-steady"), f, {{"lateness_ms", samples}}});
  f = Lateness(rebalance, &samples);
  f["rate_per_s"] = rate;  // the report names each result by its rate
  results.push_back({FigureName(options, "lateness-rebalance"), f, {{"lateness_ms", samples}}});
  f = Lateness(restart, &samples);
  f["rate_per_s"] = rate;
  results.push_back({FigureName(options, "lateness-restart"), f, {{"lateness_ms", samples}}});
  if (a.ok()) (*a)->Terminate();
  if (b != nullptr) b->Terminate();
  return results;
}

namespace {

// The limits benchmark's senders: the enrollments' owners in turn, so the sender stage's work
// spreads over the partitions as a company's reps' would.
constexpr int kLimitSenders = 16;

std::vector<std::string> LimitSenders() {
  std::vector<std::string> out;
  for (int i = 0; i < kLimitSenders; ++i) out.push_back(absl::StrCat("rep-", i));
  return out;
}

// The company's sending settings in both runs of the limits benchmark: each sender's daily limit
// the highest allowed (100,000), never reached, so every automatic email passes the sender stage
// (its state lookup, plan and ledger entry) and goes out at once.
// With `gap`, also a minimum gap of a day between emails to one person (docs/min-gap.md): every
// email then passes the person stage first (each enrollment has its own recipient, so the gap is
// looked up and never makes an email wait).
v1::CompanySendingSettings LimitsBenchSettings(bool gap) {
  v1::CompanySendingSettings s;
  s.set_daily_limit_per_sender(domain::kMaxSendLimit);
  s.set_time_zone("UTC");
  if (gap) s.set_min_gap_between_emails_seconds(24 * 3600);
  return s;
}

// What one side of the limits benchmark switches on.
enum class Limits { kOff, kOn, kOnWithGap };
bool Automatic(Limits l) { return l != Limits::kOff; }
const char* LimitsLabel(Limits l) {
  switch (l) {
    case Limits::kOff:
      return "off";
    case Limits::kOn:
      return "on";
    case Limits::kOnWithGap:
      return "gap";
  }
  return "?";
}

// The limits benchmark's sequence: an email (automatic unless kOff: through the sender stage, and
// the person stage before it with kOnWithGap; a draft for review with kOff: no stage), then a step
// a month later that holds the enrollment.
absl::Status PrepareLimitsRun(const Env& env, Limits limits, int delay_minutes) {
  v1::Envelope e = domain::MakeEnvelope(absl::StrCat(env.prefix, "sending-settings-1"), "bench",
                                        absl::Now(), "", "");
  v1::CompanySendingSettingsChanged* c = e.mutable_company_sending_settings_changed();
  c->set_company_id("bench");
  c->set_version(1);
  *c->mutable_settings() = LimitsBenchSettings(limits == Limits::kOnWithGap);
  auto producer = kafka::Producer::Create({.client = {.bootstrap_servers = env.options.bootstrap}});
  if (!producer.ok()) return producer.status();
  auto r = (*producer)->Send(
      {env.topics.sequence_events, domain::CompanySettingsKey("bench"), e.SerializeAsString()});
  if (!r.ok()) return r.status();
  return PublishSequence(
      env, "seq",
      {Email("s1", delay_minutes, Automatic(limits)), Activity("s2", v1::DELAY_UNIT_DAYS, 30)},
      LimitSenders());
}

std::string LimitsName(Limits limits, const std::string& what) {
  return absl::StrCat("executor-limits-", LimitsLabel(limits), "-", what);
}

// Enrollments loaded before the executor starts: enrollments/s to first email visible, from the
// executor's start (from_start_per_s) and from the first email on (records_per_s), its median
// second, CPU per enrollment.
absl::StatusOr<Result> LimitsThroughput(const SystemOptions& options, Limits on, int64_t count,
                                        int instances) {
  auto env = NewEnv(options, absl::StrCat("limits-", LimitsLabel(on)));
  if (!env.ok()) return env.status();
  if (auto s = PrepareLimitsRun(*env, on, 0); !s.ok()) return s;
  std::vector<kafka::Record> records;
  for (int64_t i = 0; i < count; ++i) {
    records.push_back(Enroll(*env, "seq", i, absl::StrCat("rep-", i % kLimitSenders)));
  }
  if (auto load = Load(options.bootstrap, records); !load.ok()) return load.status();
  Watcher emails(*env, env->topics.email_events, EmailOf("s1"));
  absl::Time start = absl::Now();
  // With more than one instance, in one group: a stage key's partition is this instance's for
  // about 1/N of the keys, so the other stage records take the round trip through Kafka.
  std::vector<std::unique_ptr<ChildProcess>> execs;
  for (int i = 0; i < instances; ++i) {
    auto exec = StartExecutor(*env, std::string(1, static_cast<char>('a' + i)));
    if (!exec.ok()) return exec.status();
    execs.push_back(std::move(*exec));
  }
  if (!emails.WaitFor(count, absl::Minutes(30), execs.front().get())) {
    return absl::DeadlineExceededError(
        absl::StrCat(LimitsName(on, "throughput"), ": ", emails.count(), " of ", count, " emails"));
  }
  auto seen = emails.seen();
  absl::Time first = absl::InfiniteFuture(), last = absl::InfinitePast();
  for (const auto& s : seen) {
    first = std::min(first, s.first);
    last = std::max(last, s.first);
  }
  Figures f = Rate(seen, first);
  f["startup_to_first_s"] = absl::ToDoubleSeconds(first - start);
  // From the executor's start to the last email: the figure the two sides compare. With the
  // stage, the emails wait behind the enrollments loaded before them on enrollment-events (their
  // requests are appended after them), so first-to-last alone would flatter it.
  f["from_start_per_s"] = static_cast<double>(count) / absl::ToDoubleSeconds(last - start);
  std::vector<double> per_second = PerSecond(seen);
  if (per_second.size() > 2) {  // the median full second: the steady rate
    std::vector<double> full(per_second.begin(), per_second.end() - 1);
    std::sort(full.begin(), full.end());
    f["median_per_s"] = full[full.size() / 2];
  }
  double cpu = 0;
  for (const auto& e : execs) cpu += std::max(0.0, CpuSeconds(e->pid()));
  f["cpu_s"] = cpu;
  f["cpu_ms_per_enrollment"] = 1000 * cpu / static_cast<double>(count);
  f["instances"] = instances;
  for (const auto& [k, v] : Memory(execs.front()->pid())) f[k] = v;
  for (auto& e : execs) e->Terminate();
  return Result{LimitsName(on, "throughput"), f, {{"throughput_per_s", per_second}}};
}

// Enrollments arriving at `rate`/s for `seconds`, each email due a minute later, one executor
// instance: lateness (visible to a read_committed consumer minus due time) in steady state.
absl::StatusOr<Result> LimitsLateness(const SystemOptions& options, Limits on, double rate,
                                      double seconds) {
  auto env = NewEnv(options, absl::StrCat("limits-lateness-", LimitsLabel(on)));
  if (!env.ok()) return env.status();
  if (auto s = PrepareLimitsRun(*env, on, 1); !s.ok()) return s;
  Watcher emails(*env, env->topics.email_events, EmailOf("s1"));
  auto exec = StartExecutor(*env, "a");
  if (!exec.ok()) return exec.status();
  if (!(*exec)->WaitForLog("\"msg\":\"running\"", absl::Minutes(1))) {
    return absl::UnavailableError("the executor did not start");
  }
  auto producer = kafka::Producer::Create(
      {.client = {.bootstrap_servers = options.bootstrap}, .linger = absl::Milliseconds(5)});
  if (!producer.ok()) return producer.status();
  const int64_t total = static_cast<int64_t>(rate * seconds);
  const absl::Time begin = absl::Now();
  for (int64_t i = 0; i < total; ++i) {
    absl::Time due = begin + absl::Seconds(i / rate);
    absl::Time now = absl::Now();
    if (due > now) absl::SleepFor(due - now);
    (void)(*producer)->SendAsync(Enroll(*env, "seq", i, absl::StrCat("rep-", i % kLimitSenders)),
                                 [](auto) {});
  }
  const bool done = emails.WaitFor(total, absl::Minutes(10), exec->get());
  std::vector<double> samples;
  Figures f = Lateness(emails.seen(), &samples);
  f["enroll_rate_per_s"] = rate;
  f["fired"] = static_cast<double>(emails.count());
  f["expected"] = static_cast<double>(total);
  f["all_fired"] = done ? 1 : 0;
  (*exec)->Terminate();
  return Result{LimitsName(on, "lateness"), f, {{"lateness_ms", samples}}};
}

// An EmailDeferred executor event of step s1 (its enrollment was told its email waits).
Watcher::Match DeferredOf() {
  return [](const v1::Envelope& e) -> std::optional<absl::Time> {
    if (!e.has_email_deferred()) return std::nullopt;
    return domain::FromProto(e.occurred_at());
  };
}

// A sender whose daily limit is reached, holding `waiting` deferred emails over 8 sequences,
// then `arrivals` more emails of the same sender: CPU per arriving email (each deferred in turn:
// its step, its request, the sender stage's plan and ledger entry, the deferral's outcome and
// the enrollment's EmailDeferred). Whether the stage's cost per batch grows with its queue.
// `filler` enrollments with no email (loaded first) give both sides stores of the same size.
absl::StatusOr<Result> LimitsReached(const SystemOptions& options, int64_t waiting, int64_t filler,
                                     int64_t arrivals, const std::string& label) {
  auto env = NewEnv(options, absl::StrCat("limits-reached-", label));
  if (!env.ok()) return env.status();
  constexpr int kDaily = 100;
  constexpr int kSequences = 8;
  v1::Envelope e = domain::MakeEnvelope(absl::StrCat(env->prefix, "sending-settings-1"), "bench",
                                        absl::Now(), "", "");
  v1::CompanySendingSettingsChanged* c = e.mutable_company_sending_settings_changed();
  c->set_company_id("bench");
  c->set_version(1);
  c->mutable_settings()->set_daily_limit_per_sender(kDaily);
  c->mutable_settings()->set_time_zone("UTC");
  auto producer =
      kafka::Producer::Create({.client = {.bootstrap_servers = env->options.bootstrap}});
  if (!producer.ok()) return producer.status();
  auto sent = (*producer)->Send(
      {env->topics.sequence_events, domain::CompanySettingsKey("bench"), e.SerializeAsString()});
  if (!sent.ok()) return sent.status();
  for (int s = 0; s < kSequences; ++s) {
    if (auto p = PublishSequence(*env, absl::StrCat("seq", s),
                                 {Email("s1", 0, true), Activity("s2", v1::DELAY_UNIT_DAYS, 30)},
                                 {"rep-0"});
        !p.ok()) {
      return p;
    }
  }
  if (auto p = PublishSequence(
          *env, "fill",
          {Activity("s1", v1::DELAY_UNIT_DAYS, 30), Activity("s2", v1::DELAY_UNIT_DAYS, 30)});
      !p.ok()) {
    return p;
  }
  auto records = [&](int64_t from, int64_t to) {
    std::vector<kafka::Record> out;
    for (int64_t i = from; i < to; ++i) {
      out.push_back(Enroll(*env, absl::StrCat("seq", i % kSequences), i, "rep-0"));
    }
    return out;
  };
  std::vector<kafka::Record> preload;
  for (int64_t i = 0; i < filler; ++i) {
    preload.push_back(Enroll(*env, "fill", 1'000'000'000 + i, "rep-1"));
  }
  const int64_t first = kDaily + waiting;  // the day's limit, then the queue
  for (kafka::Record& r : records(0, first)) preload.push_back(std::move(r));
  if (auto load = Load(options.bootstrap, preload); !load.ok()) return load.status();
  Watcher deferred(*env, env->topics.executor_events, DeferredOf());
  auto exec = StartExecutor(*env, "a");
  if (!exec.ok()) return exec.status();
  if (!deferred.WaitFor(waiting, absl::Minutes(30), exec->get())) {
    return absl::DeadlineExceededError(absl::StrCat("limits-reached-", label, ": ",
                                                    deferred.count(), " of ", waiting,
                                                    " deferred before the arrivals"));
  }
  absl::SleepFor(absl::Seconds(1));  // the last batch's tail
  const double cpu_before = CpuSeconds((*exec)->pid());
  const absl::Time start = absl::Now();
  if (auto load = Load(options.bootstrap, records(first, first + arrivals)); !load.ok()) {
    return load.status();
  }
  if (!deferred.WaitFor(waiting + arrivals, absl::Minutes(30), exec->get())) {
    return absl::DeadlineExceededError(absl::StrCat(
        "limits-reached-", label, ": ", deferred.count(), " of ", waiting + arrivals, " deferred"));
  }
  const absl::Time end = absl::Now();
  const double cpu_after = CpuSeconds((*exec)->pid());
  Figures f;
  f["waiting"] = static_cast<double>(waiting);
  f["filler"] = static_cast<double>(filler);
  f["arrivals"] = static_cast<double>(arrivals);
  f["seconds"] = absl::ToDoubleSeconds(end - start);
  f["per_s"] = static_cast<double>(arrivals) / absl::ToDoubleSeconds(end - start);
  if (cpu_before >= 0 && cpu_after >= 0) {
    f["cpu_ms_per_email"] = 1000 * (cpu_after - cpu_before) / static_cast<double>(arrivals);
  }
  for (const auto& [k, v] : Memory((*exec)->pid())) f[k] = v;
  (*exec)->Terminate();
  return Result{absl::StrCat("executor-limits-reached-", label), f, {}};
}

}  // namespace

absl::StatusOr<std::vector<Result>> ExecutorLimits(const SystemOptions& options, int64_t count,
                                                   double rate, double seconds, int instances) {
  if (options.system != "executor") {
    return absl::InvalidArgumentError("executor-limits runs the executor only");
  }
  std::vector<Result> results;
  // off, on, gap, gap, on, off: the machine's drift in load falls on every side alike.
  for (Limits on : {Limits::kOff, Limits::kOn, Limits::kOnWithGap}) {
    auto r = LimitsThroughput(options, on, count, instances);
    if (!r.ok()) return r.status();
    results.push_back(*std::move(r));
  }
  if (instances > 1) return results;  // the throughput alone (lateness: one instance)
  for (Limits on : {Limits::kOnWithGap, Limits::kOn, Limits::kOff}) {
    auto r = LimitsLateness(options, on, rate, seconds);
    if (!r.ok()) return r.status();
    results.push_back(*std::move(r));
  }
  return results;
}

}  // namespace sequences::bench

namespace sequences::bench {

absl::StatusOr<std::vector<Result>> ExecutorLimitsReached(const SystemOptions& options,
                                                          int64_t count) {
  if (options.system != "executor") {
    return absl::InvalidArgumentError("executor-limits-reached runs the executor only");
  }
  // The same arrivals at a sender holding a short queue and one holding `count`, in stores of
  // the same size (the short queue's side holds as many enrollments, most without an email).
  const int64_t arrivals = std::max<int64_t>(1000, count / 4);
  constexpr int64_t kShort = 200;
  std::vector<Result> results;
  for (const auto& [waiting, label] :
       std::vector<std::pair<int64_t, std::string>>{{kShort, "small"}, {count, "large"}}) {
    auto r = LimitsReached(options, waiting, count + kShort - waiting, arrivals, label);
    if (!r.ok()) return r.status();
    results.push_back(*std::move(r));
  }
  return results;
}

}  // namespace sequences::bench
