package egressclient

import (
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"

	egressv1 "github.com/egress-resolver/egress-resolver/client/go/kumo/egress/v1"
)

// ReasonPoolHasNoSources is the Reason of the error Select returns for a pool
// with no source of a weight above 0.
const ReasonPoolHasNoSources = "POOL_HAS_NO_SOURCES"

// weightedEntry is a pool entry that takes part in selection (weight > 0).
type weightedEntry struct {
	name   string
	weight uint32
}

// poolSelector chooses sources from one pool definition exactly as kumod's
// EgressPoolSourceSelector does (crates/kumod/src/egress_source.rs), an
// LVS weighted round robin: entries of weight 0 are left out; with one entry
// left it is always chosen; otherwise each pick moves the index on by one
// and, each time the index wraps to 0, lowers the current weight by the gcd
// of the weights (back to the largest weight when it reaches 0), choosing
// the first entry whose weight is at least the current weight. The state
// starts at index 0 and weight 0, so the first pick is the second entry. For
// weights 5, 2, 3 the picks are two, three, one, one, one, three, ... (50/20/30
// in every 100), in every language's client as in kumod. Hand-written: the
// point is to be step for step the algorithm kumod runs.
type poolSelector struct {
	name      string
	pool      *egressv1.EgressPool // the definition the state belongs to (guarded by selectors.mu)
	entries   []weightedEntry
	maxWeight uint32
	gcd       uint32

	mu      sync.Mutex
	index   int
	current uint32
}

func newPoolSelector(pool *egressv1.EgressPool) *poolSelector {
	s := &poolSelector{name: pool.GetName(), pool: pool}
	for _, e := range pool.GetEntries() {
		if e.GetWeight() == 0 {
			continue
		}
		s.entries = append(s.entries, weightedEntry{e.GetName(), e.GetWeight()})
		s.maxWeight = max(s.maxWeight, e.GetWeight())
		s.gcd = gcd(s.gcd, e.GetWeight())
	}
	return s
}

func gcd(a, b uint32) uint32 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// sameDefinition says whether pool has this selector's name and entries (so
// its state still applies).
func (s *poolSelector) sameDefinition(pool *egressv1.EgressPool) bool {
	if pool == s.pool {
		return true
	}
	if pool.GetName() != s.pool.GetName() || len(pool.GetEntries()) != len(s.pool.GetEntries()) {
		return false
	}
	for i, e := range pool.GetEntries() {
		mine := s.pool.GetEntries()[i]
		if e.GetName() != mine.GetName() || e.GetWeight() != mine.GetWeight() {
			return false
		}
	}
	return true
}

// next is the next source name, or a POOL_HAS_NO_SOURCES error, or a
// POOL_SUSPENDED one. Suspended entries are skipped as kumod's
// select_and_insert skips them: the round robin runs over the entries left
// (their largest weight and gcd), with the pool's one index and weight.
func (s *poolSelector) next(suspended *activeSuspensions) (string, error) {
	if len(s.entries) == 0 {
		return "", &Error{
			Code:    codes.FailedPrecondition,
			Reason:  ReasonPoolHasNoSources,
			Message: fmt.Sprintf("pool '%s' has no source with a weight above 0", s.name),
			Name:    s.name,
		}
	}
	entries, maxWeight, divisor := s.entries, s.maxWeight, s.gcd
	if suspended != nil {
		var err error
		if entries, maxWeight, divisor, err = s.available(suspended); err != nil {
			return "", err
		}
	}
	if len(entries) == 1 {
		return entries[0].name, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		s.index = (s.index + 1) % len(entries)
		if s.index == 0 {
			s.current = max(s.current, divisor) - divisor // saturating subtraction
			if s.current == 0 {
				s.current = maxWeight
			}
		}
		if entries[s.index].weight >= s.current {
			return entries[s.index].name, nil
		}
	}
}

// available is the entries not suspended, their largest weight and gcd; or
// POOL_SUSPENDED, saying which entry resumes first, when none is left.
func (s *poolSelector) available(suspended *activeSuspensions) ([]weightedEntry, uint32, uint32, error) {
	left := make([]weightedEntry, 0, len(s.entries))
	var first Suspension
	suspended.store.mu.Lock()
	for _, e := range s.entries {
		known, ok := suspended.store.lookupLocked(e.name, suspended.now)
		if !ok {
			left = append(left, e)
		} else if first.Name == "" || known.Until.Before(first.Until) {
			first = known
		}
	}
	suspended.store.mu.Unlock()
	if first.Name == "" {
		return s.entries, s.maxWeight, s.gcd, nil
	}
	if len(left) == 0 {
		return nil, 0, 0, &Error{
			Code:   codes.ResourceExhausted,
			Reason: ReasonPoolSuspended,
			Message: fmt.Sprintf("pool %s: every source is suspended; %s resumes first, at %s",
				s.name, first.Name, describeUntil(first.Until, suspended.now)),
			Name: s.name,
		}
	}
	var maxWeight, divisor uint32
	for _, e := range left {
		maxWeight = max(maxWeight, e.weight)
		divisor = gcd(divisor, e.weight)
	}
	return left, maxWeight, divisor, nil
}

// selectors keeps one poolSelector per pool name, replaced when the pool's
// definition changes.
type selectors struct {
	mu     sync.Mutex
	byName map[string]*poolSelector
}

// next picks the next source of pool, skipping the suspended ones (nil: none).
func (s *selectors) next(pool *egressv1.EgressPool, suspended *activeSuspensions) (string, error) {
	s.mu.Lock()
	selector := s.byName[pool.GetName()]
	if selector == nil || !selector.sameDefinition(pool) {
		selector = newPoolSelector(pool)
		if s.byName == nil {
			s.byName = make(map[string]*poolSelector)
		}
		s.byName[pool.GetName()] = selector
	} else if selector.pool != pool {
		selector.pool = pool // the same definition: later calls take the pointer check
	}
	s.mu.Unlock()
	return selector.next(suspended)
}
