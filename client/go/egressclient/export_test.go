package egressclient

import (
	"sync"
	"time"
)

// FakeClock is a Clock that moves only when told (both readings together),
// for the tests of this package and of egressclient_test.
type FakeClock struct {
	mu   sync.Mutex
	mono time.Duration
	wall time.Time
}

// NewFakeClock starts at wall-clock time wall.
func NewFakeClock(wall time.Time) *FakeClock { return &FakeClock{wall: wall} }

// Monotonic implements Clock.
func (c *FakeClock) Monotonic() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mono
}

// Wall implements Clock.
func (c *FakeClock) Wall() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wall
}

// Advance moves both clocks on by d.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mono += d
	c.wall = c.wall.Add(d)
}

// SkewWall moves only the wall clock (as an NTP step would).
func (c *FakeClock) SkewWall(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wall = c.wall.Add(d)
}

// SharedWaits counts the lookups that went to the single-flight group.
func SharedWaits(c *Client) int64 { return c.sharedWaits.Load() }

// Sequence is the sequence of the last invalidation message applied.
func Sequence(c *Client) uint64 {
	c.state.mu.Lock()
	defer c.state.mu.Unlock()
	return c.state.sequence
}
