// Adversarial end to end (tier e2e): company B's caller, with a valid token for B and nothing else,
// tries to read and change company A's data through every RPC; concurrent retries try to write
// twice; hostile input tries to break the service. Real sequence-api and step-executor processes,
// the real broker, real gRPC.
//
// A new RPC joins the tables below: kCrossTenantCases (every RPC), the concurrent-retry list
// (every mutating RPC) and kHostileCases.
#include <catch2/catch.hpp>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/e2e/system/system_harness.h"

namespace sequences::testing {
namespace {

constexpr char kVictim[] = "acme";      // company A
constexpr char kAttacker[] = "globex";  // company B
constexpr char kVictimUser[] = "a-user";
constexpr char kAttackerUser[] = "b-user";
constexpr char kSharedOwner[] = "shared-owner";  // an owner id both companies use

grpc::ClientContext* As(std::unique_ptr<grpc::ClientContext>& holder, const std::string& company,
                        const std::string& user) {
  holder = CallAs(company, user);
  return holder.get();
}

// Everything company A has, as B might learn of it (names from logs, tokens from a leak).
struct Victim {
  std::string sequence;     // resource name
  std::string sequence_id;  // the id alone
  std::vector<std::string> enrollments;
  std::string consistency_token;
  std::string page_token;   // from A's own ListEnrollments
  std::string watch_token;  // from A's own WatchEnrollments of its sequence
  int64_t version = 0;
  std::string email_template;     // resource name of A's email template
  std::string email_template_id;  // the id alone
};

// What B legitimately has.
struct Attacker {
  std::string sequence;
  std::string consistency_token;
  std::string page_token;  // from B's own ListEnrollments of its sequence
};

std::string CreateFor(ApiProcess& api, const std::string& company, const std::string& user,
                      const std::string& request_id, std::string* token) {
  v1::CreateSequenceRequest req;
  req.set_parent(absl::StrCat("companies/", company));
  req.set_request_id(request_id);
  v1::Sequence* s = req.mutable_sequence();
  s->set_display_name(absl::StrCat("Secret plan of ", company));
  s->set_entity_kind(v1::ENTITY_KIND_DEAL);
  *s->add_steps() = ActivityStep("call-1", 60);
  *s->add_steps() = ActivityStep("call-2", 120);
  v1::SequenceResponse resp;
  std::unique_ptr<grpc::ClientContext> ctx;
  grpc::Status st = api.sequences().CreateSequence(As(ctx, company, user), req, &resp);
  INFO(st.error_message());
  REQUIRE(st.ok());
  if (token != nullptr) *token = resp.consistency_token();
  return resp.sequence().name();
}

// An email template of `company` (its name says whose it is); returns its resource name.
std::string CreateTemplateFor(ApiProcess& api, const std::string& company, const std::string& user,
                              const std::string& request_id) {
  v1::CreateEmailTemplateRequest req;
  req.set_parent(absl::StrCat("companies/", company));
  req.set_request_id(request_id);
  req.mutable_email_template()->set_display_name(absl::StrCat("Secret plan of ", company));
  req.mutable_email_template()->set_subject("Secret plan for {{person.first_name}}");
  req.mutable_email_template()->set_body("Secret plan body");
  v1::EmailTemplateResponse resp;
  std::unique_ptr<grpc::ClientContext> ctx;
  grpc::Status st = api.sequences().CreateEmailTemplate(As(ctx, company, user), req, &resp);
  INFO(st.error_message());
  REQUIRE(st.ok());
  return resp.email_template().name();
}

// A draft email step whose text comes from email template `template_id`.
v1::Step TemplateStep(const std::string& template_id) {
  v1::Step step = EmailStep("mail-1", 60, /*automatic=*/false, "", "");
  step.mutable_email()->set_email_template_id(template_id);
  return step;
}

std::string EnrollFor(ApiProcess& api, const std::string& company, const std::string& user,
                      const std::string& sequence, const std::string& item_id,
                      const std::string& owner) {
  v1::EnrollRequest req;
  req.set_parent(sequence);
  v1::EnrollItem* item = req.mutable_item();
  item->set_entity_kind(v1::ENTITY_KIND_DEAL);
  item->set_item_id(item_id);
  item->set_owner_id(owner);
  item->set_request_id("enroll-" + item_id);
  item->mutable_recipient()->set_email(item_id + "@example.com");
  (*item->mutable_merge_data())["person.first_name"] = "Ada";
  v1::EnrollmentResponse resp;
  std::unique_ptr<grpc::ClientContext> ctx;
  grpc::Status st = api.enrollments().Enroll(As(ctx, company, user), req, &resp);
  INFO(st.error_message());
  REQUIRE(st.ok());
  return resp.enrollment().name();
}

void WaitUntilStatus(ApiProcess& api, const std::string& company, const std::string& name,
                     v1::EnrollmentStatus status) {
  // The read model folds asynchronously: NOT_FOUND until the enroll request is folded.
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  v1::Enrollment e;
  grpc::Status st;
  do {
    v1::GetEnrollmentRequest req;
    req.set_name(name);
    e.Clear();
    std::unique_ptr<grpc::ClientContext> ctx;
    st = api.enrollments().GetEnrollment(As(ctx, company, "u"), req, &e);
    if (st.ok() && e.status() == status && !e.pending()) return;
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < deadline);
  INFO(st.error_message() << " " << e.DebugString());
  REQUIRE(e.status() == status);
}

// The page token of the first page (page_size 1) of `parent`'s enrollments, as `company`.
std::string FirstPageToken(ApiProcess& api, const std::string& company, const std::string& parent) {
  v1::ListEnrollmentsRequest req;
  req.set_parent(parent);
  req.set_page_size(1);
  v1::ListEnrollmentsResponse resp;
  std::unique_ptr<grpc::ClientContext> ctx;
  grpc::Status st = api.enrollments().ListEnrollments(As(ctx, company, "u"), req, &resp);
  INFO(st.error_message());
  REQUIRE(st.ok());
  REQUIRE_FALSE(resp.next_page_token().empty());
  return resp.next_page_token();
}

// `token` with its readable body changed the way an attacker would: every occurrence of `from`
// replaced by `to` (the signature is kept as it was).
std::string Tamper(const std::string& token, const std::string& from, const std::string& to) {
  const size_t dot = token.find('.');
  std::string payload;
  if (!absl::WebSafeBase64Unescape(token.substr(0, dot), &payload)) return token + "x";
  payload = absl::StrReplaceAll(payload, {{from, to}});
  return absl::WebSafeBase64Escape(payload) +
         (dot == std::string::npos ? std::string() : token.substr(dot));
}

// A consistency token whose positions were moved far beyond the end of the log (its body is the
// base64 text of "v1;topic|partition|offset;..."); the signature is kept as it was.
std::string BeyondTheLog(const std::string& token) {
  const size_t dot = token.find('.');
  std::string payload, positions;
  if (!absl::WebSafeBase64Unescape(token.substr(0, dot), &payload)) return token + "x";
  const size_t body = payload.rfind('\x1f') + 1;
  if (!absl::WebSafeBase64Unescape(payload.substr(body), &positions)) return token + "x";
  std::string forged;
  for (absl::string_view entry : absl::StrSplit(positions, ';')) {
    if (!forged.empty()) forged += ";";
    const size_t last = entry.rfind('|');
    forged += last == absl::string_view::npos ? std::string(entry)
                                              : absl::StrCat(entry.substr(0, last), "|999999999");
  }
  payload = payload.substr(0, body) + absl::WebSafeBase64Escape(forged);
  return absl::WebSafeBase64Escape(payload) + token.substr(dot);
}

// One attempt of B against A: the status and the whole response as text.
struct Outcome {
  grpc::Status status;
  std::string response;
};

template <typename Resp>
Outcome Done(const grpc::Status& s, const Resp& r) {
  return {s, r.DebugString()};
}

// A WatchEnrollments stream read to its end (a refusal ends it at once; `deadline_seconds` bounds
// one that is accepted): its status, and every message it delivered.
Outcome WatchAs(ApiProcess& api, const std::string& company, const std::string& user,
                const v1::WatchEnrollmentsRequest& r, double deadline_seconds = 3) {
  std::unique_ptr<grpc::ClientContext> ctx = CallAs(company, user, deadline_seconds);
  std::unique_ptr<grpc::ClientReader<v1::WatchEnrollmentsResponse>> reader =
      api.enrollments().WatchEnrollments(ctx.get(), r);
  std::string seen;
  v1::WatchEnrollmentsResponse m;
  while (reader->Read(&m)) seen += m.DebugString();
  return {reader->Finish(), seen};
}

struct CrossTenantCase {
  const char* name;
  // Runs the attempt as B. `ok_allowed`: the call may succeed, if it shows nothing of A and
  // changes nothing of A (e.g. B lists its own data).
  bool ok_allowed;
  std::function<Outcome(ApiProcess&, const Victim&, const Attacker&)> attempt;
};

#define B_CALL(stub, method, req, resp)                                            \
  [&] {                                                                            \
    std::unique_ptr<grpc::ClientContext> ctx;                                      \
    grpc::Status s = (stub).method(As(ctx, kAttacker, kAttackerUser), req, &resp); \
    return Done(s, resp);                                                          \
  }()

const std::vector<CrossTenantCase>& CrossTenantCases() {
  static const auto* cases = new std::vector<CrossTenantCase>{
      {"GetSequence by name", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::GetSequenceRequest r;
         r.set_name(a.sequence);
         v1::Sequence resp;
         return B_CALL(api.sequences(), GetSequence, r, resp);
       }},
      {"GetSequence by A's id under B's company", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::GetSequenceRequest r;
         r.set_name(absl::StrCat("companies/", kAttacker, "/sequences/", a.sequence_id));
         v1::Sequence resp;
         return B_CALL(api.sequences(), GetSequence, r, resp);
       }},
      {"GetSequence of B's own with A's consistency token", false,
       [](ApiProcess& api, const Victim& a, const Attacker& b) {
         v1::GetSequenceRequest r;
         r.set_name(b.sequence);
         r.set_consistency_token(a.consistency_token);
         v1::Sequence resp;
         return B_CALL(api.sequences(), GetSequence, r, resp);
       }},
      {"ListSequences of A", false,
       [](ApiProcess& api, const Victim&, const Attacker&) {
         v1::ListSequencesRequest r;
         r.set_parent(absl::StrCat("companies/", kVictim));
         v1::ListSequencesResponse resp;
         return B_CALL(api.sequences(), ListSequences, r, resp);
       }},
      {"ListSequences of B with A's page token", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::ListSequencesRequest r;
         r.set_parent(absl::StrCat("companies/", kAttacker));
         r.set_page_token(a.page_token);
         v1::ListSequencesResponse resp;
         return B_CALL(api.sequences(), ListSequences, r, resp);
       }},
      {"ListSequences of B (own data only)", true,
       [](ApiProcess& api, const Victim&, const Attacker&) {
         v1::ListSequencesRequest r;
         r.set_parent(absl::StrCat("companies/", kAttacker));
         r.set_show_deleted(true);
         v1::ListSequencesResponse resp;
         return B_CALL(api.sequences(), ListSequences, r, resp);
       }},
      {"UpdateSequence", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::UpdateSequenceRequest r;
         r.mutable_sequence()->set_name(a.sequence);
         r.mutable_sequence()->set_display_name("pwned");
         r.mutable_update_mask()->add_paths("display_name");
         r.set_request_id("x-update");
         v1::SequenceResponse resp;
         return B_CALL(api.sequences(), UpdateSequence, r, resp);
       }},
      {"DeleteSequence", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::DeleteSequenceRequest r;
         r.set_name(a.sequence);
         r.set_request_id("x-delete");
         v1::SequenceResponse resp;
         return B_CALL(api.sequences(), DeleteSequence, r, resp);
       }},
      {"SwitchAutomatedSending", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::SwitchAutomatedSendingRequest r;
         r.set_name(a.sequence);
         r.set_enabled(true);
         r.set_request_id("x-switch");
         v1::SequenceResponse resp;
         return B_CALL(api.sequences(), SwitchAutomatedSending, r, resp);
       }},
      {"GrantSendingConsent", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::GrantSendingConsentRequest r;
         r.set_name(a.sequence);
         r.set_request_id("x-grant");
         v1::SequenceResponse resp;
         return B_CALL(api.sequences(), GrantSendingConsent, r, resp);
       }},
      {"RevokeSendingConsent of A's user", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::RevokeSendingConsentRequest r;
         r.set_name(a.sequence);
         r.set_user_id(kVictimUser);
         r.set_request_id("x-revoke");
         v1::SequenceResponse resp;
         return B_CALL(api.sequences(), RevokeSendingConsent, r, resp);
       }},
      {"PauseSequence", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::PauseSequenceRequest r;
         r.set_name(a.sequence);
         r.set_request_id("x-pause-seq");
         v1::SequenceResponse resp;
         return B_CALL(api.sequences(), PauseSequence, r, resp);
       }},
      {"ResumeSequence", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::ResumeSequenceRequest r;
         r.set_name(a.sequence);
         r.set_request_id("x-resume-seq");
         v1::SequenceResponse resp;
         return B_CALL(api.sequences(), ResumeSequence, r, resp);
       }},
      {"PreviewSchedule with proposed steps (edit impacts)", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::PreviewScheduleRequest r;
         r.set_name(a.sequence);
         *r.add_proposed_steps() = ActivityStep("call-1", 1);
         v1::PreviewScheduleResponse resp;
         return B_CALL(api.sequences(), PreviewSchedule, r, resp);
       }},
      {"CreateSequence under A's company, reusing A's request id", false,
       [](ApiProcess& api, const Victim&, const Attacker&) {
         v1::CreateSequenceRequest r;
         r.set_parent(absl::StrCat("companies/", kVictim));
         r.set_request_id("create-plan");  // the id A created its sequence with
         r.mutable_sequence()->set_display_name("Planted by globex");
         r.mutable_sequence()->set_entity_kind(v1::ENTITY_KIND_DEAL);
         *r.mutable_sequence()->add_steps() = ActivityStep("call-1", 60);
         v1::SequenceResponse resp;
         return B_CALL(api.sequences(), CreateSequence, r, resp);
       }},
      {"ListSequenceTemplates (the shared starter library: nothing of A's)", true,
       [](ApiProcess& api, const Victim&, const Attacker&) {
         v1::ListSequenceTemplatesRequest r;
         v1::ListSequenceTemplatesResponse resp;
         return B_CALL(api.sequences(), ListSequenceTemplates, r, resp);
       }},
      {"ListEnrollmentEvents of A's enrollment", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::ListEnrollmentEventsRequest r;
         r.set_name(a.enrollments[0]);
         v1::ListEnrollmentEventsResponse resp;
         return B_CALL(api.enrollments(), ListEnrollmentEvents, r, resp);
       }},
      {"WatchEnrollments of A's sequence", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::WatchEnrollmentsRequest r;
         r.set_parent(absl::StrCat("companies/", kVictim));
         r.set_sequence(a.sequence);
         return WatchAs(api, kAttacker, kAttackerUser, r);
       }},
      {"WatchEnrollments of A's sequence under B's company, with A's resume token", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::WatchEnrollmentsRequest r;
         r.set_parent(absl::StrCat("companies/", kAttacker));
         r.set_sequence(a.sequence);
         r.set_resume_token(a.watch_token);
         return WatchAs(api, kAttacker, kAttackerUser, r);
       }},
      {"WatchEnrollments of A's owner (an owner id both companies use)", false,
       [](ApiProcess& api, const Victim&, const Attacker&) {
         v1::WatchEnrollmentsRequest r;
         r.set_parent(absl::StrCat("companies/", kVictim));
         r.set_owner_id(kSharedOwner);
         return WatchAs(api, kAttacker, kAttackerUser, r);
       }},
      {"WatchEnrollments of B's own sequence with A's resume token", false,
       [](ApiProcess& api, const Victim& a, const Attacker& b) {
         v1::WatchEnrollmentsRequest r;
         r.set_parent(absl::StrCat("companies/", kAttacker));
         r.set_sequence(b.sequence);
         r.set_resume_token(a.watch_token);
         return WatchAs(api, kAttacker, kAttackerUser, r);
       }},
      {"GetSequenceStatistics of A's sequence", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::GetSequenceStatisticsRequest r;
         r.set_name(a.sequence);
         v1::SequenceStatistics resp;
         return B_CALL(api.sequences(), GetSequenceStatistics, r, resp);
       }},
      {"CreateEmailTemplate under A's company", false,
       [](ApiProcess& api, const Victim&, const Attacker&) {
         v1::CreateEmailTemplateRequest r;
         r.set_parent(absl::StrCat("companies/", kVictim));
         r.set_request_id("x-create-template");
         r.mutable_email_template()->set_display_name("Planted by globex");
         r.mutable_email_template()->set_subject("s");
         r.mutable_email_template()->set_body("b");
         v1::EmailTemplateResponse resp;
         return B_CALL(api.sequences(), CreateEmailTemplate, r, resp);
       }},
      {"GetEmailTemplate by name", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::GetEmailTemplateRequest r;
         r.set_name(a.email_template);
         v1::EmailTemplate resp;
         return B_CALL(api.sequences(), GetEmailTemplate, r, resp);
       }},
      {"GetEmailTemplate by A's id under B's company", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::GetEmailTemplateRequest r;
         r.set_name(absl::StrCat("companies/", kAttacker, "/emailTemplates/", a.email_template_id));
         v1::EmailTemplate resp;
         return B_CALL(api.sequences(), GetEmailTemplate, r, resp);
       }},
      {"ListEmailTemplates of A", false,
       [](ApiProcess& api, const Victim&, const Attacker&) {
         v1::ListEmailTemplatesRequest r;
         r.set_parent(absl::StrCat("companies/", kVictim));
         v1::ListEmailTemplatesResponse resp;
         return B_CALL(api.sequences(), ListEmailTemplates, r, resp);
       }},
      {"ListEmailTemplates of B (own data only)", true,
       [](ApiProcess& api, const Victim&, const Attacker&) {
         v1::ListEmailTemplatesRequest r;
         r.set_parent(absl::StrCat("companies/", kAttacker));
         r.set_show_deleted(true);
         v1::ListEmailTemplatesResponse resp;
         return B_CALL(api.sequences(), ListEmailTemplates, r, resp);
       }},
      {"UpdateEmailTemplate", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::UpdateEmailTemplateRequest r;
         r.mutable_email_template()->set_name(a.email_template);
         r.mutable_email_template()->set_subject("pwned");
         r.mutable_update_mask()->add_paths("subject");
         r.set_request_id("x-update-template");
         v1::EmailTemplateResponse resp;
         return B_CALL(api.sequences(), UpdateEmailTemplate, r, resp);
       }},
      {"UpdateEmailTemplate by A's id under B's company", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::UpdateEmailTemplateRequest r;
         r.mutable_email_template()->set_name(
             absl::StrCat("companies/", kAttacker, "/emailTemplates/", a.email_template_id));
         r.mutable_email_template()->set_subject("pwned");
         r.mutable_update_mask()->add_paths("subject");
         r.set_request_id("x-update-template-2");
         v1::EmailTemplateResponse resp;
         return B_CALL(api.sequences(), UpdateEmailTemplate, r, resp);
       }},
      {"DeleteEmailTemplate", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::DeleteEmailTemplateRequest r;
         r.set_name(a.email_template);
         r.set_request_id("x-delete-template");
         v1::EmailTemplateResponse resp;
         return B_CALL(api.sequences(), DeleteEmailTemplate, r, resp);
       }},
      {"CreateSequence of B whose email step names A's email template", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::CreateSequenceRequest r;
         r.set_parent(absl::StrCat("companies/", kAttacker));
         r.set_request_id("x-create-with-a-template");
         r.mutable_sequence()->set_display_name("Copy of A's template");
         r.mutable_sequence()->set_entity_kind(v1::ENTITY_KIND_DEAL);
         *r.mutable_sequence()->add_steps() = TemplateStep(a.email_template_id);
         v1::SequenceResponse resp;
         return B_CALL(api.sequences(), CreateSequence, r, resp);
       }},
      {"UpdateSequence of B's own sequence with a step naming A's email template", false,
       [](ApiProcess& api, const Victim& a, const Attacker& b) {
         v1::UpdateSequenceRequest r;
         r.mutable_sequence()->set_name(b.sequence);
         *r.mutable_sequence()->add_steps() = TemplateStep(a.email_template_id);
         r.mutable_update_mask()->add_paths("steps");
         r.set_request_id("x-update-with-a-template");
         v1::SequenceResponse resp;
         return B_CALL(api.sequences(), UpdateSequence, r, resp);
       }},
      {"SetCompanySendingSettings of A's company", false,
       [](ApiProcess& api, const Victim&, const Attacker&) {
         v1::SetCompanySendingSettingsRequest r;
         r.set_parent(absl::StrCat("companies/", kVictim));
         r.mutable_settings()->set_daily_limit_per_sender(1);
         r.set_request_id("x-send-limits");
         v1::CompanySendingSettingsResponse resp;
         return B_CALL(api.sequences(), SetCompanySendingSettings, r, resp);
       }},
      {"GetCompanySendingSettings of A's company", false,
       [](ApiProcess& api, const Victim&, const Attacker&) {
         v1::GetCompanySendingSettingsRequest r;
         r.set_parent(absl::StrCat("companies/", kVictim));
         v1::CompanySendingSettingsResponse resp;
         return B_CALL(api.sequences(), GetCompanySendingSettings, r, resp);
       }},
      {"GetCompanySendingSettings of B's own company with A's consistency token", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::GetCompanySendingSettingsRequest r;
         r.set_parent(absl::StrCat("companies/", kAttacker));
         r.set_consistency_token(a.consistency_token);
         v1::CompanySendingSettingsResponse resp;
         return B_CALL(api.sequences(), GetCompanySendingSettings, r, resp);
       }},
      {"SetCompanySendingSettings of A's company with A's user id", false,
       [](ApiProcess& api, const Victim&, const Attacker&) {
         v1::SetCompanySendingSettingsRequest r;
         r.set_parent(absl::StrCat("companies/", kVictim));
         r.mutable_settings()->set_min_gap_between_emails_seconds(30 * 24 * 3600);
         r.set_request_id("x-gap-as-a-user");
         v1::CompanySendingSettingsResponse resp;
         std::unique_ptr<grpc::ClientContext> ctx;
         return Done(
             api.sequences().SetCompanySendingSettings(As(ctx, kAttacker, kVictimUser), r, &resp),
             resp);
       }},
      {"Enroll into A's sequence", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::EnrollRequest r;
         r.set_parent(a.sequence);
         r.mutable_item()->set_entity_kind(v1::ENTITY_KIND_DEAL);
         r.mutable_item()->set_item_id("b-1");
         r.mutable_item()->set_request_id("x-enroll");
         v1::EnrollmentResponse resp;
         return B_CALL(api.enrollments(), Enroll, r, resp);
       }},
      {"BatchEnroll into A's sequence", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::BatchEnrollRequest r;
         r.set_parent(a.sequence);
         v1::EnrollItem* item = r.add_items();
         item->set_entity_kind(v1::ENTITY_KIND_DEAL);
         item->set_item_id("b-2");
         item->set_request_id("x-batch");
         v1::BatchEnrollResponse resp;
         return B_CALL(api.enrollments(), BatchEnroll, r, resp);
       }},
      {"RemoveEnrollment", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::EnrollmentActionRequest r;
         r.set_name(a.enrollments[0]);
         r.set_request_id("x-remove");
         v1::EnrollmentResponse resp;
         return B_CALL(api.enrollments(), RemoveEnrollment, r, resp);
       }},
      {"PauseEnrollment", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::EnrollmentActionRequest r;
         r.set_name(a.enrollments[0]);
         r.set_request_id("x-pause");
         v1::EnrollmentResponse resp;
         return B_CALL(api.enrollments(), PauseEnrollment, r, resp);
       }},
      {"ResumeEnrollment", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::EnrollmentActionRequest r;
         r.set_name(a.enrollments[0]);
         r.set_request_id("x-resume");
         v1::EnrollmentResponse resp;
         return B_CALL(api.enrollments(), ResumeEnrollment, r, resp);
       }},
      {"RetryEnrollment", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::EnrollmentActionRequest r;
         r.set_name(a.enrollments[0]);
         r.set_request_id("x-retry");
         v1::EnrollmentResponse resp;
         return B_CALL(api.enrollments(), RetryEnrollment, r, resp);
       }},
      {"ReportActivityCompleted", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::ReportActivityCompletedRequest r;
         r.set_name(a.enrollments[0]);
         r.set_task_id("t-guess");
         r.set_request_id("x-done");
         v1::EnrollmentResponse resp;
         return B_CALL(api.enrollments(), ReportActivityCompleted, r, resp);
       }},
      {"GetEnrollment", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::GetEnrollmentRequest r;
         r.set_name(a.enrollments[0]);
         v1::Enrollment resp;
         return B_CALL(api.enrollments(), GetEnrollment, r, resp);
       }},
      {"GetEnrollment by A's ids under B's company", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::GetEnrollmentRequest r;
         r.set_name(absl::StrReplaceAll(a.enrollments[0], {{kVictim, kAttacker}}));
         v1::Enrollment resp;
         return B_CALL(api.enrollments(), GetEnrollment, r, resp);
       }},
      {"ListEnrollments of A's sequence", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::ListEnrollmentsRequest r;
         r.set_parent(a.sequence);
         v1::ListEnrollmentsResponse resp;
         return B_CALL(api.enrollments(), ListEnrollments, r, resp);
       }},
      {"ListEnrollments of B's sequence with A's page token", false,
       [](ApiProcess& api, const Victim& a, const Attacker& b) {
         v1::ListEnrollmentsRequest r;
         r.set_parent(b.sequence);
         r.set_page_size(1);
         r.set_page_token(a.page_token);
         v1::ListEnrollmentsResponse resp;
         return B_CALL(api.enrollments(), ListEnrollments, r, resp);
       }},
      {"ListEnrollments of B's sequence with its own token pointed at A's sequence", false,
       [](ApiProcess& api, const Victim& a, const Attacker& b) {
         const std::string b_id = b.sequence.substr(b.sequence.rfind('/') + 1);
         v1::ListEnrollmentsRequest r;
         r.set_parent(b.sequence);
         r.set_page_size(1);
         r.set_page_token(Tamper(b.page_token, b_id, a.sequence_id));
         v1::ListEnrollmentsResponse resp;
         return B_CALL(api.enrollments(), ListEnrollments, r, resp);
       }},
      {"ListEnrollments across B's sequences by A's owner id", true,
       [](ApiProcess& api, const Victim&, const Attacker&) {
         v1::ListEnrollmentsRequest r;
         r.set_parent(absl::StrCat("companies/", kAttacker, "/sequences/-"));
         r.set_owner_id(kSharedOwner);
         v1::ListEnrollmentsResponse resp;
         return B_CALL(api.enrollments(), ListEnrollments, r, resp);
       }},
      {"ListEnrollments across A's sequences", false,
       [](ApiProcess& api, const Victim&, const Attacker&) {
         v1::ListEnrollmentsRequest r;
         r.set_parent(absl::StrCat("companies/", kVictim, "/sequences/-"));
         r.set_owner_id(kSharedOwner);
         v1::ListEnrollmentsResponse resp;
         return B_CALL(api.enrollments(), ListEnrollments, r, resp);
       }},
      {"GetEnrollmentOverview", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::GetEnrollmentOverviewRequest r;
         r.set_parent(a.sequence);
         v1::EnrollmentOverview resp;
         return B_CALL(api.enrollments(), GetEnrollmentOverview, r, resp);
       }},
      {"GetEnrollmentOverview of B's with a tampered consistency token", false,
       [](ApiProcess& api, const Victim&, const Attacker& b) {
         v1::GetEnrollmentOverviewRequest r;
         r.set_parent(b.sequence);
         r.set_consistency_token(BeyondTheLog(b.consistency_token));
         v1::EnrollmentOverview resp;
         return B_CALL(api.enrollments(), GetEnrollmentOverview, r, resp);
       }},
      {"PauseUserEnrollments of A's company", false,
       [](ApiProcess& api, const Victim&, const Attacker&) {
         v1::UserEnrollmentsRequest r;
         r.set_parent(absl::StrCat("companies/", kVictim));
         r.set_user_id(kSharedOwner);
         r.set_request_id("x-pause-user-a");
         v1::UserEnrollmentsResponse resp;
         return B_CALL(api.enrollments(), PauseUserEnrollments, r, resp);
       }},
      // Allowed: B pauses its own user of the same id. It must not reach A (checked below).
      {"PauseUserEnrollments of B with A's owner id", true,
       [](ApiProcess& api, const Victim&, const Attacker&) {
         v1::UserEnrollmentsRequest r;
         r.set_parent(absl::StrCat("companies/", kAttacker));
         r.set_user_id(kSharedOwner);
         r.set_request_id("x-pause-user");
         v1::UserEnrollmentsResponse resp;
         return B_CALL(api.enrollments(), PauseUserEnrollments, r, resp);
       }},
      {"ResumeUserEnrollments of A's company", false,
       [](ApiProcess& api, const Victim&, const Attacker&) {
         v1::UserEnrollmentsRequest r;
         r.set_parent(absl::StrCat("companies/", kVictim));
         r.set_user_id(kSharedOwner);
         r.set_request_id("x-resume-user-a");
         v1::UserEnrollmentsResponse resp;
         return B_CALL(api.enrollments(), ResumeUserEnrollments, r, resp);
       }},
      {"UpdateEnrollmentData of A's enrollment", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::UpdateEnrollmentDataRequest r;
         r.set_name(a.enrollments[0]);
         (*r.mutable_merge_data())["person.first_name"] = "Mallory";
         r.mutable_recipient()->set_email("mallory@example.com");
         r.set_request_id("x-update-data");
         v1::EnrollmentResponse resp;
         return B_CALL(api.enrollments(), UpdateEnrollmentData, r, resp);
       }},
      {"ReportItemOutcome under A's company", false,
       [](ApiProcess& api, const Victim&, const Attacker&) {
         v1::ReportItemOutcomeRequest r;
         r.set_parent(absl::StrCat("companies/", kVictim));
         r.set_entity_kind(v1::ENTITY_KIND_DEAL);
         r.set_item_id("a-1");
         r.set_outcome(v1::ITEM_OUTCOME_KIND_ITEM_DELETED);
         r.set_request_id("x-outcome-a");
         v1::ItemInputResponse resp;
         return B_CALL(api.enrollments(), ReportItemOutcome, r, resp);
       }},
      // Allowed: B reports on its own item of the same id. It must not reach A's a-1 (which is
      // paused below, so still active).
      {"ReportItemOutcome of B's item with A's item id", true,
       [](ApiProcess& api, const Victim&, const Attacker&) {
         v1::ReportItemOutcomeRequest r;
         r.set_parent(absl::StrCat("companies/", kAttacker));
         r.set_entity_kind(v1::ENTITY_KIND_DEAL);
         r.set_item_id("a-1");
         r.set_outcome(v1::ITEM_OUTCOME_KIND_ITEM_DELETED);
         r.set_request_id("x-outcome");
         v1::ItemInputResponse resp;
         return B_CALL(api.enrollments(), ReportItemOutcome, r, resp);
       }},
      {"ReportEmailReplied naming A's sequence", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::ReportEmailEventRequest r;
         r.set_parent(absl::StrCat("companies/", kAttacker));
         r.set_entity_kind(v1::ENTITY_KIND_DEAL);
         r.set_item_id("a-2");
         r.set_sequence(a.sequence);
         r.set_request_id("x-replied");
         v1::ItemInputResponse resp;
         return B_CALL(api.enrollments(), ReportEmailReplied, r, resp);
       }},
      {"ReportEmailReplied under A's company", false,
       [](ApiProcess& api, const Victim&, const Attacker&) {
         v1::ReportEmailEventRequest r;
         r.set_parent(absl::StrCat("companies/", kVictim));
         r.set_entity_kind(v1::ENTITY_KIND_DEAL);
         r.set_item_id("a-2");
         r.set_request_id("x-replied-a");
         v1::ItemInputResponse resp;
         return B_CALL(api.enrollments(), ReportEmailReplied, r, resp);
       }},
      {"ReportEmailBounced by A's sequence id under B's company", false,
       [](ApiProcess& api, const Victim& a, const Attacker&) {
         v1::ReportEmailEventRequest r;
         r.set_parent(absl::StrCat("companies/", kAttacker));
         r.set_entity_kind(v1::ENTITY_KIND_DEAL);
         r.set_item_id("a-3");
         r.set_sequence(absl::StrCat("companies/", kAttacker, "/sequences/", a.sequence_id));
         r.set_request_id("x-bounced");
         v1::ItemInputResponse resp;
         return B_CALL(api.enrollments(), ReportEmailBounced, r, resp);
       }},
      {"ReportEmailBounced under A's company", false,
       [](ApiProcess& api, const Victim&, const Attacker&) {
         v1::ReportEmailEventRequest r;
         r.set_parent(absl::StrCat("companies/", kVictim));
         r.set_entity_kind(v1::ENTITY_KIND_DEAL);
         r.set_item_id("a-3");
         r.set_request_id("x-bounced-a");
         v1::ItemInputResponse resp;
         return B_CALL(api.enrollments(), ReportEmailBounced, r, resp);
       }},
      {"ListSequences of A by entity kind and A's owner", false,
       [](ApiProcess& api, const Victim&, const Attacker&) {
         v1::ListSequencesRequest r;
         r.set_parent(absl::StrCat("companies/", kVictim));
         r.set_entity_kind(v1::ENTITY_KIND_DEAL);
         r.set_owner_id(kVictimUser);
         v1::ListSequencesResponse resp;
         return B_CALL(api.sequences(), ListSequences, r, resp);
       }},
      {"ListSequences of B by A's owner id (own data only)", true,
       [](ApiProcess& api, const Victim&, const Attacker&) {
         v1::ListSequencesRequest r;
         r.set_parent(absl::StrCat("companies/", kAttacker));
         r.set_entity_kind(v1::ENTITY_KIND_DEAL);
         r.set_owner_id(kVictimUser);
         v1::ListSequencesResponse resp;
         return B_CALL(api.sequences(), ListSequences, r, resp);
       }},
  };
  return *cases;
}

