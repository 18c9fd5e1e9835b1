// Page and consistency tokens, and resource names: the strings a caller hands back to the API.
// The first byte picks the mode:
//   0  the rest is a token: Verify against a fixed signer; accepted only if it is exactly what Sign
//      made for that company and purpose (so, with an unknown key, never).
//   1  the rest is a body: Sign then Verify round-trips it (tokens up to Verify's 4096 characters),
//      for that company and purpose only, and one changed character makes the token fail.
//   2  the rest is position text (inside a consistency token): DecodePositions, and the positions
//      it accepts encode and decode again.
//   3  the rest is a resource name: Parse{Company,Sequence,Enrollment}Name accept only names that
//      print back the same, and ids that meet the grammar.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "services/sequence-api/names.h"
#include "services/sequence-api/tokens.h"
#include "tests/fuzz/checks.h"

namespace sequences::fuzz {
namespace {

constexpr char kPurpose[] = "sequences?show_deleted=false";

const api::TokenSigner& Signer() {
  static const api::TokenSigner* const signer = [] {
    absl::StatusOr<std::vector<api::TokenKey>> keys =
        api::TokenSigner::ParseKeys("new:0123456789abcdef-new,old:0123456789abcdef-old");
    FUZZ_CHECK(keys.ok(), "token keys");
    return new api::TokenSigner(*keys);
  }();
  return *signer;
}

// Signs with the old key only: its tokens must verify with Signer() (rotation).
const api::TokenSigner& OldSigner() {
  static const api::TokenSigner* const signer =
      new api::TokenSigner({{"old", "0123456789abcdef-old"}});
  return *signer;
}

void VerifyToken(absl::string_view token) {
  absl::StatusOr<std::string> body = Signer().Verify(kCompany, kPurpose, token, "page_token");
  CheckBoundedError(body.status());
  if (!body.ok()) return;
  FUZZ_CHECK(token == Signer().Sign(kCompany, kPurpose, *body) ||
                 token == OldSigner().Sign(kCompany, kPurpose, *body),
             absl::StrCat("Verify accepted a token Sign did not make: ", token.substr(0, 200)));
}

// Verify refuses tokens longer than this (tokens.cc), whatever Sign made.
constexpr size_t kMaxTokenLength = 4096;

void SignAndVerify(absl::string_view body, uint8_t salt) {
  const std::string token = Signer().Sign(kCompany, kPurpose, body);
  if (token.size() > kMaxTokenLength) {
    FUZZ_CHECK(!Signer().Verify(kCompany, kPurpose, token, "page_token").ok(),
               "a token over the length limit verifies");
    return;
  }
  absl::StatusOr<std::string> back = Signer().Verify(kCompany, kPurpose, token, "page_token");
  FUZZ_CHECK(back.ok() && *back == body, "a signed token does not verify to its body");
  FUZZ_CHECK(!Signer().Verify("acme2", kPurpose, token, "page_token").ok(),
             "a token verifies for another company");
  FUZZ_CHECK(!Signer().Verify(kCompany, "consistency", token, "page_token").ok(),
             "a token verifies for another purpose");
  const std::string old = OldSigner().Sign(kCompany, kPurpose, body);
  absl::StatusOr<std::string> rotated = Signer().Verify(kCompany, kPurpose, old, "page_token");
  FUZZ_CHECK(rotated.ok() && *rotated == body, "a token of a rotated-out key does not verify");
  // One character replaced by another of the token alphabet.
  static constexpr absl::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
  std::string altered = token;
  const size_t at = (body.size() * 31 + salt) % altered.size();
  const size_t was = kAlphabet.find(altered[at]);
  altered[at] = kAlphabet[(was + 1 + salt % (kAlphabet.size() - 1)) % kAlphabet.size()];
  FUZZ_CHECK(altered == token || !Signer().Verify(kCompany, kPurpose, altered, "page_token").ok(),
             absl::StrCat("an altered token verifies: ", altered.substr(0, 200)));
}

void Positions(absl::string_view text) {
  absl::StatusOr<std::vector<api::LogPosition>> p = api::DecodePositions(text);
  CheckBoundedError(p.status());
  if (!p.ok()) return;
  for (const api::LogPosition& pos : *p) {
    FUZZ_CHECK(!pos.topic.empty() && pos.partition >= 0 && pos.offset >= 0, "a bad position");
  }
  const std::string again = api::EncodePositions(*p);
  absl::StatusOr<std::vector<api::LogPosition>> q = api::DecodePositions(again);
  FUZZ_CHECK(q.ok(), "encoded positions do not decode");
  FUZZ_CHECK(api::EncodePositions(*q) == again, "positions change in a round trip");
}

void Names(absl::string_view name) {
  if (absl::StatusOr<std::string> c = api::ParseCompanyName(name, "parent"); c.ok()) {
    FUZZ_CHECK(api::IsValidCompanyId(*c), "a company id off the grammar");
    FUZZ_CHECK(absl::StrCat("companies/", *c) == name, "a company name that prints differently");
  } else {
    CheckBoundedError(c.status());
  }
  if (absl::StatusOr<api::SequenceName> s = api::ParseSequenceName(name, "name"); s.ok()) {
    FUZZ_CHECK(api::IsValidCompanyId(s->company_id) && api::IsValidId(s->sequence_id),
               "a sequence name off the grammar");
    FUZZ_CHECK(api::SequenceResourceName(s->company_id, s->sequence_id) == name,
               "a sequence name that prints differently");
  } else {
    CheckBoundedError(s.status());
  }
  if (absl::StatusOr<api::EnrollmentName> e = api::ParseEnrollmentName(name, "name"); e.ok()) {
    FUZZ_CHECK(api::IsValidCompanyId(e->company_id) && api::IsValidId(e->sequence_id) &&
                   api::IsValidId(e->item_id) && (e->entity == "deal" || e->entity == "lead"),
               "an enrollment name off the grammar");
    FUZZ_CHECK(api::EnrollmentResourceName(e->ItemKey(), e->sequence_id) == name,
               "an enrollment name that prints differently");
  } else {
    CheckBoundedError(e.status());
  }
}

}  // namespace
}  // namespace sequences::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sequences::fuzz;  // NOLINT: a fuzzer's entry point
  if (size == 0) return 0;
  const absl::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 4) {
    case 0:
      VerifyToken(rest);
      break;
    case 1:
      SignAndVerify(rest, data[0]);
      break;
    case 2:
      Positions(rest);
      break;
    case 3:
      Names(rest);
      break;
  }
  return 0;
}
