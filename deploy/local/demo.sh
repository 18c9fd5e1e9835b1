#!/usr/bin/env bash
# A short demo against the running system (deploy/local/run.sh starts it and then runs this):
# creates a deal sequence with a call, a draft email and an automatic email, switches on automated
# sending with the sender's consent, enrolls deal 42, and shows what the executor emitted.
#
#   deploy/local/demo.sh [bootstrap] [api address]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bootstrap=${1:-127.0.0.1:9092}
api=${2:-127.0.0.1:50051}
token=${SEQUENCES_API_TOKEN:-local-dev-token}
source <("$root/tests/e2e/api/clients.sh" --env)
run_id=$(date +%s)
H=(-plaintext -H "authorization: Bearer $token" -H 'x-sequences-company: acme'
  -H 'x-sequences-user: u1')
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
call() {
  local method=$1 body=$2
  echo "\$ grpcurl ... -d '$body' $api $method" >&2
  "$GRPCURL" "${H[@]}" -d "$body" "$api" "$method"
}

say "1. Create a deal sequence: call now, draft email now, automatic email 1 minute later"
created=$(call sequences.v1.SequenceService/CreateSequence '{
  "parent": "companies/acme", "request_id": "demo-create-'$run_id'",
  "sequence": {"display_name": "Demo follow-up", "entity_kind": "ENTITY_KIND_DEAL",
    "steps": [
      {"id": "call", "delay": {"unit": "DELAY_UNIT_MINUTES", "amount": 0},
       "activity": {"activity_type": "call", "subject": "Call {{person.first_name}}",
                    "assignee": {"item_owner": true}}},
      {"id": "draft", "delay": {"unit": "DELAY_UNIT_MINUTES", "amount": 0},
       "email": {"sender": {"item_owner": true}, "subject": "Following up, {{person.first_name}}",
                 "body": "Hi {{person.first_name}}, thanks for the call."}},
      {"id": "auto", "delay": {"unit": "DELAY_UNIT_MINUTES", "amount": 1},
       "email": {"sender": {"item_owner": true}, "subject": "Checking in",
                 "body": "Hi {{person.first_name | \"there\"}}, any questions?",
                 "send_automatically": true}}]}}')
echo "$created" | head -20
name=$(echo "$created" | sed -n 's/.*"name": "\(companies\/acme\/sequences\/[^"]*\)".*/\1/p' | head -1)
echo "sequence: $name"

say "2. Switch on automated sending, and u1 consents to send for this sequence"
call sequences.v1.SequenceService/SwitchAutomatedSending \
  '{"name": "'$name'", "enabled": true, "request_id": "demo-auto-'$run_id'"}' >/dev/null
call sequences.v1.SequenceService/GrantSendingConsent \
  '{"name": "'$name'", "request_id": "demo-consent-'$run_id'"}' >/dev/null
echo ok

say "3. Enroll deal 42"
call sequences.v1.EnrollmentService/Enroll '{"parent": "'$name'", "item": {
  "entity_kind": "ENTITY_KIND_DEAL", "item_id": "42", "request_id": "demo-enroll-'$run_id'",
  "recipient": {"email": "ada@example.com", "name": "Ada Lovelace"},
  "time_zones": {"recipient": "Europe/Berlin"}, "merge_data": {"person.first_name": "Ada"}}}'

say "4. The executor fires the call and the draft at once (waiting 3 s)"
sleep 3
BOOTSTRAP=$bootstrap "$root/deploy/local/read-topic.sh" sequences.task-events | tail -30
BOOTSTRAP=$bootstrap "$root/deploy/local/read-topic.sh" sequences.email-events | tail -30

say "5. The enrollment and the overview"
call sequences.v1.EnrollmentService/GetEnrollment '{"name": "'$name'/enrollments/deal:42"}'
call sequences.v1.EnrollmentService/GetEnrollmentOverview '{"parent": "'$name'"}'

cat <<MSG

The automatic email fires one minute after the draft. Watch it arrive with:
  deploy/local/read-topic.sh sequences.email-events
Logs: /tmp/sequences-run/*.log   Stop everything: ./deploy/local/run.sh stop
MSG
