// Determinism as a property: a random (seeded) history of every input kind the executor takes on
// enrollment-events and sequence-events runs through a real executor against the real broker;
// then `step-executor replay` rebuilds the live state (same digest) and `replay --dry_run`
// decides every recorded decision again with none differing.
//
// SEQUENCES_DETERMINISM_SEED replays one history (the seed is printed on every run, and in the
// failure message); SEQUENCES_DETERMINISM_ITEMS sets how many inputs are published (default 45).
// Every delay is 0 (fires at once) or at least 30 minutes (never within the test), so nothing
// waits a real minute.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <iostream>
#include <random>
#include <regex>

#include "absl/strings/escaping.h"
#include "libs/domain/envelope.h"
#include "libs/domain/send_limits.h"
#include "services/step-executor/state.h"
#include "tests/e2e/executor/harness.h"

namespace sequences::executor::e2e {
namespace {

using namespace sequences::executor::testing;

// The input_lag of the executor's last metrics line, -1 before the first.
int64_t LastInputLag(const std::string& log) {
  const size_t at = log.rfind("\"msg\":\"metrics\"");
  if (at == std::string::npos) return -1;
  std::smatch m;
  std::string tail = log.substr(at);
  if (std::regex_search(tail, m, std::regex("\"input_lag\":\"?([0-9]+)"))) return std::stoll(m[1]);
  return -1;
}

// The inputs a history is made of; each is published at least once.
enum class Kind {
  kEnroll,
  kEnrollAgain,  // same request id, a new event: idempotent
  kPauseItem,
  kResumeItem,
  kPauseOwner,
  kResumeOwner,
  kRetry,
  kActivityCompleted,
  kMergeData,
  kRemove,
  kOutcome,
  kReplied,
  kBounced,
  kReplaceSteps,
  kChangeSettings,
  kSequencePause,
  kSequenceResume,
  kSequenceDelete,
  kAutomatedSending,
  kConsent,
  kSendingSettings,  // the company's send limits and minimum gap: emails wait in the stages
  kCount,
};

constexpr const char* kKindNames[] = {
    "enroll",          "enroll_again",    "pause_item",      "resume_item",    "pause_owner",
    "resume_owner",    "retry",           "activity_done",   "merge_data",     "remove",
    "outcome",         "replied",         "bounced",         "replace_steps",  "change_settings",
    "sequence_pause",  "sequence_resume", "sequence_delete", "automated_send", "consent",
    "sending_settings"};
static_assert(sizeof(kKindNames) / sizeof(kKindNames[0]) == static_cast<size_t>(Kind::kCount));

// Relative weights of the random part of a history.
constexpr int kWeights[] = {18, 2, 5, 5, 2, 3, 6, 12, 2, 2, 2, 2, 2, 4, 3, 2, 3, 0, 2, 3, 2};
static_assert(sizeof(kWeights) / sizeof(kWeights[0]) == static_cast<size_t>(Kind::kCount));

// Steps with stable ids; an edit takes a random subset in random order with random delays.
// Delays are 0 (due at once) or 30/60 minutes (due long after the test).
std::vector<v1::Step> StepPool() {
  return {ActivityStep("call", 0, /*wait=*/true),
          EmailStep("auto", 0, true),
          ActivityStep("note", 0),
          EmailStep("draft", 0, false),
          ActivityStep("later", 30),
          ActivityStep("wait2", 0, /*wait=*/true),
          EmailStep("auto2", 0, true, "Re: {{person.first_name}}", "Hi {{deal.title}}")};
}

class History {
 public:
  History(World& w, uint32_t seed, int items)
      : w_(w), rng_(seed), items_(items), reader_({w.topics().executor_events}) {
    auto producer = kafka::Producer::Create({.client = Client(w.bootstrap())});
    REQUIRE(producer.ok());
    producer_ = std::move(*producer);
  }

