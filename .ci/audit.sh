#!/usr/bin/env bash
# Supply-chain checks with cargo-deny (policy in deny.toml): licences, bans, sources,
# and RustSec advisories.
#
#   .ci/audit.sh                   # install cargo-deny if missing, run every check
#   AUDIT_DB=/path/to/advisory-db  # check advisories against a local clone of RustSec's
#                                  # advisory-db, without fetching (no GitHub needed)
#   AUDIT_ALLOW_OFFLINE=1          # exit 0 (still saying so) when only the advisory
#                                  # check could not run
#
# Exit codes: 0 every check ran and passed; 1 a check failed; 2 licences, bans and
# sources passed but advisories could NOT be checked (database unreachable): not a pass.
set -euo pipefail
cd "$(dirname "$0")/.."

DENY_VERSION="${DENY_VERSION:-0.20.2}"
if command -v cargo-deny >/dev/null 2>&1; then
    echo "audit: using $(cargo deny --version)"
else
    echo "audit: installing cargo-deny ${DENY_VERSION} from crates.io"
    cargo install --locked cargo-deny --version "${DENY_VERSION}"
fi

echo "audit: licences, bans, sources"
if ! cargo deny check licenses bans sources; then
    echo "audit: FAILED (licences, bans or sources)"
    exit 1
fi

echo "audit: advisories"
log="$(mktemp)"
tmp="$(mktemp -d)"
trap 'rm -rf "$log" "$tmp"' EXIT
set +e
if [[ -n "${AUDIT_DB:-}" ]]; then
    # cargo-deny keeps each database under <db-path>/advisory-db-<hash of its URL>.
    # Point db-path at an empty directory, let an offline run name the directory it
    # wants, and link the local clone there.
    sed "s|^\[advisories\]|[advisories]\ndb-path = \"$tmp\"|" deny.toml > "$tmp/deny.toml"
    want="$(cargo deny --offline --config "$tmp/deny.toml" check advisories 2>&1 \
        | grep -o "$tmp/advisory-db-[0-9a-f]*" | head -1)"
    if [[ -z "$want" ]]; then
        echo "audit: could not find where cargo-deny expects the database"
        exit 1
    fi
    ln -s "$(realpath "$AUDIT_DB")" "$want"
    echo "audit: advisory database: local clone $AUDIT_DB ($(git -C "$AUDIT_DB" log -1 --format='%h, %cs' 2>/dev/null || echo 'not a git clone'))"
    cargo deny --offline --config "$tmp/deny.toml" check advisories 2>&1 | tee "$log"
else
    cargo deny check advisories 2>&1 | tee "$log"
fi
status=${PIPESTATUS[0]}
set -e

if [[ $status -eq 0 ]]; then
    echo "audit: PASSED (licences, bans, sources, advisories)"
    exit 0
fi
if grep -q "failed to fetch advisory database\|failed to get 'FETCH_HEAD'\|failed to open advisory database" "$log"; then
    echo "audit: ADVISORIES NOT CHECKED: the RustSec advisory database could not be fetched"
    echo "audit: (cargo-deny clones it from GitHub). Licences, bans and sources passed."
    echo "audit: This is not a pass. Set AUDIT_DB to a local clone of advisory-db to check."
    if [[ "${AUDIT_ALLOW_OFFLINE:-0}" == "1" ]]; then
        exit 0
    fi
    exit 2
fi
echo "audit: FAILED (advisories)"
exit 1
