#include "services/sequence-api/names.h"

#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "libs/domain/errors.h"

namespace sequences::api {
namespace {

constexpr size_t kMaxIdLength = 128;
constexpr absl::string_view kTokenVersion = "v1";

absl::Status BadName(absl::string_view field, absl::string_view pattern) {
  return domain::InvalidField(field, absl::StrCat("must be a resource name like ", pattern));
}

}  // namespace

namespace {

// 1..max bytes, the first a letter or digit (or one of `first_extra`), every other a letter, a
// digit or one of `extra`.
bool MatchesGrammar(absl::string_view id, size_t max, absl::string_view first_extra,
                    absl::string_view extra) {
  if (id.empty() || id.size() > max) return false;
  auto ok = [](char c, absl::string_view allowed) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
           allowed.find(c) != absl::string_view::npos;
  };
  if (!ok(id[0], first_extra)) return false;
  for (char c : id.substr(1)) {
    if (!ok(c, extra)) return false;
  }
  return true;
}

}  // namespace

bool IsValidId(absl::string_view id) { return MatchesGrammar(id, kMaxIdLength, "_", "._~@+=-"); }
bool IsValidCompanyId(absl::string_view id) { return MatchesGrammar(id, 64, "", "._-"); }
bool IsValidUserId(absl::string_view id) { return MatchesGrammar(id, 128, "", "._@+-"); }

std::string EnrollmentName::ItemKey() const {
  return absl::StrCat(company_id, "/", entity, "/", item_id);
}

absl::StatusOr<std::string> ParseCompanyName(absl::string_view name, absl::string_view field) {
  std::vector<absl::string_view> parts = absl::StrSplit(name, '/');
  if (parts.size() != 2 || parts[0] != "companies" || !IsValidCompanyId(parts[1])) {
    return BadName(field, "companies/{company}");
  }
  return std::string(parts[1]);
}

absl::StatusOr<SequenceName> ParseSequenceName(absl::string_view name, absl::string_view field) {
  std::vector<absl::string_view> parts = absl::StrSplit(name, '/');
  if (parts.size() != 4 || parts[0] != "companies" || parts[2] != "sequences" ||
      !IsValidCompanyId(parts[1]) || !IsValidId(parts[3])) {
    return BadName(field, "companies/{company}/sequences/{sequence}");
  }
  return SequenceName{std::string(parts[1]), std::string(parts[3])};
}

absl::StatusOr<EmailTemplateName> ParseEmailTemplateName(absl::string_view name,
                                                         absl::string_view field) {
  std::vector<absl::string_view> parts = absl::StrSplit(name, '/');
  if (parts.size() != 4 || parts[0] != "companies" || parts[2] != "emailTemplates" ||
      !IsValidCompanyId(parts[1]) || !IsValidId(parts[3])) {
    return BadName(field, "companies/{company}/emailTemplates/{template}");
  }
  return EmailTemplateName{std::string(parts[1]), std::string(parts[3])};
}

absl::StatusOr<EnrollmentName> ParseEnrollmentName(absl::string_view name,
                                                   absl::string_view field) {
  constexpr absl::string_view kPattern =
      "companies/{company}/sequences/{sequence}/enrollments/{deal|lead}:{item}";
  std::vector<absl::string_view> parts = absl::StrSplit(name, '/');
  if (parts.size() != 6 || parts[0] != "companies" || parts[2] != "sequences" ||
      parts[4] != "enrollments" || !IsValidCompanyId(parts[1]) || !IsValidId(parts[3])) {
    return BadName(field, kPattern);
  }
  std::pair<absl::string_view, absl::string_view> item =
      absl::StrSplit(parts[5], absl::MaxSplits(':', 1));
  if ((item.first != "deal" && item.first != "lead") || !IsValidId(item.second)) {
    return BadName(field, kPattern);
  }
  return EnrollmentName{std::string(parts[1]), std::string(parts[3]), std::string(item.first),
                        std::string(item.second)};
}

std::string SequenceResourceName(absl::string_view company_id, absl::string_view sequence_id) {
  return absl::StrCat("companies/", company_id, "/sequences/", sequence_id);
}

std::string EnrollmentResourceName(absl::string_view item_key, absl::string_view sequence_id) {
  std::vector<absl::string_view> parts = absl::StrSplit(item_key, '/');
  if (parts.size() != 3) return "";
  return absl::StrCat("companies/", parts[0], "/sequences/", sequence_id, "/enrollments/", parts[1],
                      ":", parts[2]);
}

std::string ItemResourceName(absl::string_view item_key) {
  std::vector<absl::string_view> parts = absl::StrSplit(item_key, '/');
  if (parts.size() != 3) return "";
  return absl::StrCat("companies/", parts[0], "/items/", parts[1], ":", parts[2]);
}

std::string EncodePositions(absl::Span<const LogPosition> positions) {
  if (positions.empty()) return "";
  // Views of the positions' topics: a batch's thousand positions copy no topic name.
  std::map<std::pair<absl::string_view, int32_t>, int64_t> highest;
  for (const LogPosition& p : positions) {
    auto [it, inserted] = highest.try_emplace({p.topic, p.partition}, p.offset);
    if (!inserted && it->second < p.offset) it->second = p.offset;
  }
  std::vector<std::string> entries;
  for (const auto& [tp, offset] : highest) {
    entries.push_back(absl::StrCat(tp.first, "|", tp.second, "|", offset));
  }
  return absl::WebSafeBase64Escape(absl::StrCat(kTokenVersion, ";", absl::StrJoin(entries, ";")));
}

absl::StatusOr<std::vector<LogPosition>> DecodePositions(absl::string_view text) {
  std::vector<LogPosition> out;
  if (text.empty()) return out;
  const absl::Status bad =
      domain::InvalidField("consistency_token", "is not a token returned by this API");
  std::string plain;
  if (!absl::WebSafeBase64Unescape(text, &plain)) return bad;
  std::vector<absl::string_view> entries = absl::StrSplit(plain, ';');
  if (entries.empty() || entries[0] != kTokenVersion) return bad;
  for (size_t i = 1; i < entries.size(); ++i) {
    std::vector<absl::string_view> f = absl::StrSplit(entries[i], '|');
    LogPosition p;
    if (f.size() != 3 || f[0].empty() || !absl::SimpleAtoi(f[1], &p.partition) ||
        !absl::SimpleAtoi(f[2], &p.offset) || p.partition < 0 || p.offset < 0) {
      return bad;
    }
    p.topic = std::string(f[0]);
    out.push_back(std::move(p));
  }
  return out;
}

std::string DeriveSequenceId(absl::string_view company_id, absl::string_view request_id) {
  // FNV-1a 64: stable across processes and builds (absl::Hash is salted per process).
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](absl::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ULL;
    }
  };
  mix(company_id);
  mix(absl::string_view("\0", 1));
  mix(request_id);
  return absl::StrFormat("s%016x", h);
}

std::string CompanySendingSettingsResourceName(absl::string_view company_id) {
  return absl::StrCat("companies/", company_id, "/sendingSettings");
}

}  // namespace sequences::api

namespace sequences::api {

std::string EmailTemplateResourceName(absl::string_view company_id, absl::string_view template_id) {
  return absl::StrCat("companies/", company_id, "/emailTemplates/", template_id);
}

std::string DeriveEmailTemplateId(absl::string_view company_id, absl::string_view request_id) {
  return absl::StrCat("t", DeriveSequenceId(company_id, request_id).substr(1));
}

}  // namespace sequences::api
