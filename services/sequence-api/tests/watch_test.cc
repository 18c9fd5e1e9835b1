// WatchEnrollments in one process (tier "unit"): the real Api, read model, change log and RocksDB,
// the executor's events appended through the loopback log (loopback_event_log.h), and the watch
// hub on its own. The gRPC stream around it is covered by the e2e tier (watch_e2e_test.cc).
#include "services/sequence-api/watch.h"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/domain/envelope.h"
#include "libs/domain/errors.h"
#include "libs/domain/tests/builders.h"
#include "services/sequence-api/api.h"
#include "services/sequence-api/tests/loopback_event_log.h"
#include "tests/support/process.h"

namespace sequences::api {
namespace {

const service::Topics kTopics = service::Topics::WithPrefix("t.");
const absl::Time kT0 = absl::FromUnixSeconds(1600000000);
constexpr char kA[] = "acme";
constexpr char kB[] = "globex";

CallContext As(const std::string& company) { return {.company_id = company, .user_id = "u1"}; }

std::unique_ptr<ReadModel> OpenReadModel(const std::string& dir, int64_t history) {
  auto rm =
      ReadModel::Open({.data_dir = dir, .kafka = {}, .topics = kTopics, .watch_history = history});
  REQUIRE(rm.ok());
  return std::move(*rm);
}

// One Api over a read model in `dir` (fresh unless reopened) and a loopback log whose
// executor-events topic has two partitions.
struct Harness {
  explicit Harness(std::string dir = testing::TempDir("watch-unit") + "/db", int64_t history = 1000,
                   size_t queue = 1000, size_t max_watches = 100)
      : data_dir(std::move(dir)),
        read_model(OpenReadModel(data_dir, history)),
        log(*read_model, {{kTopics.enrollment_events, 3}, {kTopics.executor_events, 2}}),
        api(Options(queue, max_watches), log, *read_model, clock, signer) {}

  static ApiOptions Options(size_t queue, size_t max_watches) {
    ApiOptions o;
    o.topics = kTopics;
    o.watch_queue_capacity = queue;
    o.max_watches_per_company = max_watches;
    return o;
  }

  std::string CreateSequence(const std::string& company, const std::string& request_id) {
    v1::CreateSequenceRequest req;
    req.set_parent(absl::StrCat("companies/", company));
    req.set_request_id(request_id);
    req.mutable_sequence()->set_display_name("Follow up");
    req.mutable_sequence()->set_entity_kind(v1::ENTITY_KIND_DEAL);
    *req.mutable_sequence()->add_steps() =
        domain::testing::ActivityStep("call-1", v1::DELAY_UNIT_DAYS, 1);
    absl::StatusOr<v1::SequenceResponse> r = api.CreateSequence(As(company), req);
    INFO(r.status().ToString());
    REQUIRE(r.ok());
    return r->sequence().name();
  }

  // Appends what the executor writes: `item` of `company` started in `sequence`, owned by `owner`,
  // then paused (`pauses` > 0) and resumed, alternately, `pauses` times.
  void Executor(const std::string& company, const std::string& sequence, const std::string& item,
                const std::string& owner, int pauses = 0) {
    const std::string item_key = absl::StrCat(company, "/deal/", item);
    const std::string sequence_id = sequence.substr(sequence.rfind('/') + 1);
    v1::EnrollmentRef ref;
    ref.set_enrollment_id(absl::StrCat(item_key, "#", sequence_id, "#1"));
    ref.set_item_key(item_key);
    ref.set_sequence_id(sequence_id);
    std::vector<v1::Envelope> events;
    const int n = next_event_++;
    v1::Envelope started = domain::MakeEnvelope(absl::StrCat("ev-", n, "-started"), company, kT0,
                                                "", "enroll-" + item);
    v1::EnrollmentStarted* s = started.mutable_enrollment_started();
    *s->mutable_ref() = ref;
    s->set_request_id("enroll-" + item);
    s->set_sequence_version(1);
    s->set_entity_kind(v1::ENTITY_KIND_DEAL);
    s->set_owner_id(owner);
    s->set_time_zone("UTC");
    *s->mutable_started_at() = started.occurred_at();
    s->set_first_step_id("call-1");
    *s->mutable_first_due_at() = started.occurred_at();
    events.push_back(started);
    AppendAll(item_key, events);
    for (int i = 0; i < pauses; ++i) Pause(company, ref, i % 2 == 0);
  }

