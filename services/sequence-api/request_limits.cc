#include "services/sequence-api/request_limits.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/domain/errors.h"
#include "libs/domain/validation.h"
#include "libs/runtime/text.h"

namespace sequences::api {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

struct Limit {
  const char* field;  // full name of the field
  int max;
};

// Strings allowed to be longer than kDefaultMaxStringBytes.
constexpr Limit kStringLimits[] = {
    {"sequences.v1.EmailStep.body", domain::kMaxBodyLength},
    {"sequences.v1.EmailTemplate.body", domain::kMaxBodyLength},
    {"sequences.v1.ActivityStep.note", 10000},
    {"sequences.v1.EnrollItem.MergeDataEntry.value", 4096},
    {"sequences.v1.UpdateEnrollmentDataRequest.MergeDataEntry.value", 4096},
};

// Tokens the API itself made (signed, tokens.h) may be longer: a consistency token names every
// partition a write touched (about 70 bytes each; a batch on a 100-partition topic); a resume
// token names every partition of executor-events.
constexpr int kMaxTokenBytes = 8192;

// Repeated fields allowed more than kDefaultMaxRepeated elements.
constexpr Limit kCountLimits[] = {
    {"sequences.v1.BatchEnrollRequest.items", 5000},
    {"sequences.v1.SequenceSettings.holidays", domain::kMaxHolidays},
    {"sequences.v1.EnrollItem.merge_data", 200},
    {"sequences.v1.UpdateEnrollmentDataRequest.merge_data", 200},
};

int LimitOf(const FieldDescriptor* f, const Limit* begin, const Limit* end, int def) {
  if (begin == std::begin(kStringLimits) &&
      (f->name() == "page_token" || f->name() == "consistency_token" ||
       f->name() == "resume_token")) {
    return kMaxTokenBytes;
  }
  for (const Limit* l = begin; l != end; ++l) {
    if (f->full_name() == l->field) return l->max;
  }
  return def;
}

class Walker {
 public:
  void Walk(const Message& m, const std::string& path) {
    const Reflection* r = m.GetReflection();
    std::vector<const FieldDescriptor*> fields;
    r->ListFields(m, &fields);
    for (const FieldDescriptor* f : fields) {
      const std::string p = path.empty() ? f->name() : absl::StrCat(path, ".", f->name());
      if (f->is_repeated()) {
        const int n = r->FieldSize(m, f);
        const int max =
            LimitOf(f, std::begin(kCountLimits), std::end(kCountLimits), kDefaultMaxRepeated);
        if (n > max) {
          v_.Add(p, absl::StrCat("must have at most ", max, f->is_map() ? " entries" : " elements",
                                 " (has ", n, ")"));
          continue;  // do not report every element of a list that is too long anyway
        }
        for (int i = 0; i < n; ++i) {
          if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
            CheckString(f, r->GetRepeatedString(m, f, i), absl::StrCat(p, "[", i, "]"));
          } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
            const Message& element = r->GetRepeatedMessage(m, f, i);
            if (f->is_map()) {
              WalkMapEntry(element, p);
            } else {
              Walk(element, absl::StrCat(p, "[", i, "]"));
            }
          }
        }
      } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
        CheckString(f, r->GetString(m, f), p);
      } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        Walk(r->GetMessage(m, f), p);
      }
    }
  }

  absl::Status ToStatus() const { return v_.ToStatus("request exceeds a limit"); }

 private:
  // A map entry is reported as `map["key"]` (the key itself bounded first).
  void WalkMapEntry(const Message& entry, const std::string& map_path) {
    const FieldDescriptor* key_field = entry.GetDescriptor()->map_key();
    const FieldDescriptor* value_field = entry.GetDescriptor()->map_value();
    const Reflection* r = entry.GetReflection();
    std::string key_text = "?";
    if (key_field->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
      const std::string key = r->GetString(entry, key_field);
      if (!CheckString(key_field, key, absl::StrCat(map_path, " key"))) return;
      key_text = absl::StrCat("\"", key, "\"");
    }
    const std::string p = absl::StrCat(map_path, "[", key_text, "]");
    if (value_field->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
      CheckString(value_field, r->GetString(entry, value_field), p);
    } else if (value_field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      Walk(r->GetMessage(entry, value_field), p);
    }
  }

  bool CheckString(const FieldDescriptor* f, const std::string& value, const std::string& path) {
    const int max =
        LimitOf(f, std::begin(kStringLimits), std::end(kStringLimits), kDefaultMaxStringBytes);
    if (value.size() > static_cast<size_t>(max)) {
      v_.Add(path, absl::StrCat("must be at most ", max, " bytes (is ", value.size(), ")"));
      return false;
    }
    if (f->type() == FieldDescriptor::TYPE_STRING && !IsValidUtf8(value)) {
      v_.Add(path, "must be valid UTF-8");
      return false;
    }
    return true;
  }

  domain::FieldViolations v_;
};

}  // namespace

absl::Status CheckRequestLimits(const Message& request) {
  Walker w;
  w.Walk(request, "");
  return w.ToStatus();
}

}  // namespace sequences::api
