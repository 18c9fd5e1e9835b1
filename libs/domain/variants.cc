#include "libs/domain/variants.h"

#include <algorithm>

namespace sequences::domain {
namespace {

constexpr uint64_t kFnvOffset = 14695981039346656037ULL;
constexpr uint64_t kFnvPrime = 1099511628211ULL;

uint64_t Fnv1a(uint64_t h, absl::string_view bytes) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= kFnvPrime;
  }
  return h;
}

uint64_t SplitMix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

uint64_t VariantDraw(absl::string_view enrollment_id, absl::string_view step_id) {
  uint64_t h = Fnv1a(kFnvOffset, enrollment_id);
  h = Fnv1a(h, absl::string_view("\0", 1));  // "ab"+"c" and "a"+"bc" differ
  return SplitMix64(Fnv1a(h, step_id));
}

int ChooseVariant(absl::string_view enrollment_id, absl::string_view step_id,
                  const google::protobuf::RepeatedPtrField<v1::EmailVariant>& variants) {
  if (variants.empty()) return -1;
  uint64_t total = 0;
  for (const v1::EmailVariant& v : variants)
    total += static_cast<uint64_t>(std::max(1, v.weight()));
  // total <= 5 * 1000 for valid steps: the modulo bias is below 2^-50.
  uint64_t point = VariantDraw(enrollment_id, step_id) % total;
  for (int i = 0; i < variants.size(); ++i) {
    const uint64_t w = static_cast<uint64_t>(std::max(1, variants[i].weight()));
    if (point < w) return i;
    point -= w;
  }
  return variants.size() - 1;  // unreachable: point < total
}

}  // namespace sequences::domain
