"""A Python grpcio client of sequence-api, with stubs generated from proto/ at test time.

usage: python_client.py <generated-stubs-dir> <address> <token>
Creates a sequence, enrolls a deal, reads the overview, and checks that a malformed request is
INVALID_ARGUMENT with google.rpc.BadRequest field violations in the status details. Then the
lifecycle RPCs as the CRM and mailer services call them: an item outcome and an email reply (each
idempotent by request id), a data repair of an item never enrolled (NOT_FOUND), a rename
through a field mask written in its proto3 JSON string form, and ListSequences filtered by entity
kind, and a WatchEnrollments stream (a refusal, an open watch until its deadline). Then the
company's email templates: create, get, list, a sequence whose email step copies one, an update,
a refused broken merge field, and a delete. Exits non-zero with a message on any mismatch.
"""
import sys

sys.path.insert(0, sys.argv[1])
address, token = sys.argv[2], sys.argv[3]

import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from google.rpc import error_details_pb2, status_pb2  # noqa: E402
from sequences.v1 import enrollment_service_pb2 as es  # noqa: E402
from sequences.v1 import enrollment_service_pb2_grpc as es_grpc  # noqa: E402
from sequences.v1 import enrollment_inputs_pb2 as inputs  # noqa: E402
from sequences.v1 import sequence_pb2 as model  # noqa: E402
from sequences.v1 import sequence_service_pb2 as ss  # noqa: E402
from sequences.v1 import sequence_service_pb2_grpc as ss_grpc  # noqa: E402

metadata = (("authorization", "Bearer " + token), ("x-sequences-company", "pyco"),
            ("x-sequences-user", "py-user"))


def expect(cond, what):
    if not cond:
        print("python client: FAILED: " + what)
        sys.exit(1)


channel = grpc.insecure_channel(address)
sequences = ss_grpc.SequenceServiceStub(channel)
enrollments = es_grpc.EnrollmentServiceStub(channel)

step = model.Step(id="call-1", delay=model.Delay(unit=model.DELAY_UNIT_DAYS, amount=1),
                  activity=model.ActivityStep(activity_type="call", subject="Call",
                                              assignee=model.UserChoice(item_owner=True)))
created = sequences.CreateSequence(
    ss.CreateSequenceRequest(parent="companies/pyco", request_id="py-create",
                             sequence=ss.Sequence(display_name="From Python",
                                                  entity_kind=model.ENTITY_KIND_DEAL,
                                                  steps=[step])),
    metadata=metadata, timeout=20)
expect(created.sequence.name.startswith("companies/pyco/sequences/"), "created name")
expect(created.consistency_token != "", "consistency token")

enrolled = enrollments.Enroll(
    es.EnrollRequest(parent=created.sequence.name,
                     item=es.EnrollItem(entity_kind=model.ENTITY_KIND_DEAL, item_id="77",
                                        request_id="py-enroll")),
    metadata=metadata, timeout=20)
expect(enrolled.enrollment.pending, "enrollment pending")

overview = enrollments.GetEnrollmentOverview(
    es.GetEnrollmentOverviewRequest(parent=created.sequence.name,
                                    consistency_token=enrolled.consistency_token),
    metadata=metadata, timeout=20)
expect(overview.pending == 1 and overview.total == 1, "overview %s" % overview)

try:
    sequences.CreateSequence(ss.CreateSequenceRequest(parent="companies/pyco", request_id="py-bad"),
                             metadata=metadata, timeout=20)
    expect(False, "an empty sequence was accepted")
except grpc.RpcError as e:
    expect(e.code() == grpc.StatusCode.INVALID_ARGUMENT, "code %s" % e.code())
    details = dict(e.trailing_metadata()).get("grpc-status-details-bin")
    expect(details is not None, "status details present")
    status = status_pb2.Status.FromString(details)
    fields = []
    for any_detail in status.details:
        bad = error_details_pb2.BadRequest()
        if any_detail.Unpack(bad):
            fields += [v.field for v in bad.field_violations]
    expect("sequence.display_name" in fields, "violations %s" % fields)

try:
    sequences.ListSequences(ss.ListSequencesRequest(parent="companies/pyco"), timeout=20)
    expect(False, "a call without identity was accepted")
except grpc.RpcError as e:
    expect(e.code() == grpc.StatusCode.UNAUTHENTICATED, "code %s" % e.code())



