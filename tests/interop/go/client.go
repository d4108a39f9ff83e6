// Go interop suite: grpc-go (Debian's 1.33, GOPATH mode, offline) with stubs generated
// from proto/ by protoc-gen-go, against the real gateway in front of the emulator. Every
// RPC (the API key lifecycle too: an access list at creation and its rollback, paging,
// delete, a leased key; service accounts: create, rotate, list, delete), rich error details (ErrorInfo, BadRequest, RetryInfo, RequestInfo) and metadata.
//
// Built and run by tests/interop/go/run.sh, which sets GATEWAY_ADDR, EMULATOR_URL and
// ATLAS_ORG_ID. The regions between "docs:begin" and "docs:end" are the Go code shown
// in docs/clients.md (tests/interop/snippets.py checks they match).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/golang/protobuf/ptypes"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	protov2 "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/runtime/protoimpl"
	"google.golang.org/protobuf/types/known/durationpb"

	gatewayv1 "gatewayv1"
)

// codec replaces grpc-go's "proto" codec. Debian's protoc-gen-go 1.3.5 types
// google.protobuf.Timestamp and Duration fields as google.golang.org/protobuf's
// timestamppb and durationpb messages, which the legacy github.com/golang/protobuf 1.3.5
// runtime behind grpc-go 1.33's default codec cannot decode: it panics ("protobuf tag not
// enough fields in Timestamp.state") on the first answer that carries one (a leased key's
// expire_time, a service account's create_time). google.golang.org/protobuf reads both
// the legacy generated messages and the new well-known types.
type codec struct{}

func (codec) Marshal(v interface{}) ([]byte, error) {
	return protov2.Marshal(protoimpl.X.ProtoMessageV2Of(v))
}

func (codec) Unmarshal(data []byte, v interface{}) error {
	return protov2.Unmarshal(data, protoimpl.X.ProtoMessageV2Of(v))
}

func (codec) Name() string { return "proto" }

func init() { encoding.RegisterCodec(codec{}) }

// docs:begin go-connect
// connect dials the sidecar (plaintext on loopback).
func connect(ctx context.Context, addr string) (*grpc.ClientConn, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return grpc.DialContext(ctx, addr, grpc.WithInsecure(), grpc.WithBlock())
}

// docs:end

// docs:begin go-create-api-key
// createAPIKey creates an org API key; it returns the key and the x-request-id the
// gateway echoed. requestID (a UUID) makes retries of this call idempotent.
func createAPIKey(ctx context.Context, client gatewayv1.AtlasGatewayClient,
	orgID, rid, requestID string) (*gatewayv1.ApiKey, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "x-request-id", rid, "x-atlas-profile", "default")
	var header metadata.MD
	resp, err := client.CreateApiKey(ctx, &gatewayv1.CreateApiKeyRequest{
		OrgId:     orgID,
		Desc:      "billing exporter",
		Roles:     []gatewayv1.OrgRole{gatewayv1.OrgRole_ORG_MEMBER},
		RequestId: requestID,
	}, grpc.Header(&header))
	if err != nil {
		return nil, "", err
	}
	// resp.GetApiKey().GetPrivateKey() is shown only once: store it now.
	return resp.GetApiKey(), strings.Join(header.Get("x-request-id"), ","), nil
}

// Details are the google.rpc details of a gateway error.
type Details struct {
	Code       codes.Code
	Info       *errdetails.ErrorInfo  // always: Reason, Domain, Metadata["http_status"], ...
	BadRequest *errdetails.BadRequest // INVALID_ARGUMENT: one violation per bad field
	RetryAfter time.Duration          // RetryInfo: wait at least this long (0: none)
	RequestID  string                 // RequestInfo: yours or the generated one
}

// details decodes a gateway error's status details.
func details(err error) Details {
	st, _ := status.FromError(err)
	d := Details{Code: st.Code()}
	for _, detail := range st.Details() {
		switch v := detail.(type) {
		case *errdetails.ErrorInfo:
			d.Info = v
		case *errdetails.BadRequest:
			d.BadRequest = v
		case *errdetails.RetryInfo:
			d.RetryAfter, _ = ptypes.Duration(v.GetRetryDelay())
		case *errdetails.RequestInfo:
			d.RequestID = v.GetRequestId()
		}
	}
	return d
}

