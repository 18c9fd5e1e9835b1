#ifndef SEQUENCES_SERVICES_SEQUENCE_API_TOKENS_H_
#define SEQUENCES_SERVICES_SEQUENCE_API_TOKENS_H_

// Tokens the API hands to callers (page tokens, consistency tokens), signed so that no caller can
// forge or alter one, and bound to the company and the purpose they were made for.
//
//   token   = base64url(payload) "." base64url(mac)
//   payload = "v2" US key_id US body                (US = 0x1f)
//   mac     = HMAC-SHA256(key, company US purpose US payload)
//
// The company and the purpose (a listing with its filters, or "consistency") are not in the token:
// they enter only the MAC, so a token made for company A or for another listing does not verify
// for company B or this listing. The body (a page's last key, a list of log positions) is readable
// but not changeable.
//
// Keys rotate without breaking tokens in flight: the first key signs, every configured key
// verifies (`--token_keys=new:secret2,old:secret1`).
//
// Thread-safety: const methods may be called concurrently.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sequences::api {

struct TokenKey {
  std::string id;      // 1..16 characters of [A-Za-z0-9_-]
  std::string secret;  // at least 16 bytes
};

class TokenSigner {
 public:
  // "id:secret[,id:secret...]"; INVALID_ARGUMENT naming the rule if malformed.
  [[nodiscard]] static absl::StatusOr<std::vector<TokenKey>> ParseKeys(absl::string_view spec);
  // The key used when no --token_keys are configured: derived from the deployment's shared
  // bearer secret, so every instance of one deployment agrees without more configuration.
  static TokenKey DeriveKey(absl::string_view auth_token);

  // REQUIRES: `keys` non-empty with unique ids (ParseKeys or DeriveKey output).
  explicit TokenSigner(std::vector<TokenKey> keys);

  std::string Sign(absl::string_view company, absl::string_view purpose,
                   absl::string_view body) const;
  // The body of a token Sign made for the same company and purpose with any configured key, or
  // INVALID_ARGUMENT naming `field` ("is not a token returned by this API for this request").
  [[nodiscard]] absl::StatusOr<std::string> Verify(absl::string_view company,
                                                   absl::string_view purpose,
                                                   absl::string_view token,
                                                   absl::string_view field) const;

 private:
  std::string Mac(const TokenKey& key, absl::string_view company, absl::string_view purpose,
                  absl::string_view payload) const;
  std::vector<TokenKey> keys_;
};

}  // namespace sequences::api

#endif  // SEQUENCES_SERVICES_SEQUENCE_API_TOKENS_H_
