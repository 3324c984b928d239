package egressclient

import (
	"errors"
	"slices"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"

	egressv1 "github.com/egress-resolver/egress-resolver/client/go/kumo/egress/v1"
)

func pool(name string, entries ...any) *egressv1.EgressPool {
	p := &egressv1.EgressPool{Name: name}
	for i := 0; i < len(entries); i += 2 {
		p.Entries = append(p.Entries, &egressv1.EgressPoolEntry{Name: entries[i].(string), Weight: uint32(entries[i+1].(int))})
	}
	return p
}

func picks(t *testing.T, s *selectors, p *egressv1.EgressPool, n int) []string {
	t.Helper()
	out := make([]string, 0, n)
	for range n {
		name, err := s.next(p, nil)
		if err != nil {
			t.Fatalf("next(%s): %v", p.GetName(), err)
		}
		out = append(out, name)
	}
	return out
}

// TestKumodRoundRobin is kumod's own `round_robin` test: 100 picks of
// weights 5/2/3 give 50/20/30.
func TestKumodRoundRobin(t *testing.T) {
	var s selectors
	counts := map[string]int{}
	for _, name := range picks(t, &s, pool("pool", "one", 5, "two", 2, "three", 3), 100) {
		counts[name]++
	}
	if counts["one"] != 50 || counts["two"] != 20 || counts["three"] != 30 {
		t.Errorf("counts %v, want one 50, two 20, three 30", counts)
	}
}

func TestRoundRobinSequence(t *testing.T) {
	var s selectors
	got := picks(t, &s, pool("pool", "one", 5, "two", 2, "three", 3), 14)
	want := []string{"two", "three", "one", "one", "one", "three", "one", "two", "three", "one", "two", "three", "one", "one"}
	if !slices.Equal(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

func TestWeightZeroIsNeverChosen(t *testing.T) {
	var s selectors
	p := pool("pool", "a", 1, "never", 0, "b", 3)
	counts := map[string]int{}
	for _, name := range picks(t, &s, p, 400) {
		counts[name]++
	}
	if counts["never"] != 0 || counts["a"] != 100 || counts["b"] != 300 {
		t.Errorf("counts %v, want a 100, b 300, never 0", counts)
	}
	// one entry left after dropping the zeros: always that one
	if got := picks(t, &s, pool("single", "z", 0, "only", 7), 3); !slices.Equal(got, []string{"only", "only", "only"}) {
		t.Errorf("got %v", got)
	}
}

func TestEmptyAndAllZeroPoolsAreAnError(t *testing.T) {
	var s selectors
	for _, p := range []*egressv1.EgressPool{pool("empty"), pool("zero", "ip-1", 0, "ip-2", 0)} {
		name, err := s.next(p, nil)
		var resolveErr *Error
		if !errors.As(err, &resolveErr) {
			t.Fatalf("next(%s) = %q, %v; want an *Error", p.GetName(), name, err)
		}
		want := Error{Code: codes.FailedPrecondition, Reason: ReasonPoolHasNoSources,
			Message: "pool '" + p.GetName() + "' has no source with a weight above 0", Name: p.GetName()}
		if *resolveErr != want {
			t.Errorf("got %+v, want %+v", *resolveErr, want)
		}
	}
}

func TestStateResetsWhenTheDefinitionChanges(t *testing.T) {
	var s selectors
	first := picks(t, &s, pool("pool", "one", 5, "two", 2, "three", 3), 2)
	// an equal definition in another message keeps the state
	if got := picks(t, &s, pool("pool", "one", 5, "two", 2, "three", 3), 1); got[0] != "one" {
		t.Errorf("after %v the same definition gave %v, want one", first, got)
	}
	// a changed weight starts over: the first pick is the second entry
	if got := picks(t, &s, pool("pool", "one", 5, "two", 2, "three", 4), 1); got[0] != "two" {
		t.Errorf("a changed definition gave %v, want two", got)
	}
	// another pool has a state of its own
	if got := picks(t, &s, pool("other", "x", 1, "y", 1), 1); got[0] != "y" {
		t.Errorf("another pool gave %v, want y", got)
	}
}

func TestSelectorIsSafeForConcurrentUse(t *testing.T) {
	var s selectors
	p := pool("pool", "one", 5, "two", 2, "three", 3)
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 250 {
				name, err := s.next(p, nil)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				counts[name]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if counts["one"] != 500 || counts["two"] != 200 || counts["three"] != 300 {
		t.Errorf("counts %v, want 500/200/300 over 1000 picks", counts)
	}
}
