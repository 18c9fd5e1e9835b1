#include "services/sequence-api/request_limits.h"

#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "libs/domain/errors.h"
#include "sequences/v1/enrollment_service.pb.h"
#include "services/sequence-api/names.h"
#include "services/sequence-api/tokens.h"

namespace sequences::api {
namespace {

std::vector<std::string> Fields(const absl::Status& s) {
  std::vector<std::string> out;
  for (const domain::FieldViolation& v : domain::GetFieldViolations(s)) out.push_back(v.field);
  return out;
}

TEST_CASE("a consistency token of a write over 100 partitions is accepted back") {
  std::vector<LogPosition> positions;
  for (int p = 0; p < 100; ++p) {
    positions.push_back({"sequences.enrollment-events", p, 1000000000 + p});
  }
  const TokenSigner signer(TokenSigner::ParseKeys("k:0123456789abcdef0123").value());
  const std::string token = signer.Sign("acme", "consistency", EncodePositions(positions));
  v1::GetEnrollmentOverviewRequest req;
  req.set_parent("companies/acme/sequences/s1");
  req.set_consistency_token(token);
  CHECK(CheckRequestLimits(req).ok());
  CHECK(signer.Verify("acme", "consistency", token, "consistency_token").ok());
}

TEST_CASE(
    "strings, maps and lists beyond their limits are refused naming the path, not the value") {
  v1::BatchEnrollRequest req;
  req.set_parent("companies/acme/sequences/s1");
  v1::EnrollItem* item = req.add_items();
  item->set_item_id(std::string(kDefaultMaxStringBytes + 1, 'x'));
  (*item->mutable_merge_data())["title"] = std::string(5000, 'v');
  v1::EnrollItem* crowded = req.add_items();
  for (int i = 0; i < 201; ++i) (*crowded->mutable_merge_data())[absl::StrCat("f", i)] = "";
  absl::Status s = CheckRequestLimits(req);
  REQUIRE(absl::IsInvalidArgument(s));
  const std::vector<std::string> fields = Fields(s);
  CHECK(std::find(fields.begin(), fields.end(), "items[0].item_id") != fields.end());
  CHECK(std::find(fields.begin(), fields.end(), "items[0].merge_data[\"title\"]") != fields.end());
  CHECK(std::find(fields.begin(), fields.end(), "items[1].merge_data") != fields.end());
  CHECK(s.message().size() < 1000);
  CHECK(s.message().find("xxxxxxxx") == std::string::npos);
  // Within the limits: fine.
  v1::BatchEnrollRequest ok;
  ok.set_parent("companies/acme/sequences/s1");
  (*ok.add_items()->mutable_merge_data())["title"] = std::string(4096, 'v');
  CHECK(CheckRequestLimits(ok).ok());
}

}  // namespace
}  // namespace sequences::api
