// Node interop suite: @grpc/grpc-js with @grpc/proto-loader loading proto/ at run time,
// and the rich error details decoded from the `grpc-status-details-bin` trailer with
// protobufjs, as a Node caller would (grpc-js has no rich-status helper).
//
// Run by tests/interop/run.sh (`node --test test.js`), which sets GATEWAY_ADDR,
// EMULATOR_URL, ATLAS_ORG_ID and INTEROP_PROTO_DIR.
'use strict';

const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const GATEWAY_ADDR = process.env.GATEWAY_ADDR || '127.0.0.1:50051';
const EMULATOR_URL = process.env.EMULATOR_URL || 'http://127.0.0.1:8080';
const ORG = process.env.ATLAS_ORG_ID || '5f1a0c2b3d4e5f6a7b8c9d0e';
const RL_ORG = '5f1a0c2b3d4e5f6a7b8c9d1f'; // only the rate-limit test uses it (its cool-down stays there)
const PROTO_DIR = process.env.INTEROP_PROTO_DIR || path.join(__dirname, '..', '..', '..', 'proto');

// ---------------------------------------------------------------- rich error details
// The google.rpc messages the gateway sends (subset of google/rpc/status.proto and
// google/rpc/error_details.proto, same field numbers).
// docs:begin node-rich-status
const RPC_TYPES = protobuf.parse(`
syntax = "proto3";
package google.rpc;
message Status { int32 code = 1; string message = 2; repeated google.protobuf.Any details = 3; }
message ErrorInfo { string reason = 1; string domain = 2; map<string, string> metadata = 3; }
message RetryInfo { google.protobuf.Duration retry_delay = 1; }
message BadRequest {
  message FieldViolation { string field = 1; string description = 2; string reason = 3; }
  repeated FieldViolation field_violations = 1;
}
message RequestInfo { string request_id = 1; string serving_data = 2; }
message QuotaFailure {
  message Violation { string subject = 1; string description = 2; }
  repeated Violation violations = 1;
}
message Help {
  message Link { string description = 1; string url = 2; }
  repeated Link links = 1;
}
message LocalizedMessage { string locale = 1; string message = 2; }
`, new protobuf.Root().addJSON(protobuf.common['google/protobuf/any.proto'].nested)
  .addJSON(protobuf.common['google/protobuf/duration.proto'].nested), { keepCase: true }).root;
RPC_TYPES.resolveAll();
const StatusType = RPC_TYPES.lookupType('google.rpc.Status');

/** Decodes grpc-status-details-bin: {code, message, details: {ErrorInfo: {...}, ...}}. */
function richStatus(err) {
  const bins = err.metadata && err.metadata.get('grpc-status-details-bin');
  assert.ok(bins && bins.length === 1, `no grpc-status-details-bin on ${err.code} ${err.details}`);
  const status = StatusType.toObject(StatusType.decode(bins[0]), { longs: Number, defaults: true });
  const details = {};
  for (const any of status.details) {
    const typeName = any.type_url.slice(any.type_url.lastIndexOf('/') + 1);
    const type = RPC_TYPES.lookupType(typeName);
    details[type.name] = type.toObject(type.decode(any.value), { longs: Number, defaults: true });
  }
  return { code: status.code, message: status.message, details };
}
// docs:end

// ---------------------------------------------------------------- helpers
let client;

function call(method, request, { metadata = {}, deadlineMs = 10000 } = {}) {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  return new Promise((resolve, reject) => {
    let headers = null;
    const c = client[method](request, md, { deadline: Date.now() + deadlineMs }, (err, response) => {
      if (err) reject(err);
      else resolve({ response, headers });
    });
    c.on('metadata', (m) => {
      headers = m;
    });
  });
}

async function rejects(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail('the call succeeded, an error was expected');
}

