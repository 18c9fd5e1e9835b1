#!/usr/bin/env bash
# Installs the Python tools that check deploy/ (kubernetes-validate with its bundled Kubernetes
# schemas, PyYAML) into a venv at ${SEQUENCES_CACHE:-$HOME/.cache/sequences}/ops-venv, from PyPI,
# at the versions pinned in deploy/local/ops-requirements.txt. Idempotent: prints one line when the
# venv already matches the pins. promtool and systemd-analyze come from Debian
# (deploy/local/install-deps.sh).
#
#   deploy/local/ops-tools.sh           install (if missing) and print the venv's python
#   source <(deploy/local/ops-tools.sh --env)   export OPS_PYTHON
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${SEQUENCES_CACHE:-$HOME/.cache/sequences}
venv=$cache/ops-venv
requirements=$here/ops-requirements.txt
stamp=$venv/requirements.sha256
want=$(sha256sum "$requirements" | cut -d' ' -f1)

mkdir -p "$cache"
# Tests run in parallel: one installs, the others wait for it.
exec 9>"$cache/ops-venv.lock"
flock 9
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "ops-tools.sh: installing $(grep -c '==' "$requirements") pinned packages into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2
  echo "$want" >"$stamp"
fi
if [ "${1:-}" = "--env" ]; then
  echo "export OPS_PYTHON=$venv/bin/python"
else
  echo "ops-tools.sh: python=$venv/bin/python"
fi