// docs:end

// docs:begin go-list-api-keys
// listAPIKeys returns every API key of the org (private keys redacted), page by page.
// A page token is bound to its org and page size: keep both the same across pages.
func listAPIKeys(ctx context.Context, client gatewayv1.AtlasGatewayClient,
	orgID string, pageSize int32) ([]*gatewayv1.ApiKey, error) {
	req := &gatewayv1.ListApiKeysRequest{OrgId: orgID, PageSize: pageSize}
	var keys []*gatewayv1.ApiKey
	for {
		callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		page, err := client.ListApiKeys(callCtx, req)
		cancel()
		if err != nil {
			return nil, err
		}
		keys = append(keys, page.GetApiKeys()...)
		if page.GetNextPageToken() == "" {
			return keys, nil
		}
		req.PageToken = page.GetNextPageToken()
	}
}

// deleteAPIKey deletes an org API key by id; NOT_FOUND means it is already gone.
func deleteAPIKey(ctx context.Context, client gatewayv1.AtlasGatewayClient,
	orgID, keyID string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := client.DeleteApiKey(ctx, &gatewayv1.DeleteApiKeyRequest{OrgId: orgID, ApiKeyId: keyID})
	if status.Code(err) == codes.NotFound {
		return nil
	}
	return err
}

// docs:end

// docs:begin go-lease
// createLeasedKey creates an org API key that expires ttl after its creation (a lease),
// and returns it with its expire_time (the zero time when the key is not leased).
func createLeasedKey(ctx context.Context, client gatewayv1.AtlasGatewayClient,
	orgID string, ttl time.Duration) (*gatewayv1.ApiKey, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := client.CreateApiKey(ctx, &gatewayv1.CreateApiKeyRequest{
		OrgId: orgID,
		Desc:  "nightly export",
		Roles: []gatewayv1.OrgRole{gatewayv1.OrgRole_ORG_MEMBER},
		Ttl:   durationpb.New(ttl),
	})
	if err != nil {
		return nil, time.Time{}, err
	}
	key := resp.GetApiKey()
	if key.GetExpireTime() == nil {
		return key, time.Time{}, nil
	}
	return key, key.GetExpireTime().AsTime(), nil
}

// docs:end

var (
	passed, failed int
	org            = env("ATLAS_ORG_ID", "5f1a0c2b3d4e5f6a7b8c9d0e")
)

func env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// check records one test: the problems it found, none meaning a pass.
func check(name string, problems ...string) {
	var real []string
	for _, p := range problems {
		if p != "" {
			real = append(real, p)
		}
	}
	if len(real) == 0 {
		passed++
		fmt.Printf("ok   %s\n", name)
		return
	}
	failed++
	fmt.Printf("FAIL %s\n       %s\n", name, strings.Join(real, "\n       "))
}

func expect(what string, got, want interface{}) string {
	if fmt.Sprint(got) != fmt.Sprint(want) {
		return fmt.Sprintf("%s: got %v, want %v", what, got, want)
	}
	return ""
}

// role is the first role name of a key ("" when there is none).
func role(k *gatewayv1.ApiKey) string {
	if len(k.GetRoles()) == 0 {
		return ""
	}
	return k.GetRoles()[0].GetRoleName()
}

func call(md ...string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	return metadata.AppendToOutgoingContext(ctx, md...), cancel
}

func injectFault(body string) {
	url := env("EMULATOR_URL", "http://127.0.0.1:8080") + "/__emulator/faults"
	resp, err := http.Post(url, "application/json", bytes.NewBufferString(body))
	if err != nil || resp.StatusCode >= 300 {
		log.Fatalf("cannot inject a fault: %v %v", err, resp)
	}
	resp.Body.Close()
}

// firstField is the field of the first BadRequest violation ("" when there is none).
func firstField(d Details) string {
	if v := d.BadRequest.GetFieldViolations(); len(v) > 0 {
		return v[0].GetField()
	}
	return ""
}

