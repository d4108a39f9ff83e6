#!/usr/bin/env bash
# grpcurl suite: what a human (or a shell script) sees with grpcurl 1.8.6 and server
# reflection (v1alpha), no .proto files at hand. Run by tests/interop/run.sh, which sets:
#   GATEWAY_ADDR   host:port of a SERVING gateway in front of the emulator
#   ATLAS_ORG_ID   the emulator's demo org
#   GRPCURL        the grpcurl binary (default: grpcurl on PATH)
set -euo pipefail

: "${GATEWAY_ADDR:?set GATEWAY_ADDR (host:port of the gateway)}"
ORG="${ATLAS_ORG_ID:-5f1a0c2b3d4e5f6a7b8c9d0e}"
GRPCURL="${GRPCURL:-grpcurl}"
SVC="atlas.gateway.v1.AtlasGateway"

PASSED=0
FAILED=0
OUT=""

# g ARGS...: runs grpcurl, output (stdout and stderr) in $OUT, exit code in $RC.
g() {
  set +e
  OUT="$("$GRPCURL" -plaintext -max-time 10 "$@" 2>&1)"
  RC=$?
  set -e
}

# check NAME EXPECTED_RC PATTERN...: every extended regex must match $OUT.
check() {
  local name="$1" want_rc="$2"
  shift 2
  local problems=()
  if [[ "$want_rc" == "0" && "$RC" -ne 0 ]]; then
    problems+=("exit code $RC, expected 0")
  elif [[ "$want_rc" == "nonzero" && "$RC" -eq 0 ]]; then
    problems+=("exit code 0, expected a failure")
  fi
  local pat
  for pat in "$@"; do
    if ! grep -Eq -- "$pat" <<<"$OUT"; then
      problems+=("no match for /$pat/")
    fi
  done
  if [[ ${#problems[@]} -eq 0 ]]; then
    PASSED=$((PASSED + 1))
    echo "ok   $name"
  else
    FAILED=$((FAILED + 1))
    echo "FAIL $name" >&2
    printf '       %s\n' "${problems[@]}" >&2
    echo "------- grpcurl output -------" >&2
    echo "$OUT" >&2
    echo "------------------------------" >&2
  fi
}

# --- reflection
g "$GATEWAY_ADDR" list
check "list shows the gateway and health services" 0 \
  "^atlas\.gateway\.v1\.AtlasGateway$" "^grpc\.health\.v1\.Health$"

g "$GATEWAY_ADDR" describe "$SVC"
check "describe the service: nine RPCs with their comments" 0 \
  "rpc CreateLinkToken \( \.atlas\.gateway\.v1\.CreateLinkTokenRequest \) returns \( \.atlas\.gateway\.v1\.CreateLinkTokenResponse \)" \
  "rpc DeleteLinkToken \( \.atlas\.gateway\.v1\.DeleteLinkTokenRequest \)" \
  "rpc CreateApiKey \( \.atlas\.gateway\.v1\.CreateApiKeyRequest \)" \
  "rpc DeleteApiKey \( \.atlas\.gateway\.v1\.DeleteApiKeyRequest \) returns \( \.atlas\.gateway\.v1\.DeleteApiKeyResponse \)" \
  "rpc ListApiKeys \( \.atlas\.gateway\.v1\.ListApiKeysRequest \) returns \( \.atlas\.gateway\.v1\.ListApiKeysResponse \)" \
  "// Atlas: POST /api/atlas/v2/orgs/\{orgId\}/apiKeys" \
  "// Atlas: DELETE /api/atlas/v2/orgs/\{orgId\}/apiKeys/\{apiUserId\}" \
  "ORPHANED_API_KEY" \
  "rpc CreateServiceAccount \( \.atlas\.gateway\.v1\.CreateServiceAccountRequest \)" \
  "rpc DeleteServiceAccount \( \.atlas\.gateway\.v1\.DeleteServiceAccountRequest \)" \
  "rpc ListServiceAccounts \( \.atlas\.gateway\.v1\.ListServiceAccountsRequest \)" \
  "rpc RotateServiceAccountSecret \( \.atlas\.gateway\.v1\.RotateServiceAccountSecretRequest \)" \
  "ORPHANED_SERVICE_ACCOUNT"

g "$GATEWAY_ADDR" describe atlas.gateway.v1.CreateLinkTokenRequest
check "describe a request: field comments" 0 \
  "// IP address access list entries associated with the migration" \
  "repeated string access_list_ips = 2;" "Must match \^\[a-f0-9\]\{24\}\\$"

g "$GATEWAY_ADDR" describe atlas.gateway.v1.OrgRole
check "describe the role enum: Atlas spellings" 0 "ORG_MEMBER = 2;" "ORG_READ_ONLY = 7;"

# --- the three RPCs, JSON in and out
g -d "{\"org_id\":\"$ORG\",\"access_list_ips\":[\"203.0.113.7\",\"10.0.0.0/8\"]}" \
  "$GATEWAY_ADDR" "$SVC/CreateLinkToken"
check "CreateLinkToken returns a link token" 0 '"linkToken": "[^"]+"'

g -d "{\"org_id\":\"$ORG\"}" "$GATEWAY_ADDR" "$SVC/DeleteLinkToken"
check "DeleteLinkToken after create returns {}" 0 '^\{[[:space:]]*$'
if [[ "$(tr -d '[:space:]' <<<"$OUT")" != "{}" ]]; then
  FAILED=$((FAILED + 1))
  echo "FAIL DeleteLinkToken output is exactly {}: got: $OUT" >&2
fi

g -v -H "x-request-id: grpcurl-interop-1" \
  -d "{\"org_id\":\"$ORG\",\"desc\":\"grpcurl interop\",\"roles\":[\"ORG_MEMBER\"]}" \
  "$GATEWAY_ADDR" "$SVC/CreateApiKey"
check "CreateApiKey returns the key, x-request-id echoed" 0 \
  '"privateKey": "[^"]+"' '"publicKey": "[a-z]{8}"' '"roleName": "ORG_MEMBER"' \
  '"rel": "self"' "^x-request-id: grpcurl-interop-1$"

g -H "x-atlas-profile: apikey" \
  -d "{\"org_id\":\"$ORG\",\"desc\":\"digest key\",\"roles\":[\"ORG_READ_ONLY\"]}" \
  "$GATEWAY_ADDR" "$SVC/CreateApiKey"
check "CreateApiKey with the apikey (Digest) profile" 0 '"privateKey": "[^"]+"' '"roleName": "ORG_READ_ONLY"'

g "$GATEWAY_ADDR" describe atlas.gateway.v1.ListApiKeysRequest
check "describe ListApiKeysRequest: AIP-158 paging fields" 0 \
  "int32 page_size = 2;" "string page_token = 3;" "bound to its org_id and page_size"

# --- API key lifecycle: create with an access list, list in pages, delete
g -d "{\"org_id\":\"$ORG\",\"desc\":\"fenced\",\"roles\":[\"ORG_MEMBER\"],\"access_list_ips\":[\"203.0.113.7\",\"10.0.0.0/8\"]}" \
  "$GATEWAY_ADDR" "$SVC/CreateApiKey"
check "CreateApiKey with access_list_ips returns the applied entries" 0 \
  '"accessListIps": \[' '"203\.0\.113\.7"' '"10\.0\.0\.0/8"'
KEY_ID="$(grep -oE '"id": "[a-f0-9]{24}"' <<<"$OUT" | head -n1 | grep -oE '[a-f0-9]{24}' || true)"

g -d "{\"org_id\":\"$ORG\",\"page_size\":1}" "$GATEWAY_ADDR" "$SVC/ListApiKeys"
check "ListApiKeys page_size 1: one key, a next page token, the total" 0 \
  '"apiKeys": \[' '"nextPageToken": "[A-Za-z0-9_-]+"' '"totalSize": [2-9]' '"privateKey": "\*{8}-'
TOKEN="$(grep -oE '"nextPageToken": "[^"]+"' <<<"$OUT" | cut -d'"' -f4 || true)"

g -d "{\"org_id\":\"$ORG\",\"page_size\":2,\"page_token\":\"$TOKEN\"}" "$GATEWAY_ADDR" "$SVC/ListApiKeys"
check "ListApiKeys: a token used with another page_size is InvalidArgument" nonzero \
  "Code: InvalidArgument" '"field":"page_token"'

g -d "{\"org_id\":\"$ORG\",\"api_key_id\":\"$KEY_ID\"}" "$GATEWAY_ADDR" "$SVC/DeleteApiKey"
check "DeleteApiKey of the fenced key returns {}" 0 '^\{[[:space:]]*$'

g -d "{\"org_id\":\"$ORG\",\"api_key_id\":\"$KEY_ID\"}" "$GATEWAY_ADDR" "$SVC/DeleteApiKey"
check "DeleteApiKey again: NotFound" nonzero "Code: NotFound" '"http_status":"404"'

g -H "x-atlas-profile: readonly" \
  -d "{\"org_id\":\"$ORG\",\"desc\":\"x\",\"roles\":[\"ORG_MEMBER\"]}" "$GATEWAY_ADDR" "$SVC/CreateApiKey"
check "readonly profile (allowed_rpcs): PermissionDenied POLICY_DENIED field rpc" nonzero \
  "Code: PermissionDenied" '"reason":"POLICY_DENIED"' '"field":"rpc"'

# --- service accounts: create with an access list, rotate, list (no secret values), delete
g -d "{\"org_id\":\"$ORG\",\"name\":\"grpcurl interop\",\"description\":\"interop suite\",\"roles\":[\"ORG_MEMBER\"],\"secret_expires_after_hours\":24,\"access_list_ips\":[\"203.0.113.7\"]}" \
  "$GATEWAY_ADDR" "$SVC/CreateServiceAccount"
check "CreateServiceAccount returns the account with its secret, once" 0 \
  '"clientId": "mdb_sa_id_[a-fA-F0-9]{24}"' '"secret": "mdb_sa_sk_[^"]+"' '"accessListIps": \[' '"ORG_MEMBER"'
SA_ID="$(grep -oE 'mdb_sa_id_[a-fA-F0-9]{24}' <<<"$OUT" | head -n1 || true)"

g -d "{\"org_id\":\"$ORG\",\"client_id\":\"$SA_ID\",\"secret_expires_after_hours\":24}" \
  "$GATEWAY_ADDR" "$SVC/RotateServiceAccountSecret"
check "RotateServiceAccountSecret returns the new secret" 0 '"secret": "mdb_sa_sk_[^"]+"' '"expireTime": '

g -d "{\"org_id\":\"$ORG\",\"page_size\":500}" "$GATEWAY_ADDR" "$SVC/ListServiceAccounts"
check "ListServiceAccounts shows masked secrets only" 0 '"serviceAccounts": \[' "$SA_ID" '"maskedSecretValue": '
if grep -q '"secret": ' <<<"$OUT"; then
  FAILED=$((FAILED + 1))
  echo "FAIL ListServiceAccounts shows a secret value: $OUT" >&2
fi

g -d "{\"org_id\":\"$ORG\",\"client_id\":\"$SA_ID\"}" "$GATEWAY_ADDR" "$SVC/DeleteServiceAccount"
check "DeleteServiceAccount returns {}" 0 '^\{[[:space:]]*$'

g -d "{\"org_id\":\"$ORG\",\"client_id\":\"$SA_ID\"}" "$GATEWAY_ADDR" "$SVC/DeleteServiceAccount"
check "DeleteServiceAccount again: NotFound" nonzero "Code: NotFound"

# --- errors, with details decoded through reflection
g -d '{"org_id":"not-an-org","access_list_ips":["10.0.0.1","bad"]}' "$GATEWAY_ADDR" "$SVC/CreateLinkToken"
check "invalid request: InvalidArgument with BadRequest and ErrorInfo" nonzero \
  "Code: InvalidArgument" "google\.rpc\.BadRequest" '"field":"org_id"' \
  '"field":"access_list_ips\[1\]"' "google\.rpc\.ErrorInfo" '"reason":"INVALID_REQUEST"' \
  "google\.rpc\.RequestInfo"

g -d "{\"org_id\":\"$ORG\"}" "$GATEWAY_ADDR" "$SVC/DeleteLinkToken"
check "DeleteLinkToken without a link: NotFound, Atlas errorCode as reason" nonzero \
  "Code: NotFound" '"reason":"UNEXPECTED_ERROR"' '"http_status":"404"'

g -H "x-atlas-profile: restricted" \
  -d "{\"org_id\":\"$ORG\",\"desc\":\"x\",\"roles\":[\"ORG_OWNER\"]}" "$GATEWAY_ADDR" "$SVC/CreateApiKey"
check "restricted profile: PermissionDenied POLICY_DENIED" nonzero \
  "Code: PermissionDenied" '"reason":"POLICY_DENIED"'

# --- health
g "$GATEWAY_ADDR" grpc.health.v1.Health/Check
check "health check: SERVING" 0 '"status": "SERVING"'

g -d "{\"service\":\"$SVC\"}" "$GATEWAY_ADDR" grpc.health.v1.Health/Check
check "health check of the gateway service: SERVING" 0 '"status": "SERVING"'

echo "grpcurl: $PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
