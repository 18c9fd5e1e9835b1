#include "libs/domain/contract.h"

#include <catch2/catch.hpp>

#include "libs/domain/envelope.h"

namespace sequences::domain {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

v1::Envelope Enroll(const std::string& item_key) {
  v1::Envelope e = MakeEnvelope("ev-1", "acme", kT0, "", "corr-1");
  e.mutable_enroll_requested()->set_item_key(item_key);
  e.mutable_enroll_requested()->set_sequence_id("s1");
  return e;
}

std::string Reason(const absl::Status& s) { return std::string(s.message()); }

TEST_CASE("An input with every header field, keyed by its own item, keeps the contract",
          "[contract]") {
  CHECK(CheckEnrollmentInputContract(Enroll("acme/deal/1"), "acme/deal/1").ok());
}

TEST_CASE("A missing event_id, company_id or occurred_at breaks the contract, each by name",
          "[contract]") {
  v1::Envelope e = Enroll("acme/deal/1");
  e.clear_event_id();
  CHECK(Reason(CheckEnrollmentInputContract(e, "acme/deal/1")) == "contract: event_id is required");
  e = Enroll("acme/deal/1");
  e.clear_company_id();
  CHECK(Reason(CheckEnrollmentInputContract(e, "acme/deal/1")) ==
        "contract: company_id is required");
  e = Enroll("acme/deal/1");
  e.clear_occurred_at();
  CHECK(Reason(CheckEnrollmentInputContract(e, "acme/deal/1")) ==
        "contract: occurred_at is required");
  CHECK(absl::IsInvalidArgument(CheckEnrollmentInputContract(e, "acme/deal/1")));
}

TEST_CASE("A company_id that is not the item key's company breaks the contract", "[contract]") {
  v1::Envelope e = Enroll("globex/deal/1");
  CHECK(Reason(CheckEnrollmentInputContract(e, "globex/deal/1")) ==
        "contract: company_id 'acme' is not the company of item key 'globex/deal/1'");
}

TEST_CASE("A record key that is not the item key, or a malformed item key, is refused",
          "[contract]") {
  CHECK(Reason(CheckEnrollmentInputContract(Enroll("acme/deal/1"), "acme/deal/2")) ==
        "contract: record key 'acme/deal/2' is not the item key 'acme/deal/1'");
  CHECK(Reason(CheckEnrollmentInputContract(Enroll("acme/task/1"), "acme/task/1")) ==
        "invalid: item_key must be company/deal|lead/item");
}

TEST_CASE("A reason quotes at most 128 bytes of each key, whatever size the record's keys are",
          "[contract]") {
  const std::string item_key = "acme/deal/" + std::string(5000, 'x');
  const std::string reason =
      Reason(CheckEnrollmentInputContract(Enroll(item_key), std::string(1 << 20, 'k')));
  CHECK(reason.size() < 400);
  CHECK(reason.find("(1048576 bytes)") != std::string::npos);
  CHECK(reason.find("(5010 bytes)") != std::string::npos);
  v1::Envelope other = Enroll("globex/deal/" + std::string(5000, 'y'));
  other.set_company_id(std::string(3000, 'c'));
  CHECK(
      Reason(CheckEnrollmentInputContract(other, "globex/deal/" + std::string(5000, 'y'))).size() <
      400);
}

TEST_CASE(
    "A payload that is not an enrollment input is refused, and an owner-wide input may use any "
    "key",
    "[contract]") {
  v1::Envelope task = MakeEnvelope("ev-2", "acme", kT0, "", "");
  task.mutable_task_created();
  CHECK(Reason(CheckEnrollmentInputContract(task, "acme/deal/1")) ==
        "contract: payload task_created is not an enrollment input");
  v1::Envelope pause = MakeEnvelope("ev-3", "acme", kT0, "", "");
  pause.mutable_pause_requested()->mutable_target()->set_owner_id("owner-1");
  CHECK(CheckEnrollmentInputContract(pause, "any-key-for-partition-3").ok());
}

}  // namespace
}  // namespace sequences::domain
