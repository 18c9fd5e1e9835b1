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

// Walks a request, keeping the path of the field it is at in one buffer (appended on the way
// down, cut on the way back): a path is only copied when a violation names it.
class Walker {
 public:
  void Walk(const Message& m) {
    const Reflection* r = m.GetReflection();
    std::vector<const FieldDescriptor*> fields;
    r->ListFields(m, &fields);
    for (const FieldDescriptor* f : fields) {
      const size_t parent = path_.size();
      if (!path_.empty()) path_.push_back('.');
      path_.append(f->name());
      if (f->is_repeated()) {
        const int n = r->FieldSize(m, f);
        const int max =
            LimitOf(f, std::begin(kCountLimits), std::end(kCountLimits), kDefaultMaxRepeated);
        if (n > max) {
          v_.Add(path_, absl::StrCat("must have at most ", max,
                                     f->is_map() ? " entries" : " elements", " (has ", n, ")"));
          path_.resize(parent);
          continue;  // do not report every element of a list that is too long anyway
        }
        const size_t list = path_.size();
        for (int i = 0; i < n; ++i) {
          if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
            absl::StrAppend(&path_, "[", i, "]");
            CheckString(f, r->GetRepeatedString(m, f, i));
          } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
            const Message& element = r->GetRepeatedMessage(m, f, i);
            if (f->is_map()) {
              WalkMapEntry(element);
            } else {
              absl::StrAppend(&path_, "[", i, "]");
              Walk(element);
            }
          }
          path_.resize(list);
        }
      } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
        CheckString(f, r->GetString(m, f));
      } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        Walk(r->GetMessage(m, f));
      }
      path_.resize(parent);
    }
  }

  absl::Status ToStatus() const { return v_.ToStatus("request exceeds a limit"); }

 private:
  // A map entry is reported as `map["key"]` (the key itself bounded first); path_ is the map's.
  void WalkMapEntry(const Message& entry) {
    const FieldDescriptor* key_field = entry.GetDescriptor()->map_key();
    const FieldDescriptor* value_field = entry.GetDescriptor()->map_value();
    const Reflection* r = entry.GetReflection();
    const size_t map = path_.size();
    std::string scratch;
    const std::string* key = nullptr;
    if (key_field->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
      key = &r->GetStringReference(entry, key_field, &scratch);
      path_.append(" key");
      const bool ok = CheckString(key_field, *key);
      path_.resize(map);
      if (!ok) return;
    }
    if (key == nullptr) {
      path_.append("[?]");
    } else {
      absl::StrAppend(&path_, "[\"", *key, "\"]");
    }
    if (value_field->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
      std::string value_scratch;
      CheckString(value_field, r->GetStringReference(entry, value_field, &value_scratch));
    } else if (value_field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      Walk(r->GetMessage(entry, value_field));
    }
    path_.resize(map);
  }

  // Checks a string at path_.
  bool CheckString(const FieldDescriptor* f, const std::string& value) {
    const int max =
        LimitOf(f, std::begin(kStringLimits), std::end(kStringLimits), kDefaultMaxStringBytes);
    if (value.size() > static_cast<size_t>(max)) {
      v_.Add(path_, absl::StrCat("must be at most ", max, " bytes (is ", value.size(), ")"));
      return false;
    }
    if (f->type() == FieldDescriptor::TYPE_STRING && !IsValidUtf8(value)) {
      v_.Add(path_, "must be valid UTF-8");
      return false;
    }
    return true;
  }

  std::string path_;
  domain::FieldViolations v_;
};

}  // namespace

absl::Status CheckRequestLimits(const Message& request) {
  Walker w;
  w.Walk(request);
  return w.ToStatus();
}

}  // namespace sequences::api
