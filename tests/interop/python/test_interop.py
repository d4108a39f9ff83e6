"""Python interop suite: grpcio stubs generated at test time from proto/, rich error
details read with grpc_status.rpc_status.from_call, as a Python caller would.

Run by tests/interop/run.sh (pytest), which sets:
  GATEWAY_ADDR       host:port of a SERVING gateway in front of the emulator
  EMULATOR_URL       the emulator's base URL (control API under /__emulator/)
  ATLAS_ORG_ID       the emulator's demo org
  INTEROP_PROTO_DIR  the repository's proto/ directory
The gateway runs with tests/interop/profiles.toml (profiles restricted and apikey).
"""

import importlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
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
        started = time.monotonic()
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.CreateApiKey(
                self.pb2.CreateApiKeyRequest(org_id=ORG, desc="rl", roles=[self.pb2.ORG_MEMBER]),
                metadata=[("x-request-id", "py-rate-limited")],
                timeout=2,
            )
        err = cm.exception
        self.assertLess(time.monotonic() - started, 2.5)
        self.assertEqual(err.code(), grpc.StatusCode.RESOURCE_EXHAUSTED, err.details())
        _, d = details_of(err)
        info = d["ErrorInfo"]
        self.assertEqual(info.reason, "RATE_LIMITED")
        self.assertEqual(info.domain, "127.0.0.1")
        self.assertEqual(info.metadata["http_status"], "429")
        self.assertEqual(info.metadata["org_id"], ORG)
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
