#include "libs/domain/render.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "libs/domain/errors.h"

namespace sequences::domain {
namespace {

// One {{...}} occurrence: [begin, end) in the text and the parsed field.
struct Occurrence {
  size_t begin;
  size_t end;
  MergeField field;
};

bool IsIdentStart(char c) { return absl::ascii_isalpha(c) || c == '_'; }
bool IsIdentChar(char c) { return absl::ascii_isalnum(c) || c == '_'; }

bool ValidPath(absl::string_view path) {
  if (path.empty()) return false;
  bool at_start = true;
  for (char c : path) {
    if (c == '.') {
      if (at_start) return false;
      at_start = true;
    } else if (at_start) {
      if (!IsIdentStart(c)) return false;
      at_start = false;
    } else if (!IsIdentChar(c)) {
      return false;
    }
  }
  return !at_start;
}

// Parses the inside of {{ }}. Returns an error description or empty on success.
std::string ParseInside(absl::string_view inside, MergeField* field) {
  inside = absl::StripAsciiWhitespace(inside);
  const size_t bar = inside.find('|');
  absl::string_view path = absl::StripAsciiWhitespace(inside.substr(0, bar));
  if (!ValidPath(path)) {
    return absl::StrCat("\"", path, "\" is not a merge field path (like person.first_name)");
  }
  field->path = std::string(path);
  field->fallback.reset();
  if (bar == absl::string_view::npos) return "";
  absl::string_view rest = absl::StripAsciiWhitespace(inside.substr(bar + 1));
  if (rest.size() < 2 || rest.front() != '"' || rest.back() != '"') {
    return "fallback must be a double-quoted string, like | \"there\"";
  }
  std::string fallback;
  for (size_t i = 1; i + 1 < rest.size(); ++i) {
    char c = rest[i];
    if (c == '\\') {
      if (i + 2 >= rest.size()) return "fallback ends with a lone backslash";
      char n = rest[++i];
      if (n != '"' && n != '\\') return "only \\\" and \\\\ may be escaped in a fallback";
      fallback.push_back(n);
    } else if (c == '"') {
      return "unescaped quote inside the fallback";
    } else {
      fallback.push_back(c);
    }
  }
  field->fallback = std::move(fallback);
  return "";
}

absl::Status Scan(absl::string_view text, absl::string_view field_name,
                  std::vector<Occurrence>* out) {
  size_t pos = 0;
  while (true) {
    const size_t open = text.find("{{", pos);
    if (open == absl::string_view::npos) return absl::OkStatus();
    const size_t close = text.find("}}", open + 2);
    if (close == absl::string_view::npos) {
      return InvalidField(field_name,
                          absl::StrCat("\"{{\" at offset ", open, " has no closing \"}}\""));
    }
    Occurrence occ{open, close + 2, {}};
    std::string error = ParseInside(text.substr(open + 2, close - open - 2), &occ.field);
    if (!error.empty()) {
      return InvalidField(field_name, absl::StrCat("merge field at offset ", open, ": ", error));
    }
    out->push_back(std::move(occ));
    pos = close + 2;
  }
}

}  // namespace

absl::StatusOr<std::vector<MergeField>> ParseMergeFields(absl::string_view text,
                                                         absl::string_view field_name) {
  std::vector<Occurrence> occurrences;
  absl::Status status = Scan(text, field_name, &occurrences);
  if (!status.ok()) return status;
  std::vector<MergeField> fields;
  fields.reserve(occurrences.size());
  for (Occurrence& o : occurrences) fields.push_back(std::move(o.field));
  return fields;
}

std::string HtmlEscape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

absl::StatusOr<Rendered> Render(absl::string_view text, const MergeData& data, Escape escape) {
  std::vector<Occurrence> occurrences;
  absl::Status status = Scan(text, "text", &occurrences);
  if (!status.ok()) return status;
  Rendered out;
  size_t pos = 0;
  for (const Occurrence& o : occurrences) {
    absl::StrAppend(&out.text, text.substr(pos, o.begin - pos));
    pos = o.end;
    const auto it = data.find(o.field.path);
    const std::string* value = nullptr;
    if (it != data.end() && !it->second.empty()) {
      value = &it->second;
    } else if (o.field.fallback.has_value()) {
      value = &*o.field.fallback;
    }
    if (value == nullptr) {
      absl::StrAppend(&out.text, text.substr(o.begin, o.end - o.begin));
      if (std::find(out.missing_fields.begin(), out.missing_fields.end(), o.field.path) ==
          out.missing_fields.end()) {
        out.missing_fields.push_back(o.field.path);
      }
      continue;
    }
    absl::StrAppend(&out.text, escape == Escape::kHtml ? HtmlEscape(*value) : *value);
  }
  absl::StrAppend(&out.text, text.substr(pos));
  return out;
}

}  // namespace sequences::domain
