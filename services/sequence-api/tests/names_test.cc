#include "services/sequence-api/names.h"

#include <catch2/catch.hpp>

#include "libs/domain/errors.h"

namespace sequences::api {
namespace {

TEST_CASE("encoded positions keep the highest offset per partition and round-trips") {
  const std::string token = EncodePositions(std::vector<LogPosition>{
      {"t.enrollment-events", 2, 10}, {"t.enrollment-events", 2, 7}, {"t.sequence-events", 0, 3}});
  absl::StatusOr<std::vector<LogPosition>> decoded = DecodePositions(token);
  REQUIRE(decoded.ok());
  CHECK(*decoded ==
        std::vector<LogPosition>{{"t.enrollment-events", 2, 10}, {"t.sequence-events", 0, 3}});
  CHECK(DecodePositions("")->empty());
}

TEST_CASE("positions text that was not encoded here is INVALID_ARGUMENT on consistency_token") {
  absl::StatusOr<std::vector<LogPosition>> decoded = DecodePositions("bm90IGEgdG9rZW4");
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
  CHECK(ItemResourceName("acme/lead/7") == "companies/acme/items/lead:7");
  CHECK(ItemResourceName("acme/lead").empty());
  CHECK(ItemResourceName("acme/lead/7/x").empty());
  CHECK(ParseSequenceName("companies/acme/sequences/s1", "name")->sequence_id == "s1");
  CHECK(ParseCompanyName("companies/acme", "parent").value() == "acme");

  CHECK(absl::IsInvalidArgument(
      ParseEnrollmentName("companies/acme/sequences/s1/enrollments/person:42", "name").status()));
  CHECK(absl::IsInvalidArgument(ParseSequenceName("companies/acme/sequences/", "name").status()));
  CHECK(absl::IsInvalidArgument(ParseSequenceName("companies/a#b/sequences/s", "name").status()));
  CHECK(absl::IsInvalidArgument(ParseCompanyName("companies/acme/x", "parent").status()));
}

TEST_CASE("identifiers follow their grammar: no separators, spaces, quotes, escapes or non-ASCII") {
  for (const char* good : {"acme", "Acme-1", "a.b_c", "0"}) {
    INFO(good);
    CHECK(IsValidCompanyId(good));
    CHECK(IsValidUserId(good));
    CHECK(IsValidId(good));
  }
  CHECK(IsValidUserId("ada+crm@acme.com"));
  CHECK_FALSE(IsValidCompanyId("ada@acme.com"));
  CHECK(IsValidId("_internal"));
  CHECK(IsValidId("b1946ac9-2e13-4d4a-9b1c-7f1c0e2b3a44"));
  const std::string rtl_override =
      "a\xE2\x80\xAE"
      "b";
  const std::string invalid_utf8 = "a\xFF";
  for (const std::string& bad :
       {std::string(""), std::string(" "), std::string("*"), std::string(".."), std::string("."),
        std::string("%2e%2e"), std::string("a b"), std::string("x,y"), std::string("a'b"),
        std::string("a\"b"), std::string("a/b"), std::string("a#b"), std::string("a:b"),
        std::string("a\nb"), std::string("-a"), std::string("\x7f"), rtl_override, invalid_utf8,
        std::string(129, 'a')}) {
    INFO(bad);
    CHECK_FALSE(IsValidCompanyId(bad));
    CHECK_FALSE(IsValidUserId(bad));
    CHECK_FALSE(IsValidId(bad));
  }
  CHECK_FALSE(IsValidCompanyId(std::string(65, 'a')));
  CHECK(IsValidId(std::string(128, 'a')));
}

TEST_CASE("the sequence id of a create is a function of company and request id") {
  CHECK(DeriveSequenceId("acme", "r1") == DeriveSequenceId("acme", "r1"));
  CHECK(DeriveSequenceId("acme", "r1") != DeriveSequenceId("acme", "r2"));
  CHECK(DeriveSequenceId("acme", "r1") != DeriveSequenceId("globex", "r1"));
  CHECK(IsValidId(DeriveSequenceId("acme", "r1")));
}

}  // namespace
}  // namespace sequences::api