#undef B_CALL

// The executor events of A's items that a pause or resume produced, with who asked for them.
std::vector<std::string> PausedOrResumedBy(const Reader& reader, const System& sys) {
  std::vector<std::string> by;
  for (const Seen* s : reader.On(sys.topics().executor_events)) {
    if (!absl::StartsWith(s->message.key, absl::StrCat(kVictim, "/"))) continue;
    if (s->event.has_enrollment_paused()) by.push_back(s->event.enrollment_paused().paused_by());
    if (s->event.has_enrollment_resumed()) {
      by.push_back(s->event.enrollment_resumed().resumed_by());
    }
  }
  return by;
}

TEST_CASE("the cross-tenant table tries every RPC of both services") {
  std::vector<std::string> missing;
  for (const char* service_name :
       {"sequences.v1.SequenceService", "sequences.v1.EnrollmentService"}) {
    const google::protobuf::ServiceDescriptor* service =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service_name);
    REQUIRE(service != nullptr);
    for (int i = 0; i < service->method_count(); ++i) {
      const std::string& method = service->method(i)->name();
      bool covered = false;
      for (const CrossTenantCase& c : CrossTenantCases()) {
        covered = covered || absl::StartsWith(c.name, method + " ") || c.name == method;
      }
      if (!covered) missing.push_back(method);
    }
  }
  INFO("RPCs without a cross-tenant case: " << absl::StrJoin(missing, ", "));
  CHECK(missing.empty());
}

