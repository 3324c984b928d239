package egressclient

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	egressv1 "github.com/egress-resolver/egress-resolver/client/go/kumo/egress/v1"
)

var epochStart = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func source(name string) *egressv1.EgressSource { return &egressv1.EgressSource{Name: name} }

func TestEntryLivesUntilProducedAtPlusTTL(t *testing.T) {
	clock := NewFakeClock(epochStart)
	cache := newDefinitionCache[*egressv1.EgressSource](10, clock, 0)
	// produced 59 s ago with a 60 s ttl: one second left
	cache.put("a", source("a"), durationpb.New(time.Minute), timestamppb.New(epochStart.Add(-59*time.Second)))
	if _, ok := cache.get("a"); !ok {
		t.Fatal("not cached")
	}
	clock.Advance(999 * time.Millisecond)
	if _, ok := cache.get("a"); !ok {
		t.Fatal("expired early")
	}
	clock.Advance(time.Millisecond)
	if _, ok := cache.get("a"); ok {
		t.Fatal("still served at produced_at + ttl")
	}
	if cache.len() != 1 {
		t.Errorf("the expired entry should stay (for stale_if_error), len %d", cache.len())
	}
}

func TestExpiryIsMonotonicOnceStored(t *testing.T) {
	clock := NewFakeClock(epochStart)
	cache := newDefinitionCache[*egressv1.EgressSource](10, clock, 0)
	cache.put("a", source("a"), durationpb.New(10*time.Second), timestamppb.New(epochStart))
	clock.SkewWall(time.Hour) // a wall-clock step after storing changes nothing
	if _, ok := cache.get("a"); !ok {
		t.Fatal("a wall-clock step expired the entry")
	}
	clock.Advance(10 * time.Second)
	if _, ok := cache.get("a"); ok {
		t.Fatal("served past its ttl")
	}
}

func TestNothingStoredWhenAlreadyExpiredOrTTLZero(t *testing.T) {
	clock := NewFakeClock(epochStart)
	cache := newDefinitionCache[*egressv1.EgressSource](10, clock, time.Hour)
	cache.put("old", source("old"), durationpb.New(time.Minute), timestamppb.New(epochStart.Add(-time.Minute)))
	cache.put("zero", source("zero"), durationpb.New(0), timestamppb.New(epochStart))
	cache.put("nil-ttl", source("nil-ttl"), nil, timestamppb.New(epochStart))
	if cache.len() != 0 {
		t.Errorf("stored %d entries, want none", cache.len())
	}
	// no produced_at: now + ttl
	cache.put("fresh", source("fresh"), durationpb.New(time.Second), nil)
	clock.Advance(999 * time.Millisecond)
	if _, ok := cache.get("fresh"); !ok {
		t.Error("an answer without produced_at should live ttl from now")
	}
}

func TestBoundedLRU(t *testing.T) {
	clock := NewFakeClock(epochStart)
	cache := newDefinitionCache[*egressv1.EgressSource](2, clock, 0)
	ttl, now := durationpb.New(time.Hour), timestamppb.New(epochStart)
	cache.put("a", source("a"), ttl, now)
	cache.put("b", source("b"), ttl, now)
	cache.get("a") // b is now the least recently used
	cache.put("c", source("c"), ttl, now)
	if _, ok := cache.get("b"); ok {
		t.Error("b should have been evicted")
	}
	for _, name := range []string{"a", "c"} {
		if _, ok := cache.get(name); !ok {
			t.Errorf("%s was evicted", name)
		}
	}
	if cache.len() != 2 {
		t.Errorf("len %d, want 2", cache.len())
	}
}

