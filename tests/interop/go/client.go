// Go interop suite: grpc-go (Debian's 1.33, GOPATH mode, offline) with stubs generated
// from proto/ by protoc-gen-go, against the real gateway in front of the emulator. Every
// RPC, rich error details (ErrorInfo, BadRequest, RetryInfo, RequestInfo) and metadata.
//
// Built and run by tests/interop/go/run.sh, which sets GATEWAY_ADDR, EMULATOR_URL and
// ATLAS_ORG_ID. The regions between "docs:begin" and "docs:end" are the Go code shown
// in docs/clients.md (tests/interop/snippets.py checks they match).
package main

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/golang/protobuf/ptypes"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	gatewayv1 "gatewayv1"
)

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
	check("x-atlas-profile restricted: PermissionDenied POLICY_DENIED",
		expect("code", d.Code, codes.PermissionDenied), expect("reason", d.Info.GetReason(), "POLICY_DENIED"))

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
