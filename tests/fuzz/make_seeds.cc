// Writes the seed corpora of the fuzz targets: a few valid inputs each, so the fuzzers start from
// real requests, events, tokens and templates. `tests/fuzz/run.sh seeds` runs it into
// tests/fuzz/corpus/<target>/ (committed). Deterministic: the same build writes the same files.
//
//   fuzz_make_seeds <corpus dir>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/domain/enrollment.h"
#include "libs/domain/envelope.h"
#include "libs/domain/templates.h"
#include "sequences/v1/enrollment_service.pb.h"
#include "sequences/v1/sequence_service.pb.h"
#include "services/sequence-api/names.h"
#include "services/sequence-api/tokens.h"
#include "tests/fuzz/checks.h"

namespace sequences::fuzz {
namespace {

namespace fs = std::filesystem;

void Write(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out << bytes;
  FUZZ_CHECK(out.good(), "cannot write " + (dir / name).string());
}

// A request seed: the selector byte of request_fuzzer.cc, then the message.
std::string Request(char kind, const google::protobuf::Message& m) {
  return std::string(1, kind) + SerializeDeterministic(m);
}

v1::Step Activity(const std::string& id, int days) {
  v1::Step s;
  s.set_id(id);
  s.mutable_delay()->set_unit(v1::DELAY_UNIT_BUSINESS_DAYS);
  s.mutable_delay()->set_amount(days);
  s.mutable_at_time()->set_hours(9);
  s.mutable_at_time()->set_minutes(30);
  s.mutable_activity()->set_activity_type("call");
  s.mutable_activity()->set_subject("Call {{person.first_name}}");
  s.mutable_activity()->mutable_assignee()->set_item_owner(true);
  s.mutable_activity()->set_wait_for_completion(true);
  return s;
}

v1::Step Email(const std::string& id, int hours) {
  v1::Step s;
  s.set_id(id);
  s.mutable_delay()->set_unit(v1::DELAY_UNIT_HOURS);
  s.mutable_delay()->set_amount(hours);
  s.mutable_email()->mutable_sender()->set_item_owner(true);
  s.mutable_email()->set_subject("Hello {{person.first_name | \"there\"}}");
  s.mutable_email()->set_body(
      "<p>Hi {{ person.first_name }}, about {{deal.title|\"your deal\"}}</p>");
  s.mutable_email()->set_send_automatically(true);
  return s;
}

v1::SequenceSettings Settings() {
  v1::SequenceSettings s;
  s.set_default_time_zone("Europe/Berlin");
  v1::WindowRange* r = s.mutable_send_window()->add_ranges();
  r->set_weekday(v1::WEEKDAY_MONDAY);
  r->mutable_start()->set_hours(8);
  r->mutable_end()->set_hours(18);
  v1::Date* d = s.add_holidays();
  d->set_year(2026);
  d->set_month(12);
  d->set_day(25);
  s.set_reenrollment(v1::REENROLLMENT_RULE_WHEN_NOT_ACTIVE);
  return s;
}

v1::EnrollItem Item(const std::string& id) {
  v1::EnrollItem item;
  item.set_entity_kind(v1::ENTITY_KIND_LEAD);
  item.set_item_id(id);
  item.set_request_id("enroll-" + id);
  item.mutable_recipient()->set_email("ada@example.com");
  item.mutable_recipient()->set_name("Ada");
  item.mutable_time_zones()->set_recipient("America/New_York");
  (*item.mutable_merge_data())["person.first_name"] = "Ada";
  (*item.mutable_merge_data())["deal.title"] = "Engines & <Co>";
  return item;
}

void RequestSeeds(const fs::path& dir) {
  v1::CreateSequenceRequest create;
  create.set_parent("companies/acme");
  create.set_request_id("create-1");
  create.mutable_sequence()->set_display_name("Follow-up");
  create.mutable_sequence()->set_entity_kind(v1::ENTITY_KIND_DEAL);
  *create.mutable_sequence()->add_steps() = Activity("call-1", 1);
  *create.mutable_sequence()->add_steps() = Email("mail-1", 2);
  *create.mutable_sequence()->mutable_settings() = Settings();
  Write(dir, "create", Request(0, create));
  v1::CreateSequenceRequest from_template;
  from_template.set_parent("companies/acme");
  from_template.set_request_id("create-2");
  from_template.set_template_id(domain::TemplateCatalog().front().id());
  Write(dir, "create_from_template", Request(0, from_template));

  v1::UpdateSequenceRequest update;
  update.mutable_sequence()->set_name("companies/acme/sequences/s1");
  update.mutable_sequence()->set_display_name("Renamed");
  *update.mutable_sequence()->add_steps() = Email("mail-1", 3);
  *update.mutable_sequence()->mutable_settings() = Settings();
  update.mutable_update_mask()->add_paths("steps");
  update.set_request_id("update-1");
  Write(dir, "update", Request(1, update));

  v1::EnrollRequest enroll;
  enroll.set_parent("companies/acme/sequences/s1");
  *enroll.mutable_item() = Item("42");
  Write(dir, "enroll", Request(2, enroll));
  v1::BatchEnrollRequest batch;
  batch.set_parent("companies/acme/sequences/s1");
  *batch.add_items() = Item("43");
  *batch.add_items() = Item("44");
  Write(dir, "batch_enroll", Request(3, batch));

  v1::PreviewScheduleRequest preview;
  preview.set_name("companies/acme/sequences/s1");
  preview.set_time_zone("Asia/Kolkata");
  preview.mutable_start_time()->set_seconds(1767225600);
  *preview.add_proposed_steps() = Activity("call-0", 0);
  *preview.add_proposed_steps() = Email("mail-1", 26);
  preview.set_has_proposed_steps(true);
  Write(dir, "preview", Request(4, preview));

  v1::ListEnrollmentsRequest list;
  list.set_parent("companies/acme/sequences/s1");
  list.set_page_size(10);
  list.set_page_token("djIfbmV3H2tleQ.bWFj");
  Write(dir, "list_enrollments", Request(8, list));
}

void EnvelopeSeeds(const fs::path& dir) {
  const domain::SequenceState& live = LiveSequence();
  v1::Envelope enroll = domain::MakeEnvelope("e1", kCompany, Now(), "", "corr");
  v1::EnrollRequested* r = enroll.mutable_enroll_requested();
  r->set_request_id("r2");
  r->set_sequence_id(live.sequence_id);
  r->set_sequence_version(live.version);
  r->set_item_key("acme/lead/7");
  r->set_entity_kind(v1::ENTITY_KIND_LEAD);
  r->set_owner_id(kUser);
  r->mutable_recipient()->set_email("bo@example.com");
  (*r->mutable_merge_data())["person.first_name"] = "Bo";
  Write(dir, "enroll_requested", SerializeDeterministic(enroll));

  v1::Envelope pause = domain::MakeEnvelope("e2", kCompany, Now(), "", "");
  pause.mutable_pause_requested()->mutable_target()->set_owner_id(kUser);
  Write(dir, "pause_owner", SerializeDeterministic(pause));

  const domain::EnrollmentState& active = ActiveEnrollment();
  v1::Envelope remove = domain::MakeEnvelope("e3", kCompany, Now(), "", "");
  remove.mutable_remove_requested()->mutable_target()->set_item_key(active.item_key);
  remove.mutable_remove_requested()->mutable_target()->set_sequence_id(active.sequence_id);
  Write(dir, "remove_requested", SerializeDeterministic(remove));
  // A long item key that is not the record key (the correlation id stands in for it): the contract
  // check's reason, a dead-letter header, must stay short.
  v1::Envelope long_key = remove;
  long_key.mutable_remove_requested()->mutable_target()->set_item_key(
      absl::StrCat(kCompany, "/deal/", std::string(3000, 'x')));
  long_key.set_correlation_id("other-key");
  Write(dir, "remove_requested_long_key", SerializeDeterministic(long_key));

  // What the executor writes: the decision of the enroll request above, and a fired step.
  absl::StatusOr<domain::Decision> d =
      domain::DecideEnrollment(domain::EnrollmentState{}, enroll, live, Now());
  FUZZ_CHECK(d.ok(), "seed decision");
  int n = 0;
  domain::EnrollmentState state;
  for (const v1::Envelope& e : d->executor_events) {
    Write(dir, absl::StrCat("executor_", n++, "_", domain::PayloadName(e)),
          SerializeDeterministic(e));
    state = domain::EvolveEnrollment(std::move(state), e);
  }
  if (std::optional<absl::Time> due = domain::NextDueAt(state); due.has_value()) {
    absl::StatusOr<domain::Decision> fired = domain::DecideStepDue(state, *due, live, *due);
    FUZZ_CHECK(fired.ok(), "seed step due");
    for (const auto* list : {&fired->executor_events, &fired->task_events, &fired->email_events}) {
      for (const v1::Envelope& e : *list) {
        Write(dir, absl::StrCat("fired_", n++, "_", domain::PayloadName(e)),
              SerializeDeterministic(e));
      }
    }
  }
  // A sequence event: the live sequence's creation, decided again.
  v1::SequenceCommand create;
  create.set_company_id(kCompany);
  create.set_sequence_id("s2");
  create.set_request_id("c");
  create.set_actor_user_id(kUser);
  create.mutable_create()->set_template_id(domain::TemplateCatalog().back().id());
  create.mutable_create()->set_owner_id(kUser);
  absl::StatusOr<std::vector<v1::Envelope>> created =
      domain::DecideSequence(domain::SequenceState{}, create, Now());
  FUZZ_CHECK(created.ok() && !created->empty(), "seed sequence: " + created.status().ToString());
  Write(dir, "sequence_created", SerializeDeterministic(created->front()));
}

void TokenSeeds(const fs::path& dir) {
  // Same keys and purpose as tokens_fuzzer.cc.
  const api::TokenSigner signer({{"new", "0123456789abcdef-new"}});
  const std::string positions = api::EncodePositions(
      {{"sequences.sequence-events", 0, 41}, {"sequences.enrollment-events", 3, 7}});
  Write(dir, "verify_page_token",
        std::string(1, 0) +
            signer.Sign(kCompany, "sequences?show_deleted=false", "acme/s0000000000000001"));
  Write(dir, "sign_body", std::string(1, 1) + "acme/lead/42#s1");
  Write(dir, "positions", std::string(1, 2) + positions);
  Write(dir, "company_name", std::string(1, 3) + "companies/acme");
  Write(dir, "sequence_name", std::string(1, 3) + "companies/acme/sequences/s1");
  Write(dir, "enrollment_name",
        std::string(1, 3) + "companies/acme/sequences/s1/enrollments/deal:42");
}

// render_fuzzer.cc reads, with FuzzedDataProvider: merge entries as backslash-terminated key/value
// strings from the front, the template text after them; the entry count (last byte) and the
// catalog flag (the byte before it) from the end.
std::string RenderSeed(const std::vector<std::pair<std::string, std::string>>& data,
                       const std::string& text, bool catalog) {
  std::string out;
  for (const auto& [k, v] : data) absl::StrAppend(&out, k, "\\ ", v, "\\ ");
  absl::StrAppend(&out, text);
  out.push_back(catalog ? 1 : 0);
  out.push_back(static_cast<char>(data.size()));
  return out;
}

void RenderSeeds(const fs::path& dir) {
  Write(dir, "plain", RenderSeed({}, "Hello there, no fields here {single} braces", false));
  Write(dir, "fields",
        RenderSeed({{"person.first_name", "Ada"}, {"deal.title", "<b>Engines</b> & \"co\""}},
                   "Hi {{ person.first_name }}, {{deal.title | \"your \\\"deal\\\"\"}} {{x.y}}",
                   false));
  Write(dir, "catalog", RenderSeed({{"person.first_name", "Bo"}}, "{{person.first_name}}", true));
  Write(dir, "syntax_error", RenderSeed({}, "{{ person..name | \"unterminated }}", false));
}

}  // namespace
}  // namespace sequences::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
    return 2;
  }
  const std::filesystem::path root = argv[1];
  sequences::fuzz::RequestSeeds(root / "request");
  sequences::fuzz::EnvelopeSeeds(root / "envelope");
  sequences::fuzz::TokenSeeds(root / "tokens");
  sequences::fuzz::RenderSeeds(root / "render");
  return 0;
}
