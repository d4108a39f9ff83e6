"""Creates an Atlas organization API key through atlas-grpc-gateway, and prints what a
caller needs from the answer or from the error's google.rpc details.

Set up and run it from the repository root as docs/clients.md ("Python") shows, with the
gateway running (`cargo run --release -- dev`). Arguments: [ORG_ID], default the
emulator's demo org. The gateway's address is $GATEWAY_ADDR, default 127.0.0.1:50051.
Exits 0 on success, 1 when the call failed (after printing its details).
tests/interop/examples.sh runs it, set up as the docs say, against `dev` in CI;
docs/clients.md shows the part between `docs:begin` and `docs:end`.
"""

import os
import pathlib
import sys
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "gen"))

# docs:begin python-create-api-key
import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from atlas.gateway.v1 import gateway_pb2 as pb, gateway_pb2_grpc as pb_grpc


def create_api_key(addr, org_id):
    """Returns the new key, or None after printing why Atlas or the gateway refused."""
    stub = pb_grpc.AtlasGatewayStub(grpc.insecure_channel(addr))
    rid = str(uuid.uuid4())  # correlation id: in the gateway's log line for this call
    try:
        resp, call = stub.CreateApiKey.with_call(
            pb.CreateApiKeyRequest(org_id=org_id, desc="billing exporter",
                                   roles=[pb.ORG_MEMBER], request_id=str(uuid.uuid4())),
            metadata=[("x-request-id", rid), ("x-atlas-profile", "default")],
            timeout=10,
        )
        echoed = dict(call.initial_metadata())["x-request-id"]
        print(f"created {resp.api_key.id} (x-request-id {echoed})")
        return resp.api_key  # the private key is shown only once: store it now
    except grpc.RpcError as err:
        status = rpc_status.from_call(err)  # google.rpc.Status, or None
        print(err.code(), err.details())
        for detail in status.details if status else []:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                print("reason:", info.reason, dict(info.metadata))
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                for v in bad.field_violations:
                    print("field:", v.field, v.description)
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                detail.Unpack(retry)
                print("retry after:", retry.retry_delay.ToTimedelta().total_seconds(), "s")
        return None
# docs:end


def main():
    addr = os.environ.get("GATEWAY_ADDR", "127.0.0.1:50051")
    org_id = sys.argv[1] if len(sys.argv) > 1 else "5f1a0c2b3d4e5f6a7b8c9d0e"
    return 0 if create_api_key(addr, org_id) is not None else 1


if __name__ == "__main__":
    sys.exit(main())
