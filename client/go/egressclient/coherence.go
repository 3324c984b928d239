package egressclient

import (
	"sync"

	egressv1 "github.com/egress-resolver/egress-resolver/client/go/kumo/egress/v1"
)

// coherence is what the client's caches hold, as the invalidation stream
// last said. epoch grows at every invalidation and at every change of
// watching; an answer is stored only while the stream is connected, only if
// it carries the revision the stream last announced, and only if the epoch
// did not move while it was in flight: so nothing stored can have missed an
// invalidation. mu orders every store against every invalidation.
type coherence struct {
	sources *definitionCache[*egressv1.EgressSource]
	pools   *definitionCache[*egressv1.EgressPool]

	mu                  sync.Mutex
	epoch               uint64
	revision            string
	instance            string
	sequence            uint64
	previousStreamEnded bool
	watching            bool
	connected           chan struct{} // closed while watching
}

func newCoherence(o Options, clock Clock) *coherence {
	return &coherence{
		sources:   newDefinitionCache[*egressv1.EgressSource](o.MaxEntries, clock, o.StaleIfError),
		pools:     newDefinitionCache[*egressv1.EgressPool](o.MaxEntries, clock, o.StaleIfError),
		connected: make(chan struct{}),
	}
}

// currentEpoch is read before a call is sent.
func (c *coherence) currentEpoch() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// keepSource caches a source answer if nothing made it doubtful while in flight.
func (c *coherence) keepSource(name string, response *egressv1.GetEgressSourceResponse, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mayStore(epoch, response.GetRevision()) {
		c.sources.put(name, response.GetSource(), response.GetSource().GetTtl(), response.GetProducedAt())
	}
}

// keepPool caches a pool answer if nothing made it doubtful while in flight.
func (c *coherence) keepPool(name string, response *egressv1.GetEgressPoolResponse, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mayStore(epoch, response.GetRevision()) {
		c.pools.put(name, response.GetPool(), response.GetPool().GetTtl(), response.GetProducedAt())
	}
}

func (c *coherence) mayStore(epoch uint64, revision string) bool {
	return c.watching && epoch == c.epoch && revision == c.revision
}

// request describes the caches for a new WatchInvalidations stream.
func (c *coherence) request() *egressv1.WatchInvalidationsRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &egressv1.WatchInvalidationsRequest{
		Revision:            c.revision,
		Instance:            c.instance,
		Sequence:            c.sequence,
		PreviousStreamEnded: c.previousStreamEnded,
	}
}

// apply applies one stream message; the first of a stream is its hello.
func (c *coherence) apply(event *egressv1.WatchInvalidationsResponse, hello bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case event.GetAll():
		c.epoch++
		c.sources.purge()
		c.pools.purge()
	case len(event.GetNames()) > 0 || len(event.GetPoolNames()) > 0:
		c.epoch++
		c.sources.drop(event.GetNames())
		c.pools.drop(event.GetPoolNames())
	}
	c.revision, c.instance, c.sequence = event.GetRevision(), event.GetInstance(), event.GetSequence()
	if hello {
		c.previousStreamEnded = false
		c.epoch++
		if !c.watching { // always so: streamEnded runs between two streams
			c.watching = true
			close(c.connected)
		}
	}
}

// streamEnded records the end of a stream: in order (OK after its hello) or not.
func (c *coherence) streamEnded(inOrder bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.previousStreamEnded = inOrder
	c.epoch++
	if c.watching {
		c.watching = false
		c.connected = make(chan struct{})
	}
}

// isWatching says whether the stream is connected (its hello applied).
func (c *coherence) isWatching() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.watching
}

// connectedChannel is closed once the stream is connected.
func (c *coherence) connectedChannel() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connected
}