TEST_CASE("company B reaches nothing of company A through any RPC, token or user id") {
  System sys;
  ApiProcess& api = sys.api();
  Victim a;
  a.sequence = CreateFor(api, kVictim, kVictimUser, "create-plan", &a.consistency_token);
  a.sequence_id = a.sequence.substr(a.sequence.rfind('/') + 1);
  // A watches its sequence while it enrolls: its first change gives A a resume token.
  std::unique_ptr<grpc::ClientContext> a_watch_ctx = CallAs(kVictim, kVictimUser, 60);
  v1::WatchEnrollmentsRequest a_watch;
  a_watch.set_parent(absl::StrCat("companies/", kVictim));
  a_watch.set_sequence(a.sequence);
  std::unique_ptr<grpc::ClientReader<v1::WatchEnrollmentsResponse>> a_watcher =
      api.enrollments().WatchEnrollments(a_watch_ctx.get(), a_watch);
  a_watcher->WaitForInitialMetadata();  // the watch is in place
  for (const char* item : {"a-1", "a-2", "a-3"}) {
    a.enrollments.push_back(EnrollFor(api, kVictim, kVictimUser, a.sequence, item, kSharedOwner));
  }
  {
    v1::WatchEnrollmentsResponse m;
    REQUIRE(a_watcher->Read(&m));
    CHECK(m.update().company_id() == kVictim);
    a.watch_token = m.resume_token();
    REQUIRE_FALSE(a.watch_token.empty());
    a_watch_ctx->TryCancel();
    a_watcher->Finish().IgnoreError();
  }
  for (const std::string& e : a.enrollments) {
    WaitUntilStatus(api, kVictim, e, v1::ENROLLMENT_STATUS_IN_PROGRESS);
  }
  a.page_token = FirstPageToken(api, kVictim, a.sequence);
  a.email_template = CreateTemplateFor(api, kVictim, kVictimUser, "template-plan");
  a.email_template_id = a.email_template.substr(a.email_template.rfind('/') + 1);
  Attacker b;
  b.sequence = CreateFor(api, kAttacker, kAttackerUser, "create-plan", &b.consistency_token);
  REQUIRE(b.sequence != a.sequence);  // the same request id in another company is another call
  for (const char* item : {"b-1", "b-2"}) {
    WaitUntilStatus(api, kAttacker,
                    EnrollFor(api, kAttacker, kAttackerUser, b.sequence, item, kSharedOwner),
                    v1::ENROLLMENT_STATUS_IN_PROGRESS);
  }
  b.page_token = FirstPageToken(api, kAttacker, b.sequence);
  const v1::Sequence before = [&] {
    v1::GetSequenceRequest r;
    r.set_name(a.sequence);
    v1::Sequence s;
    std::unique_ptr<grpc::ClientContext> ctx;
    REQUIRE(api.sequences().GetSequence(As(ctx, kVictim, kVictimUser), r, &s).ok());
    return s;
  }();

  for (const CrossTenantCase& c : CrossTenantCases()) {
    Outcome o = c.attempt(api, a, b);
    INFO(c.name << ": " << o.status.error_code() << " " << o.status.error_message() << "\n"
                << o.response);
    // Refused, except B's own listings and B's own users, which must work.
    CHECK(o.status.ok() == c.ok_allowed);
    // Refused, not merely unanswered (a watch that was accepted runs until its deadline).
    CHECK(o.status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED);
    // Not one byte of A's data in the answer or the error.
    for (const std::string& secret :
         {a.sequence_id, a.email_template_id, std::string("Secret plan of acme"),
          std::string("Secret plan body"), std::string("acme/deal")}) {
      CHECK_FALSE(absl::StrContains(o.response, secret));
      CHECK_FALSE(absl::StrContains(o.status.error_message(), "Secret plan"));
    }
  }

  // A itself reads its enrollment's history: the executor's events, oldest first, described.
  {
    v1::ListEnrollmentEventsRequest r;
    r.set_name(a.enrollments[0]);
    r.set_page_size(1);
    v1::ListEnrollmentEventsResponse page;
    std::unique_ptr<grpc::ClientContext> ctx;
    grpc::Status st =
        api.enrollments().ListEnrollmentEvents(As(ctx, kVictim, kVictimUser), r, &page);
    INFO(st.error_message() << "\n" << page.DebugString());
    REQUIRE(st.ok());
    REQUIRE(page.events_size() == 1);
    CHECK(absl::StartsWith(page.events(0).description(), "enrolled"));
    CHECK(page.events(0).event().has_enrollment_started());
    CHECK_FALSE(page.next_page_token().empty());
    // The page token is A's: B cannot continue A's listing with it.
    v1::ListEnrollmentEventsRequest stolen = r;
    stolen.set_page_token(page.next_page_token());
    v1::ListEnrollmentEventsResponse none;
    std::unique_ptr<grpc::ClientContext> b_ctx;
    CHECK_FALSE(api.enrollments()
                    .ListEnrollmentEvents(As(b_ctx, kAttacker, kAttackerUser), stolen, &none)
                    .ok());
  }

  // B's pause of its own "shared-owner" was decided before A's own pause of that owner (one
  // record per partition, in order). Once A's pause shows, every pause and resume event of A's
  // items must have been asked for by A's user.
  v1::UserEnrollmentsRequest pause;
  pause.set_parent(absl::StrCat("companies/", kVictim));
  pause.set_user_id(kSharedOwner);
  pause.set_request_id("a-pause-owner");
  v1::UserEnrollmentsResponse resp;
  std::unique_ptr<grpc::ClientContext> ctx;
  REQUIRE(api.enrollments().PauseUserEnrollments(As(ctx, kVictim, kVictimUser), pause, &resp).ok());
  for (const std::string& e : a.enrollments) {
    WaitUntilStatus(api, kVictim, e, v1::ENROLLMENT_STATUS_PAUSED);
  }
  Reader reader({sys.topics().executor_events});
  REQUIRE(reader.PollUntil([&] { return PausedOrResumedBy(reader, sys).size() >= 3; },
                           absl::Seconds(30)));
  reader.Poll(absl::Milliseconds(500));
  CHECK(PausedOrResumedBy(reader, sys) == std::vector<std::string>(3, kVictimUser));

  // A's sequence is as it was: same version, name, state.
  v1::GetSequenceRequest get;
  get.set_name(a.sequence);
  v1::Sequence after;
  REQUIRE(api.sequences().GetSequence(As(ctx, kVictim, kVictimUser), get, &after).ok());
  CHECK(after.version() == before.version());
  CHECK(after.display_name() == before.display_name());
  CHECK(after.paused() == before.paused());
  CHECK(after.deleted() == before.deleted());
  CHECK(after.automated_sending() == before.automated_sending());
  // A's email template too: still version 1, not deleted, A's own text.
  v1::GetEmailTemplateRequest get_template;
  get_template.set_name(a.email_template);
  v1::EmailTemplate tpl;
  REQUIRE(api.sequences().GetEmailTemplate(As(ctx, kVictim, kVictimUser), get_template, &tpl).ok());
  CHECK(tpl.version() == 1);
  CHECK_FALSE(tpl.deleted());
  CHECK(tpl.subject() == "Secret plan for {{person.first_name}}");
}

