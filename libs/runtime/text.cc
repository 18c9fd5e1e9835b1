#include "libs/runtime/text.h"

#include "absl/strings/str_cat.h"

namespace sequences {
namespace {

// Length of the well-formed UTF-8 sequence at the start of `s`, or 0 if there is none.
size_t SequenceLength(absl::string_view s) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const auto cont = [&](size_t i) { return i < s.size() && (b(i) & 0xC0) == 0x80; };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;   // overlong
    if (c == 0xED && b(1) >= 0xA0) return 0;  // surrogates
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;   // overlong
    if (c == 0xF4 && b(1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

}  // namespace

bool IsValidUtf8(absl::string_view s) {
  while (!s.empty()) {
    const size_t n = SequenceLength(s);
    if (n == 0) return false;
    s.remove_prefix(n);
  }
  return true;
}

std::string PrintableUtf8(absl::string_view s, size_t max_bytes) {
  constexpr absl::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out;
  absl::string_view rest = s;
  while (!rest.empty()) {
    const size_t n = SequenceLength(rest);
    const size_t add = n == 0 ? kReplacement.size() : n;
    if (out.size() + add > max_bytes) {
      absl::StrAppend(&out, "\xE2\x80\xA6(", s.size(), " bytes)");
      return out;
    }
    if (n == 0) {
      out.append(kReplacement.data(), kReplacement.size());
      rest.remove_prefix(1);
    } else {
      out.append(rest.data(), n);
      rest.remove_prefix(n);
    }
  }
  return out;
}

std::string JsonQuote(absl::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppend(&out, "\\u00", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace sequences
