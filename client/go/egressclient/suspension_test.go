package egressclient

import (
	"errors"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	egressv1 "github.com/egress-resolver/egress-resolver/client/go/kumo/egress/v1"
)

func suspension(name string, until time.Time) *egressv1.SourceSuspension {
	return &egressv1.SourceSuspension{Name: name, FailureClass: egressv1.FailureClass_FAILURE_CLASS_SOURCE_UNPLUMBED,
		Until: timestamppb.New(until), Reason: "192.0.2.1: bind failed"}
}

func names(list []Suspension) []string {
	out := []string{}
	for _, s := range list {
		out = append(out, s.Name)
	}
	return out
}

func TestSuspensionsFromTheStream(t *testing.T) {
	clock := NewFakeClock(time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC))
	store := newSuspensions(clock.Wall)
	soon, later := clock.Wall().Add(10*time.Second), clock.Wall().Add(time.Minute)
	store.add(suspension("old", later))
	// the hello replaces what was known
	store.applyEvent(&egressv1.WatchInvalidationsResponse{Suspended: []*egressv1.SourceSuspension{
		suspension("ip-2", soon), suspension("ip-1", later)}}, true)
	if got := names(store.list()); !slices.Equal(got, []string{"ip-1", "ip-2"}) {
		t.Fatalf("after the hello: %v", got)
	}
	first := store.list()[0].KnownSince
	clock.Advance(time.Second)
	// later messages add and end; a message with neither changes nothing
	store.applyEvent(&egressv1.WatchInvalidationsResponse{Names: []string{"x"}}, false)
	store.applyEvent(&egressv1.WatchInvalidationsResponse{Suspended: []*egressv1.SourceSuspension{
		suspension("ip-3", later), suspension("ip-1", later.Add(time.Second))}, Resumed: []string{"ip-2"}}, false)
	list := store.list()
	if got := names(list); !slices.Equal(got, []string{"ip-1", "ip-3"}) {
		t.Fatalf("after suspended/resumed: %v", got)
	}
	if !list[0].KnownSince.Equal(first) || !list[1].KnownSince.Equal(clock.Wall()) {
		t.Errorf("known since %v and %v, want %v and %v", list[0].KnownSince, list[1].KnownSince, first, clock.Wall())
	}
	// a hello keeps when a suspension still in force was first known
	store.applyEvent(&egressv1.WatchInvalidationsResponse{Suspended: []*egressv1.SourceSuspension{suspension("ip-1", later)}}, true)
	if got := store.list(); len(got) != 1 || !got[0].KnownSince.Equal(first) {
		t.Errorf("after a second hello: %+v", got)
	}
	// forgotten at until
	clock.Advance(time.Minute)
	if got := store.list(); len(got) != 0 {
		t.Errorf("after until: %v", names(got))
	}
	if _, ok := store.lookup("ip-1"); ok || store.size.Load() != 0 {
		t.Errorf("an ended suspension is still known")
	}
}

// kumod's select_and_insert drops suspended entries and runs next_impl over
// the rest with the pool's one index and weight.
func TestSelectSkipsSuspendedSources(t *testing.T) {
	clock := NewFakeClock(time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC))
	store := newSuspensions(clock.Wall)
	var s selectors
	p := pool("pool", "one", 5, "two", 2, "three", 3)
	pick := func(n int) []string {
		out := make([]string, 0, n)
		for range n {
			name, err := s.next(p, store.active())
			if err != nil {
				t.Fatalf("next: %v", err)
			}
			out = append(out, name)
		}
		return out
	}
	if got := pick(2); !slices.Equal(got, []string{"two", "three"}) { // now index 2, weight 0
		t.Fatalf("first picks %v", got)
	}
	store.add(suspension("two", clock.Wall().Add(time.Minute)))
	// over [one 5, three 3] (max 5, gcd 1): index 3 % 2 = 1, weight 0: three;
	// index 0, weight 5: one; index 1 (3 < 5), index 0, weight 4: one; ...
	want := []string{"three", "one", "one", "one", "three", "one", "three", "one", "three", "one"}
	if got := pick(10); !slices.Equal(got, want) {
		t.Errorf("with two suspended: %v\nwant %v", got, want)
	}
	counts := map[string]int{}
	for _, name := range pick(80) {
		counts[name]++
	}
	if counts["one"] != 50 || counts["three"] != 30 || counts["two"] != 0 {
		t.Errorf("80 picks with two suspended: %v, want one 50, three 30", counts)
	}
	clock.Advance(time.Minute) // two resumes: back to all three
	counts = map[string]int{}
	for _, name := range pick(100) {
		counts[name]++
	}
	if counts["two"] != 20 {
		t.Errorf("100 picks after the suspension ended: %v", counts)
	}
}

func TestSelectWithEverySourceSuspended(t *testing.T) {
	clock := NewFakeClock(time.Date(2026, 12, 3, 18, 40, 0, 0, time.UTC).Add(-29 * time.Second))
	store := newSuspensions(clock.Wall)
	var s selectors
	p := pool("pool-1", "ip-1", 1, "ip-2", 1, "never", 0)
	store.add(suspension("ip-1", clock.Wall().Add(time.Hour)), suspension("ip-2", clock.Wall().Add(29*time.Second)))
	_, err := s.next(p, store.active())
	var selectErr *Error
	if !errors.As(err, &selectErr) {
		t.Fatalf("got %v", err)
	}
	want := Error{Code: codes.ResourceExhausted, Reason: ReasonPoolSuspended, Name: "pool-1",
		Message: "pool pool-1: every source is suspended; ip-2 resumes first, at 2026-12-03T18:40:00Z (in 29s)"}
	if *selectErr != want {
		t.Errorf("got  %+v\nwant %+v", *selectErr, want)
	}
	// one source left: always that one
	single := pool("single", "ip-1", 1)
	if _, err := s.next(single, store.active()); !errors.As(err, &selectErr) || selectErr.Reason != ReasonPoolSuspended {
		t.Errorf("a pool of one suspended source: %v", err)
	}
	clock.Advance(29 * time.Second)
	for range 3 {
		if name, err := s.next(p, store.active()); err != nil || name != "ip-2" {
			t.Errorf("with ip-2 resumed: %q %v", name, err)
		}
	}
}
