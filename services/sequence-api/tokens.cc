#include "services/sequence-api/tokens.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/domain/errors.h"

namespace sequences::api {
namespace {

constexpr char kSep = '\x1f';
constexpr absl::string_view kVersion = "v2";
constexpr size_t kMaxTokenLength = 8192;  // request_limits.cc: kMaxTokenBytes

std::string HmacSha256(absl::string_view key, absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

bool IsKeyId(absl::string_view id) {
  if (id.empty() || id.size() > 16) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::vector<TokenKey>> TokenSigner::ParseKeys(absl::string_view spec) {
  std::vector<TokenKey> keys;
  for (absl::string_view entry : absl::StrSplit(spec, ',', absl::SkipWhitespace())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(entry, absl::MaxSplits(':', 1));
    if (!IsKeyId(kv.first)) {
      return domain::InvalidField("token_keys",
                                  "each key is id:secret with an id of 1..16 of [A-Za-z0-9_-]");
    }
    if (kv.second.size() < 16) {
      return domain::InvalidField("token_keys", "each secret must be at least 16 bytes");
    }
    for (const TokenKey& k : keys) {
      if (k.id == kv.first) return domain::InvalidField("token_keys", "key ids must be unique");
    }
    keys.push_back({std::string(kv.first), std::string(kv.second)});
  }
  if (keys.empty()) return domain::InvalidField("token_keys", "must name at least one key");
  return keys;
}

TokenKey TokenSigner::DeriveKey(absl::string_view auth_token) {
  return {"d", HmacSha256(auth_token, "sequences-api token signing key v2")};
}

TokenSigner::TokenSigner(std::vector<TokenKey> keys) : keys_(std::move(keys)) {}

std::string TokenSigner::Mac(const TokenKey& key, absl::string_view company,
                             absl::string_view purpose, absl::string_view payload) const {
  return HmacSha256(key.secret, absl::StrCat(company, std::string(1, kSep), purpose,
                                             std::string(1, kSep), payload));
}

std::string TokenSigner::Sign(absl::string_view company, absl::string_view purpose,
                              absl::string_view body) const {
  const TokenKey& key = keys_.front();
  const std::string payload =
      absl::StrCat(kVersion, std::string(1, kSep), key.id, std::string(1, kSep), body);
  return absl::StrCat(absl::WebSafeBase64Escape(payload), ".",
                      absl::WebSafeBase64Escape(Mac(key, company, purpose, payload)));
}

absl::StatusOr<std::string> TokenSigner::Verify(absl::string_view company,
                                                absl::string_view purpose, absl::string_view token,
                                                absl::string_view field) const {
  const absl::Status bad =
      domain::InvalidField(field, "is not a token returned by this API for this request");
  if (token.size() > kMaxTokenLength) return bad;
  std::pair<absl::string_view, absl::string_view> parts =
      absl::StrSplit(token, absl::MaxSplits('.', 1));
  std::string payload, mac;
  if (!absl::WebSafeBase64Unescape(parts.first, &payload) ||
      !absl::WebSafeBase64Unescape(parts.second, &mac)) {
    return bad;
  }
  // Only the one encoding Sign writes: the decoder also takes padding and ignores the unused low
  // bits of the last character, which would let one token be respelled as others.
  if (absl::WebSafeBase64Escape(payload) != parts.first ||
      absl::WebSafeBase64Escape(mac) != parts.second) {
    return bad;
  }
  std::vector<absl::string_view> fields = absl::StrSplit(payload, absl::MaxSplits(kSep, 2));
  if (fields.size() != 3 || fields[0] != kVersion) return bad;
  for (const TokenKey& key : keys_) {
    if (key.id != fields[1]) continue;
    const std::string expected = Mac(key, company, purpose, payload);
    if (mac.size() == expected.size() &&
        CRYPTO_memcmp(mac.data(), expected.data(), mac.size()) == 0) {
      return std::string(fields[2]);
    }
    return bad;
  }
  return bad;
}

}  // namespace sequences::api