def violations(error):
    """The google.rpc.BadRequest field names in an RpcError's status details."""
    details = dict(error.trailing_metadata()).get("grpc-status-details-bin")
    expect(details is not None, "status details present")
    fields = []
    for any_detail in status_pb2.Status.FromString(details).details:
        bad = error_details_pb2.BadRequest()
        if any_detail.Unpack(bad):
            fields += [v.field for v in bad.field_violations]
    return fields


# --- Lifecycle, as the CRM and mailer services call it.
outcome_request = es.ReportItemOutcomeRequest(parent="companies/pyco",
                                              entity_kind=model.ENTITY_KIND_DEAL, item_id="77",
                                              outcome=inputs.ITEM_OUTCOME_KIND_DEAL_WON,
                                              request_id="py-won-77")
won = enrollments.ReportItemOutcome(outcome_request, metadata=metadata, timeout=20)
expect(won.item == "companies/pyco/items/deal:77", "outcome item %s" % won.item)
expect(won.consistency_token != "", "outcome consistency token")
again = enrollments.ReportItemOutcome(outcome_request, metadata=metadata, timeout=20)
expect(again.item == won.item, "a retried outcome names the same item")

try:
    enrollments.ReportItemOutcome(
        es.ReportItemOutcomeRequest(parent="companies/pyco", entity_kind=model.ENTITY_KIND_DEAL,
                                    item_id="77", outcome=inputs.ITEM_OUTCOME_KIND_LEAD_CONVERTED,
                                    request_id="py-converted-77"),
        metadata=metadata, timeout=20)
    expect(False, "a deal reported as converted was accepted")
except grpc.RpcError as e:
    expect(e.code() == grpc.StatusCode.INVALID_ARGUMENT, "converted deal: code %s" % e.code())
    expect("outcome" in violations(e), "converted deal: violations %s" % violations(e))

replied = enrollments.ReportEmailReplied(
    es.ReportEmailEventRequest(parent="companies/pyco", entity_kind=model.ENTITY_KIND_DEAL,
                               item_id="78", sequence=created.sequence.name,
                               request_id="py-replied-78"),
    metadata=metadata, timeout=20)
expect(replied.item == "companies/pyco/items/deal:78", "replied item %s" % replied.item)

try:
    enrollments.ReportEmailReplied(
        es.ReportEmailEventRequest(parent="companies/pyco", entity_kind=model.ENTITY_KIND_DEAL,
                                   item_id="78", sequence="companies/otherco/sequences/s1",
                                   request_id="py-replied-other"),
        metadata=metadata, timeout=20)
    expect(False, "a reply naming another company's sequence was accepted")
except grpc.RpcError as e:
    expect(e.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                        grpc.StatusCode.PERMISSION_DENIED),
           "foreign sequence: code %s" % e.code())

try:
    enrollments.UpdateEnrollmentData(
        es.UpdateEnrollmentDataRequest(name=created.sequence.name + "/enrollments/deal:never",
                                       merge_data={"person.first_name": "Ada"},
                                       request_id="py-repair-never"),
        metadata=metadata, timeout=20)
    expect(False, "repairing an item that was never enrolled was accepted")
except grpc.RpcError as e:
    expect(e.code() == grpc.StatusCode.NOT_FOUND, "repair: code %s" % e.code())

# update_mask in the proto3 JSON mapping is a comma-separated string; protojson parsers accept it.
rename = json_format.Parse(
    '{"sequence": {"name": "%s", "displayName": "Renamed from Python"}, '
    '"updateMask": "displayName", "requestId": "py-rename"}' % created.sequence.name,
    ss.UpdateSequenceRequest())
expect(list(rename.update_mask.paths) == ["display_name"], "mask %s" % rename.update_mask)
renamed = sequences.UpdateSequence(rename, metadata=metadata, timeout=20)
expect(renamed.sequence.display_name == "Renamed from Python", "renamed %s" % renamed.sequence)

lead_sequence = sequences.CreateSequence(
    ss.CreateSequenceRequest(parent="companies/pyco", request_id="py-create-lead",
                             sequence=ss.Sequence(display_name="Leads from Python",
                                                  entity_kind=model.ENTITY_KIND_LEAD,
                                                  steps=[step])),
    metadata=metadata, timeout=20)
deals = sequences.ListSequences(
    ss.ListSequencesRequest(parent="companies/pyco", entity_kind=model.ENTITY_KIND_DEAL,
                            consistency_token=lead_sequence.consistency_token),
    metadata=metadata, timeout=20)
