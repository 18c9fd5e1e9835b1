// Every envelope payload survives its protobuf encoding unchanged.

#include <catch2/catch.hpp>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/message_differencer.h"
#include "libs/domain/envelope.h"
#include "sequences/v1/commands.pb.h"
#include "sequences/v1/events.pb.h"

namespace sequences::domain {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

// Sets every field of `m` (recursively, up to `depth`) to a value derived from `seed`, choosing
// the first member of each oneof... except the envelope's, which the caller sets.
void Fill(Message* m, int seed, int depth) {
  const auto* d = m->GetDescriptor();
  const auto* r = m->GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->containing_oneof() != nullptr &&
        f->index_in_oneof() != seed % f->containing_oneof()->field_count()) {
      continue;
    }
    const int v = seed * 31 + i + 1;
    if (f->is_map()) {
      Message* entry = r->AddMessage(m, f);
      Fill(entry, v, depth - 1);
      continue;
    }
    if (f->is_repeated()) {
      for (int k = 0; k < 2; ++k) {
        switch (f->cpp_type()) {
          case FieldDescriptor::CPPTYPE_STRING:
            r->AddString(m, f, "s" + std::to_string(v + k));
            break;
          case FieldDescriptor::CPPTYPE_MESSAGE:
            if (depth > 0) Fill(r->AddMessage(m, f), v + k, depth - 1);
            break;
          case FieldDescriptor::CPPTYPE_INT32:
            r->AddInt32(m, f, v + k);
            break;
          case FieldDescriptor::CPPTYPE_ENUM:
            r->AddEnumValue(m, f, 1);
            break;
          default:
            break;
        }
      }
      continue;
    }
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        r->SetString(m, f, "s" + std::to_string(v));
        break;
      case FieldDescriptor::CPPTYPE_INT32:
        r->SetInt32(m, f, v % 50 + 1);
        break;
      case FieldDescriptor::CPPTYPE_INT64:
        r->SetInt64(m, f, int64_t{v} * 1000003);
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        r->SetBool(m, f, true);
        break;
      case FieldDescriptor::CPPTYPE_ENUM: {
        const auto* e = f->enum_type();
        r->SetEnumValue(m, f, e->value(e->value_count() - 1)->number());
        break;
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        if (depth > 0) Fill(r->MutableMessage(m, f), v, depth - 1);
        break;
      default:
        break;
    }
  }
}

TEST_CASE("Every envelope payload round-trips through its protobuf encoding", "[proto]") {
  const auto* oneof = v1::Envelope::descriptor()->FindOneofByName("payload");
  REQUIRE(oneof != nullptr);
  CHECK(oneof->field_count() >= 34);  // grows, never shrinks
  for (int i = 0; i < oneof->field_count(); ++i) {
    const FieldDescriptor* f = oneof->field(i);
    for (int variant = 0; variant < 2; ++variant) {
      v1::Envelope e =
          MakeEnvelope("id-1", "c1", absl::FromUnixMicros(1712345678123456), "cause", "corr");
      Message* payload = e.GetReflection()->MutableMessage(&e, f);
      Fill(payload, variant, 4);
      std::string bytes;
      REQUIRE(e.SerializeToString(&bytes));
      v1::Envelope back;
      REQUIRE(back.ParseFromString(bytes));
      INFO(f->name());
      CHECK(PayloadName(back) == f->name());
      CHECK(google::protobuf::util::MessageDifferencer::Equals(e, back));
      CHECK(FromProto(back.occurred_at()) == absl::FromUnixMicros(1712345678123456));
    }
  }
}

TEST_CASE("Sequence commands round-trip", "[proto]") {
  const auto* oneof = v1::SequenceCommand::descriptor()->FindOneofByName("command");
  for (int i = 0; i < oneof->field_count(); ++i) {
    v1::SequenceCommand c;
    c.set_sequence_id("s1");
    Fill(c.GetReflection()->MutableMessage(&c, oneof->field(i)), i, 4);
    v1::SequenceCommand back;
    REQUIRE(back.ParseFromString(c.SerializeAsString()));
    INFO(oneof->field(i)->name());
    CHECK(google::protobuf::util::MessageDifferencer::Equals(c, back));
  }
}

TEST_CASE("Timestamps convert both ways, negative and clamped", "[proto]") {
  for (absl::Time t :
       {absl::UnixEpoch(), absl::FromUnixMicros(-1), absl::FromUnixNanos(1),
        absl::FromCivil(absl::CivilSecond(2024, 2, 29, 23, 59, 59), absl::UTCTimeZone())}) {
    CHECK(FromProto(ToProto(t)) == t);
  }
  CHECK(ToProto(absl::InfiniteFuture()).seconds() == 253402300799);
  CHECK(ToProto(absl::InfinitePast()).seconds() == -62135596800);
  CHECK(FromProtoDuration(ToProtoDuration(absl::Milliseconds(-1500))) == absl::Milliseconds(-1500));
}

TEST_CASE("Item keys parse into company, entity and item", "[proto]") {
  auto k = ParseItemKey("c1/lead/abc");
  REQUIRE(k.ok());
  CHECK(k->company_id == "c1");
  CHECK(EntityKindOf(*k) == v1::ENTITY_KIND_LEAD);
  CHECK_FALSE(ParseItemKey("c1/deal").ok());
  CHECK_FALSE(ParseItemKey("c1/org/1").ok());
  CHECK_FALSE(ParseItemKey("c1/deal/1/2").ok());
}

}  // namespace
}  // namespace sequences::domain
