package egressclient

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	egressv1 "github.com/egress-resolver/egress-resolver/client/go/kumo/egress/v1"
)

// coherence is what the client's caches hold, as the invalidation stream
// last said. epoch grows at every invalidation, at every hello and at every
// end of a stream. An answer is stored only if it carries the revision the
// stream announced and the epoch did not move while it was in flight, with
// one exception, the hello: an answer sent before a stream's hello is stored
// when the hello comes (held aside until then, at most MaxEntries of each
// kind; or checked on arrival when it arrives after the hello and nothing
// else came since) if the hello names its revision and does not drop its
// name. The hello is the first message of a stream, so nothing was
// invalidated in between; a stream that ends before its hello discards what
// was held. So nothing stored can have missed an invalidation. mu orders
// every store against every stream message (then a cache's lock).
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
	heldSources         *simplelru.LRU[string, heldAnswer[*egressv1.EgressSource]]
	heldPools           *simplelru.LRU[string, heldAnswer[*egressv1.EgressPool]]
	hello               *helloRecord // the last hello, until the stream ends
}

// heldAnswer is an answer that arrived before the stream's hello.
type heldAnswer[T any] struct {
	value    T
	revision string
	expires  time.Duration // on the cache's monotonic clock
}

// helloRecord is what an answer sent before a hello is checked against when
// it arrives after it.
type helloRecord struct {
	before, after uint64 // the epoch while not watching, the epoch the hello set
	all           bool
	sources       map[string]struct{}
	pools         map[string]struct{}
}

func newCoherence(o Options, clock Clock) *coherence {
	return &coherence{
		sources:     newDefinitionCache[*egressv1.EgressSource](o.MaxEntries, clock, o.StaleIfError),
		pools:       newDefinitionCache[*egressv1.EgressPool](o.MaxEntries, clock, o.StaleIfError),
		connected:   make(chan struct{}),
		heldSources: newHeld[*egressv1.EgressSource](o.MaxEntries),
		heldPools:   newHeld[*egressv1.EgressPool](o.MaxEntries),
	}
}

func newHeld[T any](maxEntries int) *simplelru.LRU[string, heldAnswer[T]] {
	held, err := simplelru.NewLRU[string, heldAnswer[T]](maxEntries, nil)
	if err != nil { // only for a size below 1, which resolveOptions refuses
		panic(err)
	}
	return held
}

// currentEpoch is read before a call is sent.
func (c *coherence) currentEpoch() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// keepSource caches a source answer (or holds it until the hello) if nothing
// made it doubtful while in flight.
func (c *coherence) keepSource(name string, response *egressv1.GetEgressSourceResponse, epoch uint64) {
	source := response.GetSource()
	keep(c, c.sources, c.heldSources, false, name, source, source.GetTtl(), response.GetProducedAt(), response.GetRevision(), epoch)
}

// keepPool caches a pool answer (or holds it until the hello) if nothing
// made it doubtful while in flight.
func (c *coherence) keepPool(name string, response *egressv1.GetEgressPoolResponse, epoch uint64) {
	pool := response.GetPool()
	keep(c, c.pools, c.heldPools, true, name, pool, pool.GetTtl(), response.GetProducedAt(), response.GetRevision(), epoch)
}

// keep applies the store rules to one answer sent at epoch.
func keep[T any](c *coherence, cache *definitionCache[T], held *simplelru.LRU[string, heldAnswer[T]], pool bool,
	name string, value T, ttl *durationpb.Duration, producedAt *timestamppb.Timestamp, revision string, epoch uint64) {
	expires, ok := cache.expiry(ttl, producedAt)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch == c.epoch && !c.watching {
		held.Add(name, heldAnswer[T]{value: value, revision: revision, expires: expires})
		return
	}
	if revision == c.revision && (epoch == c.epoch || c.sentBeforeHello(epoch, name, pool)) {
		cache.putUntil(name, value, expires)
	}
}

// sentBeforeHello says whether an answer sent at epoch was sent before the
// last hello, arrived after it with nothing else since, and the hello spared it.
func (c *coherence) sentBeforeHello(epoch uint64, name string, pool bool) bool {
	h := c.hello
	if h == nil || epoch != h.before || c.epoch != h.after || h.all {
		return false
	}
	dropped := h.sources
	if pool {
		dropped = h.pools
	}
	_, gone := dropped[name]
	return !gone
}

// storeHeld stores the held answers of revision that the hello spared, and
// forgets the others.
func storeHeld[T any](cache *definitionCache[T], held *simplelru.LRU[string, heldAnswer[T]], revision string, all bool, dropped map[string]struct{}) {
	if !all {
		for _, name := range held.Keys() { // oldest first
			answer, _ := held.Peek(name)
			if _, gone := dropped[name]; !gone && answer.revision == revision {
				cache.putUntil(name, answer.value, answer.expires)
			}
		}
	}
	held.Purge()
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
	c.revision, c.instance, c.sequence = event.GetRevision(), event.GetInstance(), event.GetSequence()
	if hello {
		c.applyHello(event)
		return
	}
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
}

// applyHello drops what the hello says, stores the answers held aside that
// it spares, and starts watching. mu is held.
func (c *coherence) applyHello(event *egressv1.WatchInvalidationsResponse) {
	h := &helloRecord{before: c.epoch, after: c.epoch + 1, all: event.GetAll(),
		sources: nameSet(event.GetNames()), pools: nameSet(event.GetPoolNames())}
	c.epoch = h.after
	c.hello = h
	c.previousStreamEnded = false
	if h.all {
		c.sources.purge()
		c.pools.purge()
	} else {
		c.sources.drop(event.GetNames())
		c.pools.drop(event.GetPoolNames())
	}
	storeHeld(c.sources, c.heldSources, c.revision, h.all, h.sources)
	storeHeld(c.pools, c.heldPools, c.revision, h.all, h.pools)
	if !c.watching { // always so: streamEnded runs between two streams
		c.watching = true
		close(c.connected)
	}
}

func nameSet(names []string) map[string]struct{} {
	set := make(map[string]struct{}, len(names))
	for _, name := range names {
		set[name] = struct{}{}
	}
	return set
}

// streamEnded records the end of a stream: in order (OK after its hello) or
// not. Whatever was held aside for its hello is discarded.
func (c *coherence) streamEnded(inOrder bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.previousStreamEnded = inOrder
	c.epoch++
	c.hello = nil
	c.heldSources.Purge()
	c.heldPools.Purge()
	if c.watching {
		c.watching = false
		c.connected = make(chan struct{})
	}
}

// held counts the answers held aside until the next hello.
func (c *coherence) held() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.heldSources.Len() + c.heldPools.Len()
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