// Runs `call` from `n` threads at once (released together) and returns every status. `call` must
// not use Catch's assertions (they are not thread-safe).
std::vector<grpc::Status> Concurrently(int n, const std::function<grpc::Status()>& call) {
  std::promise<void> go;
  std::shared_future<void> start = go.get_future().share();
  std::vector<std::future<grpc::Status>> results;
  for (int i = 0; i < n; ++i) {
    results.push_back(std::async(std::launch::async, [start, &call] {
      start.wait();
      return call();
    }));
  }
  go.set_value();
  std::vector<grpc::Status> out;
  for (auto& r : results) out.push_back(r.get());
  return out;
}

int CountWithCorrelation(const Reader& reader, const std::string& topic,
                         const std::string& request_id) {
  int n = 0;
  for (const Seen* s : reader.On(topic)) n += s->event.correlation_id() == request_id ? 1 : 0;
  return n;
}

TEST_CASE(
    "Given 40 concurrent retries of one SetCompanySendingSettings (one request id), when they all "
    "return, then exactly one settings version was written and every caller got the same answer: "
    "that version, those settings, one token, and a later read shows the same") {
  System sys;
  ApiProcess& api = sys.api();
  constexpr int kRetries = 40;
  auto as_a = [] { return CallAs(kVictim, kVictimUser, 60); };
  v1::SetCompanySendingSettingsRequest first;
  first.set_parent(absl::StrCat("companies/", kVictim));
  first.set_request_id("settings-first");
  first.mutable_settings()->set_daily_limit_per_sender(300);
  v1::CompanySendingSettingsResponse before;
  REQUIRE(api.sequences().SetCompanySendingSettings(as_a().get(), first, &before).ok());

  v1::SetCompanySendingSettingsRequest req;
  req.set_parent(absl::StrCat("companies/", kVictim));
  req.set_request_id("settings-storm");
  req.mutable_settings()->set_daily_limit_per_sender(120);
  req.mutable_settings()->set_hourly_limit_per_sender(20);
  req.mutable_settings()->set_min_gap_between_emails_seconds(86400);
  std::mutex mu;
  std::vector<v1::CompanySendingSettingsResponse> answers;  // guarded by mu
  const std::vector<grpc::Status> statuses = Concurrently(kRetries, [&] {
    v1::CompanySendingSettingsResponse r;
    grpc::Status s = api.sequences().SetCompanySendingSettings(as_a().get(), req, &r);
    std::lock_guard<std::mutex> l(mu);
    if (s.ok()) answers.push_back(r);
    return s;
  });
  for (const grpc::Status& s : statuses) {
    INFO(s.error_code() << " " << s.error_message());
    CHECK(s.ok());
  }
  REQUIRE(answers.size() == static_cast<size_t>(kRetries));
  for (const v1::CompanySendingSettingsResponse& a : answers) {
    INFO(a.DebugString());
    CHECK(a.version() == before.version() + 1);
    CHECK(a.settings().daily_limit_per_sender() == 120);
    CHECK(a.settings().hourly_limit_per_sender() == 20);
    CHECK(a.settings().min_gap_between_emails_seconds() == 86400);
    CHECK(a.SerializeAsString() == answers[0].SerializeAsString());
  }
  v1::GetCompanySendingSettingsRequest get;
  get.set_parent(absl::StrCat("companies/", kVictim));
  get.set_consistency_token(answers[0].consistency_token());
  v1::CompanySendingSettingsResponse now;
  REQUIRE(api.sequences().GetCompanySendingSettings(as_a().get(), get, &now).ok());
  CHECK(now.version() == before.version() + 1);
  CHECK(now.settings().SerializeAsString() == answers[0].settings().SerializeAsString());

  Reader reader({sys.topics().sequence_events});
  reader.PollUntil(
      [&] {
        return CountWithCorrelation(reader, sys.topics().sequence_events, "settings-storm") >= 1;
      },
      absl::Seconds(30));
  reader.Poll(absl::Seconds(1));  // a second write would be there by now
  CHECK(CountWithCorrelation(reader, sys.topics().sequence_events, "settings-storm") == 1);
}

