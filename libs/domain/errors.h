#ifndef SEQUENCES_LIBS_DOMAIN_ERRORS_H_
#define SEQUENCES_LIBS_DOMAIN_ERRORS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace sequences::domain {

// Type URL of the google.rpc.BadRequest payload attached to every INVALID_ARGUMENT status the
// domain returns. The API copies it into the gRPC status details unchanged.
inline constexpr char kBadRequestTypeUrl[] = "type.googleapis.com/google.rpc.BadRequest";

// One broken rule: `field` is a path into the request ("steps[2].delay.amount"), `description`
// names the rule ("must be between 0 and 365 days").
struct FieldViolation {
  std::string field;
  std::string description;
  friend bool operator==(const FieldViolation&, const FieldViolation&) = default;
};

// Collects field violations and turns them into one INVALID_ARGUMENT status.
// Bounded whatever the input: at most kMaxViolations are kept (then one entry saying more were not
// listed), paths are cut to kMaxFieldPathBytes and descriptions to kMaxDescriptionBytes, so an
// error never echoes megabytes of a bad request back.
// Not thread-safe; a value type.
class FieldViolations {
 public:
  static constexpr size_t kMaxViolations = 20;
  static constexpr size_t kMaxFieldPathBytes = 200;
  static constexpr size_t kMaxDescriptionBytes = 300;

  void Add(absl::string_view field, absl::string_view description);
  // Adds every violation of `status` (if it carries a BadRequest) with `prefix` prepended to its
  // field paths, e.g. prefix "steps[1]" + ".email.subject".
  void AddAllFrom(absl::string_view prefix, const absl::Status& status);
  bool empty() const { return violations_.empty(); }
  const std::vector<FieldViolation>& violations() const { return violations_; }
  // OK when empty; else INVALID_ARGUMENT with `message`, the first violation in the message text,
  // and a google.rpc.BadRequest payload listing all of them.
  [[nodiscard]] absl::Status ToStatus(absl::string_view message) const;

 private:
  std::vector<FieldViolation> violations_;
};

// INVALID_ARGUMENT with a BadRequest payload naming one field.
[[nodiscard]] absl::Status InvalidField(absl::string_view field, absl::string_view description);

// The violations carried by `status` (empty when it has no BadRequest payload).
std::vector<FieldViolation> GetFieldViolations(const absl::Status& status);

}  // namespace sequences::domain

#endif  // SEQUENCES_LIBS_DOMAIN_ERRORS_H_
