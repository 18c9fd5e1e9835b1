#include "tests/fuzz/checks.h"

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/stubs/logging.h"
#include "libs/domain/envelope.h"
#include "libs/domain/errors.h"
#include "libs/domain/templates.h"
#include "libs/runtime/text.h"
#include "sequences/v1/commands.pb.h"
#include "sequences/v1/events.pb.h"

namespace sequences::fuzz {

namespace {

// Longer than any message the code builds from bounded parts (a prefix, the first violation's path
// and description, a count), far shorter than anything that echoes an input.
constexpr size_t kMaxMessageBytes = 1024;

// Protobuf logs every string field that fails UTF-8 validation; most fuzzed inputs do. Quiet, so
// the log of a run shows findings.
[[maybe_unused]] const bool kProtobufQuiet = [] {
  google::protobuf::SetLogHandler(nullptr);
  return true;
}();

domain::SequenceState Fold(domain::SequenceState state, const v1::SequenceCommand& command) {
  absl::StatusOr<std::vector<v1::Envelope>> events = domain::DecideSequence(state, command, Now());
  FUZZ_CHECK(events.ok(), "setting up the live sequence: " + events.status().ToString());
  for (const v1::Envelope& e : *events) state = domain::EvolveSequence(std::move(state), e);
  return state;
}

v1::SequenceCommand Command() {
  v1::SequenceCommand c;
  c.set_company_id(kCompany);
  c.set_sequence_id("s1");
  c.set_request_id("setup");
  c.set_actor_user_id(kUser);
  return c;
}

}  // namespace

void Check(bool ok, absl::string_view what, const char* file, int line) {
  if (ok) return;
  std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %.*s\n", file, line,
               static_cast<int>(what.size()), what.data());
  std::abort();
}

absl::Time Now() { return absl::FromUnixSeconds(1767225600); }  // 2026-01-01T00:00:00Z

void CheckBoundedError(const absl::Status& status, BadRequest bad_request) {
  if (status.ok()) return;
  FUZZ_CHECK(status.message().size() <= kMaxMessageBytes,
             absl::StrCat("error message of ", status.message().size(), " bytes"));
  FUZZ_CHECK(IsValidUtf8(status.message()), "error message is not UTF-8");
  if (status.code() != absl::StatusCode::kInvalidArgument) return;
  if (!status.GetPayload(domain::kBadRequestTypeUrl).has_value()) {
    FUZZ_CHECK(bad_request == BadRequest::kOptional,
               "INVALID_ARGUMENT without a BadRequest: " + status.ToString());
    return;
  }
  const std::vector<domain::FieldViolation> violations = domain::GetFieldViolations(status);
  FUZZ_CHECK(!violations.empty(), "INVALID_ARGUMENT whose BadRequest does not decode or is empty");
  FUZZ_CHECK(violations.size() <= domain::FieldViolations::kMaxViolations + 1,
             absl::StrCat(violations.size(), " field violations"));
  for (const domain::FieldViolation& v : violations) {
    // "..." marks a cut.
    FUZZ_CHECK(v.field.size() <= domain::FieldViolations::kMaxFieldPathBytes + 3,
               absl::StrCat("field path of ", v.field.size(), " bytes"));
    FUZZ_CHECK(v.description.size() <= domain::FieldViolations::kMaxDescriptionBytes + 3,
               absl::StrCat("description of ", v.description.size(), " bytes"));
  }
}

namespace {

// Map entries in key order, so equal messages give equal bytes.
std::string Deterministic(const google::protobuf::Message& m, bool* ok) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream raw(&bytes);
    google::protobuf::io::CodedOutputStream out(&raw);
    out.SetSerializationDeterministic(true);
    *ok = m.SerializeToCodedStream(&out);
  }
  return bytes;
}

}  // namespace

std::string SerializeDeterministic(const google::protobuf::Message& m) {
  bool ok = false;
  std::string bytes = Deterministic(m, &ok);
  FUZZ_CHECK(ok, "does not serialize: " + m.GetTypeName());
  return bytes;
}

void CheckDecodable(const google::protobuf::Message& m) {
  bool ok = false;
  const std::string bytes = Deterministic(m, &ok);
  FUZZ_CHECK(ok, "does not serialize: " + m.GetTypeName());
  std::unique_ptr<google::protobuf::Message> back(m.New());
  FUZZ_CHECK(back->ParseFromString(bytes),
             "written but not readable (invalid UTF-8?): " + m.ShortDebugString().substr(0, 400));
  FUZZ_CHECK(Deterministic(*back, &ok) == bytes, "changes in a round trip: " + m.GetTypeName());
}

const domain::SequenceState& LiveSequence() {
  static const domain::SequenceState* const state = [] {
    v1::SequenceCommand create = Command();
    create.mutable_create()->set_template_id(domain::TemplateCatalog().front().id());
    create.mutable_create()->set_owner_id(kUser);
    domain::SequenceState s = Fold(domain::SequenceState{}, create);
    v1::SequenceCommand automated = Command();
    automated.mutable_switch_automated_sending()->set_enabled(true);
    s = Fold(std::move(s), automated);
    v1::SequenceCommand consent = Command();
    consent.mutable_grant_consent()->set_user_id(kUser);
    s = Fold(std::move(s), consent);
    FUZZ_CHECK(s.exists && !s.steps.empty(), "live sequence not set up");
    return new domain::SequenceState(std::move(s));
  }();
  return *state;
}

const domain::EnrollmentState& ActiveEnrollment() {
  static const domain::EnrollmentState* const state = [] {
    const domain::SequenceState& sequence = LiveSequence();
    v1::Envelope input = domain::MakeEnvelope("enroll-1", kCompany, Now(), "", "corr-1");
    v1::EnrollRequested* r = input.mutable_enroll_requested();
    r->set_request_id("r1");
    r->set_sequence_id(sequence.sequence_id);
    r->set_sequence_version(sequence.version);
    r->set_entity_kind(sequence.entity_kind);
    r->set_item_key(absl::StrCat(
        kCompany, sequence.entity_kind == v1::ENTITY_KIND_LEAD ? "/lead/42" : "/deal/42"));
    r->set_owner_id(kUser);
    r->mutable_recipient()->set_email("ada@example.com");
    r->mutable_recipient()->set_name("Ada");
    (*r->mutable_merge_data())["person.first_name"] = "Ada";
    r->set_requested_by(kUser);
    absl::StatusOr<domain::Decision> d =
        domain::DecideEnrollment(domain::EnrollmentState{}, input, sequence, Now());
    FUZZ_CHECK(d.ok(), "setting up the enrollment: " + d.status().ToString());
    domain::EnrollmentState s;
    for (const v1::Envelope& e : d->executor_events) s = domain::EvolveEnrollment(std::move(s), e);
    FUZZ_CHECK(s.IsActive(), "enrollment not active after set-up");
    return new domain::EnrollmentState(std::move(s));
  }();
  return *state;
}

}  // namespace sequences::fuzz
