#!/usr/bin/env bash
# buf checks of the public contract (proto/, configured by buf.yaml):
#   buf lint                       STANDARD rules, two recorded exceptions
#   buf format --diff --exit-code  buf's canonical layout
#   buf breaking                   FILE rules against the last released descriptor,
#                                  proto/compat/gateway.v1.baseline.binpb
# buf comes from npm (@bufbuild/buf, pinned in .ci/buf/package-lock.json), installed
# into .ci/buf/node_modules by `npm ci` (once; a later run reuses it). No global install.
#
# Changing the contract on purpose (a new major version, or a deliberate removal while
# still in development): edit the proto, then write the new baseline in the same commit
# and say in the commit message why the break is intended:
#   bash .ci/buf.sh update-baseline
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TOOLS=.ci/buf
BASELINE=proto/compat/gateway.v1.baseline.binpb

stamp="$TOOLS/node_modules/.buf-lock"
want="$(sha256sum "$TOOLS/package-lock.json" | cut -c1-64)"
if [[ ! -x "$TOOLS/node_modules/.bin/buf" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "buf: npm ci in $TOOLS"
  (cd "$TOOLS" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
fi
buf() { "$TOOLS/node_modules/.bin/buf" "$@"; }
echo "buf $(buf --version)"

if [[ "${1:-}" == "update-baseline" ]]; then
  buf build --exclude-source-info --as-file-descriptor-set -o "$BASELINE"
  echo "wrote $BASELINE"
  exit 0
fi

buf lint
echo "buf lint: ok"
buf format --diff --exit-code
echo "buf format: ok"
buf breaking --against "$BASELINE"
echo "buf breaking against $BASELINE: ok"