// storedKey is the emulator's record of an API key ({"org_id","id","access_list"}), nil
// when Atlas no longer has it.
func storedKey(id string) map[string]interface{} {
	resp, err := http.Get(env("EMULATOR_URL", "http://127.0.0.1:8080") + "/__emulator/state")
	if err != nil {
		log.Fatalf("cannot read the emulator state: %v", err)
	}
	defer resp.Body.Close()
	var state struct {
		APIKeys []map[string]interface{} `json:"api_keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&state); err != nil {
		log.Fatalf("cannot decode the emulator state: %v", err)
	}
	for _, k := range state.APIKeys {
		if k["id"] == id {
			return k
		}
	}
	return nil
}

// createKey creates an ORG_MEMBER key with these access list entries (none: nil).
func createKey(client gatewayv1.AtlasGatewayClient, ips ...string) (*gatewayv1.ApiKey, error) {
	ctx, cancel := call()
	defer cancel()
	resp, err := client.CreateApiKey(ctx, &gatewayv1.CreateApiKeyRequest{OrgId: org,
		Desc: "go lifecycle", Roles: []gatewayv1.OrgRole{gatewayv1.OrgRole_ORG_MEMBER}, AccessListIps: ips})
	return resp.GetApiKey(), err
}

// lifecycle checks CreateApiKey with an access list, ListApiKeys and DeleteApiKey, as the
// Python and Node suites do.
func lifecycle(client gatewayv1.AtlasGatewayClient) {
	key, err := createKey(client, "203.0.113.7", "2001:db8::/32")
	check("CreateApiKey with access_list_ips returns the applied entries", expect("error", err, nil),
		expect("access_list_ips", key.GetAccessListIps(), []string{"203.0.113.7", "2001:db8::/32"}),
		expect("in Atlas", storedKey(key.GetId())["access_list"], []string{"203.0.113.7/32", "2001:db8::/32"}))

	hexID := regexp.MustCompile(`^[a-f0-9]{24}$`)
	injectFault(`{"route":"create_api_key_access_list","times":1,"action":{"kind":"error","status":400,` +
		`"error_code":"INVALID_ATTRIBUTE","bad_request_fields":[["accessListIps","not allowed"]]}}`)
	_, err = createKey(client, "10.0.0.0/8")
	d := details(err)
	id := d.Info.GetMetadata()["api_key_id"]
	check("access list refused: InvalidArgument, key rolled back, ErrorInfo and BadRequest",
		expect("code", d.Code, codes.InvalidArgument), expect("reason", d.Info.GetReason(), "INVALID_ATTRIBUTE"),
		expect("rolled_back", d.Info.GetMetadata()["rolled_back"], "true"),
		expect("api_key_id is an id", hexID.MatchString(id), true),
		expect("field", firstField(d), "access_list_ips"),
		expect("deleted again", storedKey(id) == nil, true))

	injectFault(`[{"route":"create_api_key_access_list","times":1,"action":{"kind":"error","status":403,"error_code":"ACCESS_LIST_FORBIDDEN"}},` +
		`{"route":"delete_api_key","times":1,"action":{"kind":"error","status":500,"error_code":"UNEXPECTED_ERROR"}}]`)
	_, err = createKey(client, "10.0.0.0/8")
	d = details(err)
	id = d.Info.GetMetadata()["api_key_id"]
	orphan := storedKey(id) != nil
	check("rollback fails too: Internal ORPHANED_API_KEY; the caller deletes it by id",
		expect("code", d.Code, codes.Internal), expect("reason", d.Info.GetReason(), "ORPHANED_API_KEY"),
		expect("rolled_back", d.Info.GetMetadata()["rolled_back"], "false"),
		expect("orphan still in Atlas", orphan, true),
		expect("delete", deleteAPIKey(context.Background(), client, org, id), nil),
		expect("gone", storedKey(id) == nil, true))

	var mine []string
	for i := 0; i < 3; i++ {
		k, err := createKey(client)
		if err != nil {
			log.Fatalf("CreateApiKey: %v", err)
		}
		mine = append(mine, k.GetId())
	}
	ctx, cancel := call()
	first, err := client.ListApiKeys(ctx, &gatewayv1.ListApiKeysRequest{OrgId: org, PageSize: 1})
	cancel()
	keys, err2 := listAPIKeys(context.Background(), client, org, 2)
	seen, redacted := map[string]bool{}, true
	for _, k := range keys {
		seen[k.GetId()] = true
		redacted = redacted && strings.HasPrefix(k.GetPrivateKey(), "********-")
	}
	check("ListApiKeys page by page: every key once, private keys redacted",
		expect("errors", []error{err, err2}, []error{nil, nil}),
		expect("keys", len(keys), first.GetTotalSize()), expect("distinct", len(seen), len(keys)),
		expect("created ones listed", seen[mine[0]] && seen[mine[1]] && seen[mine[2]], true),
		expect("redacted", redacted, true))

	ctx, cancel = call()
	_, err = client.DeleteApiKey(ctx, &gatewayv1.DeleteApiKeyRequest{OrgId: org, ApiKeyId: mine[0]})
	cancel()
	ctx, cancel = call()
	_, again := client.DeleteApiKey(ctx, &gatewayv1.DeleteApiKeyRequest{OrgId: org, ApiKeyId: mine[0]})
	cancel()
	check("DeleteApiKey, then NotFound", expect("error", err, nil),
		expect("gone", storedKey(mine[0]) == nil, true), expect("again", status.Code(again), codes.NotFound))

	var problems []string
	for _, bad := range []*gatewayv1.ListApiKeysRequest{
		{OrgId: org, PageSize: 3, PageToken: first.GetNextPageToken()},
		{OrgId: "0123456789abcdef01234567", PageSize: 1, PageToken: first.GetNextPageToken()},
	} {
		ctx, cancel = call()
		_, err = client.ListApiKeys(ctx, bad)
		cancel()
		d = details(err)
		problems = append(problems, expect("code", d.Code, codes.InvalidArgument),
			expect("field", firstField(d), "page_token"))
	}
	check("a page token is bound to its org and page size: InvalidArgument on page_token", problems...)

	ctx, cancel = call("x-atlas-profile", "readonly")
	_, err = client.DeleteApiKey(ctx, &gatewayv1.DeleteApiKeyRequest{OrgId: org, ApiKeyId: mine[1]})
	cancel()
	d = details(err)
	ctx, cancel = call("x-atlas-profile", "readonly")
	_, listErr := client.ListApiKeys(ctx, &gatewayv1.ListApiKeysRequest{OrgId: org})
	cancel()
	check("allowed_rpcs: readonly may list, not delete (PermissionDenied POLICY_DENIED, field rpc)",
		expect("code", d.Code, codes.PermissionDenied), expect("reason", d.Info.GetReason(), "POLICY_DENIED"),
		expect("field", d.Info.GetMetadata()["field"], "rpc"), expect("list", listErr, nil))
}

// leasedKey checks CreateApiKey with a ttl: expire_time is about now + ttl, and desc (in
// the answer and in ListApiKeys) shows no lease marker.
func leasedKey(client gatewayv1.AtlasGatewayClient) {
	ttl := time.Hour
	before := time.Now()
	key, expires, err := createLeasedKey(context.Background(), client, org, ttl)
	after := time.Now()
	window := !expires.Before(before.Add(ttl-2*time.Second)) && expires.Before(after.Add(ttl+60*time.Second))
	check("CreateApiKey with a ttl: expire_time about now + ttl, desc without a lease marker",
		expect("error", err, nil), expect("expire_time set", key.GetExpireTime() != nil, true),
		expect(fmt.Sprintf("expire_time %s within [now+ttl-2s, now+ttl+60s)", expires.Format(time.RFC3339)), window, true),
		expect("desc", key.GetDesc(), "nightly export"))

	keys, err := listAPIKeys(context.Background(), client, org, 100)
	var listed *gatewayv1.ApiKey
	for _, k := range keys {
		if k.GetId() == key.GetId() {
			listed = k
		}
	}
	check("ListApiKeys shows the lease: same expire_time, desc without a lease marker",
		expect("error", err, nil), expect("listed", listed != nil, true),
		expect("expire_time", listed.GetExpireTime().AsTime().Equal(expires), true),
		expect("desc", listed.GetDesc(), "nightly export"))
}

// serviceAccounts checks CreateServiceAccount, RotateServiceAccountSecret,
// ListServiceAccounts (masked secrets only) and DeleteServiceAccount, as the Python suite does.
func serviceAccounts(client gatewayv1.AtlasGatewayClient) {
	ctx, cancel := call()
	created, err := client.CreateServiceAccount(ctx, &gatewayv1.CreateServiceAccountRequest{
		OrgId: org, Name: "go interop", Description: "interop suite",
		Roles: []gatewayv1.OrgRole{gatewayv1.OrgRole_ORG_MEMBER}, SecretExpiresAfterHours: 24})
	cancel()
	sa := created.GetServiceAccount()
	first := &gatewayv1.ServiceAccountSecret{}
	if len(sa.GetSecrets()) > 0 {
		first = sa.GetSecrets()[0]
	}
	check("CreateServiceAccount: a client id and one secret, with its value", expect("error", err, nil),
		expect("client_id "+sa.GetClientId(), strings.HasPrefix(sa.GetClientId(), "mdb_sa_id_"), true),
		expect("secrets", len(sa.GetSecrets()), 1), expect("secret value present", first.GetSecret() != "", true))

	ctx, cancel = call()
	rotated, err := client.RotateServiceAccountSecret(ctx, &gatewayv1.RotateServiceAccountSecretRequest{
		OrgId: org, ClientId: sa.GetClientId(), SecretExpiresAfterHours: 24})
	cancel()
	check("RotateServiceAccountSecret: a new secret, with its value", expect("error", err, nil),
		expect("secret value present", rotated.GetSecret().GetSecret() != "", true),
		expect("new id", rotated.GetSecret().GetId() != "" && rotated.GetSecret().GetId() != first.GetId(), true))

	ctx, cancel = call()
	listed, err := client.ListServiceAccounts(ctx, &gatewayv1.ListServiceAccountsRequest{OrgId: org, PageSize: 500})
	cancel()
	found, values, masked := false, 0, true
	for _, a := range listed.GetServiceAccounts() {
		found = found || a.GetClientId() == sa.GetClientId()
		for _, s := range a.GetSecrets() {
			if s.GetSecret() != "" {
				values++
			}
			masked = masked && s.GetMaskedSecretValue() != ""
		}
	}
	check("ListServiceAccounts: the account listed, no secret values (masked only)", expect("error", err, nil),
		expect("listed", found, true), expect("secret values", values, 0), expect("masked", masked, true))

	del := &gatewayv1.DeleteServiceAccountRequest{OrgId: org, ClientId: sa.GetClientId()}
	ctx, cancel = call()
	_, err = client.DeleteServiceAccount(ctx, del)
	cancel()
	ctx, cancel = call()
	_, again := client.DeleteServiceAccount(ctx, del)
	cancel()
	check("DeleteServiceAccount, then NotFound", expect("error", err, nil),
		expect("again", status.Code(again), codes.NotFound))
}

func main() {
	conn, err := connect(context.Background(), env("GATEWAY_ADDR", "127.0.0.1:50051"))
	if err != nil {
		log.Fatalf("connect: %v", err)
	}
	defer conn.Close()
	client := gatewayv1.NewAtlasGatewayClient(conn)

	ctx, cancel := call()
	token, err := client.CreateLinkToken(ctx, &gatewayv1.CreateLinkTokenRequest{
		OrgId: org, AccessListIps: []string{"203.0.113.7", "10.0.0.0/8"}})
	cancel()
	check("CreateLinkToken returns a link token", expect("error", err, nil),
		expect("token present", token.GetLinkToken() != "", true))

	ctx, cancel = call()
	_, err = client.DeleteLinkToken(ctx, &gatewayv1.DeleteLinkTokenRequest{OrgId: org})
	cancel()
	check("DeleteLinkToken after create", expect("error", err, nil))

	key, echoed, err := createAPIKey(context.Background(), client, org, "go-interop-1", "")
	check("CreateApiKey returns the key, x-request-id echoed", expect("error", err, nil),
		expect("private key present", key.GetPrivateKey() != "", true),
		expect("role", role(key), "ORG_MEMBER"),
		expect("echoed x-request-id", echoed, "go-interop-1"))

	rid := "5a0f9c4e-2b7d-4c1e-9f3a-8d6b1e2c7a90"
	first, _, err1 := createAPIKey(context.Background(), client, org, "go-interop-2", rid)
	again, _, err2 := createAPIKey(context.Background(), client, org, "go-interop-3", rid)
	check("CreateApiKey with a request_id is idempotent", expect("errors", []error{err1, err2}, []error{nil, nil}),
		expect("same key", again.GetId(), first.GetId()))

	ctx, cancel = call()
	_, err = client.CreateLinkToken(ctx, &gatewayv1.CreateLinkTokenRequest{
		OrgId: "not-an-org", AccessListIps: []string{"10.0.0.1", "bad"}})
	cancel()
	d := details(err)
	var fields []string
	for _, v := range d.BadRequest.GetFieldViolations() {
		fields = append(fields, v.GetField())
	}
	check("invalid request: InvalidArgument, ErrorInfo, BadRequest, RequestInfo",
		expect("code", d.Code, codes.InvalidArgument), expect("reason", d.Info.GetReason(), "INVALID_REQUEST"),
		expect("fields", fields, []string{"org_id", "access_list_ips[1]"}),
		expect("request id present", d.RequestID != "", true))

	ctx, cancel = call()
	_, err = client.DeleteLinkToken(ctx, &gatewayv1.DeleteLinkTokenRequest{OrgId: org})
	cancel()
	d = details(err)
	check("DeleteLinkToken without a link: NotFound, Atlas status in ErrorInfo",
		expect("code", d.Code, codes.NotFound), expect("http_status", d.Info.GetMetadata()["http_status"], "404"))

	// Before the 429 below: it starts a cool-down of CreateApiKey for this org.
	lifecycle(client)
	leasedKey(client)
	serviceAccounts(client)

	injectFault(`{"route":"create_api_key","times":1,"action":{"kind":"error","status":429,"error_code":"RATE_LIMITED","retry_after":"60"}}`)
	_, _, err = createAPIKey(context.Background(), client, org, "go-interop-rl", "")
	d = details(err)
	check("rate limited: ResourceExhausted with RetryInfo",
		expect("code", d.Code, codes.ResourceExhausted), expect("reason", d.Info.GetReason(), "RATE_LIMITED"),
		expect("retry after", d.RetryAfter, 60*time.Second))

	ctx, cancel = call("x-atlas-profile", "apikey", "x-request-id", "go-digest")
	resp, err := client.CreateApiKey(ctx, &gatewayv1.CreateApiKeyRequest{OrgId: org, Desc: "digest key",
		Roles: []gatewayv1.OrgRole{gatewayv1.OrgRole_ORG_READ_ONLY}})
	cancel()
	check("x-atlas-profile apikey (HTTP Digest)", expect("error", err, nil),
		expect("role", role(resp.GetApiKey()), "ORG_READ_ONLY"))

	ctx, cancel = call("x-atlas-profile", "restricted")
	_, err = client.CreateApiKey(ctx, &gatewayv1.CreateApiKeyRequest{OrgId: org, Desc: "x",
		Roles: []gatewayv1.OrgRole{gatewayv1.OrgRole_ORG_OWNER}})
	cancel()
	d = details(err)
	check("x-atlas-profile restricted: PermissionDenied POLICY_DENIED (field roles, caller anonymous)",
		expect("code", d.Code, codes.PermissionDenied), expect("reason", d.Info.GetReason(), "POLICY_DENIED"),
		expect("field", d.Info.GetMetadata()["field"], "roles"), expect("caller", d.Info.GetMetadata()["caller"], "anonymous"))

	ctx, cancel = call("x-atlas-profile", "nope")
	_, err = client.DeleteLinkToken(ctx, &gatewayv1.DeleteLinkTokenRequest{OrgId: org})
	cancel()
	d = details(err)
	check("unknown x-atlas-profile: InvalidArgument UNKNOWN_PROFILE",
		expect("code", d.Code, codes.InvalidArgument), expect("reason", d.Info.GetReason(), "UNKNOWN_PROFILE"))

	fmt.Printf("go: %d passed, %d failed\n", passed, failed)
	if failed > 0 {
		os.Exit(1)
	}
}
