#include "libs/runtime/text.h"

#include <catch2/catch.hpp>

namespace sequences {
namespace {

TEST_CASE("well-formed UTF-8 is accepted and every malformed kind is refused") {
  CHECK(IsValidUtf8(""));
  CHECK(IsValidUtf8("plain ascii"));
  CHECK(IsValidUtf8("Z\xC3\xBCrich \xE2\x82\xAC \xF0\x9F\x98\x80"));  // ü € 😀
  CHECK(IsValidUtf8("\xE2\x80\xAE"));                                 // RTL override is valid text
  CHECK_FALSE(IsValidUtf8("\xFF"));
  CHECK_FALSE(IsValidUtf8("\xC3"));              // truncated
  CHECK_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong '/'
  CHECK_FALSE(IsValidUtf8("\xE0\x80\xAF"));      // overlong
  CHECK_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate
  CHECK_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  CHECK_FALSE(IsValidUtf8("\x80"));              // lone continuation
}

TEST_CASE("printable text replaces malformed bytes and is cut at a character boundary") {
  CHECK(PrintableUtf8("a\xFF"
                      "b",
                      100) ==
        "a\xEF\xBF\xBD"
        "b");
  const std::string euros = "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC";  // three 3-byte characters
  const std::string cut = PrintableUtf8(euros, 7);
  CHECK(cut.rfind("\xE2\x82\xAC\xE2\x82\xAC", 0) == 0);
  CHECK(cut.find("(9 bytes)") != std::string::npos);
  CHECK(IsValidUtf8(cut));
  const std::string huge(4 << 20, 'x');
  CHECK(PrintableUtf8(huge, 256).size() < 300);
}

TEST_CASE("a JSON string literal escapes quotes, backslashes and control characters only") {
  CHECK(JsonQuote("") == "\"\"");
  CHECK(JsonQuote("say \"hi\"\\ now") == "\"say \\\"hi\\\"\\\\ now\"");
  CHECK(JsonQuote("a\nb\rc\td") == "\"a\\nb\\rc\\td\"");
  CHECK(JsonQuote(std::string("\x01\x1f", 2)) == "\"\\u0001\\u001f\"");
  CHECK(JsonQuote("Gr\xc3\xbc\xc3\x9f"
                  "e \x7f") ==
        "\"Gr\xc3\xbc\xc3\x9f"
        "e \x7f\"");
}

}  // namespace
}  // namespace sequences
