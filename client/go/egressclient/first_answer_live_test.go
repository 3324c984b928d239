package egressclient_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"

	"github.com/egress-resolver/egress-resolver/client/go/egressclient"
	egressv1 "github.com/egress-resolver/egress-resolver/client/go/kumo/egress/v1"
)

// streamGate holds the client's WatchInvalidations streams until open: so
// an answer surely arrives before the hello of the client's first stream.
type streamGate chan struct{}

func (g streamGate) option() egressclient.Option {
	return egressclient.WithDialOptions(grpc.WithStreamInterceptor(
		func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
			streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			if method == egressv1.EgressResolverService_WatchInvalidations_FullMethodName {
				select {
				case <-g:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			return streamer(ctx, desc, cc, method, opts...)
		}))
}

// gatedClient is a cached client whose stream waits for gate.
func gatedClient(t *testing.T, target string, gate streamGate) *egressclient.Client {
	t.Helper()
	client, err := egressclient.New(target, egressclient.WithCache(true), egressclient.WithTimeout(callTimeout), gate.option())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// TestFirstAnswerBeforeTheHello: an answer that arrives before the stream's
// hello is stored when the hello names its revision, and only then.
func TestFirstAnswerBeforeTheHello(t *testing.T) {
	policy := newCachePolicy(t)
	server := startCacheSidecar(t, policy)

	t.Run("same revision: stored", func(t *testing.T) {
		gate := make(streamGate)
		client := gatedClient(t, server.UnixTarget, gate)
		mustGet(t, client, "first-a")
		if stats := client.Stats(); stats.Watching || stats.Entries != 0 {
			t.Fatalf("before the hello: %+v, want not watching and nothing stored", stats)
		}
		close(gate)
		waitWatching(t, client)
		if entries := client.Stats().Entries; entries != 1 {
			t.Fatalf("entries %d after the hello, want 1", entries)
		}
		mustGet(t, client, "first-a")
		expectRPCs(t, client, 0, 1)
	})

	t.Run("another revision: dropped", func(t *testing.T) {
		gate := make(streamGate)
		client := gatedClient(t, server.UnixTarget, gate)
		if got := mustGet(t, client, "first-b").GetEhloDomain(); got != "v1" {
			t.Fatalf("ehlo_domain %q, want v1", got)
		}
		policy.setVersion(t, "v2")
		server.Reload(t)
		direct := stub(t, server.UnixTarget)
		waitFor(t, "the sidecar to serve v2", func() bool {
			response, err := direct.GetEgressSource(context.Background(), &egressv1.GetEgressSourceRequest{Name: "first-c"})
			return err == nil && response.GetSource().GetEhloDomain() == "v2"
		})
		close(gate)
		waitWatching(t, client)
		if entries := client.Stats().Entries; entries != 0 {
			t.Fatalf("entries %d after a hello of another revision, want 0", entries)
		}
		if got := mustGet(t, client, "first-b").GetEhloDomain(); got != "v2" {
			t.Errorf("ehlo_domain %q, want v2", got)
		}
		expectRPCs(t, client, 0, 2)
	})
}