  // Four sequences: one that can send automatically, one whose switch is off, one without
  // consent; so automatic emails both fire and fail (and failures can be retried); and one that
  // sends an automatic email at once, so emails reach the send-limit and gap stages often.
  void CreateSequences() {
    const absl::Time now = absl::Now();
    for (int i = 0; i < 4; ++i) {
      seqs_.emplace_back("c1", absl::StrCat("s-det-", i));
      std::vector<v1::Envelope> events = seqs_.back().Create(
          i == 3 ? std::vector<v1::Step>{EmailStep("auto", 0, true), ActivityStep("later", 30)}
                 : std::vector<v1::Step>{ActivityStep("call", 0, true), EmailStep("auto", 0, true),
                                         ActivityStep("note", 0), ActivityStep("later", 30)},
          now);
      if (i != 1) Append(events, seqs_.back().AutomatedSending(true, now));
      if (i != 2) Append(events, seqs_.back().Consent("owner-1", true, now));
      w_.PublishSequence(events);
    }
    deleted_.assign(seqs_.size(), false);
  }

  void Run(int n) {
    // Enrollments first, then one of every kind and a random rest, in random order.
    std::vector<Kind> kinds;
    for (int k = 0; k < static_cast<int>(Kind::kCount); ++k) kinds.push_back(static_cast<Kind>(k));
    std::discrete_distribution<int> pick(std::begin(kWeights), std::end(kWeights));
    while (static_cast<int>(kinds.size()) < n - 6) kinds.push_back(static_cast<Kind>(pick(rng_)));
    std::shuffle(kinds.begin(), kinds.end(), rng_);
    // The deletion of a sequence comes late, so the rest of the history still uses the others.
    auto del = std::find(kinds.begin(), kinds.end(), Kind::kSequenceDelete);
    std::rotate(del, del + 1, kinds.end() - std::min<size_t>(3, kinds.end() - del - 1));
    for (int i = 0; i < 6; ++i) kinds.insert(kinds.begin(), Kind::kEnroll);
    kinds.insert(kinds.begin(), Kind::kSendingSettings);  // limits from the first email on
    for (Kind k : kinds) {
      Publish(k);
      ++counts_[static_cast<int>(k)];
      // Let the executor act in between (and learn task ids and failures from its events).
      reader_.Poll(absl::Milliseconds(std::uniform_int_distribution<int>(0, 150)(rng_)));
    }
  }

  std::string Counts() const {
    std::string s;
    for (int k = 0; k < static_cast<int>(Kind::kCount); ++k) {
      absl::StrAppend(&s, s.empty() ? "" : " ", kKindNames[k], "=", counts_[k]);
    }
    return s;
  }
  Reader& reader() { return reader_; }

