#!/usr/bin/env bash
# Installs ghz (the gRPC load tool the API benchmarks use; Go module proxy) into
# ${SEQUENCES_CACHE:-$HOME/.cache/sequences}/bin if it is missing, and prints its path.
set -euo pipefail
cache=${SEQUENCES_CACHE:-$HOME/.cache/sequences}
ghz_version=v0.120.0
if [ ! -x "$cache/bin/ghz" ]; then
  echo "ghz.sh: installing ghz $ghz_version into $cache/bin" >&2
  GOPATH=$cache/go GOBIN=$cache/bin GOFLAGS=-mod=mod go install \
    "github.com/bojand/ghz/cmd/ghz@$ghz_version" >&2
fi
echo "$cache/bin/ghz"
