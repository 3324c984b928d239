package egressclient

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	egressv1 "github.com/egress-resolver/egress-resolver/client/go/kumo/egress/v1"
)

// Client resolves egress source and pool names against one egress-resolver
// sidecar. It is safe for concurrent use; share one Client per sidecar.
type Client struct {
	conn    *grpc.ClientConn
	stub    egressv1.EgressResolverServiceClient
	options Options
	logger  *slog.Logger

	state        *coherence // nil when the cache is off
	suspensions  *suspensions
	reports      sync.WaitGroup // reports sent after their Connect's deadline passed
	sourceFlight singleflight.Group
	poolFlight   singleflight.Group
	selectors    selectors
	rpcs         atomic.Int64
	staleServed  atomic.Int64
	sharedWaits  atomic.Int64 // callers that went into shared (for the coalescing test)
	stopWatch    context.CancelFunc
	watchDone    chan struct{}
}

// Result is the outcome of one name in GetMany: Source is set on success,
// Err (never both) when the name did not resolve.
type Result struct {
	// Name is the requested name.
	Name string
	// Source is the resolved definition, nil when Err is set.
	Source *egressv1.EgressSource
	// Err says why the name did not resolve, nil on success.
	Err *Error
}

// Stats are a client's counters.
type Stats struct {
	// RPCs counts the unary calls sent (Get, GetPool, GetMany, ReportFailure
	// and Connect's reports; not the stream).
	RPCs int64
	// Entries counts the sources and pools cached (expired ones included).
	Entries int
	// Watching says whether the WatchInvalidations stream is connected.
	Watching bool
	// StaleServed counts expired definitions served under stale_if_error.
	StaleServed int64
}

// New creates a client for target: "host:port" (e.g. "127.0.0.1:50051",
// "[::1]:50051") or "unix:/absolute/path"; "" means EGRESS_CLIENT_TARGET, or
// DefaultTarget. Options not given come from the EGRESS_CLIENT_* variables
// (see Options). New does not wait for the sidecar; with the cache on it
// starts following WatchInvalidations in the background.
func New(target string, opts ...Option) (*Client, error) {
	var s settings
	for _, opt := range opts {
		opt(&s)
	}
	options, err := resolveOptions(target, &s, environ)
	if err != nil {
		return nil, err
	}
	dialOptions := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
		options.channelOptions()...)
	conn, err := grpc.NewClient(options.Target, append(dialOptions, s.dialOptions...)...)
	if err != nil {
		return nil, err
	}
	c := &Client{
		conn:    conn,
		stub:    egressv1.NewEgressResolverServiceClient(conn),
		options: options,
		logger:  s.logger,
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	clock := s.clock
	if clock == nil {
		clock = systemClock{start: time.Now()}
	}
	c.suspensions = newSuspensions(clock.Wall)
	if options.Cache {
		c.state = newCoherence(options, clock)
		ctx, cancel := context.WithCancel(context.Background())
		c.stopWatch, c.watchDone = cancel, make(chan struct{})
		go func() {
			defer close(c.watchDone)
			watch(ctx, c.stub, c.state, c.suspensions)
		}()
	}
	return c, nil
}

// Options returns the options in force (given, from the environment, or defaults).
func (c *Client) Options() Options { return c.options }

// Get returns the egress source called name. With the cache on, a cached
// definition is returned without a call (the message is shared: do not
// modify it). On failure the error is an *Error with the gRPC code and the
// ErrorInfo reason.
func (c *Client) Get(ctx context.Context, name string) (*egressv1.EgressSource, error) {
	if c.state == nil {
		return c.fetchSource(ctx, name)
	}
	if hit, ok := c.state.sources.get(name); ok {
		return hit, nil
	}
	return shared(ctx, c, &c.sourceFlight, name, c.fetchSource)
}

// GetPool returns the egress pool called name, cached like Get.
func (c *Client) GetPool(ctx context.Context, name string) (*egressv1.EgressPool, error) {
	if c.state == nil {
		return c.fetchPool(ctx, name)
	}
	if hit, ok := c.state.pools.get(name); ok {
		return hit, nil
	}
	return shared(ctx, c, &c.poolFlight, name, c.fetchPool)
}

// Select returns the name of the next source of pool, chosen as kumod
// chooses (weighted round robin, see the package doc), skipping the sources
// the client knows to be suspended as kumod skips them (the round robin goes
// on over the others). A pool with no source of a weight above 0 gives an
// *Error with codes.FailedPrecondition and Reason ReasonPoolHasNoSources; a
// pool whose every such source is suspended, codes.ResourceExhausted and
// ReasonPoolSuspended, saying which resumes first and when.
func (c *Client) Select(ctx context.Context, pool string) (string, error) {
	definition, err := c.GetPool(ctx, pool)
	if err != nil {
		return "", err
	}
	return c.selectors.next(definition, c.suspensions.active())
}

// GetMany resolves names in one call and returns one Result per name, in the
// order of names; a name that fails does not fail the others. The error
// (an *Error) is set only when the whole call failed. Never cached.
func (c *Client) GetMany(ctx context.Context, names []string) ([]Result, error) {
	ctx, cancel := c.withDefaultTimeout(ctx)
	defer cancel()
	c.rpcs.Add(1)
	response, err := c.stub.BatchGetEgressSources(ctx, &egressv1.BatchGetEgressSourcesRequest{Names: names})
	if err != nil {
		return nil, errorFromRPC(err, "")
	}
	results := make([]Result, 0, len(response.GetResults()))
	for _, result := range response.GetResults() {
		if failure := result.GetError(); failure != nil {
			results = append(results, Result{Name: result.GetName(), Err: errorFromStatusProto(failure, result.GetName())})
			continue
		}
		results = append(results, Result{Name: result.GetName(), Source: result.GetSource()})
	}
	return results, nil
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	stats := Stats{RPCs: c.rpcs.Load(), StaleServed: c.staleServed.Load()}
	if c.state != nil {
		stats.Entries = c.state.sources.len() + c.state.pools.len()
		stats.Watching = c.state.isWatching()
	}
	return stats
}

// CachedSources lists the names of the sources the cache holds, from the
// least to the most recently used; expired entries still held (for
// stale_if_error) are listed too. Nil when the cache is off.
func (c *Client) CachedSources() []string {
	if c.state == nil {
		return nil
	}
	return c.state.sources.names()
}

// CachedPools lists the names of the pools the cache holds, like CachedSources.
func (c *Client) CachedPools() []string {
	if c.state == nil {
		return nil
	}
	return c.state.pools.names()
}

// WaitWatching waits until the WatchInvalidations stream is connected (the
// cache stores answers only from then on). It returns ctx's error if ctx
// ends first, and at once an error when the cache is off.
func (c *Client) WaitWatching(ctx context.Context) error {
	if c.state == nil {
		return &Error{Code: codes.FailedPrecondition, Message: "the cache is off: nothing to watch"}
	}
	select {
	case <-c.state.connectedChannel():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops watching and closes the connection; calls in flight fail with
// codes.Canceled.
func (c *Client) Close() error {
	if c.stopWatch != nil {
		c.stopWatch()
		<-c.watchDone
	}
	err := c.conn.Close()
	c.reports.Wait() // they fail at once on the closed connection
	return err
}

// withDefaultTimeout applies the client's timeout when ctx has no deadline.
func (c *Client) withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, hasDeadline := ctx.Deadline(); hasDeadline {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.options.Timeout)
}
