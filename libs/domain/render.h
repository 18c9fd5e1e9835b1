#ifndef SEQUENCES_LIBS_DOMAIN_RENDER_H_
#define SEQUENCES_LIBS_DOMAIN_RENDER_H_

// Merge-field rendering for email subjects and bodies.
//
// Syntax: `{{ path }}` or `{{ path | "fallback" }}`. A path is dot-separated identifiers
// ([A-Za-z_][A-Za-z0-9_]*), e.g. person.first_name, deal.title. The fallback is a double-quoted
// string (\" and \\ escape) used when the value is missing or empty. Whitespace inside the braces
// is ignored. A lone "{{" without a closing "}}", or a malformed path or fallback, is a syntax
// error; single braces are plain text.
//
// Values (and fallbacks) are inserted as text: for an HTML body they are HTML-escaped
// (& < > " '); the template text itself is never changed.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sequences::domain {

// Merge values by path, e.g. "person.first_name" -> "Ada". Ordered so that folding is
// deterministic.
using MergeData = std::map<std::string, std::string>;

struct MergeField {
  std::string path;
  std::optional<std::string> fallback;
  friend bool operator==(const MergeField&, const MergeField&) = default;
};

// The merge fields of `text` in order of appearance. INVALID_ARGUMENT (BadRequest on field
// `field_name`) on a syntax error, naming the position and the rule.
[[nodiscard]] absl::StatusOr<std::vector<MergeField>> ParseMergeFields(
    absl::string_view text, absl::string_view field_name = "text");

enum class Escape { kNone, kHtml };

struct Rendered {
  // The text with every filled field replaced. Unfilled fields (no value, empty value, no fallback)
  // are left exactly as written, so a reviewer of a draft sees them.
  std::string text;
  // Paths of unfilled fields, in order of first appearance, without duplicates.
  std::vector<std::string> missing_fields;
};

// Renders `text` with `data`. INVALID_ARGUMENT on a syntax error (as ParseMergeFields).
[[nodiscard]] absl::StatusOr<Rendered> Render(absl::string_view text, const MergeData& data,
                                              Escape escape);

// & < > " ' escaped as entities.
std::string HtmlEscape(absl::string_view text);

}  // namespace sequences::domain

#endif  // SEQUENCES_LIBS_DOMAIN_RENDER_H_