TEST_CASE("50 identical concurrent retries of every mutating RPC write exactly once") {
  System sys;
  ApiProcess& api = sys.api();
  constexpr int kRetries = 50;
  const std::string seq_topic = sys.topics().sequence_events;
  const std::string enr_topic = sys.topics().enrollment_events;
  // (request id, topic, records expected) of every call below.
  std::vector<std::tuple<std::string, std::string, int>> expected;
  auto all_ok = [](const std::vector<grpc::Status>& statuses) {
    for (const grpc::Status& s : statuses) {
      INFO(s.error_code() << " " << s.error_message());
      CHECK(s.ok());
    }
  };
  auto as_a = [] { return CallAs(kVictim, kVictimUser, 60); };

  // CreateSequence.
  v1::CreateSequenceRequest create;
  create.set_parent(absl::StrCat("companies/", kVictim));
  create.set_request_id("c-create");
  create.mutable_sequence()->set_display_name("Concurrent");
  create.mutable_sequence()->set_entity_kind(v1::ENTITY_KIND_DEAL);
  *create.mutable_sequence()->add_steps() = ActivityStep("call-1", 60);
  std::string name;
  std::mutex name_mu;
  all_ok(Concurrently(kRetries, [&] {
    v1::SequenceResponse r;
    grpc::Status s = api.sequences().CreateSequence(as_a().get(), create, &r);
    std::lock_guard<std::mutex> l(name_mu);
    if (s.ok()) name = r.sequence().name();
    return s;
  }));
  expected.emplace_back("c-create", seq_topic, 1);

  // Sequence commands, each 50 times with one request id.
  auto sequence_command = [&](const std::string& request_id, auto method, auto req) {
    req.set_name(name);
    req.set_request_id(request_id);
    all_ok(Concurrently(kRetries, [&] {
      v1::SequenceResponse r;
      return (api.sequences().*method)(as_a().get(), req, &r);
    }));
    expected.emplace_back(request_id, seq_topic, 1);
  };
  v1::SwitchAutomatedSendingRequest on;
  on.set_enabled(true);
  sequence_command("c-switch", &v1::SequenceService::Stub::SwitchAutomatedSending, on);
  sequence_command("c-grant", &v1::SequenceService::Stub::GrantSendingConsent,
                   v1::GrantSendingConsentRequest());
  sequence_command("c-revoke", &v1::SequenceService::Stub::RevokeSendingConsent,
                   v1::RevokeSendingConsentRequest());
  {
    v1::UpdateSequenceRequest update;
    update.mutable_sequence()->set_name(name);
    update.mutable_sequence()->set_display_name("Concurrent, renamed");
    update.mutable_update_mask()->add_paths("display_name");
    update.set_request_id("c-update");
    all_ok(Concurrently(kRetries, [&] {
      v1::SequenceResponse r;
      return api.sequences().UpdateSequence(as_a().get(), update, &r);
    }));
    expected.emplace_back("c-update", seq_topic, 1);
  }

  // Email templates: create, update, delete, each 50 times with one request id.
  {
    v1::CreateEmailTemplateRequest tc;
    tc.set_parent(absl::StrCat("companies/", kVictim));
    tc.set_request_id("c-template-create");
    tc.mutable_email_template()->set_display_name("Concurrent");
    tc.mutable_email_template()->set_subject("Hi {{person.first_name}}");
    tc.mutable_email_template()->set_body("Body");
    std::string template_name;
    all_ok(Concurrently(kRetries, [&] {
      v1::EmailTemplateResponse r;
      grpc::Status s = api.sequences().CreateEmailTemplate(as_a().get(), tc, &r);
      std::lock_guard<std::mutex> l(name_mu);
      if (s.ok()) template_name = r.email_template().name();
      return s;
    }));
    expected.emplace_back("c-template-create", seq_topic, 1);
    v1::UpdateEmailTemplateRequest tu;
    tu.mutable_email_template()->set_name(template_name);
    tu.mutable_email_template()->set_body("Body, edited");
    tu.mutable_update_mask()->add_paths("body");
    tu.set_request_id("c-template-update");
    all_ok(Concurrently(kRetries, [&] {
      v1::EmailTemplateResponse r;
      return api.sequences().UpdateEmailTemplate(as_a().get(), tu, &r);
    }));
    expected.emplace_back("c-template-update", seq_topic, 1);
    v1::DeleteEmailTemplateRequest td;
    td.set_name(template_name);
    td.set_request_id("c-template-delete");
    all_ok(Concurrently(kRetries, [&] {
      v1::EmailTemplateResponse r;
      return api.sequences().DeleteEmailTemplate(as_a().get(), td, &r);
    }));
    expected.emplace_back("c-template-delete", seq_topic, 1);
  }

  // Enroll: the same item 50 times; and one request id used for 50 different items.
  auto enroll = [&](const std::string& item_id, const std::string& request_id) {
    v1::EnrollRequest r;
    r.set_parent(name);
    r.mutable_item()->set_entity_kind(v1::ENTITY_KIND_DEAL);
    r.mutable_item()->set_item_id(item_id);
    r.mutable_item()->set_request_id(request_id);
    r.mutable_item()->set_owner_id("o1");
    return r;
  };
  const v1::EnrollRequest one = enroll("d-1", "c-enroll");
  all_ok(Concurrently(kRetries, [&] {
    v1::EnrollmentResponse r;
    return api.enrollments().Enroll(as_a().get(), one, &r);
  }));
  expected.emplace_back("c-enroll", enr_topic, 1);
  std::atomic<int> item{0};
  Concurrently(kRetries, [&] {
    v1::EnrollmentResponse r;
    return api.enrollments().Enroll(as_a().get(),
                                    enroll(absl::StrCat("shared-", item++), "c-shared"), &r);
  });
  expected.emplace_back("c-shared", enr_topic, 1);

  // BatchEnroll: the same batch of 20 items 50 times.
  v1::BatchEnrollRequest batch;
  batch.set_parent(name);
  for (int i = 0; i < 20; ++i) {
    *batch.add_items() = enroll(absl::StrCat("b-", i), absl::StrCat("c-batch-", i)).item();
  }
  all_ok(Concurrently(kRetries, [&] {
    v1::BatchEnrollResponse r;
    grpc::Status s = api.enrollments().BatchEnroll(as_a().get(), batch, &r);
    for (const v1::BatchEnrollResult& result : r.results()) {
      // (Catch's assertions are not thread-safe: report through the status.)
      if (result.status().code() != 0) return grpc::Status(grpc::UNKNOWN, result.DebugString());
    }
    return s;
  }));
  for (int i = 0; i < 20; ++i) expected.emplace_back(absl::StrCat("c-batch-", i), enr_topic, 1);

  // Enrollment actions on d-1 once it runs.
  const std::string d1 = absl::StrCat(name, "/enrollments/deal:d-1");
  WaitUntilStatus(api, kVictim, d1, v1::ENROLLMENT_STATUS_IN_PROGRESS);
  auto action = [&](const std::string& request_id, auto method) {
    v1::EnrollmentActionRequest r;
    r.set_name(d1);
    r.set_request_id(request_id);
    all_ok(Concurrently(kRetries, [&] {
      v1::EnrollmentResponse resp;
      return (api.enrollments().*method)(as_a().get(), r, &resp);
    }));
    expected.emplace_back(request_id, enr_topic, 1);
  };
  {
    v1::UpdateEnrollmentDataRequest r;
    r.set_name(d1);
    r.set_request_id("c-update-data");
    (*r.mutable_merge_data())["person.title"] = "Dr";
    all_ok(Concurrently(kRetries, [&] {
      v1::EnrollmentResponse resp;
      return api.enrollments().UpdateEnrollmentData(as_a().get(), r, &resp);
    }));
    expected.emplace_back("c-update-data", enr_topic, 1);
  }
  action("c-pause", &v1::EnrollmentService::Stub::PauseEnrollment);
  WaitUntilStatus(api, kVictim, d1, v1::ENROLLMENT_STATUS_PAUSED);
  action("c-resume", &v1::EnrollmentService::Stub::ResumeEnrollment);
  WaitUntilStatus(api, kVictim, d1, v1::ENROLLMENT_STATUS_IN_PROGRESS);
  action("c-remove", &v1::EnrollmentService::Stub::RemoveEnrollment);

  // Outcomes and email feedback: one record keyed by the item, once.
  {
    v1::ReportItemOutcomeRequest r;
    r.set_parent(absl::StrCat("companies/", kVictim));
    r.set_entity_kind(v1::ENTITY_KIND_DEAL);
    r.set_item_id("b-1");
    r.set_outcome(v1::ITEM_OUTCOME_KIND_DEAL_WON);
    r.set_request_id("c-outcome");
    all_ok(Concurrently(kRetries, [&] {
      v1::ItemInputResponse resp;
      return api.enrollments().ReportItemOutcome(as_a().get(), r, &resp);
    }));
    expected.emplace_back("c-outcome", enr_topic, 1);
  }
  for (const char* request_id : {"c-replied", "c-bounced"}) {
    v1::ReportEmailEventRequest r;
    r.set_parent(absl::StrCat("companies/", kVictim));
    r.set_entity_kind(v1::ENTITY_KIND_DEAL);
    r.set_item_id("b-2");
    r.set_sequence(name);
    r.set_request_id(request_id);
    const bool replied = absl::StrContains(request_id, "replied");
    all_ok(Concurrently(kRetries, [&] {
      v1::ItemInputResponse resp;
      return replied ? api.enrollments().ReportEmailReplied(as_a().get(), r, &resp)
                     : api.enrollments().ReportEmailBounced(as_a().get(), r, &resp);
    }));
    expected.emplace_back(request_id, enr_topic, 1);
  }

  // Owner-wide: one record per partition, once.
  for (const char* request_id : {"c-pause-user", "c-resume-user"}) {
    v1::UserEnrollmentsRequest r;
    r.set_parent(absl::StrCat("companies/", kVictim));
    r.set_user_id("o1");
    r.set_request_id(request_id);
    const bool pause = absl::StrContains(request_id, "pause");
    all_ok(Concurrently(kRetries, [&] {
      v1::UserEnrollmentsResponse resp;
      return pause ? api.enrollments().PauseUserEnrollments(as_a().get(), r, &resp)
                   : api.enrollments().ResumeUserEnrollments(as_a().get(), r, &resp);
    }));
    expected.emplace_back(request_id, enr_topic, kPartitions);
  }
  sequence_command("c-pause-seq", &v1::SequenceService::Stub::PauseSequence,
                   v1::PauseSequenceRequest());
  sequence_command("c-resume-seq", &v1::SequenceService::Stub::ResumeSequence,
                   v1::ResumeSequenceRequest());
  {
    v1::SetCompanySendingSettingsRequest limits;
    limits.set_parent(absl::StrCat("companies/", kVictim));
    limits.set_request_id("c-limits");
    limits.mutable_settings()->set_daily_limit_per_sender(150);
    all_ok(Concurrently(kRetries, [&] {
      v1::CompanySendingSettingsResponse r;
      return api.sequences().SetCompanySendingSettings(as_a().get(), limits, &r);
    }));
    expected.emplace_back("c-limits", seq_topic, 1);
  }
  {
    v1::DeleteSequenceRequest del;
    del.set_name(name);
    del.set_request_id("c-delete");
    all_ok(Concurrently(kRetries, [&] {
      v1::SequenceResponse r;
      return api.sequences().DeleteSequence(as_a().get(), del, &r);
    }));
    expected.emplace_back("c-delete", seq_topic, 1);
  }

  Reader reader({seq_topic, enr_topic});
  auto all_there = [&] {
    for (const auto& [request_id, topic, n] : expected) {
      if (CountWithCorrelation(reader, topic, request_id) < n) return false;
    }
    return true;
  };
  reader.PollUntil(all_there, absl::Seconds(30));
  reader.Poll(absl::Seconds(1));  // anything written twice is there by now
  for (const auto& [request_id, topic, n] : expected) {
    INFO(request_id << " on " << topic);
    CHECK(CountWithCorrelation(reader, topic, request_id) == n);
  }
}

