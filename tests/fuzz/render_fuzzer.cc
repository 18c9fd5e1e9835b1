// Merge-field rendering: a fuzzed template text and merge data through ParseMergeFields and Render
// (plain and HTML), and the template catalog's subjects and bodies with fuzzed merge data.
//
// Properties: nothing crashes; Render fails exactly when ParseMergeFields does, with a bounded
// error; missing fields are parsed paths, listed once; a text without fields comes back unchanged;
// an HTML render adds no markup (no '<' unless the template has one); HtmlEscape leaves none.

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "libs/domain/render.h"
#include "libs/domain/templates.h"
#include "libs/domain/validation.h"
#include "libs/runtime/text.h"
#include "tests/fuzz/checks.h"

namespace sequences::fuzz {
namespace {

void RenderOne(const std::string& text, const domain::MergeData& data) {
  absl::StatusOr<std::vector<domain::MergeField>> fields = domain::ParseMergeFields(text, "body");
  CheckBoundedError(fields.status());
  for (domain::Escape escape : {domain::Escape::kNone, domain::Escape::kHtml}) {
    absl::StatusOr<domain::Rendered> r = domain::Render(text, data, escape);
    FUZZ_CHECK(r.ok() == fields.ok(), "Render and ParseMergeFields disagree on the syntax");
    CheckBoundedError(r.status());
    if (!r.ok()) continue;
    std::set<std::string> paths;
    for (const domain::MergeField& f : *fields) paths.insert(f.path);
    std::set<std::string> seen;
    for (const std::string& m : r->missing_fields) {
      FUZZ_CHECK(paths.count(m) == 1, "a missing field that is not in the text");
      FUZZ_CHECK(seen.insert(m).second, "a missing field listed twice");
    }
    if (fields->empty()) FUZZ_CHECK(r->text == text, "a text without fields changed");
    if (escape == domain::Escape::kHtml && text.find('<') == std::string::npos) {
      FUZZ_CHECK(r->text.find('<') == std::string::npos, "an HTML render added markup");
    }
  }
}

}  // namespace
}  // namespace sequences::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sequences;  // NOLINT: a fuzzer's entry point
  using namespace sequences::fuzz;
  FuzzedDataProvider in(data, size);
  domain::MergeData merge;
  // Templates and merge data reach Render from proto string fields, which are valid UTF-8: invalid
  // bytes become U+FFFD.
  const auto utf8 = [](const std::string& s) { return PrintableUtf8(s, 1 << 20); };
  const int entries = in.ConsumeIntegralInRange(0, 8);
  for (int i = 0; i < entries; ++i) {
    std::string key = utf8(in.ConsumeRandomLengthString(64));
    merge[std::move(key)] = utf8(in.ConsumeRandomLengthString(256));
  }
  const bool catalog = in.ConsumeBool();
  const std::string text = utf8(in.ConsumeRemainingBytesAsString());

  const std::string escaped = domain::HtmlEscape(text);
  FUZZ_CHECK(escaped.find_first_of("<>\"'") == std::string::npos, "HtmlEscape left markup");
  RenderOne(text, merge);
  (void)domain::FindTemplate(text);
  if (catalog) {
    for (const v1::SequenceTemplate& t : domain::TemplateCatalog()) {
      for (const v1::Step& s : t.steps()) {
        if (!s.has_email()) continue;
        RenderOne(s.email().subject(), merge);
        RenderOne(s.email().body(), merge);
      }
    }
  }
  return 0;
}
