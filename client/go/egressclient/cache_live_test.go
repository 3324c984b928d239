package egressclient_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
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

// TestCacheLive checks the cache against one real sidecar.
func TestCacheLive(t *testing.T) {
	policy := newCachePolicy(t)
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	server := startCacheSidecar(t, policy, "FIFO="+fifo)

	t.Run("cached get makes no call", func(t *testing.T) {
		client := newCachedClient(t, server.UnixTarget)
		first := mustGet(t, client, "hit-a")
		before := client.Stats().RPCs
		for range 3 {
			if again := mustGet(t, client, "hit-a"); again != first {
				t.Errorf("a cached get returned another message")
			}
		}
		expectRPCs(t, client, before, 0)
		if stats := client.Stats(); stats.Entries != 1 || !stats.Watching {
			t.Errorf("stats %+v, want 1 entry, watching", stats)
		}
	})
	t.Run("expiry at produced_at plus ttl", func(t *testing.T) { testExpiry(t, server) })
	t.Run("errors are not cached", func(t *testing.T) {
		client := newCachedClient(t, server.UnixTarget)
		before := client.Stats().RPCs
		for range 2 {
			_, err := client.Get(context.Background(), "missing")
			var resolveErr *egressclient.Error
			if !errors.As(err, &resolveErr) || resolveErr.Code != codes.NotFound || resolveErr.Reason != "SOURCE_NOT_FOUND" {
				t.Fatalf("Get(missing): %v", err)
			}
		}
		expectRPCs(t, client, before, 2)
	})
	t.Run("pools and selection", func(t *testing.T) { testPools(t, server) })
	t.Run("concurrent misses make one call", func(t *testing.T) { testCoalescing(t, server, fifo) })
	t.Run("targeted invalidation", func(t *testing.T) {
		client := newCachedClient(t, server.UnixTarget)
		mustGet(t, client, "inv-a")
		mustGet(t, client, "inv-b")
		if _, err := stub(t, server.UnixTarget).Invalidate(context.Background(),
			&egressv1.InvalidateRequest{Names: []string{"inv-a"}}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "inv-a dropped", func() bool { return client.Stats().Entries == 1 })
		before := client.Stats().RPCs
		mustGet(t, client, "inv-b")
		expectRPCs(t, client, before, 0)
		mustGet(t, client, "inv-a")
		expectRPCs(t, client, before, 1)
	})
	t.Run("reloads", func(t *testing.T) { testReloads(t, server, policy) })
}

func testExpiry(t *testing.T, server *liveServer) {
	// The client's wall clock reads 4 s ahead: the answer looks 4 s old, so
	// it lives 6 s of its 10 s ttl here.
	clock := egressclient.NewFakeClock(time.Now().Add(4 * time.Second))
	client := newCachedClient(t, server.UnixTarget, egressclient.WithClock(clock))
	wallAtPut := clock.Wall()
	mustGet(t, client, "short-expiry")
	explained, err := stub(t, server.UnixTarget).ExplainEgressSource(context.Background(),
		&egressv1.ExplainEgressSourceRequest{Name: "short-expiry"})
	if err != nil || !explained.GetCacheHit() {
		t.Fatalf("explain: %v, %v", explained, err)
	}
	left := explained.GetProducedAt().AsTime().Add(10 * time.Second).Sub(wallAtPut)
	if left <= 5*time.Second || left > 7*time.Second {
		t.Fatalf("left %s, want about 6 s", left)
	}
	before := client.Stats().RPCs
	clock.Advance(left - time.Nanosecond)
	mustGet(t, client, "short-expiry")
	expectRPCs(t, client, before, 0)
	clock.Advance(time.Nanosecond)
	mustGet(t, client, "short-expiry")
	expectRPCs(t, client, before, 1)
}

func testPools(t *testing.T, server *liveServer) {
	ctx := context.Background()
	client := newCachedClient(t, server.UnixTarget)
	pool, err := client.GetPool(ctx, "weighted")
	if err != nil {
		t.Fatal(err)
	}
	if pool.GetName() != "weighted" || len(pool.GetEntries()) != 3 || pool.GetEntries()[0].GetWeight() != 5 ||
		pool.GetTtl().AsDuration() != time.Minute {
		t.Errorf("pool %v", pool)
	}
	before := client.Stats().RPCs
	var got []string
	for range 14 {
		name, err := client.Select(ctx, "weighted")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, name)
	}
	want := []string{"two", "three", "one", "one", "one", "three", "one", "two", "three", "one", "two", "three", "one", "one"}
	if !slices.Equal(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	expectRPCs(t, client, before, 0) // the pool was cached
	for range 10 {
		if name, err := client.Select(ctx, "with-zero"); err != nil || name == "never" {
			t.Fatalf("Select(with-zero) = %q, %v", name, err)
		}
	}
	for pool, want := range map[string]egressclient.Error{
		"empty": {Code: codes.FailedPrecondition, Reason: "POOL_HAS_NO_SOURCES",
			Message: "pool 'empty' has no source with a weight above 0", Name: "empty"},
		"nope": {Code: codes.NotFound, Reason: "POOL_NOT_FOUND",
			Message: "get_egress_pool 'nope': the policy returned nil (no such pool)", Name: "nope"},
	} {
		_, err := client.Select(ctx, pool)
		var resolveErr *egressclient.Error
		if !errors.As(err, &resolveErr) || *resolveErr != want {
			t.Errorf("Select(%s): %v, want %+v", pool, err, want)
		}
	}
}