TEST_CASE(
    "50 identical concurrent retries of RetryEnrollment and ReportActivityCompleted write exactly "
    "once") {
  System sys;
  ApiProcess& api = sys.api();
  constexpr int kRetries = 50;
  auto as_a = [] { return CallAs(kVictim, kVictimUser, 60); };
  auto create = [&](const std::string& request_id, const v1::Step& step) {
    v1::CreateSequenceRequest req;
    req.set_parent(absl::StrCat("companies/", kVictim));
    req.set_request_id(request_id);
    req.mutable_sequence()->set_display_name(request_id);
    req.mutable_sequence()->set_entity_kind(v1::ENTITY_KIND_DEAL);
    *req.mutable_sequence()->add_steps() = step;
    v1::SequenceResponse resp;
    REQUIRE(api.sequences().CreateSequence(as_a().get(), req, &resp).ok());
    return resp.sequence().name();
  };
  // An automatic email with automated sending off fails at once: a retry has work to do.
  const std::string failing = create("r-seq", EmailStep("mail", 0, /*automatic=*/true));
  // An activity that waits for completion: the enrollment waits for its task.
  v1::Step wait = ActivityStep("call", 0);
  wait.mutable_activity()->set_wait_for_completion(true);
  wait.mutable_activity()->mutable_assignee()->set_user_id(kVictimUser);
  const std::string waiting = create("w-seq", wait);
  const std::string failed_name = EnrollFor(api, kVictim, kVictimUser, failing, "r-1", "o1");
  const std::string waiting_name = EnrollFor(api, kVictim, kVictimUser, waiting, "w-1", "o1");
  WaitUntilStatus(api, kVictim, failed_name, v1::ENROLLMENT_STATUS_FAILED);
  // Waiting: in progress with a task id to complete.
  std::string task_id;
  const absl::Time until = absl::Now() + absl::Seconds(60);
  while (task_id.empty() && absl::Now() < until) {
    v1::GetEnrollmentRequest get;
    get.set_name(waiting_name);
    v1::Enrollment e;
    if (api.enrollments().GetEnrollment(as_a().get(), get, &e).ok()) task_id = e.waiting_task_id();
    if (task_id.empty()) absl::SleepFor(absl::Milliseconds(100));
  }
  REQUIRE_FALSE(task_id.empty());

  v1::EnrollmentActionRequest retry;
  retry.set_name(failed_name);
  retry.set_request_id("c-retry");
  v1::ReportActivityCompletedRequest done;
  done.set_name(waiting_name);
  done.set_task_id(task_id);
  done.set_request_id("c-done");
  const std::vector<grpc::Status> retried = Concurrently(kRetries, [&] {
    v1::EnrollmentResponse r;
    return api.enrollments().RetryEnrollment(as_a().get(), retry, &r);
  });
  const std::vector<grpc::Status> completed = Concurrently(kRetries, [&] {
    v1::EnrollmentResponse r;
    return api.enrollments().ReportActivityCompleted(as_a().get(), done, &r);
  });
  for (const auto* statuses : {&retried, &completed}) {
    for (const grpc::Status& s : *statuses) {
      INFO(s.error_code() << " " << s.error_message());
      CHECK(s.ok());
    }
  }
  Reader reader({sys.topics().enrollment_events});
  auto both = [&] {
    return CountWithCorrelation(reader, sys.topics().enrollment_events, "c-retry") >= 1 &&
           CountWithCorrelation(reader, sys.topics().enrollment_events, "c-done") >= 1;
  };
  REQUIRE(reader.PollUntil(both, absl::Seconds(30)));
  reader.Poll(absl::Seconds(1));
  CHECK(CountWithCorrelation(reader, sys.topics().enrollment_events, "c-retry") == 1);
  CHECK(CountWithCorrelation(reader, sys.topics().enrollment_events, "c-done") == 1);
}

