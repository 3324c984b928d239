package egressclient_test

import (
	"context"
	"net"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/egress-resolver/egress-resolver/client/go/egressclient"
	egressv1 "github.com/egress-resolver/egress-resolver/client/go/kumo/egress/v1"
)

// acceptAndClose serves a loopback listener that closes every connection,
// until the benchmark ends.
func acceptAndClose(b *testing.B) string {
	b.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			_ = conn.Close()
		}
	}()
	b.Cleanup(func() { _ = listener.Close(); <-done })
	return listener.Addr().String()
}

// BenchmarkConnect measures Connect + Close through a source bound to
// 127.0.0.2 (no sidecar involved: the source is given), next to
// BenchmarkPlainConnect, a plain TCP connect + close to the same listener:
// the difference is what Connect adds (the bind and its checks).
func BenchmarkConnect(b *testing.B) {
	to := acceptAndClose(b)
	client, err := egressclient.New("unix:" + filepath.Join(b.TempDir(), "absent.sock"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = client.Close() })
	source := &egressv1.EgressSource{Name: "ip-2", SourceAddress: proto.String("127.0.0.2")}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		conn, _, err := client.Connect(ctx, source, to)
		if err != nil {
			b.Fatal(err)
		}
		_ = conn.Close()
	}
}

// BenchmarkPlainConnect is a plain TCP connect + close, for comparison.
func BenchmarkPlainConnect(b *testing.B) {
	to := acceptAndClose(b)
	var dialer net.Dialer
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		conn, err := dialer.DialContext(ctx, "tcp", to)
		if err != nil {
			b.Fatal(err)
		}
		_ = conn.Close()
	}
}
