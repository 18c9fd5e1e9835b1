#!/usr/bin/env bash
# Installs the gRPC clients no one on the team wrote, for the sequence-api e2e tests and for
# people following the README: grpcurl (Go module proxy) and a Python venv with grpcio and
# grpcio-tools (PyPI). Everything goes to ${SEQUENCES_CACHE:-$HOME/.cache/sequences}, outside the
# repo. Idempotent; prints one line when everything is already there.
#
#   tests/e2e/api/clients.sh          install (if missing) and print the paths
#   source <(tests/e2e/api/clients.sh --env)   export GRPCURL and API_PYTHON
set -euo pipefail
cache=${SEQUENCES_CACHE:-$HOME/.cache/sequences}
grpcurl_version=v1.9.3
grpcio_version=1.84.0
bin=$cache/bin
venv=$cache/api-venv
mkdir -p "$bin"

if [ ! -x "$bin/grpcurl" ]; then
  echo "clients.sh: installing grpcurl $grpcurl_version into $bin" >&2
  GOPATH=$cache/go GOBIN=$bin GOFLAGS=-mod=mod go install \
    "github.com/fullstorydev/grpcurl/cmd/grpcurl@$grpcurl_version" >&2
fi
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import grpc, grpc_tools" 2>/dev/null; then
  echo "clients.sh: installing grpcio $grpcio_version into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "grpcio==$grpcio_version" "grpcio-tools==$grpcio_version" >&2
fi
if [ "${1:-}" = "--env" ]; then
  echo "export GRPCURL=$bin/grpcurl API_PYTHON=$venv/bin/python"
else
  echo "clients.sh: grpcurl=$bin/grpcurl python=$venv/bin/python"
fi
