"""Python interop suite: grpcio stubs generated at test time from proto/, rich error
details read with grpc_status.rpc_status.from_call, as a Python caller would.

Run by tests/interop/run.sh (pytest), which sets:
  GATEWAY_ADDR       host:port of a SERVING gateway in front of the emulator
  EMULATOR_URL       the emulator's base URL (control API under /__emulator/)
  ATLAS_ORG_ID       the emulator's demo org
  INTEROP_PROTO_DIR  the repository's proto/ directory
The gateway runs with tests/interop/profiles.toml (profiles restricted, apikey, readonly).
"""

import datetime
import importlib
import json
import os
import re
import shutil
import sys
import tempfile
import unittest
import urllib.request
import uuid
from importlib import resources

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from grpc_tools import protoc

GATEWAY_ADDR = os.environ.get("GATEWAY_ADDR", "127.0.0.1:50051")
EMULATOR_URL = os.environ.get("EMULATOR_URL", "http://127.0.0.1:8080")
ORG = os.environ.get("ATLAS_ORG_ID", "5f1a0c2b3d4e5f6a7b8c9d0e")
PROTO_DIR = os.environ.get(
    "INTEROP_PROTO_DIR",
    os.path.join(os.path.dirname(__file__), "..", "..", "..", "proto"),
)
# A well-formed org id that does not exist in the emulator.
OTHER_ORG = "0123456789abcdef01234567"
RL_ORG = "5f1a0c2b3d4e5f6a7b8c9d1f"  # only the rate-limit test uses it (its cool-down stays there)

_GEN_DIR = None


def generate_stubs():
    """Runs protoc (grpc_tools) on gateway.proto into a temp dir; returns (pb2, pb2_grpc)."""
    global _GEN_DIR
    _GEN_DIR = tempfile.mkdtemp(prefix="atlas-interop-py-")
    well_known = str(resources.files("grpc_tools") / "_proto")
    rc = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PROTO_DIR}",
            f"-I{well_known}",
            f"--python_out={_GEN_DIR}",
            f"--grpc_python_out={_GEN_DIR}",
            "atlas/gateway/v1/gateway.proto",
        ]
    )
    if rc != 0:
        raise RuntimeError(f"protoc failed with exit code {rc}")
    sys.path.insert(0, _GEN_DIR)
    pb2 = importlib.import_module("atlas.gateway.v1.gateway_pb2")
    pb2_grpc = importlib.import_module("atlas.gateway.v1.gateway_pb2_grpc")
    return pb2, pb2_grpc


