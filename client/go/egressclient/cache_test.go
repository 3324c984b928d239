package egressclient

import (
	"slices"
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
	if _, ok := cache.afterFailure("a", true); ok || cache.len() != 1 {
		t.Error("a fresh entry is neither served nor removed by a failed call")
	}
	clock.Advance(time.Second)
	if _, ok := cache.afterFailure("a", true); !ok {
		t.Error("expired 0 s ago: within stale_if_error")
	}
	clock.Advance(5*time.Second - time.Nanosecond)
	if _, ok := cache.afterFailure("a", true); !ok {
		t.Error("expired just under 5 s ago: within stale_if_error")
	}
	clock.Advance(time.Nanosecond)
	if _, ok := cache.afterFailure("a", true); ok {
		t.Error("served stale at expires + stale_if_error")
	}
	if cache.len() != 0 {
		t.Error("an entry past expires + stale_if_error stayed after a failed call")
	}
	off := newDefinitionCache[*egressv1.EgressSource](10, clock, 0)
	off.put("a", source("a"), durationpb.New(time.Second), nil)
	clock.Advance(time.Second)
	if _, ok := off.afterFailure("a", true); ok || off.len() != 0 {
		t.Error("stale_if_error 0 served or kept an expired entry after a failed call")
	}
}

func response(name, revision string) *egressv1.GetEgressSourceResponse {
	return &egressv1.GetEgressSourceResponse{
		Source: &egressv1.EgressSource{Name: name, Ttl: durationpb.New(time.Hour)}, Revision: revision,
	}
}

func TestStoreRules(t *testing.T) {
	state := newCoherence(Options{MaxEntries: 10}, NewFakeClock(epochStart))
	// not watching yet: held aside, not stored (its revision is not the hello's)
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

// hello is a stream's first message.
func hello(revision string, names ...string) *egressv1.WatchInvalidationsResponse {
	return &egressv1.WatchInvalidationsResponse{Revision: revision, Instance: "i", Names: names}
}

func cachedNames(state *coherence, names ...string) []bool {
	found := make([]bool, len(names))
	for i, name := range names {
		_, found[i] = state.sources.get(name)
	}
	return found
}

func TestAnswersBeforeTheHelloAreStoredWhenItNamesTheirRevision(t *testing.T) {
	state := newCoherence(Options{MaxEntries: 10}, NewFakeClock(epochStart))
	state.keepSource("a", response("a", "r1"), state.currentEpoch())
	state.keepSource("b", response("b", "r0"), state.currentEpoch()) // a policy the hello no longer serves
	if state.sources.len() != 0 || state.held() != 2 {
		t.Fatalf("before the hello: %d stored, %d held; want 0, 2", state.sources.len(), state.held())
	}
	state.apply(hello("r1"), true)
	if got := cachedNames(state, "a", "b"); !got[0] || got[1] {
		t.Errorf("cached a, b = %v; want true, false", got)
	}
	if state.held() != 0 {
		t.Errorf("%d still held after the hello", state.held())
	}
}

func TestAnAnswerInFlightAcrossTheHello(t *testing.T) {
	state := newCoherence(Options{MaxEntries: 10}, NewFakeClock(epochStart))
	before := state.currentEpoch()
	state.apply(hello("r1", "dropped"), true)
	state.keepSource("a", response("a", "r1"), before)             // sent before the hello, arrived after it
	state.keepSource("b", response("b", "r0"), before)             // another revision
	state.keepSource("dropped", response("dropped", "r1"), before) // the hello dropped it
	if got := cachedNames(state, "a", "b", "dropped"); !got[0] || got[1] || got[2] {
		t.Errorf("cached a, b, dropped = %v; want true, false, false", got)
	}
	state.apply(&egressv1.WatchInvalidationsResponse{Names: []string{"x"}, Revision: "r1", Instance: "i", Sequence: 1}, false)
	state.keepSource("c", response("c", "r1"), before) // an event came after the hello
	if got := cachedNames(state, "c"); got[0] {
		t.Error("stored an answer sent before the hello after a later event")
	}
}

func TestHeldAnswersAreDiscardedByAFailedStreamOrABroadHello(t *testing.T) {
	state := newCoherence(Options{MaxEntries: 2}, NewFakeClock(epochStart))
	for _, name := range []string{"a", "b", "c"} {
		state.keepSource(name, response(name, "r1"), state.currentEpoch())
	}
	if state.held() != 2 {
		t.Fatalf("%d held, want at most MaxEntries (2)", state.held())
	}
	state.streamEnded(false) // the attempt failed before its hello
	state.apply(hello("r1"), true)
	if state.sources.len() != 0 {
		t.Fatalf("%d stored after a stream that failed before its hello", state.sources.len())
	}
	state.streamEnded(true)
	state.keepSource("d", response("d", "r1"), state.currentEpoch())
	state.keepSource("e", response("e", "r1"), state.currentEpoch())
	state.apply(&egressv1.WatchInvalidationsResponse{All: true, Revision: "r1", Instance: "j"}, true)
	if state.sources.len() != 0 {
		t.Fatalf("%d stored after a hello that says all", state.sources.len())
	}
	state.streamEnded(true)
	state.keepSource("e", response("e", "r1"), state.currentEpoch())
	state.keepSource("f", response("f", "r1"), state.currentEpoch())
	state.keepSource("g", response("g", "r1"), state.currentEpoch()) // e goes: at most 2 held
	state.apply(hello("r1", "f"), true)
	if got := cachedNames(state, "e", "f", "g"); got[0] || got[1] || !got[2] {
		t.Errorf("cached e, f, g = %v; want false, false, true", got)
	}
}

// The order rules of docs/clients/spec.md, on one cache of 3 entries.

// lruOf is a cache of 3 entries with stale_if_error 30 s, holding names in
// that order (least recently used first); the ones in short live 1 s, the
// others an hour.
func lruOf(t *testing.T, clock *FakeClock, names []string, short ...string) *definitionCache[*egressv1.EgressSource] {
	t.Helper()
	cache := newDefinitionCache[*egressv1.EgressSource](3, clock, 30*time.Second)
	for _, name := range names {
		ttl := time.Hour
		if slices.Contains(short, name) {
			ttl = time.Second
		}
		cache.put(name, source(name), durationpb.New(ttl), timestamppb.New(clock.Wall()))
	}
	expectOrder(t, cache, names...)
	return cache
}

func expectOrder(t *testing.T, cache *definitionCache[*egressv1.EgressSource], want ...string) {
	t.Helper()
	if got := cache.names(); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Errorf("cached %v, want %v (least to most recently used)", got, want)
	}
}

