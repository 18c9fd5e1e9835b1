#!/usr/bin/env bash
# Installs the Temporal peer of the benchmark (tests/bench/peers/temporal/README.md) into the
# project's cache, from the Go module proxy:
#   $cache/bin/temporal        Temporal's CLI, whose `server start-dev` is the dev server (SQLite)
#   $cache/bin/protoc-gen-go   protobuf's Go generator, for the repo's proto/sequences/v1 messages
#   $cache/bin/temporal-peer   this directory's worker and driver (Temporal Go SDK, franz-go)
# Prints the path of temporal-peer's directory. Idempotent: the CLI and the generator are built once
# per version; the peer is rebuilt every time (a few seconds with a warm Go build cache).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../../.." && pwd)
cache=${SEQUENCES_CACHE:-$HOME/.cache/sequences}
go=$(command -v go || echo /usr/local/go/bin/go)
[ -x "$go" ] || { echo "temporal peer: needs Go 1.26+ (go on PATH or /usr/local/go)" >&2; exit 1; }
# The CLI's newest releases replace a submodule (cliext) by a local path, which `go install` refuses;
# v1.5.1 is the newest without (dev server of go.temporal.io/server v1.29.1).
cli_version=${TEMPORAL_CLI_VERSION:-v1.5.1}
protoc_gen_go_version=v1.36.11
export GOPATH=$cache/go GOBIN=$cache/bin GOFLAGS=-mod=mod
mkdir -p "$cache/bin"
stamp() { echo "$cache/bin/.$1-$2"; }
if [ ! -e "$(stamp temporal "$cli_version")" ]; then
  echo "temporal peer: installing the temporal CLI $cli_version into $cache/bin (minutes)" >&2
  nice "$go" install "github.com/temporalio/cli/cmd/temporal@$cli_version" >&2
  touch "$(stamp temporal "$cli_version")"
fi
if [ ! -e "$(stamp protoc-gen-go "$protoc_gen_go_version")" ]; then
  nice "$go" install "google.golang.org/protobuf/cmd/protoc-gen-go@$protoc_gen_go_version" >&2
  touch "$(stamp protoc-gen-go "$protoc_gen_go_version")"
fi

# The envelope and its payloads, generated into ./pb (git-ignored) with Debian's protoc.
module=$(sed -n 's/^module //p' "$here/go.mod")
protos=(events effects enrollment_inputs executor_events sequence_events sequence)
maps=() files=()
for p in "${protos[@]}"; do
  maps+=("--go_opt=Msequences/v1/$p.proto=$module/pb") files+=("sequences/v1/$p.proto")
done
rm -rf "$here/pb" && mkdir -p "$here/pb"
PATH=$cache/bin:$PATH protoc -I "$root/proto" -I /usr/include --go_out="$here/pb" \
  --go_opt=paths=source_relative "${maps[@]}" "${files[@]}"
mv "$here"/pb/sequences/v1/*.go "$here/pb/" && rm -rf "$here/pb/sequences"
(cd "$here" && nice "$go" build -o "$cache/bin/temporal-peer" .) >&2
echo "$cache/bin"
