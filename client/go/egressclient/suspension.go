package egressclient

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	egressv1 "github.com/egress-resolver/egress-resolver/client/go/kumo/egress/v1"
)

// Suspension is a source the sidecar suspended from pool selection for the
// whole host, because a client reported that connecting through it failed.
type Suspension struct {
	// Name is the source's name.
	Name string
	// Class is the failure class whose rule fired, e.g.
	// egressv1.FailureClass_FAILURE_CLASS_SOURCE_UNPLUMBED.
	Class egressv1.FailureClass
	// Until is when the suspension ends by itself (the host's wall clock).
	Until time.Time
	// Reason is the reported failure that fired the rule: its address and message.
	Reason string
	// KnownSince is when this client first learned of the suspension (its own
	// wall clock): from the invalidation stream, a GetEgressPool answer or a
	// ReportSourceFailure answer.
	KnownSince time.Time
}

// suspensions are the suspensions a client knows, forgotten at their Until
// (on the client's wall clock: the sidecar is on the same host) or when the
// stream says they ended. size lets Select skip the lock while there are
// none, as kumod's selector does with one atomic load.
type suspensions struct {
	now    func() time.Time
	size   atomic.Int64
	mu     sync.Mutex
	byName map[string]Suspension
}

func newSuspensions(now func() time.Time) *suspensions {
	return &suspensions{now: now, byName: make(map[string]Suspension)}
}

// fromProto converts a SourceSuspension received at now.
func fromProto(s *egressv1.SourceSuspension, now time.Time) Suspension {
	return Suspension{Name: s.GetName(), Class: s.GetFailureClass(), Until: s.GetUntil().AsTime(),
		Reason: s.GetReason(), KnownSince: now}
}

// add records suspensions (each replaces what was known of its name) and
// returns the last one as recorded.
func (s *suspensions) add(list ...*egressv1.SourceSuspension) Suspension {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addLocked(list, s.now())
}

func (s *suspensions) addLocked(list []*egressv1.SourceSuspension, now time.Time) Suspension {
	var last Suspension
	for _, message := range list {
		if message.GetName() == "" {
			continue
		}
		next := fromProto(message, now)
		if known, ok := s.byName[next.Name]; ok && known.Until.After(now) {
			next.KnownSince = known.KnownSince
		}
		s.byName[next.Name] = next
		last = next
	}
	s.size.Store(int64(len(s.byName)))
	return last
}

// applyEvent applies one message of the invalidation stream: the hello's
// `suspended` replaces everything, later messages add `suspended` and end
// `resumed`.
func (s *suspensions) applyEvent(event *egressv1.WatchInvalidationsResponse, hello bool) {
	if !hello && len(event.GetSuspended()) == 0 && len(event.GetResumed()) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if hello {
		previous := s.byName
		s.byName = make(map[string]Suspension, len(event.GetSuspended()))
		for _, message := range event.GetSuspended() {
			next := fromProto(message, now)
			if known, ok := previous[next.Name]; ok && known.Until.After(now) {
				next.KnownSince = known.KnownSince
			}
			s.byName[next.Name] = next
		}
	} else {
		s.addLocked(event.GetSuspended(), now)
	}
	for _, name := range event.GetResumed() {
		delete(s.byName, name)
	}
	s.size.Store(int64(len(s.byName)))
}

// lookup returns the suspension of name in force now, forgetting an ended one.
func (s *suspensions) lookup(name string) (Suspension, bool) {
	if s.size.Load() == 0 {
		return Suspension{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookupLocked(name, s.now())
}

func (s *suspensions) lookupLocked(name string, now time.Time) (Suspension, bool) {
	known, ok := s.byName[name]
	if !ok {
		return Suspension{}, false
	}
	if !known.Until.After(now) {
		delete(s.byName, name)
		s.size.Store(int64(len(s.byName)))
		return Suspension{}, false
	}
	return known, true
}

// list returns the suspensions in force, sorted by name.
func (s *suspensions) list() []Suspension {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	out := make([]Suspension, 0, len(s.byName))
	for name := range s.byName {
		if known, ok := s.lookupLocked(name, now); ok {
			out = append(out, known)
		}
	}
	slices.SortFunc(out, func(a, b Suspension) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// active returns a view of the suspensions in force for one selection, nil
// when the client knows none (the common case: no lock taken).
func (s *suspensions) active() *activeSuspensions {
	if s == nil || s.size.Load() == 0 {
		return nil
	}
	return &activeSuspensions{store: s, now: s.now()}
}

// activeSuspensions is the store as one selection reads it, at one instant.
type activeSuspensions struct {
	store *suspensions
	now   time.Time
}

// describeUntil says when a suspension ends: "2026-12-03T18:40:00Z (in 29s)".
func describeUntil(until, now time.Time) string {
	left := int64(math.Ceil(until.Sub(now).Seconds()))
	return fmt.Sprintf("%s (in %ds)", until.UTC().Format(time.RFC3339), max(left, 0))
}

// Suspended lists the suspensions the client knows to be in force, sorted by
// name: those the invalidation stream announced (with the cache on), those
// GetEgressPool answers carried and those ReportFailure returned.
func (c *Client) Suspended() []Suspension {
	return c.suspensions.list()
}

// ReportFailure reports to the sidecar that connecting through the source
// called name failed with class, at address (the source address, or the
// proxy's IP:port), as Connect does by itself; for an MTA that connects
// on its own. The source's suspend_when_unplumbed (SOURCE_UNPLUMBED) or
// suspend_when_proxy_unhealthy (PROXY_UNHEALTHY) rule decides whether the
// source is now suspended for every client on the host. It returns the
// suspension in force after the report, nil if none, and applies it at once
// to this client (Select skips the source, Connect refuses it).
func (c *Client) ReportFailure(ctx context.Context, name string, class egressv1.FailureClass,
	address, message string) (*Suspension, error) {
	ctx, cancel := c.withDefaultTimeout(ctx)
	defer cancel()
	c.rpcs.Add(1)
	response, err := c.stub.ReportSourceFailure(ctx, &egressv1.ReportSourceFailureRequest{
		Name: name, FailureClass: class, Address: address, Message: message})
	if err != nil {
		return nil, errorFromRPC(err, name)
	}
	if response.GetSuspension() == nil {
		return nil, nil
	}
	recorded := c.suspensions.add(response.GetSuspension())
	return &recorded, nil
}
