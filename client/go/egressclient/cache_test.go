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