def emulator(method, path, body=None):
    """Calls the emulator's control API; returns the decoded JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        EMULATOR_URL + path,
        data=data,
        method=method,
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read() or b"null")


def details_of(err):
    """google.rpc.Status of a failed call, and its details unpacked by type name."""
    status = rpc_status.from_call(err)
    assert status is not None, f"no grpc-status-details-bin on {err.code()} {err.details()}"
    assert status.code == err.code().value[0]
    assert status.message == err.details()
    found = {}
    for any_detail in status.details:
        for cls in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.BadRequest,
            error_details_pb2.RetryInfo,
            error_details_pb2.RequestInfo,
            error_details_pb2.QuotaFailure,
            error_details_pb2.Help,
            error_details_pb2.LocalizedMessage,
        ):
            if any_detail.Is(cls.DESCRIPTOR):
                msg = cls()
                any_detail.Unpack(msg)
                found[cls.DESCRIPTOR.name] = msg
    return status, found


def md(call_or_err, key):
    """First value of a response metadata key (initial or trailing)."""
    for pairs in (call_or_err.initial_metadata() or (), call_or_err.trailing_metadata() or ()):
        for k, v in pairs:
            if k == key:
                return v
    return None


class InteropTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pb2, pb2_grpc = generate_stubs()
        cls.channel = grpc.insecure_channel(GATEWAY_ADDR)
        grpc.channel_ready_future(cls.channel).result(timeout=10)
        cls.stub = pb2_grpc.AtlasGatewayStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        if _GEN_DIR:
            shutil.rmtree(_GEN_DIR, ignore_errors=True)

    def setUp(self):
        emulator("DELETE", "/__emulator/faults")

    def tearDown(self):
        emulator("DELETE", "/__emulator/faults")

    def ensure_no_link(self):
        """Deletes the demo org's link if a previous test left one."""
        try:
            self.stub.DeleteLinkToken(self.pb2.DeleteLinkTokenRequest(org_id=ORG), timeout=10)
        except grpc.RpcError as err:
            self.assertEqual(err.code(), grpc.StatusCode.NOT_FOUND, err.details())

    # ------------------------------------------------------------------ the RPCs
    def test_create_link_token_returns_token_and_request_id(self):
        rid = f"py-{uuid.uuid4()}"
        resp, call = self.stub.CreateLinkToken.with_call(
            self.pb2.CreateLinkTokenRequest(org_id=ORG, access_list_ips=["203.0.113.7", "10.0.0.0/8", "2001:db8::/32"]),
            metadata=[("x-request-id", rid)],
            timeout=10,
        )
        self.assertTrue(resp.link_token)
        self.assertEqual(md(call, "x-request-id"), rid)
        self.assertIn(ORG, emulator("GET", "/__emulator/state")["links"])

    def test_request_id_generated_when_absent(self):
        _, call = self.stub.CreateLinkToken.with_call(
            self.pb2.CreateLinkTokenRequest(org_id=ORG), timeout=10
        )
        rid = md(call, "x-request-id")
        self.assertTrue(rid, "the gateway returns a generated x-request-id")

    def test_create_api_key(self):
        resp = self.stub.CreateApiKey(
            self.pb2.CreateApiKeyRequest(
                org_id=ORG, desc="python interop", roles=[self.pb2.ORG_MEMBER]
            ),
            timeout=10,
        )
        key = resp.api_key
        self.assertTrue(key.private_key)
        self.assertEqual(len(key.public_key), 8)
        self.assertRegex(key.id, r"^[a-f0-9]{24}$")
        self.assertEqual(key.desc, "python interop")
        self.assertEqual(key.roles[0].role_name, "ORG_MEMBER")
        self.assertEqual(key.roles[0].org_id, ORG)
        self.assertEqual(key.links[0].rel, "self")
        self.assertTrue(key.links[0].href.startswith("http"))

    def test_create_api_key_with_digest_profile(self):
        resp = self.stub.CreateApiKey(
            self.pb2.CreateApiKeyRequest(
                org_id=ORG, desc="digest", roles=[self.pb2.ORG_READ_ONLY]
            ),
            metadata=[("x-atlas-profile", "apikey")],
            timeout=10,
        )
        self.assertTrue(resp.api_key.private_key)
        self.assertEqual(resp.api_key.roles[0].role_name, "ORG_READ_ONLY")

    def test_delete_link_token_after_create(self):
        self.stub.CreateLinkToken(self.pb2.CreateLinkTokenRequest(org_id=ORG), timeout=10)
        resp = self.stub.DeleteLinkToken(self.pb2.DeleteLinkTokenRequest(org_id=ORG), timeout=10)
        self.assertIsInstance(resp, self.pb2.DeleteLinkTokenResponse)
        self.assertEqual(resp.ByteSize(), 0)
        self.assertNotIn(ORG, emulator("GET", "/__emulator/state")["links"])

    def test_idempotent_create_api_key(self):
        before = emulator("GET", "/__emulator/counters")["api_keys_created"]
        req = self.pb2.CreateApiKeyRequest(
            org_id=ORG, desc="idem", roles=[self.pb2.ORG_MEMBER], request_id=str(uuid.uuid4())
        )
        first = self.stub.CreateApiKey(req, timeout=10)
        second = self.stub.CreateApiKey(req, timeout=10)
        self.assertEqual(first.api_key.private_key, second.api_key.private_key)
        self.assertEqual(emulator("GET", "/__emulator/counters")["api_keys_created"], before + 1)
        req.desc = "another request, same request_id"
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.CreateApiKey(req, timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        _, d = details_of(cm.exception)
        self.assertEqual(d["ErrorInfo"].reason, "REQUEST_ID_REUSED")

    # ------------------------------------------------------------------ API key lifecycle
    def create_key(self, **extra):
        req = self.pb2.CreateApiKeyRequest(org_id=ORG, desc="py lifecycle", roles=[self.pb2.ORG_MEMBER], **extra)
        return self.stub.CreateApiKey(req, timeout=10).api_key

    def stored_key(self, key_id):
        keys = emulator("GET", "/__emulator/state")["api_keys"]
        return next((k for k in keys if k["id"] == key_id), None)

    def test_create_api_key_with_access_list(self):
        key = self.create_key(access_list_ips=["203.0.113.7", "2001:db8::/32"])
        self.assertEqual(list(key.access_list_ips), ["203.0.113.7", "2001:db8::/32"])
        self.assertEqual(self.stored_key(key.id)["access_list"], ["203.0.113.7/32", "2001:db8::/32"])

    def test_access_list_failure_rolls_the_key_back(self):
        emulator("POST", "/__emulator/faults", {
            "route": "create_api_key_access_list", "times": 1,
            "action": {"kind": "error", "status": 400, "error_code": "INVALID_ATTRIBUTE",
                       "bad_request_fields": [["accessListIps", "not allowed"]]},
        })
        deleted = emulator("GET", "/__emulator/counters")["api_keys_deleted"]
        with self.assertRaises(grpc.RpcError) as cm:
            self.create_key(access_list_ips=["10.0.0.0/8"])
        err = cm.exception
        self.assertEqual(err.code(), grpc.StatusCode.INVALID_ARGUMENT, err.details())
        _, d = details_of(err)
        info = d["ErrorInfo"]
        self.assertEqual(info.reason, "INVALID_ATTRIBUTE")
        self.assertEqual(info.metadata["rolled_back"], "true")
        self.assertRegex(info.metadata["api_key_id"], r"^[a-f0-9]{24}$")
        self.assertEqual(d["BadRequest"].field_violations[0].field, "access_list_ips")
        self.assertIsNone(self.stored_key(info.metadata["api_key_id"]), "deleted again")
        self.assertEqual(emulator("GET", "/__emulator/counters")["api_keys_deleted"], deleted + 1)

    def test_orphaned_api_key_when_the_rollback_fails_too(self):
        emulator("POST", "/__emulator/faults", [
            {"route": "create_api_key_access_list", "times": 1,
             "action": {"kind": "error", "status": 403, "error_code": "ACCESS_LIST_FORBIDDEN"}},
            {"route": "delete_api_key", "times": 1,
             "action": {"kind": "error", "status": 500, "error_code": "UNEXPECTED_ERROR"}},
        ])
        with self.assertRaises(grpc.RpcError) as cm:
            self.create_key(access_list_ips=["10.0.0.0/8"])
        err = cm.exception
        self.assertEqual(err.code(), grpc.StatusCode.INTERNAL, err.details())
        _, d = details_of(err)
        info = d["ErrorInfo"]
        self.assertEqual(info.reason, "ORPHANED_API_KEY")
        self.assertEqual(info.metadata["rolled_back"], "false")
        key_id = info.metadata["api_key_id"]
        self.assertIn(key_id, err.details())
        self.assertIsNotNone(self.stored_key(key_id), "the orphan is still in Atlas")
        # The caller cleans up with the id it was given.
        self.stub.DeleteApiKey(self.pb2.DeleteApiKeyRequest(org_id=ORG, api_key_id=key_id), timeout=10)
        self.assertIsNone(self.stored_key(key_id))

    def test_delete_api_key_then_not_found(self):
        key = self.create_key()
        resp = self.stub.DeleteApiKey(self.pb2.DeleteApiKeyRequest(org_id=ORG, api_key_id=key.id), timeout=10)
        self.assertEqual(resp.ByteSize(), 0)
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.DeleteApiKey(self.pb2.DeleteApiKeyRequest(org_id=ORG, api_key_id=key.id), timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_list_api_keys_page_by_page(self):
        created = {self.create_key().id for _ in range(3)}
        req = self.pb2.ListApiKeysRequest(org_id=ORG, page_size=2)
        seen, pages, total = [], 0, None
        while True:
            page = self.stub.ListApiKeys(req, timeout=10)
            pages += 1
            total = page.total_size
            for k in page.api_keys:
                self.assertTrue(k.private_key.startswith("********-"), k.private_key)
            seen += [k.id for k in page.api_keys]
            if not page.next_page_token:
                break
            req.page_token = page.next_page_token
        self.assertEqual(len(seen), total)
        self.assertEqual(len(set(seen)), total, "no key twice")
        self.assertTrue(created <= set(seen))
        self.assertEqual(pages, (total + 1) // 2)

    def test_page_token_is_bound_to_org_and_size(self):
        for _ in range(2):
            self.create_key()
        token = self.stub.ListApiKeys(self.pb2.ListApiKeysRequest(org_id=ORG, page_size=1), timeout=10).next_page_token
        self.assertTrue(token)
        for bad in (
            self.pb2.ListApiKeysRequest(org_id=ORG, page_size=3, page_token=token),
            self.pb2.ListApiKeysRequest(org_id=OTHER_ORG, page_size=1, page_token=token),
        ):
            with self.assertRaises(grpc.RpcError) as cm:
                self.stub.ListApiKeys(bad, timeout=10)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            _, d = details_of(cm.exception)
            self.assertEqual(d["BadRequest"].field_violations[0].field, "page_token")

    def test_rotation_recipe(self):
        """docs/clients.md "Rotating an API key", with the doc's rotate() verbatim."""
        pb = self.pb2
        stub = self.stub
        switched = []

        def switch_consumers_to(public_key, private_key):
            switched.append((public_key, private_key))

        # docs:begin python-rotate
        def rotate(stub, org_id, old_desc, new_desc, ips):
            new = stub.CreateApiKey(pb.CreateApiKeyRequest(
                org_id=org_id, desc=new_desc, roles=[pb.ORG_MEMBER], access_list_ips=ips,
                request_id=str(uuid.uuid4())), timeout=30).api_key
            switch_consumers_to(new.public_key, new.private_key)
            req = pb.ListApiKeysRequest(org_id=org_id, page_size=100)
            while True:
                page = stub.ListApiKeys(req, timeout=10)
                for key in page.api_keys:
                    if key.desc == old_desc:
                        try:
                            stub.DeleteApiKey(pb.DeleteApiKeyRequest(org_id=org_id, api_key_id=key.id), timeout=10)
                        except grpc.RpcError as err:
                            if err.code() != grpc.StatusCode.NOT_FOUND:
                                raise
                if not page.next_page_token:
                    return new
                req.page_token = page.next_page_token
        # docs:end

        old = stub.CreateApiKey(
            pb.CreateApiKeyRequest(org_id=ORG, desc="rotation old", roles=[pb.ORG_MEMBER]), timeout=10
        ).api_key
        new = rotate(stub, ORG, "rotation old", "rotation new", ["203.0.113.7"])
        self.assertEqual(switched, [(new.public_key, new.private_key)])
        self.assertIsNone(self.stored_key(old.id), "the old key is gone")
        self.assertEqual(self.stored_key(new.id)["access_list"], ["203.0.113.7/32"])

    def test_leased_key(self):
        """docs/clients.md "Keys that expire": a key with a ttl carries expire_time."""
        pb = self.pb2
        stub = self.stub
        org_id = ORG
        before = datetime.datetime.now(datetime.timezone.utc)
        # docs:begin python-lease
        from google.protobuf import duration_pb2

        key = stub.CreateApiKey(pb.CreateApiKeyRequest(
            org_id=org_id, desc="nightly export", roles=[pb.ORG_MEMBER],
            ttl=duration_pb2.Duration(seconds=3600)), timeout=10).api_key
        if key.HasField("expire_time"):
            expires = key.expire_time.ToDatetime(tzinfo=datetime.timezone.utc)
        # docs:end
        self.assertEqual(key.desc, "nightly export")
        self.assertGreaterEqual(expires, before + datetime.timedelta(seconds=3600))
        self.assertLess(expires, before + datetime.timedelta(seconds=3700))

    def test_allowed_rpcs_policy(self):
        before = emulator("GET", "/__emulator/counters")["requests"]
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.CreateApiKey(
                self.pb2.CreateApiKeyRequest(org_id=ORG, desc="x", roles=[self.pb2.ORG_MEMBER]),
                metadata=[("x-atlas-profile", "readonly")],
                timeout=10,
            )
        self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        _, d = details_of(cm.exception)
        self.assertEqual(d["ErrorInfo"].reason, "POLICY_DENIED")
        self.assertEqual(d["ErrorInfo"].metadata["field"], "rpc")
        self.assertEqual(emulator("GET", "/__emulator/counters")["requests"], before)
        page = self.stub.ListApiKeys(
            self.pb2.ListApiKeysRequest(org_id=ORG), metadata=[("x-atlas-profile", "readonly")], timeout=10
        )
        self.assertGreaterEqual(page.total_size, 0)

    # ------------------------------------------------------------------ errors
    def test_validation_error_has_bad_request_and_error_info(self):
        before = emulator("GET", "/__emulator/counters")
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.CreateLinkToken(
                self.pb2.CreateLinkTokenRequest(org_id="not-an-org", access_list_ips=["10.0.0.1", "bad"]),
                timeout=10,
            )
        err = cm.exception
        self.assertEqual(err.code(), grpc.StatusCode.INVALID_ARGUMENT)
        _, d = details_of(err)
        fields = [v.field for v in d["BadRequest"].field_violations]
        self.assertEqual(fields, ["org_id", "access_list_ips[1]"])
        for v in d["BadRequest"].field_violations:
            self.assertTrue(v.description, v.field)
        self.assertEqual(d["ErrorInfo"].reason, "INVALID_REQUEST")
        self.assertTrue(d["RequestInfo"].request_id)
        self.assertEqual(
            emulator("GET", "/__emulator/counters")["requests"],
            before["requests"],
            "validation happens before any upstream call",
        )

    def test_validation_reports_every_create_api_key_violation(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.CreateApiKey(
                self.pb2.CreateApiKeyRequest(org_id=ORG, desc="", roles=[]), timeout=10
            )
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        _, d = details_of(cm.exception)
        fields = {v.field for v in d["BadRequest"].field_violations}
        self.assertTrue({"desc", "roles"} <= fields, fields)

    def test_rate_limited_has_retry_info(self):
        emulator(
            "POST",
            "/__emulator/faults",
            {
                "route": "create_api_key",
                "action": {"kind": "error", "status": 429, "error_code": "RATE_LIMITED", "retry_after": "7"},
            },
        )
        # Not waited out: with a 2 s deadline a wait for Retry-After (7 s) would end in
        # DEADLINE_EXCEEDED, not the RESOURCE_EXHAUSTED asserted below.
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.CreateApiKey(
                # Another org: the 429 cools createOrgApiKey down for its org only.
                self.pb2.CreateApiKeyRequest(org_id=RL_ORG, desc="rl", roles=[self.pb2.ORG_MEMBER]),
                metadata=[("x-request-id", "py-rate-limited")],
                timeout=2,
            )
        err = cm.exception
        self.assertEqual(err.code(), grpc.StatusCode.RESOURCE_EXHAUSTED, err.details())
        _, d = details_of(err)
        info = d["ErrorInfo"]
        self.assertEqual(info.reason, "RATE_LIMITED")
        self.assertEqual(info.domain, "127.0.0.1")
        self.assertEqual(info.metadata["http_status"], "429")
        self.assertEqual(info.metadata["org_id"], RL_ORG)
        self.assertEqual(d["RetryInfo"].retry_delay.seconds, 7)
        self.assertEqual(d["RequestInfo"].request_id, "py-rate-limited")
        self.assertEqual(md(err, "x-request-id"), "py-rate-limited")

    def test_delete_without_link_is_not_found(self):
        self.ensure_no_link()
        rid = f"py-{uuid.uuid4()}"
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.DeleteLinkToken(
                self.pb2.DeleteLinkTokenRequest(org_id=ORG),
                metadata=[("x-request-id", rid)],
                timeout=10,
            )
        err = cm.exception
        self.assertEqual(err.code(), grpc.StatusCode.NOT_FOUND, err.details())
        _, d = details_of(err)
        self.assertEqual(d["ErrorInfo"].reason, "UNEXPECTED_ERROR")
        self.assertEqual(d["ErrorInfo"].metadata["http_status"], "404")
        self.assertEqual(d["RequestInfo"].request_id, rid)
        self.assertTrue(d["LocalizedMessage"].message)
        self.assertTrue(d["Help"].links[0].url.startswith("https://"))

    def test_unknown_org_is_not_found(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.CreateLinkToken(self.pb2.CreateLinkTokenRequest(org_id=OTHER_ORG), timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND, cm.exception.details())
        _, d = details_of(cm.exception)
        self.assertEqual(d["ErrorInfo"].metadata["http_status"], "404")
        self.assertRegex(d["ErrorInfo"].reason, r"^[A-Z][A-Z0-9_]+$")

    def test_unknown_profile(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.CreateLinkToken(
                self.pb2.CreateLinkTokenRequest(org_id=ORG),
                metadata=[("x-atlas-profile", "nope")],
                timeout=10,
            )
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        _, d = details_of(cm.exception)
        self.assertEqual(d["ErrorInfo"].reason, "UNKNOWN_PROFILE")

    def test_policy_denied_for_restricted_profile(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.CreateApiKey(
                self.pb2.CreateApiKeyRequest(org_id=ORG, desc="x", roles=[self.pb2.ORG_OWNER]),
                metadata=[("x-atlas-profile", "restricted")],
                timeout=10,
            )
        self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        _, d = details_of(cm.exception)
        self.assertEqual(d["ErrorInfo"].reason, "POLICY_DENIED")
        # An allowed role passes with the same profile.
        resp = self.stub.CreateApiKey(
            self.pb2.CreateApiKeyRequest(org_id=ORG, desc="x", roles=[self.pb2.ORG_MEMBER]),
            metadata=[("x-atlas-profile", "restricted")],
            timeout=10,
        )
        self.assertTrue(resp.api_key.private_key)

    def test_upstream_unavailable_has_retry_info(self):
        # DELETE is idempotent: the gateway retries 503 within the deadline, then gives up.
        self.stub.CreateLinkToken(self.pb2.CreateLinkTokenRequest(org_id=ORG), timeout=10)
        emulator(
            "POST",
            "/__emulator/faults",
            {
                "route": "delete_link_token",
                "action": {"kind": "error", "status": 503, "error_code": "SERVICE_UNAVAILABLE", "retry_after": "30"},
            },
        )
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.DeleteLinkToken(self.pb2.DeleteLinkTokenRequest(org_id=ORG), timeout=2)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE, cm.exception.details())
        _, d = details_of(cm.exception)
        self.assertEqual(d["ErrorInfo"].reason, "SERVICE_UNAVAILABLE")
        self.assertEqual(d["RetryInfo"].retry_delay.seconds, 30)

    def test_messages_never_leak_the_secret(self):
        self.ensure_no_link()
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.DeleteLinkToken(self.pb2.DeleteLinkTokenRequest(org_id=ORG), timeout=10)
        status, _ = details_of(cm.exception)
        text = status.SerializeToString()
        self.assertNotIn(b"mdb_sa_sk_demo", text)
        self.assertFalse(re.search(rb"Bearer [A-Za-z0-9]", text))


if __name__ == "__main__":
    unittest.main()
