package egressclient

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Clock is what the cache reads the time from. Monotonic orders expiries
// (it never jumps); Wall is compared with the sidecar's produced_at.
type Clock interface {
	// Monotonic is the time elapsed since some fixed point, never going back.
	Monotonic() time.Duration
	// Wall is the current wall-clock time.
	Wall() time.Time
}

// systemClock reads the process's clocks.
type systemClock struct{ start time.Time }

func (c systemClock) Monotonic() time.Duration { return time.Since(c.start) }
func (c systemClock) Wall() time.Time          { return time.Now() }

// entry is one cached definition and the monotonic time it expires at.
type entry[T any] struct {
	value   T
	expires time.Duration
}

// definitionCache maps names to definitions until `produced_at + ttl`: a
// bounded LRU (hashicorp's simplelru) under a mutex. The sidecar says when
// its policy produced each answer, so an entry fetched when it is already 59 s
// old (ttl 60 s) lives 1 s here: no cache in the chain keeps an answer past
// the end of the policy's ttl.
//
// The order follows one rule: a lookup that returns an entry (get while it
// is fresh, served after a failed call under stale_if_error) makes it the
// most recently used, and so does storing it; nothing else moves an entry (a
// miss, or an expired entry that is not served, changes no order). Storing
// beyond the bound evicts the least recently used. Expired entries stay
// while stale_if_error may still serve them; a failed call removes the one
// it cannot serve, and invalidated ones are removed at once.
type definitionCache[T any] struct {
	mu           sync.Mutex
	lru          *simplelru.LRU[string, entry[T]]
	clock        Clock
	staleIfError time.Duration
}

func newDefinitionCache[T any](maxEntries int, clock Clock, staleIfError time.Duration) *definitionCache[T] {
	lru, err := simplelru.NewLRU[string, entry[T]](maxEntries, nil)
	if err != nil { // only for a size below 1, which resolveOptions refuses
		panic(err)
	}
	return &definitionCache[T]{lru: lru, clock: clock, staleIfError: staleIfError}
}

// get returns the definition while its ttl has not ended, and makes it the
// most recently used. An expired entry is a miss and keeps its place.
func (c *definitionCache[T]) get(name string) (T, bool) {
	now := c.clock.Monotonic()
	c.mu.Lock()
	e, ok := c.lru.Peek(name)
	if ok && e.expires > now {
		c.lru.Get(name) // served: the most recently used
		c.mu.Unlock()
		return e.value, true
	}
	c.mu.Unlock()
	var zero T
	return zero, false
}

// afterFailure is what a call for name that failed does to its expired
// entry: when the call failed with UNAVAILABLE (unavailable) and the entry
// expired less than stale_if_error ago, it is served and becomes the most
// recently used; otherwise it is removed, since nothing can serve it any
// more. A fresh entry (stored meanwhile) is left as it is, not served.
func (c *definitionCache[T]) afterFailure(name string, unavailable bool) (T, bool) {
	now := c.clock.Monotonic()
	var zero T
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.lru.Peek(name)
	switch {
	case !ok || e.expires > now:
		return zero, false
	case unavailable && now < e.expires+c.staleIfError:
		c.lru.Get(name) // served: the most recently used
		return e.value, true
	}
	c.lru.Remove(name)
	return zero, false
}

// put keeps value until producedAt + ttl (now + ttl when producedAt is
// unset); nothing is stored when that moment has passed or ttl is 0.
func (c *definitionCache[T]) put(name string, value T, ttl *durationpb.Duration, producedAt *timestamppb.Timestamp) {
	if expires, ok := c.expiry(ttl, producedAt); ok {
		c.putUntil(name, value, expires)
	}
}

// expiry is when an answer of ttl produced at producedAt ends, on the
// monotonic clock; false when it must not be kept (ttl 0, or already past).
func (c *definitionCache[T]) expiry(ttl *durationpb.Duration, producedAt *timestamppb.Timestamp) (time.Duration, bool) {
	lifetime := ttl.AsDuration()
	if lifetime <= 0 {
		return 0, false
	}
	now := c.clock.Monotonic()
	left := lifetime
	if producedAt.GetSeconds() != 0 || producedAt.GetNanos() != 0 {
		left = producedAt.AsTime().Add(lifetime).Sub(c.clock.Wall())
	}
	if left <= 0 {
		return 0, false
	}
	return now + left, true
}

// putUntil keeps value until the monotonic time expires, if still ahead, as
// the most recently used (evicting the least recently used beyond the bound).
func (c *definitionCache[T]) putUntil(name string, value T, expires time.Duration) {
	if expires <= c.clock.Monotonic() {
		return
	}
	c.mu.Lock()
	c.lru.Add(name, entry[T]{value: value, expires: expires})
	c.mu.Unlock()
}

// drop removes these names.
func (c *definitionCache[T]) drop(names []string) bool {
	dropped := false
	c.mu.Lock()
	for _, name := range names {
		dropped = c.lru.Remove(name) || dropped
	}
	c.mu.Unlock()
	return dropped
}

// purge removes everything.
func (c *definitionCache[T]) purge() {
	c.mu.Lock()
	c.lru.Purge()
	c.mu.Unlock()
}

// names lists the names held, expired entries included, from the least to
// the most recently used.
func (c *definitionCache[T]) names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Keys()
}

// len counts the entries held, expired ones included.
func (c *definitionCache[T]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
