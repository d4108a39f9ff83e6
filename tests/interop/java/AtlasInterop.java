// Java interop suite: grpc-java (Debian's 1.41, netty transport, stubs from the
// protoc-gen-grpc-java plugin), compiled with javac offline, against the real gateway in
// front of the emulator. Every RPC, rich error details (ErrorInfo, BadRequest, RetryInfo,
// RequestInfo) and metadata.
//
// Built and run by tests/interop/java/run.sh, which sets GATEWAY_ADDR, EMULATOR_URL and
// ATLAS_ORG_ID. The regions between "docs:begin" and "docs:end" are the Java code shown in
// docs/clients.md (tests/interop/snippets.py checks they match).
package atlasinterop;

import atlas.gateway.v1.AtlasGatewayGrpc;
import atlas.gateway.v1.Gateway.*;
import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import com.google.rpc.RequestInfo;
import com.google.rpc.RetryInfo;
import io.grpc.*;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.MetadataUtils;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

public final class AtlasInterop {
  // docs:begin java-create-api-key
  /** Creates an org API key as profile "default"; rid is your correlation id. */
  static ApiKey createApiKey(Channel channel, String orgId, String rid, String requestId) {
    Metadata md = new Metadata();
    md.put(Metadata.Key.of("x-request-id", Metadata.ASCII_STRING_MARSHALLER), rid);
    md.put(Metadata.Key.of("x-atlas-profile", Metadata.ASCII_STRING_MARSHALLER), "default");
    var stub = AtlasGatewayGrpc.newBlockingStub(channel)
        .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(md))
        .withDeadlineAfter(10, TimeUnit.SECONDS);
    CreateApiKeyResponse resp = stub.createApiKey(CreateApiKeyRequest.newBuilder()
        .setOrgId(orgId).setDesc("billing exporter")
        .addRoles(OrgRole.ORG_MEMBER).setRequestId(requestId).build());
    return resp.getApiKey(); // getPrivateKey() is shown only once: store it now
  }

  /** The google.rpc details of a gateway error. */
  record Details(Status.Code code, ErrorInfo info, BadRequest badRequest,
      Duration retryAfter, String requestId) {
    static Details of(StatusRuntimeException e) throws InvalidProtocolBufferException {
      ErrorInfo info = ErrorInfo.getDefaultInstance();
      BadRequest badRequest = BadRequest.getDefaultInstance();
      Duration retryAfter = Duration.ZERO;
      String requestId = "";
      com.google.rpc.Status st = StatusProto.fromThrowable(e);
      for (Any any : st == null ? List.<Any>of() : st.getDetailsList()) {
        if (any.is(ErrorInfo.class)) {
          info = any.unpack(ErrorInfo.class); // getReason(), getMetadataMap().get("http_status")
        } else if (any.is(BadRequest.class)) {
          badRequest = any.unpack(BadRequest.class); // one violation per bad field
        } else if (any.is(RetryInfo.class)) {
          var delay = any.unpack(RetryInfo.class).getRetryDelay();
          retryAfter = Duration.ofSeconds(delay.getSeconds(), delay.getNanos());
        } else if (any.is(RequestInfo.class)) {
          requestId = any.unpack(RequestInfo.class).getRequestId();
        }
      }
      return new Details(e.getStatus().getCode(), info, badRequest, retryAfter, requestId);
    }
  }
  // docs:end

  private static final String ORG = env("ATLAS_ORG_ID", "5f1a0c2b3d4e5f6a7b8c9d0e");
  private static int passed;
  private static int failed;

  private static String env(String name, String fallback) {
    String v = System.getenv(name);
    return v == null || v.isEmpty() ? fallback : v;
  }

  /** A test body: returns the problems it found, none meaning a pass. */
  interface Check {
    List<String> run() throws Exception;
  }

  private static void check(String name, Check body) {
    List<String> problems;
    try {
      problems = body.run();
    } catch (Exception e) {
      problems = List.of("threw " + e);
    }
    if (problems.isEmpty()) {
      passed++;
      System.out.println("ok   " + name);
    } else {
      failed++;
      System.out.println("FAIL " + name + "\n       " + String.join("\n       ", problems));
    }
  }

  private static List<String> expect(Object... whatGotWant) {
    List<String> problems = new ArrayList<>();
    for (int i = 0; i < whatGotWant.length; i += 3) {
      if (!Objects.equals(String.valueOf(whatGotWant[i + 1]), String.valueOf(whatGotWant[i + 2]))) {
        problems.add(whatGotWant[i] + ": got " + whatGotWant[i + 1] + ", want " + whatGotWant[i + 2]);
      }
    }
    return problems;
  }

  /** The details of the error `call` fails with (a pass through is a failure). */
  private static Details failure(Runnable call) throws InvalidProtocolBufferException {
    try {
      call.run();
    } catch (StatusRuntimeException e) {
      return Details.of(e);
    }
    throw new IllegalStateException("the call succeeded");
  }

  private static AtlasGatewayGrpc.AtlasGatewayBlockingStub stub(Channel ch, String... md) {
    Metadata headers = new Metadata();
    for (int i = 0; i < md.length; i += 2) {
      headers.put(Metadata.Key.of(md[i], Metadata.ASCII_STRING_MARSHALLER), md[i + 1]);
    }
    return AtlasGatewayGrpc.newBlockingStub(ch)
        .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers))
        .withDeadlineAfter(10, TimeUnit.SECONDS);
  }

  private static void injectFault(String json) throws Exception {
    var url = URI.create(env("EMULATOR_URL", "http://127.0.0.1:8080") + "/__emulator/faults");
    var req = HttpRequest.newBuilder(url).header("content-type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(json)).build();
    var resp = HttpClient.newHttpClient().send(req, HttpResponse.BodyHandlers.discarding());
    if (resp.statusCode() >= 300) {
      throw new IllegalStateException("cannot inject a fault: " + resp.statusCode());
    }
  }

  public static void main(String[] args) throws Exception {
    ManagedChannel channel = ManagedChannelBuilder
        .forTarget(env("GATEWAY_ADDR", "127.0.0.1:50051")).usePlaintext().build();
    var links = CreateLinkTokenRequest.newBuilder().setOrgId(ORG)
        .addAccessListIps("203.0.113.7").addAccessListIps("10.0.0.0/8").build();
    check("CreateLinkToken returns a link token", () ->
        expect("token present", !stub(channel).createLinkToken(links).getLinkToken().isEmpty(), true));
    check("DeleteLinkToken after create", () -> {
      stub(channel).deleteLinkToken(DeleteLinkTokenRequest.newBuilder().setOrgId(ORG).build());
      return List.of();
    });
    check("CreateApiKey returns the key, x-request-id echoed", () -> {
      var headers = new AtomicReference<Metadata>();
      var capture = MetadataUtils.newCaptureMetadataInterceptor(headers, new AtomicReference<>());
      ApiKey key = createApiKey(ClientInterceptors.intercept(channel, capture), ORG, "java-interop-1", "");
      var echoed = headers.get().get(Metadata.Key.of("x-request-id", Metadata.ASCII_STRING_MARSHALLER));
      return expect("private key present", !key.getPrivateKey().isEmpty(), true,
          "role", key.getRoles(0).getRoleName(), "ORG_MEMBER",
          "echoed x-request-id", echoed, "java-interop-1");
    });
    check("CreateApiKey with a request_id is idempotent", () -> {
      String requestId = "0b9d2f6e-4c1a-4e8b-9a7d-3f5c1e8b2d64";
      ApiKey first = createApiKey(channel, ORG, "java-interop-2", requestId);
      ApiKey again = createApiKey(channel, ORG, "java-interop-3", requestId);
      return expect("same key", again.getId(), first.getId());
    });
    check("invalid request: InvalidArgument, ErrorInfo, BadRequest, RequestInfo", () -> {
      var bad = CreateLinkTokenRequest.newBuilder().setOrgId("not-an-org")
          .addAccessListIps("10.0.0.1").addAccessListIps("bad").build();
      Details d = failure(() -> stub(channel).createLinkToken(bad));
      var fields = d.badRequest().getFieldViolationsList().stream().map(v -> v.getField()).toList();
      return expect("code", d.code(), Status.Code.INVALID_ARGUMENT,
          "reason", d.info().getReason(), "INVALID_REQUEST",
          "fields", fields, List.of("org_id", "access_list_ips[1]"),
          "request id present", !d.requestId().isEmpty(), true);
    });
    check("DeleteLinkToken without a link: NotFound, Atlas status in ErrorInfo", () -> {
      Details d = failure(() ->
          stub(channel).deleteLinkToken(DeleteLinkTokenRequest.newBuilder().setOrgId(ORG).build()));
      return expect("code", d.code(), Status.Code.NOT_FOUND,
          "http_status", d.info().getMetadataMap().get("http_status"), "404");
    });
    check("rate limited: ResourceExhausted with RetryInfo", () -> {
      injectFault("{\"route\":\"create_api_key\",\"times\":1,\"action\":{\"kind\":\"error\","
          + "\"status\":429,\"error_code\":\"RATE_LIMITED\",\"retry_after\":\"60\"}}");
      Details d = failure(() -> createApiKey(channel, ORG, "java-interop-rl", ""));
      return expect("code", d.code(), Status.Code.RESOURCE_EXHAUSTED,
          "reason", d.info().getReason(), "RATE_LIMITED",
          "retry after", d.retryAfter(), Duration.ofSeconds(60));
    });
    var digestKey = CreateApiKeyRequest.newBuilder().setOrgId(ORG).setDesc("digest key")
        .addRoles(OrgRole.ORG_READ_ONLY).build();
    check("x-atlas-profile apikey (HTTP Digest)", () -> {
      ApiKey key = stub(channel, "x-atlas-profile", "apikey").createApiKey(digestKey).getApiKey();
      return expect("role", key.getRoles(0).getRoleName(), "ORG_READ_ONLY");
    });
    var owner = CreateApiKeyRequest.newBuilder().setOrgId(ORG).setDesc("x")
        .addRoles(OrgRole.ORG_OWNER).build();
    check("x-atlas-profile restricted: PermissionDenied POLICY_DENIED", () -> {
      Details d = failure(() -> stub(channel, "x-atlas-profile", "restricted").createApiKey(owner));
      return expect("code", d.code(), Status.Code.PERMISSION_DENIED,
          "reason", d.info().getReason(), "POLICY_DENIED");
    });
    check("unknown x-atlas-profile: InvalidArgument UNKNOWN_PROFILE", () -> {
      Details d = failure(() -> stub(channel, "x-atlas-profile", "nope")
          .deleteLinkToken(DeleteLinkTokenRequest.newBuilder().setOrgId(ORG).build()));
      return expect("code", d.code(), Status.Code.INVALID_ARGUMENT,
          "reason", d.info().getReason(), "UNKNOWN_PROFILE");
    });
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    System.out.println("java: " + passed + " passed, " + failed + " failed");
    System.exit(failed == 0 ? 0 : 1);
  }
}
