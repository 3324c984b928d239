package egressclient_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/egress-resolver/egress-resolver/client/go/egressclient"
)

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
