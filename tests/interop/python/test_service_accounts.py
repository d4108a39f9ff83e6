"""Python interop suite, service accounts: create (with an access list), a workload's
Atlas token from the minted client_id/secret, rotate, list (never a secret value),
delete. Same environment as test_interop.py (run by tests/interop/run.sh)."""

import base64
import json
import unittest
import urllib.error
import urllib.request

import grpc

from test_interop import EMULATOR_URL, GATEWAY_ADDR, ORG, generate_stubs


# docs:begin python-service-account-token
def atlas_token(token_url, client_id, client_secret):
    """An Atlas access token for a service account (OAuth 2.0 client credentials)."""
    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    request = urllib.request.Request(
        token_url,
        data=b"grant_type=client_credentials",
        headers={
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)["access_token"]
# docs:end


class ServiceAccountTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pb2, pb2_grpc = generate_stubs()
        cls.channel = grpc.insecure_channel(GATEWAY_ADDR)
        grpc.channel_ready_future(cls.channel).result(timeout=10)
        cls.stub = pb2_grpc.AtlasGatewayStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()

    def test_create_token_rotate_list_delete(self):
        pb2 = self.pb2
        created = self.stub.CreateServiceAccount(
            pb2.CreateServiceAccountRequest(
                org_id=ORG, name="python interop", description="interop suite",
                roles=[pb2.ORG_MEMBER], secret_expires_after_hours=24,
                access_list_ips=["203.0.113.7"],
            ),
            timeout=10,
        ).service_account
        self.assertRegex(created.client_id, r"^mdb_sa_id_[a-fA-F0-9]{24}$")
        self.assertEqual(list(created.access_list_ips), ["203.0.113.7"])
        first = created.secrets[0]
        self.assertTrue(first.secret.startswith("mdb_sa_sk_"))
        token_url = EMULATOR_URL + "/api/oauth/token"
        self.assertTrue(atlas_token(token_url, created.client_id, first.secret))

        rotate = pb2.RotateServiceAccountSecretRequest(
            org_id=ORG, client_id=created.client_id, secret_expires_after_hours=24)
        second = self.stub.RotateServiceAccountSecret(rotate, timeout=10).secret
        third = self.stub.RotateServiceAccountSecret(rotate, timeout=10).secret
        self.assertTrue(third.secret and third.id not in (first.id, second.id))
        with self.assertRaises(urllib.error.HTTPError):
            atlas_token(token_url, created.client_id, first.secret)  # the older one went

        listed = self.stub.ListServiceAccounts(
            pb2.ListServiceAccountsRequest(org_id=ORG, page_size=500), timeout=10)
        mine = [a for a in listed.service_accounts if a.client_id == created.client_id][0]
        self.assertEqual(sorted(s.id for s in mine.secrets), sorted([second.id, third.id]))
        self.assertTrue(all(s.secret == "" and s.masked_secret_value for s in mine.secrets))

        delete = pb2.DeleteServiceAccountRequest(org_id=ORG, client_id=created.client_id)
        self.stub.DeleteServiceAccount(delete, timeout=10)
        with self.assertRaises(grpc.RpcError) as err:
            self.stub.DeleteServiceAccount(delete, timeout=10)
        self.assertEqual(err.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_bad_client_id_is_invalid_argument(self):
        with self.assertRaises(grpc.RpcError) as err:
            self.stub.RotateServiceAccountSecret(
                self.pb2.RotateServiceAccountSecretRequest(
                    org_id=ORG, client_id="nope", secret_expires_after_hours=24),
                timeout=10,
            )
        self.assertEqual(err.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)


if __name__ == "__main__":
    unittest.main()