async function emulator(method, p, body) {
  const res = await fetch(EMULATOR_URL + p, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(res.ok, `${method} ${p}: HTTP ${res.status}`);
  return res.json();
}

before(async () => {
  // docs:begin node-connect
  const def = protoLoader.loadSync('atlas/gateway/v1/gateway.proto', {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    enums: String,
    longs: Number,
    defaults: true,
  });
  const pkg = grpc.loadPackageDefinition(def);
  client = new pkg.atlas.gateway.v1.AtlasGateway(GATEWAY_ADDR, grpc.credentials.createInsecure());
  // docs:end
  await new Promise((resolve, reject) =>
    client.waitForReady(Date.now() + 10000, (e) => (e ? reject(e) : resolve())));
});

after(() => client && client.close());

beforeEach(() => emulator('DELETE', '/__emulator/faults'));

// ---------------------------------------------------------------- the RPCs
test('CreateLinkToken returns a link token and echoes x-request-id', async () => {
  const rid = `node-${Date.now()}`;
  const { response, headers } = await call(
    'CreateLinkToken',
    { org_id: ORG, access_list_ips: ['203.0.113.7', '10.0.0.0/8'] },
    { metadata: { 'x-request-id': rid } },
  );
  assert.ok(response.link_token.length > 0);
  assert.deepEqual(headers.get('x-request-id'), [rid]);
});

test('DeleteLinkToken after create returns an empty message', async () => {
  await call('CreateLinkToken', { org_id: ORG });
  const { response } = await call('DeleteLinkToken', { org_id: ORG });
  assert.deepEqual(response, {});
  const state = await emulator('GET', '/__emulator/state');
  assert.ok(!state.links.includes(ORG));
});

test('CreateApiKey with enum names as strings', async () => {
  const { response, headers } = await call('CreateApiKey', {
    org_id: ORG,
    desc: 'node interop',
    roles: ['ORG_MEMBER'],
  });
  const key = response.api_key;
  assert.ok(key.private_key.length > 0);
  assert.equal(key.public_key.length, 8);
  assert.match(key.id, /^[a-f0-9]{24}$/);
  assert.equal(key.desc, 'node interop');
  assert.equal(key.roles[0].role_name, 'ORG_MEMBER');
  assert.equal(key.roles[0].org_id, ORG);
  assert.equal(key.links[0].rel, 'self');
  assert.equal(headers.get('x-request-id').length, 1, 'a generated x-request-id is returned');
});

// ---------------------------------------------------------------- errors
test('validation: INVALID_ARGUMENT with BadRequest and ErrorInfo', async () => {
  const err = await rejects(call('CreateLinkToken', { org_id: 'not-an-org', access_list_ips: ['10.0.0.1', 'bad'] }));
  assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
  const st = richStatus(err);
  assert.equal(st.code, grpc.status.INVALID_ARGUMENT);
  assert.equal(st.message, err.details);
  assert.deepEqual(
    st.details.BadRequest.field_violations.map((v) => v.field),
    ['org_id', 'access_list_ips[1]'],
  );
  assert.equal(st.details.ErrorInfo.reason, 'INVALID_REQUEST');
  assert.ok(st.details.RequestInfo.request_id.length > 0);
});

test('429 RATE_LIMITED: RESOURCE_EXHAUSTED with RetryInfo', async () => {
  await emulator('POST', '/__emulator/faults', {
    route: 'create_api_key',
    action: { kind: 'error', status: 429, error_code: 'RATE_LIMITED', retry_after: '7' },
  });
  const started = Date.now();
  const err = await rejects(call(
    'CreateApiKey',
    // Another org: the 429 cools createOrgApiKey down for its org only.
    { org_id: RL_ORG, desc: 'rl', roles: ['ORG_MEMBER'] },
    { deadlineMs: 2000, metadata: { 'x-request-id': 'node-rate-limited' } },
  ));
  assert.ok(Date.now() - started < 2500);
  assert.equal(err.code, grpc.status.RESOURCE_EXHAUSTED, err.details);
  const { details } = richStatus(err);
  assert.equal(details.ErrorInfo.reason, 'RATE_LIMITED');
  assert.equal(details.ErrorInfo.domain, '127.0.0.1');
  assert.equal(details.ErrorInfo.metadata.http_status, '429');
  assert.equal(details.RetryInfo.retry_delay.seconds, 7);
  assert.equal(details.RequestInfo.request_id, 'node-rate-limited');
  assert.deepEqual(err.metadata.get('x-request-id'), ['node-rate-limited']);
});

test('DeleteLinkToken without a link: NOT_FOUND with ErrorInfo and RequestInfo', async () => {
  // Make sure no link is left over.
  await call('DeleteLinkToken', { org_id: ORG }).catch((e) => assert.equal(e.code, grpc.status.NOT_FOUND));
  const rid = `node-nf-${Date.now()}`;
  const err = await rejects(call('DeleteLinkToken', { org_id: ORG }, { metadata: { 'x-request-id': rid } }));
  assert.equal(err.code, grpc.status.NOT_FOUND, err.details);
  const { details } = richStatus(err);
  assert.equal(details.ErrorInfo.reason, 'UNEXPECTED_ERROR');
  assert.equal(details.ErrorInfo.metadata.http_status, '404');
  assert.equal(details.ErrorInfo.metadata.org_id, ORG);
  assert.equal(details.RequestInfo.request_id, rid);
});

test('unknown profile: INVALID_ARGUMENT UNKNOWN_PROFILE', async () => {
  const err = await rejects(call('CreateLinkToken', { org_id: ORG }, { metadata: { 'x-atlas-profile': 'nope' } }));
  assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
  assert.equal(richStatus(err).details.ErrorInfo.reason, 'UNKNOWN_PROFILE');
});

// ---------------------------------------------------------------- API key lifecycle
async function createKey(extra = {}) {
  const { response } = await call('CreateApiKey', { org_id: ORG, desc: 'node lifecycle', roles: ['ORG_MEMBER'], ...extra });
  return response.api_key;
}

test('CreateApiKey with access_list_ips returns the applied entries', async () => {
  const key = await createKey({ access_list_ips: ['203.0.113.7', '10.0.0.0/8'] });
  assert.deepEqual(key.access_list_ips, ['203.0.113.7', '10.0.0.0/8']);
});

test('access list failure: the key is deleted again, rolled_back=true', async () => {
  await emulator('POST', '/__emulator/faults', {
    route: 'create_api_key_access_list',
    times: 1,
    action: { kind: 'error', status: 409, error_code: 'DUPLICATE_ACCESS_LIST_ENTRY' },
  });
  const err = await rejects(createKey({ access_list_ips: ['10.0.0.0/8'] }));
  assert.equal(err.code, grpc.status.ALREADY_EXISTS, err.details);
  const { details } = richStatus(err);
  assert.equal(details.ErrorInfo.reason, 'DUPLICATE_ACCESS_LIST_ENTRY');
  assert.equal(details.ErrorInfo.metadata.rolled_back, 'true');
  const id = details.ErrorInfo.metadata.api_key_id;
  assert.match(id, /^[a-f0-9]{24}$/);
  const state = await emulator('GET', '/__emulator/state');
  assert.ok(!state.api_keys.some((k) => k.id === id), 'deleted again');
});

test('rollback fails too: INTERNAL ORPHANED_API_KEY, rolled_back=false', async () => {
  await emulator('POST', '/__emulator/faults', [
    { route: 'create_api_key_access_list', times: 1, action: { kind: 'error', status: 403, error_code: 'ACCESS_LIST_FORBIDDEN' } },
    { route: 'delete_api_key', times: 1, action: { kind: 'error', status: 500, error_code: 'UNEXPECTED_ERROR' } },
  ]);
  const err = await rejects(createKey({ access_list_ips: ['10.0.0.0/8'] }));
  assert.equal(err.code, grpc.status.INTERNAL, err.details);
  const { details } = richStatus(err);
  assert.equal(details.ErrorInfo.reason, 'ORPHANED_API_KEY');
  assert.equal(details.ErrorInfo.metadata.rolled_back, 'false');
  const id = details.ErrorInfo.metadata.api_key_id;
  await call('DeleteApiKey', { org_id: ORG, api_key_id: id });
});

test('ListApiKeys pages with opaque tokens; DeleteApiKey; NOT_FOUND after', async () => {
  const mine = [await createKey(), await createKey(), await createKey()].map((k) => k.id);
  const seen = [];
  let request = { org_id: ORG, page_size: 2 };
  let total = 0;
  for (;;) {
    const { response } = await call('ListApiKeys', request);
    total = response.total_size;
    seen.push(...response.api_keys.map((k) => k.id));
    if (!response.next_page_token) break;
    request = { ...request, page_token: response.next_page_token };
  }
  assert.equal(seen.length, total);
  for (const id of mine) assert.ok(seen.includes(id), id);
  const { response } = await call('DeleteApiKey', { org_id: ORG, api_key_id: mine[0] });
  assert.deepEqual(response, {});
  const err = await rejects(call('DeleteApiKey', { org_id: ORG, api_key_id: mine[0] }));
  assert.equal(err.code, grpc.status.NOT_FOUND);
});

test('allowed_rpcs: PERMISSION_DENIED POLICY_DENIED with field rpc', async () => {
  const err = await rejects(call('DeleteApiKey', { org_id: ORG, api_key_id: 'a'.repeat(24) }, { metadata: { 'x-atlas-profile': 'readonly' } }));
  assert.equal(err.code, grpc.status.PERMISSION_DENIED);
  const { details } = richStatus(err);
  assert.equal(details.ErrorInfo.reason, 'POLICY_DENIED');
  assert.equal(details.ErrorInfo.metadata.field, 'rpc');
});

// ---------------------------------------------------------------- service accounts
async function createServiceAccount(extra = {}) {
  const { response } = await call('CreateServiceAccount', {
    org_id: ORG, name: 'node interop', description: 'interop suite', roles: ['ORG_MEMBER'],
    secret_expires_after_hours: 24, ...extra,
  });
  return response.service_account;
}

test('service account: create, rotate, list without secret values, delete', async () => {
  const sa = await createServiceAccount({ access_list_ips: ['203.0.113.7'] });
  assert.match(sa.client_id, /^mdb_sa_id_[a-fA-F0-9]{24}$/);
  assert.deepEqual(sa.access_list_ips, ['203.0.113.7']);
  assert.match(sa.secrets[0].secret, /^mdb_sa_sk_/);
  const rotate = { org_id: ORG, client_id: sa.client_id, secret_expires_after_hours: 24 };
  const { response: rotated } = await call('RotateServiceAccountSecret', rotate);
  assert.match(rotated.secret.secret, /^mdb_sa_sk_/);
  assert.ok(rotated.secret.expire_time.seconds > 0);
  const { response: listed } = await call('ListServiceAccounts', { org_id: ORG, page_size: 500 });
  const mine = listed.service_accounts.find((a) => a.client_id === sa.client_id);
  assert.equal(mine.secrets.length, 2);
  for (const s of mine.secrets) {
    assert.equal(s.secret, '');
    assert.ok(s.masked_secret_value);
  }
  const del = { org_id: ORG, client_id: sa.client_id };
  assert.deepEqual((await call('DeleteServiceAccount', del)).response, {});
  const err = await rejects(call('DeleteServiceAccount', del));
  assert.equal(err.code, grpc.status.NOT_FOUND);
});

test('service account rollback fails too: INTERNAL ORPHANED_SERVICE_ACCOUNT with client_id', async () => {
  await emulator('POST', '/__emulator/faults', [
    { route: 'create_service_account_access_list', times: 1, action: { kind: 'error', status: 403, error_code: 'ACCESS_LIST_FORBIDDEN' } },
    { route: 'delete_service_account', times: 1, action: { kind: 'error', status: 500, error_code: 'UNEXPECTED_ERROR' } },
  ]);
  const err = await rejects(createServiceAccount({ access_list_ips: ['10.0.0.0/8'] }));
  assert.equal(err.code, grpc.status.INTERNAL, err.details);
  const { details } = richStatus(err);
  assert.equal(details.ErrorInfo.reason, 'ORPHANED_SERVICE_ACCOUNT');
  assert.equal(details.ErrorInfo.metadata.rolled_back, 'false');
  await call('DeleteServiceAccount', { org_id: ORG, client_id: details.ErrorInfo.metadata.client_id });
});
