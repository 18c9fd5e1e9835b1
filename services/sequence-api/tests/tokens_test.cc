#include "services/sequence-api/tokens.h"

#include <catch2/catch.hpp>

#include "absl/strings/escaping.h"
#include "libs/domain/errors.h"

namespace sequences::api {
namespace {

const TokenSigner& Signer() {
  static const TokenSigner* signer =
      new TokenSigner(TokenSigner::ParseKeys("k2:second-secret-0123456789").value());
  return *signer;
}

void CheckRefused(const absl::StatusOr<std::string>& r, const std::string& field) {
  REQUIRE(absl::IsInvalidArgument(r.status()));
  REQUIRE(domain::GetFieldViolations(r.status()).size() == 1);
  CHECK(domain::GetFieldViolations(r.status())[0].field == field);
}

TEST_CASE("a signed token verifies only for the company and purpose it was made for") {
  const std::string token = Signer().Sign("acme", "enrollments/x",
                                          "es\x1fseq\x1f"
                                          "1");
  CHECK(Signer().Verify("acme", "enrollments/x", token, "page_token").value() ==
        "es\x1fseq\x1f"
        "1");
  CheckRefused(Signer().Verify("globex", "enrollments/x", token, "page_token"), "page_token");
  CheckRefused(Signer().Verify("acme", "enrollments/y", token, "page_token"), "page_token");
  CheckRefused(Signer().Verify("acme", "consistency", token, "consistency_token"),
               "consistency_token");
}

TEST_CASE("a token with any byte changed, cut, or re-encoded with another body is refused") {
  const std::string token = Signer().Sign("acme", "sequences/acme/0", "s0001");
  for (size_t i = 0; i < token.size(); ++i) {
    std::string t = token;
    t[i] = t[i] == 'A' ? 'B' : 'A';
    INFO(i);
    CHECK_FALSE(Signer().Verify("acme", "sequences/acme/0", t, "page_token").ok());
  }
  CHECK_FALSE(
      Signer()
          .Verify("acme", "sequences/acme/0", token.substr(0, token.size() - 2), "page_token")
          .ok());
  // The body is readable; replacing it (the forgery that used to work) breaks the MAC.
  const size_t dot = token.find('.');
  std::string payload;
  REQUIRE(absl::WebSafeBase64Unescape(token.substr(0, dot), &payload));
  payload.replace(payload.size() - 5, 5, "s0000");
  const std::string forged = absl::WebSafeBase64Escape(payload) + token.substr(dot);
  CHECK_FALSE(Signer().Verify("acme", "sequences/acme/0", forged, "page_token").ok());
  CHECK_FALSE(Signer().Verify("acme", "sequences/acme/0", "", "page_token").ok());
  CHECK_FALSE(
      Signer().Verify("acme", "sequences/acme/0", std::string(1 << 20, 'A'), "page_token").ok());
}

TEST_CASE("a token is accepted only as Sign spelled it: no padding, no other unused bits") {
  const std::string token = Signer().Sign("acme", "p", "body");
  REQUIRE(Signer().Verify("acme", "p", token, "page_token").ok());
  // The 32-byte MAC is 43 characters; the last carries 2 bits and 4 unused ones, which base64
  // decoders ignore. Respelled, the token decodes to the same bytes but is not the one Sign made.
  constexpr absl::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string respelled = token;
  respelled.back() = kAlphabet[kAlphabet.find(token.back()) ^ 1];
  CheckRefused(Signer().Verify("acme", "p", respelled, "page_token"), "page_token");
  CheckRefused(Signer().Verify("acme", "p", token + "=", "page_token"), "page_token");
  const size_t dot = token.find('.');
  CheckRefused(
      Signer().Verify("acme", "p", token.substr(0, dot) + "=" + token.substr(dot), "page_token"),
      "page_token");
}

TEST_CASE(
    "keys rotate: tokens of the old key verify while it is configured, new ones use the first") {
  const TokenSigner old_signer(TokenSigner::ParseKeys("k1:first-secret-0123456789").value());
  const TokenSigner rotated(
      TokenSigner::ParseKeys("k2:second-secret-0123456789,k1:first-secret-0123456789").value());
  const std::string old_token = old_signer.Sign("acme", "p", "body");
  CHECK(rotated.Verify("acme", "p", old_token, "page_token").value() == "body");
  CHECK(Signer().Verify("acme", "p", rotated.Sign("acme", "p", "b2"), "page_token").value() ==
        "b2");
  CHECK_FALSE(Signer().Verify("acme", "p", old_token, "page_token").ok());  // k1 retired
}

TEST_CASE("malformed key lists are refused naming the rule") {
  CHECK(absl::IsInvalidArgument(TokenSigner::ParseKeys("").status()));
  CHECK(absl::IsInvalidArgument(TokenSigner::ParseKeys("k1:short").status()));
  CHECK(absl::IsInvalidArgument(TokenSigner::ParseKeys("bad id:0123456789abcdef").status()));
  CHECK(absl::IsInvalidArgument(
      TokenSigner::ParseKeys("k:0123456789abcdef,k:0123456789abcdeg").status()));
}

}  // namespace
}  // namespace sequences::api
