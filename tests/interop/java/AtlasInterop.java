// Java interop suite: grpc-java (Debian's 1.41, netty transport, stubs from the
// protoc-gen-grpc-java plugin), compiled with javac offline, against the real gateway in
// front of the emulator. Every RPC (the API key lifecycle too: an access list at creation
// and its rollback, paging, delete, a leased key; service accounts: create, rotate, list,
// delete), rich error details (ErrorInfo, BadRequest, RetryInfo,
// RequestInfo) and metadata.
//
// Built and run by tests/interop/java/run.sh, which sets GATEWAY_ADDR, EMULATOR_URL and
// ATLAS_ORG_ID. The regions between "docs:begin" and "docs:end" are the Java code shown in
// docs/clients.md (tests/interop/snippets.py checks they match).
package atlasinterop;

import atlas.gateway.v1.AtlasGatewayGrpc;
import atlas.gateway.v1.Gateway.*;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
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
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Set;
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

  // docs:begin java-list-api-keys
  /** Every API key of the org (private keys redacted), page by page. A page token is bound
   *  to its org and page size: keep both the same across pages. */
  static List<ApiKey> listApiKeys(Channel channel, String orgId, int pageSize) {
    var stub = AtlasGatewayGrpc.newBlockingStub(channel);
    var req = ListApiKeysRequest.newBuilder().setOrgId(orgId).setPageSize(pageSize);
    List<ApiKey> keys = new ArrayList<>();
    while (true) {
      ListApiKeysResponse page =
          stub.withDeadlineAfter(10, TimeUnit.SECONDS).listApiKeys(req.build());
      keys.addAll(page.getApiKeysList());
      if (page.getNextPageToken().isEmpty()) {
        return keys;
      }
      req.setPageToken(page.getNextPageToken());
    }
  }

  /** Deletes an org API key by id; NOT_FOUND means it is already gone. */
  static void deleteApiKey(Channel channel, String orgId, String keyId) {
    try {
      AtlasGatewayGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
          .deleteApiKey(DeleteApiKeyRequest.newBuilder().setOrgId(orgId).setApiKeyId(keyId).build());
    } catch (StatusRuntimeException e) {
      if (e.getStatus().getCode() != Status.Code.NOT_FOUND) {
        throw e;
      }
    }
  }
  // docs:end

  // docs:begin java-lease
  /** Creates an org API key that expires ttl after its creation (a lease). */
  static ApiKey createLeasedKey(Channel channel, String orgId, Duration ttl) {
    return AtlasGatewayGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
        .createApiKey(CreateApiKeyRequest.newBuilder()
            .setOrgId(orgId).setDesc("nightly export").addRoles(OrgRole.ORG_MEMBER)
            .setTtl(com.google.protobuf.Duration.newBuilder().setSeconds(ttl.toSeconds()))
            .build()).getApiKey();
  }

  /** When a key's lease ends; null for a key without a lease. */
  static Instant expireTime(ApiKey key) {
    if (!key.hasExpireTime()) {
      return null;
    }
    com.google.protobuf.Timestamp t = key.getExpireTime();
    return Instant.ofEpochSecond(t.getSeconds(), t.getNanos());
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

  /** The emulator's record of an API key ({"org_id","id","access_list"}), null when gone. */
  private static JsonObject storedKey(String id) throws Exception {
    var url = URI.create(env("EMULATOR_URL", "http://127.0.0.1:8080") + "/__emulator/state");
    var resp = HttpClient.newHttpClient()
        .send(HttpRequest.newBuilder(url).build(), HttpResponse.BodyHandlers.ofString());
    for (var key : JsonParser.parseString(resp.body()).getAsJsonObject().getAsJsonArray("api_keys")) {
      if (key.getAsJsonObject().get("id").getAsString().equals(id)) {
        return key.getAsJsonObject();
      }
    }
    return null;
  }

  /** Creates an ORG_MEMBER key with these access list entries. */
  private static ApiKey createKey(Channel ch, String... ips) {
    return stub(ch).createApiKey(CreateApiKeyRequest.newBuilder().setOrgId(ORG)
        .setDesc("java lifecycle").addRoles(OrgRole.ORG_MEMBER)
        .addAllAccessListIps(List.of(ips)).build()).getApiKey();
  }

  /** The field of the first BadRequest violation ("" when there is none). */
  private static String firstField(Details d) {
    var v = d.badRequest().getFieldViolationsList();
    return v.isEmpty() ? "" : v.get(0).getField();
  }

  /** CreateApiKey with an access list, ListApiKeys and DeleteApiKey, as the Python and
   *  Node suites check them. */
  private static void lifecycle(Channel ch) {
    check("CreateApiKey with access_list_ips returns the applied entries", () -> {
      ApiKey key = createKey(ch, "203.0.113.7", "2001:db8::/32");
      return expect("access_list_ips", key.getAccessListIpsList(), List.of("203.0.113.7", "2001:db8::/32"),
          "in Atlas", storedKey(key.getId()).get("access_list"), "[\"203.0.113.7/32\",\"2001:db8::/32\"]");
    });
    check("access list refused: InvalidArgument, key rolled back, ErrorInfo and BadRequest", () -> {
      injectFault("{\"route\":\"create_api_key_access_list\",\"times\":1,\"action\":{\"kind\":\"error\","
          + "\"status\":400,\"error_code\":\"INVALID_ATTRIBUTE\","
          + "\"bad_request_fields\":[[\"accessListIps\",\"not allowed\"]]}}");
      Details d = failure(() -> createKey(ch, "10.0.0.0/8"));
      String id = d.info().getMetadataMap().getOrDefault("api_key_id", "");
      return expect("code", d.code(), Status.Code.INVALID_ARGUMENT,
          "reason", d.info().getReason(), "INVALID_ATTRIBUTE",
          "rolled_back", d.info().getMetadataMap().get("rolled_back"), "true",
          "api_key_id is an id", id.matches("[a-f0-9]{24}"), true,
          "field", firstField(d), "access_list_ips",
          "deleted again", storedKey(id), null);
    });
    check("rollback fails too: Internal ORPHANED_API_KEY; the caller deletes it by id", () -> {
      injectFault("[{\"route\":\"create_api_key_access_list\",\"times\":1,\"action\":{\"kind\":\"error\","
          + "\"status\":403,\"error_code\":\"ACCESS_LIST_FORBIDDEN\"}},"
          + "{\"route\":\"delete_api_key\",\"times\":1,\"action\":{\"kind\":\"error\","
          + "\"status\":500,\"error_code\":\"UNEXPECTED_ERROR\"}}]");
      Details d = failure(() -> createKey(ch, "10.0.0.0/8"));
      String id = d.info().getMetadataMap().getOrDefault("api_key_id", "");
      boolean orphan = storedKey(id) != null;
      deleteApiKey(ch, ORG, id);
      return expect("code", d.code(), Status.Code.INTERNAL,
          "reason", d.info().getReason(), "ORPHANED_API_KEY",
          "rolled_back", d.info().getMetadataMap().get("rolled_back"), "false",
          "orphan still in Atlas", orphan, true,
          "gone after deleteApiKey", storedKey(id), null);
    });
    List<String> mine = List.of(createKey(ch).getId(), createKey(ch).getId(), createKey(ch).getId());
    var firstPage = stub(ch).listApiKeys(
        ListApiKeysRequest.newBuilder().setOrgId(ORG).setPageSize(1).build());
    check("ListApiKeys page by page: every key once, private keys redacted", () -> {
      List<ApiKey> keys = listApiKeys(ch, ORG, 2);
      Set<String> seen = new java.util.HashSet<>();
      keys.forEach(k -> seen.add(k.getId()));
      return expect("keys", keys.size(), firstPage.getTotalSize(),
          "distinct", seen.size(), keys.size(),
          "created ones listed", seen.containsAll(mine), true,
          "redacted", keys.stream().allMatch(k -> k.getPrivateKey().startsWith("********-")), true);
    });
    var delete = DeleteApiKeyRequest.newBuilder().setOrgId(ORG).setApiKeyId(mine.get(0)).build();
    check("DeleteApiKey, then NotFound", () -> {
      DeleteApiKeyResponse resp = stub(ch).deleteApiKey(delete);
      Details again = failure(() -> stub(ch).deleteApiKey(delete));
      return expect("empty", resp.getSerializedSize(), 0, "gone", storedKey(mine.get(0)), null,
          "again", again.code(), Status.Code.NOT_FOUND);
    });
    check("a page token is bound to its org and page size: InvalidArgument on page_token", () -> {
      List<String> problems = new ArrayList<>();
      for (var bad : List.of(ListApiKeysRequest.newBuilder().setOrgId(ORG).setPageSize(3),
          ListApiKeysRequest.newBuilder().setOrgId("0123456789abcdef01234567").setPageSize(1))) {
        var req = bad.setPageToken(firstPage.getNextPageToken()).build();
        Details d = failure(() -> stub(ch).listApiKeys(req));
        problems.addAll(expect("code", d.code(), Status.Code.INVALID_ARGUMENT,
            "field", firstField(d), "page_token"));
      }
      return problems;
    });
    check("allowed_rpcs: readonly may list, not delete (PermissionDenied POLICY_DENIED, field rpc)", () -> {
      var readonly = stub(ch, "x-atlas-profile", "readonly");
      Details d = failure(() -> readonly.deleteApiKey(DeleteApiKeyRequest.newBuilder()
          .setOrgId(ORG).setApiKeyId(mine.get(1)).build()));
      var listed = stub(ch, "x-atlas-profile", "readonly")
          .listApiKeys(ListApiKeysRequest.newBuilder().setOrgId(ORG).build());
      return expect("code", d.code(), Status.Code.PERMISSION_DENIED,
          "reason", d.info().getReason(), "POLICY_DENIED",
          "field", d.info().getMetadataMap().get("field"), "rpc",
          "list total", listed.getTotalSize() >= 2, true);
    });
  }

  /** CreateApiKey with a ttl: expire_time is about now + ttl, and desc (in the answer and
   *  in ListApiKeys) shows no lease marker. */
  private static void leasedKey(Channel ch) {
    check("CreateApiKey with a ttl: expire_time about now + ttl, desc without a lease marker", () -> {
      Duration ttl = Duration.ofHours(1);
      Instant before = Instant.now();
      ApiKey key = createLeasedKey(ch, ORG, ttl);
      Instant after = Instant.now();
      Instant expires = expireTime(key);
      boolean window = expires != null && !expires.isBefore(before.plus(ttl).minusSeconds(2))
          && expires.isBefore(after.plus(ttl).plusSeconds(60));
      List<String> problems = expect("expire_time set", key.hasExpireTime(), true,
          "expire_time " + expires + " within [now+ttl-2s, now+ttl+60s)", window, true,
          "desc", key.getDesc(), "nightly export");
      ApiKey listed = listApiKeys(ch, ORG, 100).stream()
          .filter(k -> k.getId().equals(key.getId())).findFirst().orElse(null);
      problems.addAll(expect("listed", listed != null, true));
      if (listed != null) {
        problems.addAll(expect("listed expire_time", expireTime(listed), expires,
            "listed desc", listed.getDesc(), "nightly export"));
      }
      return problems;
    });
  }

  /** CreateServiceAccount, RotateServiceAccountSecret, ListServiceAccounts (masked secrets
   *  only) and DeleteServiceAccount, as the Python suite checks them. */
  private static void serviceAccounts(Channel ch) {
    var created = new AtomicReference<ServiceAccount>(ServiceAccount.getDefaultInstance());
    check("CreateServiceAccount: a client id and one secret, with its value", () -> {
      ServiceAccount sa = stub(ch).createServiceAccount(CreateServiceAccountRequest.newBuilder()
          .setOrgId(ORG).setName("java interop").setDescription("interop suite")
          .addRoles(OrgRole.ORG_MEMBER).setSecretExpiresAfterHours(24).build()).getServiceAccount();
      created.set(sa);
      return expect("client_id " + sa.getClientId(), sa.getClientId().startsWith("mdb_sa_id_"), true,
          "secrets", sa.getSecretsCount(), 1,
          "secret value present", sa.getSecretsCount() > 0 && !sa.getSecrets(0).getSecret().isEmpty(), true);
    });
    String clientId = created.get().getClientId();
    check("RotateServiceAccountSecret: a new secret, with its value", () -> {
      ServiceAccountSecret secret = stub(ch).rotateServiceAccountSecret(
          RotateServiceAccountSecretRequest.newBuilder().setOrgId(ORG).setClientId(clientId)
              .setSecretExpiresAfterHours(24).build()).getSecret();
      String firstId = created.get().getSecretsCount() > 0 ? created.get().getSecrets(0).getId() : "";
      return expect("secret value present", !secret.getSecret().isEmpty(), true,
          "new id", !secret.getId().isEmpty() && !secret.getId().equals(firstId), true);
    });
    check("ListServiceAccounts: the account listed, no secret values (masked only)", () -> {
      var listed = stub(ch).listServiceAccounts(
          ListServiceAccountsRequest.newBuilder().setOrgId(ORG).setPageSize(500).build());
      var secrets = listed.getServiceAccountsList().stream()
          .flatMap(a -> a.getSecretsList().stream()).toList();
      return expect("listed", listed.getServiceAccountsList().stream()
              .anyMatch(a -> a.getClientId().equals(clientId)), true,
          "secret values", secrets.stream().filter(s -> !s.getSecret().isEmpty()).count(), 0,
          "masked", secrets.stream().allMatch(s -> !s.getMaskedSecretValue().isEmpty()), true);
    });
    check("DeleteServiceAccount, then NotFound", () -> {
      var delete = DeleteServiceAccountRequest.newBuilder().setOrgId(ORG).setClientId(clientId).build();
      DeleteServiceAccountResponse resp = stub(ch).deleteServiceAccount(delete);
      Details again = failure(() -> stub(ch).deleteServiceAccount(delete));
      return expect("empty", resp.getSerializedSize(), 0, "again", again.code(), Status.Code.NOT_FOUND);
    });
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
    // Before the 429 below: it starts a cool-down of CreateApiKey for this org.
    lifecycle(channel);
    leasedKey(channel);
    serviceAccounts(channel);
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
    check("x-atlas-profile restricted: PermissionDenied POLICY_DENIED (field roles, caller anonymous)", () -> {
      Details d = failure(() -> stub(channel, "x-atlas-profile", "restricted").createApiKey(owner));
      return expect("code", d.code(), Status.Code.PERMISSION_DENIED,
          "reason", d.info().getReason(), "POLICY_DENIED",
          "field", d.info().getMetadataMap().get("field"), "roles",
          "caller", d.info().getMetadataMap().get("caller"), "anonymous");
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