  void Pause(const std::string& company, const v1::EnrollmentRef& ref, bool pause) {
    v1::Envelope e = domain::MakeEnvelope(absl::StrCat("ev-", next_event_++), company, kT0, "", "");
    if (pause) {
      *e.mutable_enrollment_paused()->mutable_ref() = ref;
      e.mutable_enrollment_paused()->set_cause(v1::PAUSE_CAUSE_ENROLLMENT);
    } else {
      *e.mutable_enrollment_resumed()->mutable_ref() = ref;
      e.mutable_enrollment_resumed()->set_cause(v1::PAUSE_CAUSE_ENROLLMENT);
    }
    AppendAll(ref.item_key(), {e});
  }

  void AppendAll(const std::string& key, const std::vector<v1::Envelope>& events) {
    std::vector<kafka::Record> records;
    for (const v1::Envelope& e : events) {
      records.push_back(
          {.topic = kTopics.executor_events, .key = key, .value = e.SerializeAsString()});
    }
    for (const absl::StatusOr<LogPosition>& p : log.Append(records, absl::InfiniteFuture())) {
      REQUIRE(p.ok());
    }
    REQUIRE(log.ApplyError().ok());
  }

  std::string data_dir;
  SimulatedClock clock{kT0};
  TokenSigner signer{{{.id = "k1", .secret = "0123456789abcdef0123"}}};
  std::unique_ptr<ReadModel> read_model;
  LoopbackEventLog log;
  Api api;
  int next_event_ = 0;
};

v1::WatchEnrollmentsRequest BySequence(const std::string& sequence, const std::string& token = "") {
  v1::WatchEnrollmentsRequest r;
  r.set_parent(sequence.substr(0, sequence.find("/sequences/")));
  r.set_sequence(sequence);
  r.set_resume_token(token);
  return r;
}

// Every message ready now (none is waited for), as "KIND item", and the last token.
struct Drained {
  std::vector<std::string> changes;
  std::string last_token;
  absl::Status end;
};

Drained Drain(WatchStream& stream) {
  Drained d;
  while (true) {
    absl::StatusOr<std::optional<v1::WatchEnrollmentsResponse>> m = stream.TryNext();
    if (!m.ok()) {
      d.end = m.status();
      return d;
    }
    if (!m->has_value()) return d;
    const v1::EnrollmentUpdate& u = (*m)->update();
    const std::string kind = v1::EnrollmentUpdateKind_Name(u.kind());
    d.changes.push_back(
        absl::StrCat(kind.substr(sizeof("ENROLLMENT_UPDATE_KIND_") - 1), " ", u.ref().item_key()));
    d.last_token = (*m)->resume_token();
  }
}

std::unique_ptr<WatchStream> MustWatch(Harness& h, const std::string& company,
                                       const v1::WatchEnrollmentsRequest& req) {
  absl::StatusOr<std::unique_ptr<WatchStream>> s = h.api.WatchEnrollments(As(company), req);
  INFO(s.status().ToString());
  REQUIRE(s.ok());
  return std::move(*s);
}

std::vector<std::string> Fields(const absl::Status& s) {
  std::vector<std::string> out;
  for (const domain::FieldViolation& v : domain::GetFieldViolations(s)) out.push_back(v.field);
  return out;
}

TEST_CASE(
    "given a watch of a sequence, when the executor's events are folded, then each status change "
    "of that sequence arrives once, and resuming from a token delivers exactly the later ones") {
  Harness h;
  const std::string seq = h.CreateSequence(kA, "create-1");
  const std::string other = h.CreateSequence(kA, "create-2");
  h.Executor(kA, seq, "before", "o1");  // before the watch: not sent to a watch without a token
  std::unique_ptr<WatchStream> w = MustWatch(h, kA, BySequence(seq));
  CHECK(Drain(*w).changes.empty());

  h.Executor(kA, seq, "1", "o1", 1);
  h.Executor(kA, other, "elsewhere", "o1");
  h.Executor(kA, seq, "2", "o1");
  const Drained first = Drain(*w);
  CHECK(first.changes == std::vector<std::string>{"ENROLLED acme/deal/1", "PAUSED acme/deal/1",
                                                  "ENROLLED acme/deal/2"});
  REQUIRE(first.end.ok());
  w.reset();  // disconnected

  // While nobody watches, items on both executor-events partitions change.
  h.Executor(kA, seq, "3", "o1", 2);
  h.Executor(kA, seq, "4", "o1");
  h.Executor(kA, other, "elsewhere-2", "o1");
  std::unique_ptr<WatchStream> resumed = MustWatch(h, kA, BySequence(seq, first.last_token));
  Drained missed = Drain(*resumed);
  std::sort(missed.changes.begin(), missed.changes.end());  // partitions interleave in any order
  CHECK(missed.changes == std::vector<std::string>{"ENROLLED acme/deal/3", "ENROLLED acme/deal/4",
                                                   "PAUSED acme/deal/3", "RESUMED acme/deal/3"});
  // Then live, with nothing of before repeated.
  h.Executor(kA, seq, "5", "o1");
  CHECK(Drain(*resumed).changes == std::vector<std::string>{"ENROLLED acme/deal/5"});

  SECTION("a token taken in the middle of a replay resumes after it, not from the start") {
    std::unique_ptr<WatchStream> again = MustWatch(h, kA, BySequence(seq, first.last_token));
    absl::StatusOr<std::optional<v1::WatchEnrollmentsResponse>> one = again->TryNext();
    REQUIRE(one.ok());
    REQUIRE(one->has_value());
    const std::string seen = (*one)->update().update_id();
    again.reset();
    std::unique_ptr<WatchStream> rest = MustWatch(h, kA, BySequence(seq, (*one)->resume_token()));
    Drained d = Drain(*rest);
    CHECK(d.changes.size() == 4);  // the five after `first`, less the one taken
  }
}

TEST_CASE("given a token, when the API restarts on its read model, then the resume still works") {
  const std::string dir = testing::TempDir("watch-unit") + "/db";
  std::string seq;
  std::string token;
  {
    Harness h(dir);
    seq = h.CreateSequence(kA, "create-1");
    std::unique_ptr<WatchStream> w = MustWatch(h, kA, BySequence(seq));
    h.Executor(kA, seq, "1", "o1");
    token = Drain(*w).last_token;
    h.Executor(kA, seq, "2", "o1", 1);
  }
  Harness restarted(dir);
  std::unique_ptr<WatchStream> w = MustWatch(restarted, kA, BySequence(seq, token));
  CHECK(Drain(*w).changes ==
        std::vector<std::string>{"ENROLLED acme/deal/2", "PAUSED acme/deal/2"});
}

TEST_CASE(
    "given a token of another API instance that is ahead of this one, when resumed here, then "
    "the changes up to the token are not delivered again as this instance catches up") {
  Harness ahead;
  Harness behind;  // the same log, folded later (the same events give the same offsets)
  const std::string seq = ahead.CreateSequence(kA, "create-1");
  REQUIRE(behind.CreateSequence(kA, "create-1") == seq);
  std::unique_ptr<WatchStream> w = MustWatch(ahead, kA, BySequence(seq));
  ahead.Executor(kA, seq, "1", "o1");
  ahead.Executor(kA, seq, "2", "o1", 1);
  const Drained seen = Drain(*w);
  REQUIRE(seen.changes.size() == 3);

  behind.Executor(kA, seq, "1", "o1");  // "2" not folded here yet
  std::unique_ptr<WatchStream> resumed = MustWatch(behind, kA, BySequence(seq, seen.last_token));
  CHECK(Drain(*resumed).changes.empty());
  behind.Executor(kA, seq, "2", "o1", 2);  // the two seen on the other instance, then one more
  CHECK(Drain(*resumed).changes == std::vector<std::string>{"RESUMED acme/deal/2"});
}

TEST_CASE(
    "given changes folded on another thread while a watcher keeps disconnecting and resuming, "
    "then it sees every change exactly once") {
  Harness h;
  const std::string seq = h.CreateSequence(kA, "create-1");
  const std::string sequence_id = seq.substr(seq.rfind('/') + 1);
  std::unique_ptr<WatchStream> w = MustWatch(h, kA, BySequence(seq));
  constexpr int kItems = 150;  // each: started, then paused: 300 changes
  std::atomic<bool> append_failed{false};
  // The executor's side, on its own thread (no Catch2 assertions in it).
  std::thread executor([&] {
    for (int i = 0; i < kItems; ++i) {
      const std::string item_key = absl::StrCat("acme/deal/c", i);
      v1::EnrollmentRef ref;
      ref.set_enrollment_id(absl::StrCat(item_key, "#", sequence_id, "#1"));
      ref.set_item_key(item_key);
      ref.set_sequence_id(sequence_id);
      v1::Envelope started =
          domain::MakeEnvelope(absl::StrCat("c", i, "-started"), kA, kT0, "", "");
      *started.mutable_enrollment_started()->mutable_ref() = ref;
      started.mutable_enrollment_started()->set_owner_id("o1");
      *started.mutable_enrollment_started()->mutable_started_at() = started.occurred_at();
      v1::Envelope paused = domain::MakeEnvelope(absl::StrCat("c", i, "-paused"), kA, kT0, "", "");
      *paused.mutable_enrollment_paused()->mutable_ref() = ref;
      paused.mutable_enrollment_paused()->set_cause(v1::PAUSE_CAUSE_ENROLLMENT);
      for (const v1::Envelope& e : {started, paused}) {
        for (const absl::StatusOr<LogPosition>& p : h.log.Append({{.topic = kTopics.executor_events,
                                                    .key = item_key,
                                                    .value = e.SerializeAsString()}},
                                                                 absl::InfiniteFuture())) {
          if (!p.ok()) append_failed = true;
        }
      }
    }
  });
  std::vector<std::string> seen;
  std::string token;
  int watches = 1;
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (static_cast<int>(seen.size()) < 2 * kItems && absl::Now() < give_up) {
    // A few messages, then disconnect and resume from the last token.
    for (int n = 0; n < 7 && static_cast<int>(seen.size()) < 2 * kItems; ++n) {
      absl::StatusOr<std::optional<v1::WatchEnrollmentsResponse>> m =
          w->Next(absl::Now() + absl::Seconds(5));
      REQUIRE(m.ok());
      if (!m->has_value()) break;
      seen.push_back((*m)->update().update_id());
      token = (*m)->resume_token();
    }
    w.reset();
    w = MustWatch(h, kA, BySequence(seq, token));
    ++watches;
  }
  executor.join();
  REQUIRE_FALSE(append_failed);
  REQUIRE(h.log.ApplyError().ok());
  CHECK(Drain(*w).changes.empty());  // nothing beyond
  INFO(watches << " watches");
  REQUIRE(seen.size() == 2 * kItems);
  CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == seen.size());
  // Each enrollment's changes in its order.
  for (int i = 0; i < kItems; ++i) {
    auto started = std::find(seen.begin(), seen.end(), absl::StrCat("c", i, "-started"));
    auto paused = std::find(seen.begin(), seen.end(), absl::StrCat("c", i, "-paused"));
    CHECK(started < paused);
  }
}

TEST_CASE("given watches by item and by owner, then each sees exactly its filter's changes") {
  Harness h;
  const std::string s1 = h.CreateSequence(kA, "create-1");
  const std::string s2 = h.CreateSequence(kA, "create-2");
  v1::WatchEnrollmentsRequest by_item;
  by_item.set_parent("companies/acme");
  by_item.set_entity_kind(v1::ENTITY_KIND_DEAL);
  by_item.set_item_id("7");
  v1::WatchEnrollmentsRequest by_owner;
  by_owner.set_parent("companies/acme");
  by_owner.set_owner_id("ann");
  std::unique_ptr<WatchStream> item = MustWatch(h, kA, by_item);
  std::unique_ptr<WatchStream> owner = MustWatch(h, kA, by_owner);

  h.Executor(kA, s1, "7", "bob");
  h.Executor(kA, s2, "7", "ann");
  h.Executor(kA, s2, "8", "ann");
  h.Executor(kA, s1, "9", "bob");
  // Company B's item 7 of an owner also called ann: not A's.
  const std::string b_seq = h.CreateSequence(kB, "create-1");
  h.Executor(kB, b_seq, "7", "ann");

  CHECK(Drain(*item).changes ==
        std::vector<std::string>{"ENROLLED acme/deal/7", "ENROLLED acme/deal/7"});
  CHECK(Drain(*owner).changes ==
        std::vector<std::string>{"ENROLLED acme/deal/7", "ENROLLED acme/deal/8"});
}

TEST_CASE(
    "given a watch request, when it names no filter, two filters, another company's sequence or "
    "a token of another company or filter, then it is refused naming the field") {
  Harness h;
  const std::string seq = h.CreateSequence(kA, "create-1");
  const std::string b_seq = h.CreateSequence(kB, "create-1");
  h.Executor(kA, seq, "1", "o1");
  std::unique_ptr<WatchStream> w = MustWatch(h, kA, BySequence(seq));
  h.Executor(kA, seq, "2", "o1");
  const std::string a_token = Drain(*w).last_token;
  REQUIRE_FALSE(a_token.empty());

  v1::WatchEnrollmentsRequest none;
  none.set_parent("companies/acme");
  absl::Status s = h.api.WatchEnrollments(As(kA), none).status();
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK(Fields(s) == std::vector<std::string>{"sequence"});

  v1::WatchEnrollmentsRequest two = BySequence(seq);
  two.set_owner_id("o1");
  s = h.api.WatchEnrollments(As(kA), two).status();
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK(Fields(s) == std::vector<std::string>{"owner_id"});

  v1::WatchEnrollmentsRequest half_item;
  half_item.set_parent("companies/acme");
  half_item.set_item_id("1");
  s = h.api.WatchEnrollments(As(kA), half_item).status();
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK(Fields(s) == std::vector<std::string>{"entity_kind"});

  // B: A's sequence, A's company, A's token on B's own sequence.
  CHECK(h.api.WatchEnrollments(As(kB), BySequence(seq)).status().code() ==
        absl::StatusCode::kNotFound);
  v1::WatchEnrollmentsRequest a_owner;
  a_owner.set_parent("companies/acme");
  a_owner.set_owner_id("o1");
  CHECK(h.api.WatchEnrollments(As(kB), a_owner).status().code() == absl::StatusCode::kNotFound);
  s = h.api.WatchEnrollments(As(kB), BySequence(b_seq, a_token)).status();
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK(Fields(s) == std::vector<std::string>{"resume_token"});
  // A's token for another filter of A.
  v1::WatchEnrollmentsRequest other_filter = a_owner;
  other_filter.set_resume_token(a_token);
  s = h.api.WatchEnrollments(As(kA), other_filter).status();
  CHECK(Fields(s) == std::vector<std::string>{"resume_token"});
  // A forged body (the token's text changed) does not verify.
  std::string forged = a_token;
  forged[forged.size() / 3] = forged[forged.size() / 3] == 'A' ? 'B' : 'A';
  s = h.api.WatchEnrollments(As(kA), BySequence(seq, forged)).status();
  CHECK(Fields(s) == std::vector<std::string>{"resume_token"});
}

TEST_CASE(
    "given a token further behind than the retained change history, when resumed, then "
    "FAILED_PRECONDITION, and within it every later change") {
  Harness h(testing::TempDir("watch-unit") + "/db", /*history=*/4);
  const std::string seq = h.CreateSequence(kA, "create-1");
  std::unique_ptr<WatchStream> w = MustWatch(h, kA, BySequence(seq));
  h.Executor(kA, seq, "1", "o1");
  const std::string token = Drain(*w).last_token;
  w.reset();
  h.Executor(kA, seq, "1b", "o1");  // 1 record later: still retained
  std::unique_ptr<WatchStream> near = MustWatch(h, kA, BySequence(seq, token));
  CHECK(Drain(*near).changes.size() == 1);
  near.reset();
  // Many records on each partition later, the change after the token is pruned.
  for (int i = 0; i < 20; ++i) {
    h.Executor(kA, seq, absl::StrCat("p0-", i), "o1", 1);
  }
  absl::Status s = h.api.WatchEnrollments(As(kA), BySequence(seq, token)).status();
  INFO(s.ToString());
  CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
}

TEST_CASE(
    "given a watcher that reads slower than changes come, when its queue overflows, then its "
    "stream ends RESOURCE_EXHAUSTED, the others go on, and it resumes from its last token") {
  Harness h(testing::TempDir("watch-unit") + "/db", 1000, /*queue=*/3);
  const std::string seq = h.CreateSequence(kA, "create-1");
  std::unique_ptr<WatchStream> slow = MustWatch(h, kA, BySequence(seq));
  v1::WatchEnrollmentsRequest by_owner;
  by_owner.set_parent("companies/acme");
  by_owner.set_owner_id("other-owner");
  std::unique_ptr<WatchStream> unaffected = MustWatch(h, kA, by_owner);
  h.Executor(kA, seq, "1", "o1");
  absl::StatusOr<std::optional<v1::WatchEnrollmentsResponse>> first = slow->TryNext();
  REQUIRE(first.ok());
  REQUIRE(first->has_value());
  // Five more while the slow watcher reads nothing: the publisher does not wait for it.
  h.Executor(kA, seq, "2", "o1", 4);
  const Drained d = Drain(*slow);
  CHECK(d.end.code() == absl::StatusCode::kResourceExhausted);
  CHECK(Drain(*unaffected).end.ok());
  CHECK(h.read_model->watch_hub().subscribers() == 1);
  std::unique_ptr<WatchStream> resumed =
      MustWatch(h, kA, BySequence(seq, (*first)->resume_token()));
  CHECK(Drain(*resumed).changes ==
        std::vector<std::string>{"ENROLLED acme/deal/2", "PAUSED acme/deal/2",
                                 "RESUMED acme/deal/2", "PAUSED acme/deal/2",
                                 "RESUMED acme/deal/2"});
}

TEST_CASE(
    "given a company with its most watches open, when it opens one more, then RESOURCE_EXHAUSTED, "
    "while another company still watches and a closed watch frees its place") {
  Harness h(testing::TempDir("watch-unit") + "/db", 1000, 1000, /*max_watches=*/2);
  const std::string seq = h.CreateSequence(kA, "create-1");
  const std::string b_seq = h.CreateSequence(kB, "create-1");
  std::unique_ptr<WatchStream> one = MustWatch(h, kA, BySequence(seq));
  std::unique_ptr<WatchStream> two = MustWatch(h, kA, BySequence(seq));
  CHECK(h.api.WatchEnrollments(As(kA), BySequence(seq)).status().code() ==
        absl::StatusCode::kResourceExhausted);
  std::unique_ptr<WatchStream> other = MustWatch(h, kB, BySequence(b_seq));
  one.reset();
  CHECK(h.api.WatchEnrollments(As(kA), BySequence(seq)).ok());
}

TEST_CASE("given open watches, when the hub closes for shutdown, then each ends UNAVAILABLE") {
  Harness h;
  const std::string seq = h.CreateSequence(kA, "create-1");
  std::unique_ptr<WatchStream> w = MustWatch(h, kA, BySequence(seq));
  int woken = 0;
  w->subscription().SetWaker([&woken] { ++woken; });
  h.read_model->watch_hub().Close();
  CHECK(woken == 1);
  absl::StatusOr<std::optional<v1::WatchEnrollmentsResponse>> m =
      w->Next(absl::Now() + absl::Seconds(5));
  CHECK(m.status().code() == absl::StatusCode::kUnavailable);
  // A watch started after the close ends at once too.
  std::unique_ptr<WatchStream> late = MustWatch(h, kA, BySequence(seq));
  CHECK(late->TryNext().status().code() == absl::StatusCode::kUnavailable);
}

TEST_CASE("given resume tokens, the cursor text round-trips and garbage is refused") {
  const WatchCursor c = {{0, 17}, {2, 5}};
  absl::StatusOr<WatchCursor> back = DecodeWatchCursor(EncodeWatchCursor(c));
  REQUIRE(back.ok());
  CHECK(*back == c);
  for (const char* bad : {"x", "1", "1:", ":2", "1:-3", "0:1,0:2", "1:2;3:4"}) {
    INFO(bad);
    CHECK(DecodeWatchCursor(bad).status().code() == absl::StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace sequences::api