func TestAFreshHitIsTheMostRecentlyUsed(t *testing.T) {
	cache := lruOf(t, NewFakeClock(epochStart), []string{"a", "b", "c"})
	if _, ok := cache.get("a"); !ok {
		t.Fatal("a not served")
	}
	expectOrder(t, cache, "b", "c", "a")
	cache.put("d", source("d"), durationpb.New(time.Hour), nil) // evicts the least recently used, b
	expectOrder(t, cache, "c", "a", "d")
}

func TestStoringMakesTheMostRecentlyUsed(t *testing.T) {
	clock := NewFakeClock(epochStart)
	cache := lruOf(t, clock, []string{"a", "b", "c"})
	cache.put("a", source("a"), durationpb.New(time.Hour), timestamppb.New(clock.Wall())) // a new answer for a
	expectOrder(t, cache, "b", "c", "a")
}

func TestAMissOrAnExpiredEntryNotServedChangesNoOrder(t *testing.T) {
	clock := NewFakeClock(epochStart)
	cache := lruOf(t, clock, []string{"a", "b", "c"}, "a")
	clock.Advance(2 * time.Second) // a expired 1 s ago
	if _, ok := cache.get("a"); ok {
		t.Fatal("an expired entry was served by get")
	}
	if _, ok := cache.get("zzz"); ok {
		t.Fatal("served a name never stored")
	}
	expectOrder(t, cache, "a", "b", "c")
	cache.put("d", source("d"), durationpb.New(time.Hour), nil) // a is still the least recently used
	expectOrder(t, cache, "b", "c", "d")
}

func TestAStaleEntryServedIsTheMostRecentlyUsed(t *testing.T) {
	clock := NewFakeClock(epochStart)
	cache := lruOf(t, clock, []string{"a", "b", "c"}, "a")
	clock.Advance(2 * time.Second)
	if got, ok := cache.afterFailure("a", true); !ok || got.GetName() != "a" {
		t.Fatal("a expired 1 s ago, stale_if_error 30 s: not served after UNAVAILABLE")
	}
	expectOrder(t, cache, "b", "c", "a")
	cache.put("d", source("d"), durationpb.New(time.Hour), nil)
	expectOrder(t, cache, "c", "a", "d")
}

func TestAFailedCallRemovesTheExpiredEntryItCannotServe(t *testing.T) {
	clock := NewFakeClock(epochStart)
	cache := lruOf(t, clock, []string{"a", "b", "c"}, "a", "b")
	clock.Advance(2 * time.Second)
	// another code than UNAVAILABLE: a is not served, and removed
	if _, ok := cache.afterFailure("a", false); ok {
		t.Error("served stale after a failure other than UNAVAILABLE")
	}
	expectOrder(t, cache, "b", "c")
	// past produced_at + ttl + stale_if_error: b is not served, and removed
	clock.Advance(29 * time.Second)
	if _, ok := cache.afterFailure("b", true); ok {
		t.Error("served stale at produced_at + ttl + stale_if_error")
	}
	expectOrder(t, cache, "c")
	// a fresh entry is neither served nor removed, nor moved
	if _, ok := cache.afterFailure("c", false); ok {
		t.Error("a failed call served a fresh entry")
	}
	expectOrder(t, cache, "c")
}

func TestHeldAnswersAreStoredInTheOrderTheyArrived(t *testing.T) {
	state := newCoherence(Options{MaxEntries: 3}, NewFakeClock(epochStart))
	for _, name := range []string{"b", "a", "c", "a"} { // a arrives again: the later answer counts
		state.keepSource(name, response(name, "r1"), state.currentEpoch())
	}
	state.apply(hello("r1"), true)
	expectOrder(t, state.sources, "b", "c", "a")
}
