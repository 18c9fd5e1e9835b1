#include "libs/domain/render.h"

#include <catch2/catch.hpp>

#include "libs/domain/errors.h"

namespace sequences::domain {
namespace {

const MergeData kData = {
    {"person.first_name", "Ada"}, {"org.name", "R&D <Labs>"}, {"person.last_name", ""}};

TEST_CASE("Merge fields are replaced by their values", "[render]") {
  auto r = Render("Hi {{person.first_name}}, from {{ org.name }}", kData, Escape::kNone);
  REQUIRE(r.ok());
  CHECK(r->text == "Hi Ada, from R&D <Labs>");
  CHECK(r->missing_fields.empty());
}

TEST_CASE("Values are HTML-escaped for an HTML body, the template is not", "[render]") {
  auto r = Render("<p>{{org.name}}</p>", kData, Escape::kHtml);
  REQUIRE(r.ok());
  CHECK(r->text == "<p>R&amp;D &lt;Labs&gt;</p>");
  CHECK(HtmlEscape("\"'") == "&quot;&#39;");
}

TEST_CASE("A fallback fills a missing or empty value", "[render]") {
  auto r = Render(R"({{person.nick | "there"}} {{person.last_name|"X \"Q\" \\"}})", kData,
                  Escape::kNone);
  REQUIRE(r.ok());
  CHECK(r->text == R"(there X "Q" \)");
  CHECK(r->missing_fields.empty());
}

TEST_CASE("Unfilled fields are reported once each and left as written", "[render]") {
  auto r = Render("{{a.b}} {{person.last_name}} {{a.b}}", kData, Escape::kNone);
  REQUIRE(r.ok());
  CHECK(r->text == "{{a.b}} {{person.last_name}} {{a.b}}");
  CHECK(r->missing_fields == std::vector<std::string>{"a.b", "person.last_name"});
}

TEST_CASE("Single braces are text, malformed fields are INVALID_ARGUMENT", "[render]") {
  CHECK(Render("{a} } {", kData, Escape::kNone)->text == "{a} } {");
  for (const char* bad : {"{{", "{{ }}", "{{1abc}}", "{{a..b}}", "{{a.}}", "{{a | there}}",
                          "{{a | \"x}}", "{{a | \"x\\y\"}}", "{{a-b}}"}) {
    INFO(bad);
    absl::Status st = Render(bad, kData, Escape::kNone).status();
    CHECK(st.code() == absl::StatusCode::kInvalidArgument);
    CHECK_FALSE(GetFieldViolations(st).empty());
  }
}

TEST_CASE("ParseMergeFields lists the fields with their fallbacks, naming the field on error",
          "[render]") {
  auto fields = ParseMergeFields("{{a}} {{b.c | \"d\"}}");
  REQUIRE(fields.ok());
  REQUIRE(fields->size() == 2);
  CHECK((*fields)[0] == MergeField{"a", std::nullopt});
  CHECK((*fields)[1] == MergeField{"b.c", std::string("d")});
  absl::Status st = ParseMergeFields("{{", "steps[0].email.body").status();
  CHECK(GetFieldViolations(st).at(0).field == "steps[0].email.body");
}

}  // namespace
}  // namespace sequences::domain
