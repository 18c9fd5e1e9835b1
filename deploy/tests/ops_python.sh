#!/usr/bin/env bash
# Runs a Python check of deploy/tests with the pinned tools venv (deploy/local/ops-tools.sh).
#   deploy/tests/ops_python.sh <script.py> [args...]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source <("$root/deploy/local/ops-tools.sh" --env)
exec "$OPS_PYTHON" "$@"
