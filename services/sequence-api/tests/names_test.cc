#include "services/sequence-api/names.h"

#include <catch2/catch.hpp>

#include "libs/domain/errors.h"

namespace sequences::api {
namespace {

TEST_CASE("a consistency token keeps the highest offset per partition and round-trips") {
  const std::string token = EncodeConsistencyToken(std::vector<LogPosition>{
      {"t.enrollment-events", 2, 10}, {"t.enrollment-events", 2, 7}, {"t.sequence-events", 0, 3}});
  absl::StatusOr<std::vector<LogPosition>> decoded = DecodeConsistencyToken(token);
  REQUIRE(decoded.ok());
  CHECK(*decoded ==
        std::vector<LogPosition>{{"t.enrollment-events", 2, 10}, {"t.sequence-events", 0, 3}});
  CHECK(DecodeConsistencyToken("")->empty());
}

TEST_CASE("a forged consistency token is INVALID_ARGUMENT on consistency_token") {
  absl::StatusOr<std::vector<LogPosition>> decoded = DecodeConsistencyToken("bm90IGEgdG9rZW4");
  REQUIRE(absl::IsInvalidArgument(decoded.status()));
  REQUIRE(domain::GetFieldViolations(decoded.status()).size() == 1);
  CHECK(domain::GetFieldViolations(decoded.status())[0].field == "consistency_token");
}

TEST_CASE("resource names parse only in their own pattern") {
  absl::StatusOr<EnrollmentName> e =
      ParseEnrollmentName("companies/acme/sequences/s1/enrollments/deal:42", "name");
  REQUIRE(e.ok());
  CHECK(e->ItemKey() == "acme/deal/42");
  CHECK(EnrollmentResourceName("acme/deal/42", "s1") ==
        "companies/acme/sequences/s1/enrollments/deal:42");
  CHECK(ParseSequenceName("companies/acme/sequences/s1", "name")->sequence_id == "s1");
  CHECK(ParseCompanyName("companies/acme", "parent").value() == "acme");

  CHECK(absl::IsInvalidArgument(
      ParseEnrollmentName("companies/acme/sequences/s1/enrollments/person:42", "name").status()));
  CHECK(absl::IsInvalidArgument(ParseSequenceName("companies/acme/sequences/", "name").status()));
  CHECK(absl::IsInvalidArgument(ParseSequenceName("companies/a#b/sequences/s", "name").status()));
  CHECK(absl::IsInvalidArgument(ParseCompanyName("companies/acme/x", "parent").status()));
}

TEST_CASE("a page token is refused by another listing") {
  const std::string token = EncodePageToken("sequences/acme/0", "s9");
  CHECK(DecodePageToken("sequences/acme/0", token).value() == "s9");
  CHECK(absl::IsInvalidArgument(DecodePageToken("sequences/globex/0", token).status()));
}

TEST_CASE("the sequence id of a create is a function of company and request id") {
  CHECK(DeriveSequenceId("acme", "r1") == DeriveSequenceId("acme", "r1"));
  CHECK(DeriveSequenceId("acme", "r1") != DeriveSequenceId("acme", "r2"));
  CHECK(DeriveSequenceId("acme", "r1") != DeriveSequenceId("globex", "r1"));
  CHECK(IsValidId(DeriveSequenceId("acme", "r1")));
}

}  // namespace
}  // namespace sequences::api