 private:
  static void Append(std::vector<v1::Envelope>& to, const std::vector<v1::Envelope>& more) {
    to.insert(to.end(), more.begin(), more.end());
  }
  int Rand(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  bool Coin() { return Rand(2) == 0; }
  std::string Item() { return absl::StrCat("c1/deal/", Rand(items_)); }
  int Seq() { return Rand(static_cast<int>(seqs_.size())); }
  v1::Envelope In(const std::string& what) {
    return Input(absl::StrCat("det-", ++n_, "-", what), absl::Now());
  }
  void Send(const std::string& key, const v1::Envelope& e) {
    w_.Publish(w_.topics().enrollment_events, key, e);
  }
  void SendSequence(int s, const std::vector<v1::Envelope>& events) {
    if (!deleted_[s]) w_.PublishSequence(events);
  }
  // Owner-wide inputs go once to every partition.
  void SendEveryPartition(const v1::Envelope& e) {
    for (int p = 0; p < kPartitions; ++p) {
      kafka::Record r{w_.topics().enrollment_events, absl::StrCat("owner-key-", p),
                      e.SerializeAsString()};
      r.partition = p;
      REQUIRE(producer_->Send(r).ok());
    }
  }
  void Target(v1::ItemInSequence* t, const std::string& item, int s) {
    t->set_item_key(item);
    t->set_sequence_id(seqs_[s].id());
  }
  // An (item, sequence) the executor's events name (failed, waiting, ...), else a random one.
  template <typename Has>
  std::pair<std::string, int> SeenOr(Has has, std::string* task_id = nullptr) {
    std::vector<const v1::Envelope*> found;
    for (const Seen& s : reader_.seen()) {
      // A task already completed once is still picked now and then (a stale completion).
      if (has(s.event) &&
          (!s.event.has_waiting_for_activity() ||
           !completed_.contains(s.event.waiting_for_activity().task_id()) || Rand(5) == 0)) {
        found.push_back(&s.event);
      }
    }
    if (found.empty() || Rand(5) == 0) return {Item(), Seq()};
    const v1::Envelope* e = found[Rand(static_cast<int>(found.size()))];
    const v1::EnrollmentRef& ref =
        e->has_enrollment_failed() ? e->enrollment_failed().ref() : e->waiting_for_activity().ref();
    if (task_id != nullptr && e->has_waiting_for_activity()) {
      *task_id = e->waiting_for_activity().task_id();
    }
    for (size_t s = 0; s < seqs_.size(); ++s) {
      if (seqs_[s].id() == ref.sequence_id()) return {ref.item_key(), static_cast<int>(s)};
    }
    return {Item(), Seq()};
  }

  void Publish(Kind kind) {
    const absl::Time now = absl::Now();
    switch (kind) {
      case Kind::kEnroll:
      case Kind::kEnrollAgain: {
        const std::string item = Item();
        const int s = Seq();
        v1::Envelope e = Enroll(item, seqs_[s].id(), seqs_[s].state().version, now,
                                Rand(4) == 0 ? "" : "Ada");  // no name: an auto email fails
        e.set_event_id(absl::StrCat("det-", ++n_, "-enroll"));
        // A new request, or (enroll again) the last one for this item and sequence once more.
        std::string& request = requests_[absl::StrCat(item, "#", s)];
        if (kind == Kind::kEnroll || request.empty()) request = absl::StrCat("req-", n_);
        e.mutable_enroll_requested()->set_request_id(request);
        if (Rand(3) == 0) e.mutable_enroll_requested()->set_owner_id("owner-2");
        if (Rand(4) == 0)
          e.mutable_enroll_requested()->mutable_time_zones()->set_recipient(
              Coin() ? "America/New_York" : "Asia/Kolkata");
        Send(item, e);
        break;
      }
      case Kind::kPauseItem:
      case Kind::kResumeItem: {
        const std::string item = Item();
        const int s = Seq();
        v1::Envelope e = In("pause-item");
        v1::EnrollmentTarget* t = kind == Kind::kPauseItem
                                      ? e.mutable_pause_requested()->mutable_target()
                                      : e.mutable_resume_requested()->mutable_target();
        Target(t->mutable_item_in_sequence(), item, s);
        Send(item, e);
        break;
      }
      case Kind::kPauseOwner:
      case Kind::kResumeOwner: {
        v1::Envelope e = In("pause-owner");
        const std::string owner = Coin() ? "owner-1" : "owner-2";
        if (kind == Kind::kPauseOwner) {
          e.mutable_pause_requested()->mutable_target()->set_owner_id(owner);
        } else {
          e.mutable_resume_requested()->mutable_target()->set_owner_id(owner);
        }
        SendEveryPartition(e);
        break;
      }
      case Kind::kRetry: {
        auto [item, s] = SeenOr([](const v1::Envelope& e) { return e.has_enrollment_failed(); });
        v1::Envelope e = In("retry");
        Target(e.mutable_retry_requested()->mutable_target(), item, s);
        Send(item, e);
        break;
      }
      case Kind::kActivityCompleted: {
        std::string task_id = "no-such-task";
        auto [item, s] =
            SeenOr([](const v1::Envelope& e) { return e.has_waiting_for_activity(); }, &task_id);
        completed_.insert(task_id);
        v1::Envelope e = In("done");
        v1::ActivityCompleted* a = e.mutable_activity_completed();
        a->set_task_id(task_id);
        a->set_item_key(item);
        a->set_sequence_id(seqs_[s].id());
        // Completed a little earlier, with the task service's nanoseconds.
        *a->mutable_completed_at() = domain::ToProto(now - absl::Milliseconds(Rand(2000)) +
                                                     absl::Nanoseconds(1 + Rand(999999)));
        Send(item, e);
        break;
      }
      case Kind::kMergeData: {
        const std::string item = Item();
        v1::Envelope e = In("merge");
        e.mutable_merge_data_updated()->set_item_key(item);
        if (Coin()) e.mutable_merge_data_updated()->set_sequence_id(seqs_[Seq()].id());
        (*e.mutable_merge_data_updated()->mutable_merge_data())["person.first_name"] =
            Coin() ? "Grace" : "Ada";
        (*e.mutable_merge_data_updated()->mutable_merge_data())["deal.title"] = "Big deal";
        Send(item, e);
        break;
      }
      case Kind::kRemove: {
        const std::string item = Item();
        v1::Envelope e = In("remove");
        Target(e.mutable_remove_requested()->mutable_target(), item, Seq());
        Send(item, e);
        break;
      }
      case Kind::kOutcome: {
        const std::string item = Item();
        v1::Envelope e = In("outcome");
        e.mutable_item_outcome()->set_item_key(item);
        e.mutable_item_outcome()->set_kind(static_cast<v1::ItemOutcomeKind>(1 + Rand(4)));
        Send(item, e);
        break;
      }
      case Kind::kReplied:
      case Kind::kBounced: {
        const std::string item = Item();
        const std::string seq = Coin() ? seqs_[Seq()].id() : "";
        v1::Envelope e = In(kind == Kind::kReplied ? "replied" : "bounced");
        if (kind == Kind::kReplied) {
          e.mutable_email_replied()->set_item_key(item);
          e.mutable_email_replied()->set_sequence_id(seq);
        } else {
          e.mutable_email_bounced()->set_item_key(item);
          e.mutable_email_bounced()->set_sequence_id(seq);
          e.mutable_email_bounced()->set_detail("550 mailbox unavailable");
        }
        Send(item, e);
        break;
      }
      case Kind::kReplaceSteps: {
        const int s = Seq();
        std::vector<v1::Step> pool = StepPool();
        std::shuffle(pool.begin(), pool.end(), rng_);
        pool.resize(1 + Rand(static_cast<int>(pool.size())));
        for (v1::Step& step : pool) {
          if (Rand(4) == 0) step.mutable_delay()->set_amount(step.delay().amount() == 0 ? 60 : 0);
        }
        v1::SequenceCommand c;
        for (const v1::Step& step : pool) *c.mutable_replace_steps()->add_steps() = step;
        if (!deleted_[s]) SendSequence(s, seqs_[s].Run(c, now));
        break;
      }
      case Kind::kChangeSettings: {
        const int s = Seq();
        v1::SequenceCommand c;
        v1::SequenceSettings* st = c.mutable_change_settings()->mutable_settings();
        st->set_reenrollment(v1::REENROLLMENT_RULE_WHEN_NOT_ACTIVE);
        st->set_default_time_zone(Coin() ? "UTC" : "Europe/Berlin");
        const absl::CivilHour hour = absl::ToCivilHour(now, absl::UTCTimeZone());
        switch (Rand(4)) {
          case 0:  // always open
            break;
          case 1:  // a window that is open now: every day, all day
            for (int d = 1; d <= 7; ++d) {
              v1::WindowRange* r = st->mutable_send_window()->add_ranges();
              r->set_weekday(static_cast<v1::Weekday>(d));
              r->mutable_start()->set_hours(0);
              r->mutable_end()->set_hours(24);
            }
            break;
          case 2: {  // a window that is closed now (UTC): steps move hours ahead
            st->set_default_time_zone("UTC");
            const int start = (hour.hour() + 3) % 24;
            for (int d = 1; d <= 7; ++d) {
              v1::WindowRange* r = st->mutable_send_window()->add_ranges();
              r->set_weekday(static_cast<v1::Weekday>(d));
              r->mutable_start()->set_hours(start);
              r->mutable_end()->set_hours(std::min(start + 2, 24));
            }
            break;
          }
          default: {  // today is a holiday: steps move to tomorrow
            v1::Date* h = st->add_holidays();
            h->set_year(static_cast<int32_t>(hour.year()));
            h->set_month(hour.month());
            h->set_day(hour.day());
            break;
          }
        }
        if (!deleted_[s]) SendSequence(s, seqs_[s].Run(c, now));
        break;
      }
      case Kind::kSequencePause: {
        const int s = Seq();
        if (!deleted_[s]) SendSequence(s, seqs_[s].Pause(now));
        break;
      }
      case Kind::kSequenceResume: {
        const int s = Seq();
        if (!deleted_[s]) SendSequence(s, seqs_[s].Resume(now));
        break;
      }
      case Kind::kSequenceDelete: {
        const int s = Seq();
        if (!deleted_[s]) {
          SendSequence(s, seqs_[s].Delete(now));
          deleted_[s] = true;
        }
        break;
      }
      case Kind::kAutomatedSending: {
        const int s = Seq();
        if (!deleted_[s]) {
          SendSequence(s, seqs_[s].AutomatedSending(!seqs_[s].state().automated_sending, now));
        }
        break;
      }
      case Kind::kConsent: {
        const int s = Seq();
        if (!deleted_[s]) {
          SendSequence(s, seqs_[s].Consent(Coin() ? "owner-1" : "owner-2", Rand(3) != 0, now));
        }
        break;
      }
      case Kind::kSendingSettings: {
        // Every enrollment emails the same person (ada@example.com) from one sender, so a small
        // limit queues emails at the sender stage and a gap serializes them at the person stage
        // (docs/send-limits.md, docs/min-gap.md); a gap of 0 sends new emails past it again.
        v1::Envelope e =
            domain::MakeEnvelope(absl::StrCat("det-", ++n_, "-sending"), "c1", now, "", "sending");
        v1::CompanySendingSettingsChanged* c = e.mutable_company_sending_settings_changed();
        c->set_company_id("c1");
        c->set_version(++settings_version_);
        c->mutable_settings()->set_daily_limit_per_sender(1 + Rand(3));
        c->mutable_settings()->set_hourly_limit_per_sender(Rand(2));
        c->mutable_settings()->set_time_zone(Coin() ? "UTC" : "Asia/Kolkata");
        const int64_t gaps[] = {0, 20, 86400};  // off, a gap that ends during the test, a day
        c->mutable_settings()->set_min_gap_between_emails_seconds(gaps[Rand(3)]);
        w_.Publish(w_.topics().sequence_events, domain::CompanySettingsKey("c1"), e);
        break;
      }
      case Kind::kCount:
        break;
    }
  }

  World& w_;
  std::mt19937 rng_;
  int items_;
  Reader reader_;
  std::unique_ptr<kafka::Producer> producer_;
  std::vector<SequenceBuilder> seqs_;
  std::vector<bool> deleted_;
  std::map<std::string, std::string> requests_;  // item#sequence -> last request id
  std::set<std::string> completed_;              // task ids completed
  int n_ = 0;
  int64_t settings_version_ = 0;
  int counts_[static_cast<int>(Kind::kCount)] = {};
};

// Every key and value of one column family of the store in `dir`, in key order.
std::vector<std::string> ColumnFamily(const std::string& dir, const char* cf) {
  auto store = StateStore::Open(dir);
  INFO(dir << ": " << store.status().ToString());
  REQUIRE(store.ok());
  std::vector<std::string> out;
  REQUIRE((*store)
              ->raw()
              .Scan(cf, "", "",
                    [&](absl::string_view k, absl::string_view v) {
                      out.push_back(absl::StrCat(absl::CHexEscape(k), "=", absl::CHexEscape(v)));
                      return true;
                    })
              .ok());
  return out;
}

TEST_CASE(
    "Given a random history of every input kind run through the executor, when it is replayed "
    "from the log, then the replay's digest is the live one and --dry_run decides every "
    "recorded decision again with none differing") {
  const uint32_t seed = static_cast<uint32_t>(
      EnvInt("SEQUENCES_DETERMINISM_SEED", static_cast<int>(std::random_device{}() & 0x7fffffff)));
  const int inputs = std::max(EnvInt("SEQUENCES_DETERMINISM_ITEMS", 45), 30);
  std::cout << "determinism: SEQUENCES_DETERMINISM_SEED=" << seed
            << " SEQUENCES_DETERMINISM_ITEMS=" << inputs << std::endl;
  INFO("SEQUENCES_DETERMINISM_SEED=" << seed << " SEQUENCES_DETERMINISM_ITEMS=" << inputs);

  World w;
  History history(w, seed, /*items=*/8);
  history.CreateSequences();
  auto exec = w.StartExecutor("a", {"--metrics_interval=300ms"});
  history.Run(inputs);
  INFO("published: " << history.Counts());
  std::cout << "determinism: published " << history.Counts() << std::endl;

  // Idle: every input consumed (lag 0 after the last publish) and no executor event for a while
  // (every step still pending is due at least 30 minutes or a window/holiday away).
  const absl::Time published = absl::Now();
  size_t events = 0;
  absl::Time quiet_since = absl::Now();
  const bool idle = history.reader().PollUntil(
      [&] {
        if (history.reader().seen().size() != events) {
          events = history.reader().seen().size();
          quiet_since = absl::Now();
        }
        return absl::Now() - published > absl::Seconds(1) && LastInputLag(exec->Log()) == 0 &&
               absl::Now() - quiet_since > absl::Seconds(3);
      },
      absl::Seconds(60));
  INFO("executor log: " << exec->Log().substr(exec->Log().size() > 4000 ? exec->Log().size() - 4000
                                                                        : 0));
  REQUIRE(idle);
  int ledger = 0, deferred = 0, released = 0;
  for (const Seen& s : history.reader().seen()) {
    deferred += s.event.has_email_deferred() ? 1 : 0;
    released += s.event.has_email_released() ? 1 : 0;
    ledger += s.event.has_send_ledger_entry() ? 1 : 0;
  }
  std::cout << "determinism: sender/person ledger entries " << ledger << ", emails deferred "
            << deferred << ", released after waiting " << released << std::endl;
  REQUIRE(exec->Terminate() == 0);
  const std::string live = DigestIn(exec->Log(), "\"msg\":\"stopped\"");
  REQUIRE(!live.empty());

  for (bool dry_run : {false, true}) {
    const std::string dir = w.DataDir(dry_run ? "replay-dry" : "replay");
    auto replay = ChildProcess::Start(
        {ServiceBinary("step-executor"), "replay", "--bootstrap_servers=" + w.bootstrap(),
         "--topic_prefix=" + w.prefix(), "--from=beginning", "--data_dir=" + dir,
         dry_run ? "--dry_run" : "--nodry_run"},
        dir + ".log");
    REQUIRE(replay.ok());
    const absl::Time deadline = absl::Now() + absl::Seconds(90);
    while ((*replay)->Running() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(100));
    const int code = (*replay)->Terminate();  // already exited: its exit code
    const std::string log = (*replay)->Log();
    INFO("dry_run=" << dry_run << " replay output: " << log);
    CHECK(code == 0);
    CHECK(DigestIn(log, "{\"digest\"") == live);
    if (dry_run) {
      CHECK(log.find("\"decisions_differing\":0,") != std::string::npos);
      CHECK(log.find("\"decisions_checked\":0,") == std::string::npos);
      CHECK(log.find("\"inputs_undecodable\":0") != std::string::npos);
    }
  }
  // The digest covers the records; the indexes the live instance scans (due times, enrollments
  // of a sequence) are rebuilt as the live instance left them too. An owner's index may hold
  // more keys live (an enrollment whose owner changed keeps its earlier owner's key).
  for (const char* cf : {kDueCf, kBySequenceCf}) {
    INFO(cf);
    CHECK(ColumnFamily(w.DataDir("replay"), cf) == ColumnFamily(w.DataDir("a"), cf));
  }
  const std::vector<std::string> live_owners = ColumnFamily(w.DataDir("a"), kByOwnerCf);
  for (const std::string& key : ColumnFamily(w.DataDir("replay"), kByOwnerCf)) {
    INFO(key);
    CHECK(std::find(live_owners.begin(), live_owners.end(), key) != live_owners.end());
  }
}

}  // namespace
}  // namespace sequences::executor::e2e
