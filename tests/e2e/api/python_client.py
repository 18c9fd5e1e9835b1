"""A Python grpcio client of sequence-api, with stubs generated from proto/ at test time.

usage: python_client.py <generated-stubs-dir> <address> <token>
Creates a sequence, enrolls a deal, reads the overview, and checks that a malformed request is
INVALID_ARGUMENT with google.rpc.BadRequest field violations in the status details. Exits non-zero
with a message on any mismatch.
"""
import sys

sys.path.insert(0, sys.argv[1])
address, token = sys.argv[2], sys.argv[3]

import grpc  # noqa: E402
from google.rpc import error_details_pb2, status_pb2  # noqa: E402
from sequences.v1 import enrollment_service_pb2 as es  # noqa: E402
from sequences.v1 import enrollment_service_pb2_grpc as es_grpc  # noqa: E402
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

print("python client: OK")