names = [s.name for s in deals.sequences]
expect(created.sequence.name in names and lead_sequence.sequence.name not in names,
       "deal sequences %s" % names)

# --- WatchEnrollments (server streaming): a refusal names the field on the first next(); an open
# watch yields messages with resume tokens until its deadline.
try:
    next(enrollments.WatchEnrollments(
        es.WatchEnrollmentsRequest(parent="companies/pyco", sequence=created.sequence.name,
                                   owner_id="py-user"),
        metadata=metadata, timeout=20))
    expect(False, "a watch with two filters was accepted")
except grpc.RpcError as e:
    expect(e.code() == grpc.StatusCode.INVALID_ARGUMENT, "watch: code %s" % e.code())
    expect("owner_id" in violations(e), "watch: violations %s" % violations(e))
watch = enrollments.WatchEnrollments(
    es.WatchEnrollmentsRequest(parent="companies/pyco", sequence=created.sequence.name),
    metadata=metadata, timeout=2)
try:
    for message in watch:
        expect(message.resume_token != "" and message.update.company_id == "pyco",
               "watch message %s" % message)
    expect(False, "an open watch ended before its deadline")
except grpc.RpcError as e:
    expect(e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, "open watch: code %s" % e.code())
# --- Email templates of the company, and a step that copies one when the sequence is saved.
template = sequences.CreateEmailTemplate(
    ss.CreateEmailTemplateRequest(
        parent="companies/pyco", request_id="py-template",
        email_template=ss.EmailTemplate(display_name="Intro", subject="Hi {{person.first_name}}",
                                        body="Hello {{person.first_name | \"there\"}}")),
    metadata=metadata, timeout=20)
tpl = template.email_template
expect(tpl.name.startswith("companies/pyco/emailTemplates/") and tpl.version == 1,
       "template %s" % tpl)
template_id = tpl.name.rsplit("/", 1)[1]
got = sequences.GetEmailTemplate(
    ss.GetEmailTemplateRequest(name=tpl.name, consistency_token=template.consistency_token),
    metadata=metadata, timeout=20)
expect(got.subject == "Hi {{person.first_name}}", "got template %s" % got)
listed = sequences.ListEmailTemplates(ss.ListEmailTemplatesRequest(parent="companies/pyco"),
                                      metadata=metadata, timeout=20)
expect([t.name for t in listed.email_templates] == [tpl.name], "templates %s" % listed)
mail = model.Step(id="mail-1", delay=model.Delay(unit=model.DELAY_UNIT_DAYS, amount=1),
                  email=model.EmailStep(sender=model.UserChoice(item_owner=True),
                                        email_template_id=template_id))
with_template = sequences.CreateSequence(
    ss.CreateSequenceRequest(parent="companies/pyco", request_id="py-create-templated",
                             sequence=ss.Sequence(display_name="Templated",
                                                  entity_kind=model.ENTITY_KIND_DEAL,
                                                  steps=[mail])),
    metadata=metadata, timeout=20)
copied = with_template.sequence.steps[0].email
expect(copied.subject == "Hi {{person.first_name}}" and copied.email_template_version == 1,
       "copied step %s" % copied)
edited = sequences.UpdateEmailTemplate(
    ss.UpdateEmailTemplateRequest(email_template=ss.EmailTemplate(name=tpl.name, subject="New"),
                                  update_mask={"paths": ["subject"]}, expected_version=1,
                                  request_id="py-template-edit"),
    metadata=metadata, timeout=20)
expect(edited.email_template.version == 2 and edited.email_template.subject == "New",
       "edited template %s" % edited)
try:
    sequences.CreateEmailTemplate(
        ss.CreateEmailTemplateRequest(
            parent="companies/pyco", request_id="py-template-bad",
            email_template=ss.EmailTemplate(display_name="Bad", subject="Hi {{person.first_name",
                                            body="b")),
        metadata=metadata, timeout=20)
    expect(False, "a template with a broken merge field was accepted")
except grpc.RpcError as e:
    expect(e.code() == grpc.StatusCode.INVALID_ARGUMENT, "bad template: code %s" % e.code())
    expect("email_template.subject" in violations(e), "bad template: %s" % violations(e))
deleted = sequences.DeleteEmailTemplate(
    ss.DeleteEmailTemplateRequest(name=tpl.name, request_id="py-template-delete"),
    metadata=metadata, timeout=20)
expect(deleted.email_template.deleted, "deleted template %s" % deleted)

print("python client: OK")
