package egressclient_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/egress-resolver/egress-resolver/client/go/egressclient"
	egressv1 "github.com/egress-resolver/egress-resolver/client/go/kumo/egress/v1"
)

// cachePolicy is a copy of testdata/cache.lua that a test may rewrite.
type cachePolicy struct {
	path string
}

func newCachePolicy(t testing.TB) cachePolicy {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("testdata", "cache.lua"))
	if err != nil {
		t.Fatal(err)
	}
	policy := cachePolicy{path: filepath.Join(t.TempDir(), "policy.lua")}
	if err := os.WriteFile(policy.path, text, 0o600); err != nil {
		t.Fatal(err)
	}
	return policy
}

// setVersion rewrites the policy's VERSION line.
func (p cachePolicy) setVersion(t testing.TB, version string) {
	t.Helper()
	text, err := os.ReadFile(p.path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(text), "\n")
	for i, line := range lines {
		if strings.HasPrefix(line, "local VERSION = ") {
			lines[i] = "local VERSION = '" + version + "'"
		}
	}
	if err := os.WriteFile(p.path, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startCacheSidecar serves policy, reloading only on SIGHUP.
func startCacheSidecar(t testing.TB, policy cachePolicy, env ...string) *liveServer {
	t.Helper()
	return startSidecar(t, sidecarConfig{Policy: policy.path, Env: env,
		Args: []string{"--watch-interval", "0", "--handler-timeout", "30s"}})
}

// newCachedClient is a client with the cache on, once its stream is connected.
func newCachedClient(t testing.TB, target string, opts ...egressclient.Option) *egressclient.Client {
	t.Helper()
	opts = append([]egressclient.Option{egressclient.WithCache(true), egressclient.WithTimeout(callTimeout)}, opts...)
	client, err := egressclient.New(target, opts...)
	if err != nil {
		t.Fatalf("New(%q): %v", target, err)
	}
	t.Cleanup(func() { _ = client.Close() })
	waitWatching(t, client)
	return client
}

func waitWatching(t testing.TB, client *egressclient.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startupDeadline)
	defer cancel()
	if err := client.WaitWatching(ctx); err != nil {
		t.Fatalf("the invalidation stream did not connect: %v", err)
	}
}

// waitFor polls condition (a bounded loop) until it holds.
func waitFor(t testing.TB, what string, condition func() bool) {
	t.Helper()
	for deadline := time.Now().Add(startupDeadline); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if condition() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func mustGet(t testing.TB, client *egressclient.Client, name string) *egressv1.EgressSource {
	t.Helper()
	source, err := client.Get(context.Background(), name)
	if err != nil {
		t.Fatalf("Get(%s): %v", name, err)
	}
	return source
}

// expectRPCs checks how many calls the client sent since before.
func expectRPCs(t testing.TB, client *egressclient.Client, before, more int64) {
	t.Helper()
	if got := client.Stats().RPCs; got != before+more {
		t.Errorf("%d calls, want %d", got-before, more)
	}
}

func stub(t testing.TB, target string) egressv1.EgressResolverServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return egressv1.NewEgressResolverServiceClient(conn)
}
