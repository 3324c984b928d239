package egressclient

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc"

	egressv1 "github.com/egress-resolver/egress-resolver/client/go/kumo/egress/v1"
)

// The watcher's retry backoff: doubled from initialWatchBackoff up to
// maxWatchBackoff, ±20 % jitter, back to the start after a stream that
// delivered its hello.
const (
	initialWatchBackoff = 50 * time.Millisecond
	maxWatchBackoff     = 500 * time.Millisecond
)

// watch follows WatchInvalidations until ctx ends, so the caches drop what
// the sidecar says is stale and the suspensions are the sidecar's (the
// hello's replace the ones known, later messages add and end some).
//
// Each stream starts by telling the sidecar what the caches hold (the
// revision, the instance and sequence of the last message applied, and
// whether the previous stream ended in order); the sidecar's hello says what
// of that to drop. So the caches survive a sidecar restart with the same
// policy, are dropped when the policy changed, and never keep an entry
// invalidated while the stream was away. While the stream is down the
// caches keep serving entries within their ttl; new answers are held aside
// until the next hello and stored if it names their revision (coherence.go).
// Hand-written: the loop is a few lines and a retry library would not know
// the resume rules.
func watch(ctx context.Context, stub egressv1.EgressResolverServiceClient, state *coherence, suspended *suspensions) {
	backoff := initialWatchBackoff
	for ctx.Err() == nil {
		delivered, inOrder := followStream(ctx, stub, state, suspended)
		state.streamEnded(inOrder)
		if delivered {
			backoff = initialWatchBackoff
		}
		wait := time.Duration(float64(backoff) * (0.8 + 0.4*rand.Float64()))
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		backoff = min(2*backoff, maxWatchBackoff)
	}
}

// followStream applies one stream's messages until it ends. delivered: its
// hello arrived; inOrder: it then ended with OK (the sidecar shut down in
// order, so nothing of that instance was missed).
func followStream(ctx context.Context, stub egressv1.EgressResolverServiceClient, state *coherence,
	suspended *suspensions) (delivered, inOrder bool) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Wait-for-ready: while the sidecar is down the call waits for it to come
	// back instead of failing at once.
	stream, err := stub.WatchInvalidations(ctx, state.request(), grpc.WaitForReady(true))
	if err != nil {
		return false, false
	}
	for {
		event, err := stream.Recv()
		if err != nil {
			return delivered, delivered && errors.Is(err, io.EOF)
		}
		state.apply(event, !delivered)
		suspended.applyEvent(event, !delivered)
		delivered = true
	}
}
