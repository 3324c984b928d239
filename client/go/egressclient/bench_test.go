package egressclient_test

import (
	"context"
	"testing"

	"github.com/egress-resolver/egress-resolver/client/go/egressclient"
)

// BenchmarkGetUncached measures one Get against a real sidecar: a round trip
// over TCP loopback to `egress-resolver serve --policy bench/policy.lua`,
// answered from the server's cache (the name is resolved once before the
// timed loop). The Go client has no cache of its own, so every Get is a call.
//
// Like every Go benchmark it runs only with -bench (`make bench-client`), never
// in `make test-go`; it starts and stops its server like the live tests.
func BenchmarkGetUncached(b *testing.B) {
	server := startServerWithPolicy(b, "bench/policy.lua")
	client, err := egressclient.New(server.TCPTarget, egressclient.WithTimeout(callTimeout))
	if err != nil {
		b.Fatalf("New(%q): %v", server.TCPTarget, err)
	}
	b.Cleanup(func() { _ = client.Close() })
	ctx := context.Background()
	const name = "ip-1"
	if _, err := client.Get(ctx, name); err != nil { // connect, and fill the server's cache
		b.Fatalf("Get(%s): %v", name, err)
	}
	b.ReportAllocs()
	for b.Loop() { // b.Loop resets the timer on its first call: the setup above is not timed
		if _, err := client.Get(ctx, name); err != nil {
			b.Fatalf("Get(%s): %v", name, err)
		}
	}
}