func testCoalescing(t *testing.T, server *liveServer, fifo string) {
	client := newCachedClient(t, server.UnixTarget)
	before := client.Stats().RPCs
	const callers = 8
	results := make([]string, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			source, err := client.Get(context.Background(), "block-x")
			if err != nil {
				t.Error(err)
				return
			}
			results[i] = source.GetEhloDomain()
		})
	}
	waitFor(t, "every caller waiting", func() bool { return egressclient.SharedWaits(client) == callers })
	if err := os.WriteFile(fifo, []byte("go\n"), 0o600); err != nil { // releases the one handler call
		t.Fatal(err)
	}
	wg.Wait()
	expectRPCs(t, client, before, 1)
	for _, result := range results {
		if result != results[0] || !strings.HasSuffix(result, "-call-1") {
			t.Errorf("results %v, want one shared answer from the first handler call", results)
			break
		}
	}
	if stats := client.Stats(); stats.Entries != 0 {
		t.Errorf("a ttl-0 answer was cached: %+v", stats)
	}
}

func testReloads(t *testing.T, server *liveServer, policy cachePolicy) {
	client := newCachedClient(t, server.UnixTarget)
	if got := mustGet(t, client, "reload-a").GetEhloDomain(); got != "v1" {
		t.Fatalf("ehlo %q, want v1", got)
	}
	// A reload that changes nothing: the sidecar re-resolves reload-a to the
	// same definition, announces no name, and the client keeps it.
	sequence := egressclient.Sequence(client)
	server.Reload(t)
	waitFor(t, "the reload's event", func() bool { return egressclient.Sequence(client) > sequence })
	before := client.Stats().RPCs
	mustGet(t, client, "reload-a")
	expectRPCs(t, client, before, 0)

	policy.setVersion(t, "v2")
	server.Reload(t)
	waitFor(t, "reload-a dropped", func() bool { return client.Stats().Entries == 0 })
	if got := mustGet(t, client, "reload-a").GetEhloDomain(); got != "v2" {
		t.Errorf("after the reload: ehlo %q, want v2", got)
	}
	expectRPCs(t, client, before, 1)
}

// TestCacheAcrossSidecarRestart: cached lookups keep working while the
// sidecar is down and after it is back, and the cache is kept (same policy).
func TestCacheAcrossSidecarRestart(t *testing.T) {
	policy := newCachePolicy(t)
	server := startCacheSidecar(t, policy)
	clock := egressclient.NewFakeClock(time.Now())
	client := newCachedClient(t, server.UnixTarget)
	var logged bytes.Buffer
	stale := newCachedClient(t, server.UnixTarget, egressclient.WithClock(clock), egressclient.WithStaleIfError(time.Hour),
		egressclient.WithLogger(slog.New(slog.NewTextHandler(&logged, nil))))
	strict := newCachedClient(t, server.UnixTarget, egressclient.WithClock(clock))
	mustGet(t, client, "restart-a")
	mustGet(t, stale, "short-s")
	mustGet(t, strict, "short-s")
	before := client.Stats().RPCs

	server.Stop(t)
	waitFor(t, "the stream to end", func() bool { return !client.Stats().Watching })
	mustGet(t, client, "restart-a") // from the cache: no failed lookup
	expectRPCs(t, client, before, 0)

	clock.Advance(11 * time.Second) // short-s expired 1 s ago
	if got := mustGet(t, stale, "short-s").GetName(); got != "short-s" {
		t.Errorf("stale answer %q", got)
	}
	if served := stale.Stats().StaleServed; served != 1 {
		t.Errorf("stale served %d, want 1", served)
	}
	if !strings.Contains(logged.String(), "level=WARN") || !strings.Contains(logged.String(), "name=short-s") {
		t.Errorf("no warning logged: %q", logged.String())
	}
	_, err := strict.Get(context.Background(), "short-s")
	var resolveErr *egressclient.Error
	if !errors.As(err, &resolveErr) || resolveErr.Code != codes.Unavailable {
		t.Errorf("without stale_if_error: %v, want UNAVAILABLE", err)
	}

	server.Restart(t)
	waitFor(t, "the stream to reconnect", func() bool { return client.Stats().Watching })
	mustGet(t, client, "restart-a")
	expectRPCs(t, client, before, 0)
	if entries := client.Stats().Entries; entries != 1 {
		t.Errorf("entries %d after the restart, want 1 (same policy: the cache is kept)", entries)
	}
}