func TestStaleWindow(t *testing.T) {
	clock := NewFakeClock(epochStart)
	cache := newDefinitionCache[*egressv1.EgressSource](10, clock, 5*time.Second)
	cache.put("a", source("a"), durationpb.New(time.Second), timestamppb.New(epochStart))
	clock.Advance(time.Second)
	if _, ok := cache.getStale("a"); !ok {
		t.Error("expired 0 s ago: within stale_if_error")
	}
	clock.Advance(5*time.Second - time.Nanosecond)
	if _, ok := cache.getStale("a"); !ok {
		t.Error("expired just under 5 s ago: within stale_if_error")
	}
	clock.Advance(time.Nanosecond)
	if _, ok := cache.getStale("a"); ok {
		t.Error("served stale at expires + stale_if_error")
	}
	off := newDefinitionCache[*egressv1.EgressSource](10, clock, 0)
	off.put("a", source("a"), durationpb.New(time.Second), nil)
	clock.Advance(time.Second)
	if _, ok := off.getStale("a"); ok {
		t.Error("stale_if_error 0 served a stale entry")
	}
}

func response(name, revision string) *egressv1.GetEgressSourceResponse {
	return &egressv1.GetEgressSourceResponse{
		Source: &egressv1.EgressSource{Name: name, Ttl: durationpb.New(time.Hour)}, Revision: revision,
	}
}

func TestStoreRules(t *testing.T) {
	state := newCoherence(Options{MaxEntries: 10}, NewFakeClock(epochStart))
	// not watching yet: nothing stored
	state.keepSource("a", response("a", ""), state.currentEpoch())
	if state.sources.len() != 0 {
		t.Fatal("stored before the stream connected")
	}
	state.apply(&egressv1.WatchInvalidationsResponse{Revision: "r1", Instance: "i", Sequence: 3}, true)
	select {
	case <-state.connectedChannel():
	default:
		t.Fatal("the hello did not connect")
	}
	if got := state.request(); got.GetRevision() != "r1" || got.GetInstance() != "i" || got.GetSequence() != 3 || got.GetPreviousStreamEnded() {
		t.Errorf("request after hello: %v", got)
	}
	epoch := state.currentEpoch()
	state.keepSource("old", response("old", "r0"), epoch) // another revision
	if state.sources.len() != 0 {
		t.Fatal("stored an answer of another revision")
	}
	// an invalidation while in flight, even of another name, forbids the store
	state.apply(&egressv1.WatchInvalidationsResponse{Names: []string{"zzz"}, Revision: "r1", Instance: "i", Sequence: 4}, false)
	state.keepSource("a", response("a", "r1"), epoch)
	if state.sources.len() != 0 {
		t.Fatal("stored an answer that was in flight during an invalidation")
	}
	epoch = state.currentEpoch()
	state.keepSource("a", response("a", "r1"), epoch)
	state.keepSource("b", response("b", "r1"), epoch)
	if state.sources.len() != 2 {
		t.Fatalf("len %d, want 2", state.sources.len())
	}
	state.apply(&egressv1.WatchInvalidationsResponse{Names: []string{"a"}, Revision: "r1", Instance: "i", Sequence: 5}, false)
	if _, ok := state.sources.get("a"); ok {
		t.Error("a survived its invalidation")
	}
	if _, ok := state.sources.get("b"); !ok {
		t.Error("b was dropped by a's invalidation")
	}
	state.apply(&egressv1.WatchInvalidationsResponse{All: true, Revision: "r2", Instance: "i", Sequence: 6}, false)
	if state.sources.len() != 0 {
		t.Error("all did not drop everything")
	}
	// the stream ends: nothing stored; the cache is kept
	epoch = state.currentEpoch()
	state.keepSource("c", response("c", "r2"), epoch)
	state.streamEnded(true)
	state.keepSource("d", response("d", "r2"), state.currentEpoch())
	if state.sources.len() != 1 || state.isWatching() {
		t.Errorf("after the stream ended: len %d (want 1), watching %v", state.sources.len(), state.isWatching())
	}
	if got := state.request(); !got.GetPreviousStreamEnded() || got.GetSequence() != 6 {
		t.Errorf("resume request %v", got)
	}
}