// --- hostile input --------------------------------------------------------------------------

struct HostileCase {
  const char* name;
  std::function<grpc::Status(ApiProcess&, const std::string& sequence)> call;
};

const std::string& Huge() {
  static const std::string* s = new std::string(2 << 20, 'x');
  return *s;
}

const std::vector<HostileCase>& HostileCases() {
  static const auto* cases = new std::vector<HostileCase>{
      {"SetCompanySendingSettings with a 1 MiB time zone and a negative limit",
       [](ApiProcess& api, const std::string&) {
         v1::SetCompanySendingSettingsRequest r;
         r.set_parent("companies/acme");
         r.set_request_id("h-limits");
         r.mutable_settings()->set_time_zone(Huge().substr(0, 1 << 20));
         r.mutable_settings()->set_daily_limit_per_sender(-5);
         v1::CompanySendingSettingsResponse resp;
         return api.sequences().SetCompanySendingSettings(CallAs("acme").get(), r, &resp);
       }},
      {"CreateSequence with a 2 MiB step id",
       [](ApiProcess& api, const std::string&) {
         v1::CreateSequenceRequest r;
         r.set_parent("companies/acme");
         r.set_request_id("h-create-1");
         r.mutable_sequence()->set_display_name("x");
         r.mutable_sequence()->set_entity_kind(v1::ENTITY_KIND_DEAL);
         *r.mutable_sequence()->add_steps() = ActivityStep(Huge().substr(0, 1 << 20), 1);
         *r.mutable_sequence()->add_steps() = ActivityStep(Huge().substr(0, 1 << 20), 1);
         v1::SequenceResponse resp;
         return api.sequences().CreateSequence(CallAs("acme").get(), r, &resp);
       }},
      {"CreateSequence with 100k holidays",
       [](ApiProcess& api, const std::string&) {
         v1::CreateSequenceRequest r;
         r.set_parent("companies/acme");
         r.set_request_id("h-create-2");
         r.mutable_sequence()->set_display_name("x");
         r.mutable_sequence()->set_entity_kind(v1::ENTITY_KIND_DEAL);
         for (int i = 0; i < 100000; ++i) {
           v1::Date* d = r.mutable_sequence()->mutable_settings()->add_holidays();
           d->set_year(2030);
           d->set_month(1);
           d->set_day(1);
         }
         v1::SequenceResponse resp;
         return api.sequences().CreateSequence(CallAs("acme").get(), r, &resp);
       }},
      {"CreateSequence with 10 steps of 99 kB bodies (a 990 kB event)",
       [](ApiProcess& api, const std::string&) {
         v1::CreateSequenceRequest r;
         r.set_parent("companies/acme");
         r.set_request_id("h-create-3");
         r.mutable_sequence()->set_display_name("x");
         r.mutable_sequence()->set_entity_kind(v1::ENTITY_KIND_DEAL);
         for (int i = 0; i < 10; ++i) {
           v1::Step s = EmailStep(absl::StrCat("e", i), 1, false);
           s.mutable_email()->set_body(std::string(99000, 'b'));
           *r.mutable_sequence()->add_steps() = s;
         }
         v1::SequenceResponse resp;
         return api.sequences().CreateSequence(CallAs("acme").get(), r, &resp);
       }},
      {"CreateSequence with an out-of-range entity kind",
       [](ApiProcess& api, const std::string&) {
         v1::CreateSequenceRequest r;
         r.set_parent("companies/acme");
         r.set_request_id("h-create-4");
         r.mutable_sequence()->set_display_name("x");
         r.mutable_sequence()->set_entity_kind(static_cast<v1::EntityKind>(77));
         v1::SequenceResponse resp;
         return api.sequences().CreateSequence(CallAs("acme").get(), r, &resp);
       }},
      {"Enroll with 1 MiB of merge data and a 1 MiB request id",
       [](ApiProcess& api, const std::string& seq) {
         v1::EnrollRequest r;
         r.set_parent(seq);
         r.mutable_item()->set_entity_kind(v1::ENTITY_KIND_DEAL);
         r.mutable_item()->set_item_id("h-1");
         r.mutable_item()->set_request_id(Huge().substr(0, 1 << 20));
         (*r.mutable_item()->mutable_merge_data())["person.first_name"] = Huge().substr(0, 1 << 20);
         v1::EnrollmentResponse resp;
         return api.enrollments().Enroll(CallAs("acme").get(), r, &resp);
       }},
      {"Enroll with 10k merge fields",
       [](ApiProcess& api, const std::string& seq) {
         v1::EnrollRequest r;
         r.set_parent(seq);
         r.mutable_item()->set_entity_kind(v1::ENTITY_KIND_DEAL);
         r.mutable_item()->set_item_id("h-2");
         r.mutable_item()->set_request_id("h-enroll-2");
         for (int i = 0; i < 10000; ++i) {
           (*r.mutable_item()->mutable_merge_data())[absl::StrCat("f", i)] = "v";
         }
         v1::EnrollmentResponse resp;
         return api.enrollments().Enroll(CallAs("acme").get(), r, &resp);
       }},
      {"BatchEnroll with 6,000 items",
       [](ApiProcess& api, const std::string& seq) {
         v1::BatchEnrollRequest r;
         r.set_parent(seq);
         for (int i = 0; i < 6000; ++i) {
           v1::EnrollItem* item = r.add_items();
           item->set_entity_kind(v1::ENTITY_KIND_DEAL);
           item->set_item_id(absl::StrCat("h-", i));
           item->set_request_id(absl::StrCat("h-batch-", i));
         }
         v1::BatchEnrollResponse resp;
         return api.enrollments().BatchEnroll(CallAs("acme").get(), r, &resp);
       }},
      {"Pause with a 1 MiB note",
       [](ApiProcess& api, const std::string& seq) {
         v1::EnrollmentActionRequest r;
         r.set_name(absl::StrCat(seq, "/enrollments/deal:nobody"));
         r.set_request_id("h-pause");
         r.set_note(Huge().substr(0, 1 << 20));
         v1::EnrollmentResponse resp;
         return api.enrollments().PauseEnrollment(CallAs("acme").get(), r, &resp);
       }},
      {"UpdateSequence with 10k update-mask paths",
       [](ApiProcess& api, const std::string& seq) {
         v1::UpdateSequenceRequest r;
         r.mutable_sequence()->set_name(seq);
         r.set_request_id("h-update");
         for (int i = 0; i < 10000; ++i) r.mutable_update_mask()->add_paths("display_name");
         v1::SequenceResponse resp;
         return api.sequences().UpdateSequence(CallAs("acme").get(), r, &resp);
       }},
      {"PreviewSchedule with 10k proposed steps",
       [](ApiProcess& api, const std::string& seq) {
         v1::PreviewScheduleRequest r;
         r.set_name(seq);
         for (int i = 0; i < 10000; ++i)
           *r.add_proposed_steps() = ActivityStep(absl::StrCat("p", i), 1);
         v1::PreviewScheduleResponse resp;
         return api.sequences().PreviewSchedule(CallAs("acme").get(), r, &resp);
       }},
      {"PauseUserEnrollments with a user id outside the grammar",
       [](ApiProcess& api, const std::string&) {
         v1::UserEnrollmentsRequest r;
         r.set_parent("companies/acme");
         r.set_user_id("../*");
         r.set_request_id("h-user");
         v1::UserEnrollmentsResponse resp;
         return api.enrollments().PauseUserEnrollments(CallAs("acme").get(), r, &resp);
       }},
      {"UpdateEnrollmentData with 10k merge fields",
       [](ApiProcess& api, const std::string& seq) {
         v1::UpdateEnrollmentDataRequest r;
         r.set_name(absl::StrCat(seq, "/enrollments/deal:nobody"));
         r.set_request_id("h-update-data");
         for (int i = 0; i < 10000; ++i) (*r.mutable_merge_data())[absl::StrCat("f", i)] = "v";
         v1::EnrollmentResponse resp;
         return api.enrollments().UpdateEnrollmentData(CallAs("acme").get(), r, &resp);
       }},
      {"UpdateEnrollmentData with a 1 MiB merge value",
       [](ApiProcess& api, const std::string& seq) {
         v1::UpdateEnrollmentDataRequest r;
         r.set_name(absl::StrCat(seq, "/enrollments/deal:nobody"));
         r.set_request_id("h-update-data-2");
         (*r.mutable_merge_data())["person.first_name"] = Huge().substr(0, 1 << 20);
         v1::EnrollmentResponse resp;
         return api.enrollments().UpdateEnrollmentData(CallAs("acme").get(), r, &resp);
       }},
      {"ReportItemOutcome with an item id outside the grammar",
       [](ApiProcess& api, const std::string&) {
         v1::ReportItemOutcomeRequest r;
         r.set_parent("companies/acme");
         r.set_entity_kind(v1::ENTITY_KIND_DEAL);
         r.set_item_id("../other/deal/1");
         r.set_outcome(v1::ITEM_OUTCOME_KIND_ITEM_DELETED);
         r.set_request_id("h-outcome");
         v1::ItemInputResponse resp;
         return api.enrollments().ReportItemOutcome(CallAs("acme").get(), r, &resp);
       }},
      {"ReportItemOutcome with an out-of-range outcome",
       [](ApiProcess& api, const std::string&) {
         v1::ReportItemOutcomeRequest r;
         r.set_parent("companies/acme");
         r.set_entity_kind(v1::ENTITY_KIND_DEAL);
         r.set_item_id("h-3");
         r.set_outcome(static_cast<v1::ItemOutcomeKind>(77));
         r.set_request_id("h-outcome-2");
         v1::ItemInputResponse resp;
         return api.enrollments().ReportItemOutcome(CallAs("acme").get(), r, &resp);
       }},
      {"ReportEmailBounced with a 1 MiB detail",
       [](ApiProcess& api, const std::string& seq) {
         v1::ReportEmailEventRequest r;
         r.set_parent("companies/acme");
         r.set_entity_kind(v1::ENTITY_KIND_DEAL);
         r.set_item_id("h-4");
         r.set_sequence(seq);
         r.set_detail(Huge().substr(0, 1 << 20));
         r.set_request_id("h-bounced");
         v1::ItemInputResponse resp;
         return api.enrollments().ReportEmailBounced(CallAs("acme").get(), r, &resp);
       }},
      {"ReportEmailReplied with a sequence name that climbs out of its company",
       [](ApiProcess& api, const std::string&) {
         v1::ReportEmailEventRequest r;
         r.set_parent("companies/acme");
         r.set_entity_kind(v1::ENTITY_KIND_DEAL);
         r.set_item_id("h-5");
         r.set_sequence("companies/acme/sequences/../../globex/sequences/s1");
         r.set_request_id("h-replied");
         v1::ItemInputResponse resp;
         return api.enrollments().ReportEmailReplied(CallAs("acme").get(), r, &resp);
       }},
      {"ListSequences with an out-of-range entity kind and an owner outside the grammar",
       [](ApiProcess& api, const std::string&) {
         v1::ListSequencesRequest r;
         r.set_parent("companies/acme");
         r.set_entity_kind(static_cast<v1::EntityKind>(77));
         r.set_owner_id("../*");
         v1::ListSequencesResponse resp;
         return api.sequences().ListSequences(CallAs("acme").get(), r, &resp);
       }},
      {"WatchEnrollments with two filters",
       [](ApiProcess& api, const std::string& seq) {
         v1::WatchEnrollmentsRequest r;
         r.set_parent("companies/acme");
         r.set_sequence(seq);
         r.set_owner_id("o1");
         return WatchAs(api, "acme", "u1", r).status;
       }},
      {"WatchEnrollments with a garbage resume token",
       [](ApiProcess& api, const std::string& seq) {
         v1::WatchEnrollmentsRequest r;
         r.set_parent("companies/acme");
         r.set_sequence(seq);
         r.set_resume_token(Huge().substr(0, 3000));
         return WatchAs(api, "acme", "u1", r).status;
       }},
      {"CreateEmailTemplate with a 2 MiB body",
       [](ApiProcess& api, const std::string&) {
         v1::CreateEmailTemplateRequest r;
         r.set_parent("companies/acme");
         r.set_request_id("h-template-1");
         r.mutable_email_template()->set_display_name("x");
         r.mutable_email_template()->set_subject("s");
         r.mutable_email_template()->set_body(Huge());
         v1::EmailTemplateResponse resp;
         return api.sequences().CreateEmailTemplate(CallAs("acme").get(), r, &resp);
       }},
      {"CreateEmailTemplate with a merge field that never closes",
       [](ApiProcess& api, const std::string&) {
         v1::CreateEmailTemplateRequest r;
         r.set_parent("companies/acme");
         r.set_request_id("h-template-2");
         r.mutable_email_template()->set_display_name("x");
         r.mutable_email_template()->set_subject("Hi {{person.first_name");
         r.mutable_email_template()->set_body("{{ | }}");
         v1::EmailTemplateResponse resp;
         return api.sequences().CreateEmailTemplate(CallAs("acme").get(), r, &resp);
       }},
      {"UpdateEmailTemplate with 10k update-mask paths",
       [](ApiProcess& api, const std::string&) {
         v1::UpdateEmailTemplateRequest r;
         r.mutable_email_template()->set_name("companies/acme/emailTemplates/t1");
         r.set_request_id("h-template-3");
         for (int i = 0; i < 10000; ++i) r.mutable_update_mask()->add_paths("subject");
         v1::EmailTemplateResponse resp;
         return api.sequences().UpdateEmailTemplate(CallAs("acme").get(), r, &resp);
       }},
      {"CreateSequence with an email template id that climbs out of its company",
       [](ApiProcess& api, const std::string&) {
         v1::CreateSequenceRequest r;
         r.set_parent("companies/acme");
         r.set_request_id("h-create-5");
         r.mutable_sequence()->set_display_name("x");
         r.mutable_sequence()->set_entity_kind(v1::ENTITY_KIND_DEAL);
         *r.mutable_sequence()->add_steps() = TemplateStep("../../globex/emailTemplates/t1");
         v1::SequenceResponse resp;
         return api.sequences().CreateSequence(CallAs("acme").get(), r, &resp);
       }},
      {"ListEnrollments with a garbage page token",
       [](ApiProcess& api, const std::string& seq) {
         v1::ListEnrollmentsRequest r;
         r.set_parent(seq);
         r.set_page_token(Huge().substr(0, 3000));
         v1::ListEnrollmentsResponse resp;
         return api.enrollments().ListEnrollments(CallAs("acme").get(), r, &resp);
       }},
  };
  return *cases;
}

