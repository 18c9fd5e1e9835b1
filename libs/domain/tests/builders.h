#ifndef SEQUENCES_LIBS_DOMAIN_TESTS_BUILDERS_H_
#define SEQUENCES_LIBS_DOMAIN_TESTS_BUILDERS_H_

// Small builders shared by the domain tests.

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "libs/domain/enrollment.h"
#include "libs/domain/envelope.h"
#include "libs/domain/schedule.h"
#include "libs/domain/sequence.h"
#include "sequences/v1/events.pb.h"

namespace sequences::domain::testing {

inline absl::TimeZone Zone(const std::string& name) {
  absl::TimeZone tz;
  if (!absl::LoadTimeZone(name, &tz)) throw std::runtime_error("no zone " + name);
  return tz;
}

// A send window of Monday to Friday, 9:00 to 17:00 in `zone`.
inline Calendar NineToFive(const std::string& zone) {
  Calendar c;
  c.tz = Zone(zone);
  for (int d = v1::WEEKDAY_MONDAY; d <= v1::WEEKDAY_FRIDAY; ++d) {
    v1::WindowRange* r = c.window.add_ranges();
    r->set_weekday(static_cast<v1::Weekday>(d));
    r->mutable_start()->set_hours(9);
    r->mutable_end()->set_hours(17);
  }
  return c;
}

// A local civil time in `zone` as an instant (unique local times only).
inline absl::Time Local(const std::string& zone, int y, int mo, int d, int h = 0, int mi = 0) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, 0), Zone(zone));
}

inline absl::Time Utc(int y, int mo, int d, int h = 0, int mi = 0) {
  return Local("UTC", y, mo, d, h, mi);
}

inline v1::Step ActivityStep(const std::string& id, v1::DelayUnit unit, int amount,
                             bool wait = false) {
  v1::Step s;
  s.set_id(id);
  s.mutable_delay()->set_unit(unit);
  s.mutable_delay()->set_amount(amount);
  s.mutable_activity()->set_activity_type("call");
  s.mutable_activity()->set_subject(absl::StrCat("Call for ", id));
  s.mutable_activity()->mutable_assignee()->set_item_owner(true);
  s.mutable_activity()->set_priority(v1::PRIORITY_HIGH);
  s.mutable_activity()->set_wait_for_completion(wait);
  return s;
}

inline v1::Step EmailStep(const std::string& id, v1::DelayUnit unit, int amount, bool automatic,
                          const std::string& subject = "Hello {{person.first_name}}",
                          const std::string& body = "Hi {{person.first_name | \"there\"}}") {
  v1::Step s;
  s.set_id(id);
  s.mutable_delay()->set_unit(unit);
  s.mutable_delay()->set_amount(amount);
  s.mutable_email()->mutable_sender()->set_item_owner(true);
  s.mutable_email()->set_subject(subject);
  s.mutable_email()->set_body(body);
  s.mutable_email()->set_send_automatically(automatic);
  return s;
}

// A draft email step whose text comes from two A/B variants, "a" and "b", of equal weight.
inline v1::Step DraftAbStep(const std::string& id, v1::DelayUnit unit, int amount) {
  v1::Step s = EmailStep(id, unit, amount, /*automatic=*/false, "", "");
  for (const char* v : {"a", "b"}) {
    v1::EmailVariant* variant = s.mutable_email()->add_variants();
    variant->set_id(v);
    variant->set_weight(1);
    variant->set_subject(absl::StrCat("Subject ", v));
    variant->set_body("Body");
  }
  return s;
}

inline v1::SequenceCommand Command(const std::string& sequence_id, int64_t expected = 0) {
  v1::SequenceCommand c;
  c.set_company_id("c1");
  c.set_sequence_id(sequence_id);
  c.set_expected_version(expected);
  c.set_request_id("req");
  c.set_actor_user_id("u1");
  return c;
}

inline v1::SequenceCommand CreateCommand(const std::string& sequence_id,
                                         const std::vector<v1::Step>& steps,
                                         v1::EntityKind kind = v1::ENTITY_KIND_DEAL) {
  v1::SequenceCommand c = Command(sequence_id);
  c.mutable_create()->set_name("Follow up");
  c.mutable_create()->set_owner_id("u1");
  c.mutable_create()->set_entity_kind(kind);
  for (const v1::Step& s : steps) *c.mutable_create()->add_steps() = s;
  return c;
}

// Decides and folds; throws on error (tests only).
inline SequenceState Apply(SequenceState s, const v1::SequenceCommand& c, absl::Time now) {
  absl::StatusOr<std::vector<v1::Envelope>> events = DecideSequence(s, c, now);
  if (!events.ok()) throw std::runtime_error(std::string(events.status().message()));
  for (const v1::Envelope& e : *events) s = EvolveSequence(std::move(s), e);
  return s;
}

inline SequenceState MakeSequence(const std::vector<v1::Step>& steps, absl::Time now,
                                  const std::string& tz = "UTC") {
  v1::SequenceCommand c = CreateCommand("s1", steps);
  c.mutable_create()->mutable_settings()->set_default_time_zone(tz);
  return Apply(SequenceState{}, c, now);
}

inline int input_counter = 0;

inline v1::Envelope Input(const std::string& id = "") {
  return MakeEnvelope(id.empty() ? absl::StrCat("in-", ++input_counter) : id, "c1",
                      absl::UnixEpoch(), "", "corr");
}

inline v1::Envelope Enroll(const std::string& item_key = "c1/deal/42",
                           const std::string& request_id = "r1", const std::string& tz = "",
                           const std::string& sequence_id = "s1") {
  v1::Envelope e = Input();
  v1::EnrollRequested* r = e.mutable_enroll_requested();
  r->set_request_id(request_id);
  r->set_sequence_id(sequence_id);
  r->set_item_key(item_key);
  r->set_owner_id("owner-1");
  r->mutable_recipient()->set_email("ada@example.com");
  r->mutable_recipient()->set_name("Ada");
  r->mutable_time_zones()->set_recipient(tz);
  (*r->mutable_merge_data())["person.first_name"] = "Ada";
  return e;
}

inline EnrollmentState Fold(EnrollmentState s, const Decision& d) {
  for (const v1::Envelope& e : d.executor_events) s = EvolveEnrollment(std::move(s), e);
  return s;
}

inline Decision Must(absl::StatusOr<Decision> d) {
  if (!d.ok()) throw std::runtime_error(std::string(d.status().message()));
  return *std::move(d);
}

}  // namespace sequences::domain::testing

#endif  // SEQUENCES_LIBS_DOMAIN_TESTS_BUILDERS_H_
