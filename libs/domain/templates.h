#ifndef SEQUENCES_LIBS_DOMAIN_TEMPLATES_H_
#define SEQUENCES_LIBS_DOMAIN_TEMPLATES_H_

// The static library of starter sequences ("sequence templates"). Every template passes
// ValidateSequenceDefinition.

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "sequences/v1/sequence.pb.h"

namespace sequences::domain {

// All templates, in display order. The span lives for the whole program.
absl::Span<const v1::SequenceTemplate> TemplateCatalog();

// The template with `id`, or nullptr.
const v1::SequenceTemplate* FindTemplate(absl::string_view id);

}  // namespace sequences::domain

#endif  // SEQUENCES_LIBS_DOMAIN_TEMPLATES_H_