TEST_CASE(
    "hostile input gets a bounded, clear refusal, writes nothing and the service keeps serving") {
  System sys;
  ApiProcess& api = sys.api();
  std::string token;
  const std::string seq = CreateFor(api, kVictim, kVictimUser, "hostile-base", &token);
  for (const HostileCase& c : HostileCases()) {
    grpc::Status s = c.call(api, seq);
    INFO(c.name << ": " << s.error_code() << " " << s.error_message().substr(0, 300));
    CHECK_FALSE(s.ok());
    CHECK((s.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
           s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED));
    // The error names the rule without echoing megabytes.
    CHECK(s.error_message().size() < 2048);
    CHECK(s.error_details().size() < 16384);
  }
  // Identity metadata outside the grammar is refused before anything is written.
  for (const char* company : {" ", "*", "..", "%2e%2e", "a b", "x,y", "a'b", "a\"b"}) {
    v1::CreateSequenceRequest r;
    r.set_parent("companies/acme");
    r.set_request_id("h-identity");
    v1::SequenceResponse resp;
    grpc::Status s = api.sequences().CreateSequence(CallAs(company).get(), r, &resp);
    INFO("company header '" << company << "': " << s.error_message());
    CHECK((s.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
           s.error_code() == grpc::StatusCode::UNAUTHENTICATED));
    s = api.sequences().CreateSequence(CallAs("acme", company).get(), r, &resp);
    INFO("user header '" << company << "': " << s.error_message());
    CHECK((s.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
           s.error_code() == grpc::StatusCode::UNAUTHENTICATED));
  }
  // Still serving, and nothing but the base sequence was written.
  v1::GetSequenceRequest get;
  get.set_name(seq);
  v1::Sequence got;
  REQUIRE(api.sequences().GetSequence(CallAs(kVictim).get(), get, &got).ok());
  Reader reader({sys.topics().sequence_events, sys.topics().enrollment_events});
  reader.Poll(absl::Seconds(2));
  int records = 0;
  for (const Seen* s : reader.On(sys.topics().sequence_events)) {
    INFO(s->event.correlation_id());
    CHECK(s->event.correlation_id() == "hostile-base");
    ++records;
  }
  CHECK(records == 1);
  CHECK(reader.On(sys.topics().enrollment_events).empty());
}

TEST_CASE("one company's slow calls do not starve another company") {
  System sys;
  ApiProcess& api = sys.api();
  std::string b_token;
  const std::string b_seq = CreateFor(api, kAttacker, kAttackerUser, "starve-b", &b_token);
  const std::string a_seq = CreateFor(api, kVictim, kVictimUser, "starve-a", nullptr);
  // B floods the server: 100 concurrent calls, half of them with consistency tokens it forged to
  // lie far beyond the end of the log (refused at once instead of waited on).
  std::vector<std::future<grpc::Status>> flood;
  for (int i = 0; i < 100; ++i) {
    flood.push_back(std::async(std::launch::async, [&, i] {
      v1::GetEnrollmentOverviewRequest r;
      r.set_parent(b_seq);
      r.set_consistency_token(i % 2 == 0 ? BeyondTheLog(b_token) : b_token);
      v1::EnrollmentOverview o;
      return api.enrollments().GetEnrollmentOverview(CallAs(kAttacker, kAttackerUser, 10).get(), r,
                                                     &o);
    }));
  }
  // Meanwhile A's calls, each with a 3 s deadline, are answered.
  for (int i = 0; i < 20; ++i) {
    v1::GetSequenceRequest r;
    r.set_name(a_seq);
    v1::Sequence s;
    grpc::Status st = api.sequences().GetSequence(CallAs(kVictim, kVictimUser, 3).get(), r, &s);
    INFO(i << ": " << st.error_code() << " " << st.error_message());
    CHECK(st.ok());
  }
  int forged_refused = 0;
  for (size_t i = 0; i < flood.size(); ++i) {
    grpc::Status s = flood[i].get();
    if (i % 2 == 0) forged_refused += s.error_code() == grpc::StatusCode::INVALID_ARGUMENT;
  }
  CHECK(forged_refused == 50);
}

}  // namespace
}  // namespace sequences::testing
