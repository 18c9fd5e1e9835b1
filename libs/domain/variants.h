#ifndef SEQUENCES_LIBS_DOMAIN_VARIANTS_H_
#define SEQUENCES_LIBS_DOMAIN_VARIANTS_H_

// A/B variants of an email step: which variant an enrollment gets.
//
// The draw is a pure function of (enrollment id, step id) mapped onto the variants' cumulative
// weights in list order, so it is the same on every replay and on every executor instance, and
// independent of the clock and of other enrollments. Its hash is spelled out here (FNV-1a 64 of
// the two ids, then the SplitMix64 finalizer), never std::hash or absl::Hash, whose values may
// change between builds or processes.

#include <cstdint>

#include "absl/strings/string_view.h"
#include "sequences/v1/sequence.pb.h"

namespace sequences::domain {

inline constexpr int kMinEmailVariants = 2;
inline constexpr int kMaxEmailVariants = 5;
inline constexpr int kMaxVariantWeight = 1000;
inline constexpr int kMaxVariantIdLength = 32;

// A uniform 64-bit draw for this enrollment at this step.
uint64_t VariantDraw(absl::string_view enrollment_id, absl::string_view step_id);

// The index of the variant the enrollment gets, or -1 when `variants` is empty.
// REQUIRES: every weight is >= 1 (ValidateSteps guarantees it for saved sequences; a weight < 1
// counts as 1 here, so the function is total).
int ChooseVariant(absl::string_view enrollment_id, absl::string_view step_id,
                  const google::protobuf::RepeatedPtrField<v1::EmailVariant>& variants);

}  // namespace sequences::domain

#endif  // SEQUENCES_LIBS_DOMAIN_VARIANTS_H_
