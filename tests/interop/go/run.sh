#!/usr/bin/env bash
# Builds and runs the Go interop suite (client.go) offline, in GOPATH mode over Debian's
# Go packages (golang-go 1.19, golang-google-grpc-dev 1.33, golang-google-genproto-dev,
# golang-goprotobuf-dev for protoc-gen-go with the grpc plugin, protobuf-compiler):
# see ../shared/notes/polyglot-clients.md. Stubs are generated from proto/ each run.
# Run by tests/interop/run.sh (GATEWAY_ADDR, EMULATOR_URL, ATLAS_ORG_ID set).
# Environment: INTEROP_GO_DIR  build directory (default target/interop-go).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
OUT="${INTEROP_GO_DIR:-$ROOT/target/interop-go}"

for tool in go protoc protoc-gen-go; do
  command -v "$tool" >/dev/null || {
    echo "go suite: $tool not found: apt-get install golang-go golang-google-grpc-dev golang-google-genproto-dev golang-goprotobuf-dev protobuf-compiler" >&2
    exit 1
  }
done

rm -rf "$OUT/src"
mkdir -p "$OUT/src/gatewayv1" "$OUT/src/atlasinterop" "$OUT/cache"
# The proto declares no go_package: the M option names the import path.
protoc -I "$ROOT/proto" \
  --go_out="plugins=grpc,Matlas/gateway/v1/gateway.proto=gatewayv1:$OUT/src/gatewayv1" \
  atlas/gateway/v1/gateway.proto
mv "$OUT/src/gatewayv1/atlas/gateway/v1/gateway.pb.go" "$OUT/src/gatewayv1/"
rm -rf "$OUT/src/gatewayv1/atlas"
cp "$HERE/client.go" "$OUT/src/atlasinterop/"

export GOPATH="$OUT:/usr/share/gocode" GO111MODULE=off GOCACHE="$OUT/cache"
(cd "$OUT/src/atlasinterop" && go vet . && go build -o "$OUT/atlas-interop-go" .)
echo "go suite: client binary $(stat -c %s "$OUT/atlas-interop-go") bytes"
"$OUT/atlas-interop-go"
