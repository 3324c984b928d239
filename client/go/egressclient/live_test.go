package egressclient_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/egress-resolver/egress-resolver/client/go/egressclient"
	egressv1 "github.com/egress-resolver/egress-resolver/client/go/kumo/egress/v1"
)

// callTimeout is generous so that a loaded CI machine does not fail the tests.
const callTimeout = 30 * time.Second

// fullSource is what tests/fixtures/clients.lua returns for "full".
func fullSource() *egressv1.EgressSource {
	return &egressv1.EgressSource{
		Name:                     "full",
		SourceAddress:            proto.String("10.0.0.1"),
		EhloDomain:               proto.String("mta1.examplecorp.com"),
		RemotePort:               proto.Uint32(2525),
		HaProxyServer:            proto.String("10.0.0.9:5000"),
		HaProxySourceAddress:     proto.String("10.0.0.2"),
		Ttl:                      durationpb.New(90 * time.Second),
		Socks5ProxyServer:        proto.String("[2001:db8::1]:1080"),
		Socks5ProxySourceAddress: proto.String("2001:db8::2"),
		Socks5ProxyUsername:      proto.String("mta"),
		Socks5ProxyPassword:      &egressv1.KeySource{Source: &egressv1.KeySource_KeyData{KeyData: "hunter2"}},
		SuspendWhenUnplumbed: &egressv1.SuspendOnFailure{
			Trigger:  &egressv1.SuspendOnFailure_Immediate{Immediate: &emptypb.Empty{}},
			Duration: durationpb.New(5 * time.Minute),
		},
		SuspendWhenProxyUnhealthy: &egressv1.SuspendOnFailure{
			Trigger:  &egressv1.SuspendOnFailure_Threshold{Threshold: "3/300s"},
			Duration: durationpb.New(10 * time.Minute),
		},
	}
}

// TestLive runs every check against one real server process.
func TestLive(t *testing.T) {
	server := startServer(t)
	client := newClient(t, server.UnixTarget)
	t.Run("full", func(t *testing.T) { testFull(t, client) })
	t.Run("full over TCP", func(t *testing.T) { testFull(t, newClient(t, server.TCPTarget)) })
	t.Run("missing", func(t *testing.T) {
		testError(t, client, "missing", codes.NotFound, "SOURCE_NOT_FOUND")
	})
	t.Run("broken", func(t *testing.T) {
		testError(t, client, "broken", codes.FailedPrecondition, "HANDLER_ERROR")
	})
	t.Run("GetMany", func(t *testing.T) { testGetMany(t, client) })
	t.Run("example program", func(t *testing.T) { testExampleProgram(t, server.UnixTarget) })
}

func newClient(t *testing.T, target string) *egressclient.Client {
	t.Helper()
	client, err := egressclient.New(target, egressclient.WithTimeout(callTimeout))
	if err != nil {
		t.Fatalf("New(%q): %v", target, err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

func testFull(t *testing.T, client *egressclient.Client) {
	source, err := client.Get(context.Background(), "full")
	if err != nil {
		t.Fatalf("Get(full): %v", err)
	}
	checkFull(t, source)
}

func checkFull(t *testing.T, source *egressv1.EgressSource) {
	t.Helper()
	if want := fullSource(); !proto.Equal(source, want) {
		t.Errorf("got\n%s\nwant\n%s", prototext.Format(source), prototext.Format(want))
	}
	if ttl := source.GetTtl().AsDuration(); ttl != 90*time.Second {
		t.Errorf("ttl = %s, want 90s", ttl)
	}
}

func testError(t *testing.T, client *egressclient.Client, name string, code codes.Code, reason string) {
	source, err := client.Get(context.Background(), name)
	if err == nil {
		t.Fatalf("Get(%s) = %v, want an error", name, source)
	}
	var resolveErr *egressclient.Error
	if !errors.As(err, &resolveErr) {
		t.Fatalf("Get(%s) error %T is not an *egressclient.Error: %v", name, err, err)
	}
	checkError(t, resolveErr, name, code, reason)
	if got := status.Code(err); got != code {
		t.Errorf("status.Code = %s, want %s", got, code)
	}
}

func checkError(t *testing.T, err *egressclient.Error, name string, code codes.Code, reason string) {
	t.Helper()
	if err.Code != code || err.Reason != reason || err.Name != name {
		t.Errorf("got code %s, reason %q, name %q; want %s, %q, %q", err.Code, err.Reason, err.Name, code, reason, name)
	}
	if prefix := "get_egress_source '" + name + "': "; !strings.HasPrefix(err.Message, prefix) {
		t.Errorf("message %q does not start with %q", err.Message, prefix)
	}
	want := egressclient.CodeName(code) + ": " + err.Message + " [" + reason + "]"
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

func testGetMany(t *testing.T, client *egressclient.Client) {
	names := []string{"broken", "full", "missing", "full"}
	results, err := client.GetMany(context.Background(), names)
	if err != nil {
		t.Fatalf("GetMany: %v", err)
	}
	if len(results) != len(names) {
		t.Fatalf("got %d results, want %d", len(results), len(names))
	}
	for i, result := range results {
		if result.Name != names[i] {
			t.Errorf("result %d is for %q, want %q", i, result.Name, names[i])
		}
	}
	expectFailure := map[string]struct {
		code   codes.Code
		reason string
	}{
		"broken":  {codes.FailedPrecondition, "HANDLER_ERROR"},
		"missing": {codes.NotFound, "SOURCE_NOT_FOUND"},
	}
	for _, result := range results {
		failure, shouldFail := expectFailure[result.Name]
		switch {
		case shouldFail && result.Err == nil:
			t.Errorf("%s: got source %v, want an error", result.Name, result.Source)
		case shouldFail:
			checkError(t, result.Err, result.Name, failure.code, failure.reason)
		case result.Err != nil:
			t.Errorf("%s: unexpected error %v", result.Name, result.Err)
		default:
			checkFull(t, result.Source)
		}
	}
}
