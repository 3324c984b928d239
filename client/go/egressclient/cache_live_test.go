package egressclient_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/egress-resolver/egress-resolver/client/go/egressclient"
	egressv1 "github.com/egress-resolver/egress-resolver/client/go/kumo/egress/v1"
)

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
