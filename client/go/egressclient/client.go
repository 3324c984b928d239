package egressclient

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	egressv1 "github.com/egress-resolver/egress-resolver/client/go/kumo/egress/v1"
)

// DefaultTimeout bounds a call whose context has no deadline. A cache miss runs
// the Lua policy, so a call may take longer than a plain round trip.
const DefaultTimeout = 2 * time.Second

// Client resolves egress source names against one egress-resolver sidecar.
// It is safe for concurrent use; share one Client per sidecar.
type Client struct {
	conn    *grpc.ClientConn
	stub    egressv1.EgressResolverServiceClient
	timeout time.Duration
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

// Option customizes New.
type Option func(*settings)

type settings struct {
	timeout     time.Duration
	dialOptions []grpc.DialOption
}

// WithTimeout sets the timeout applied to calls whose context has no deadline
// (DefaultTimeout unless set). Zero or less disables it.
func WithTimeout(timeout time.Duration) Option {
	return func(s *settings) { s.timeout = timeout }
}

// WithDialOptions adds gRPC dial options, e.g. interceptors. The connection
// is plaintext unless an option sets transport credentials.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(s *settings) { s.dialOptions = append(s.dialOptions, opts...) }
}

// New creates a client for target: "host:port" (e.g. "127.0.0.1:50051",
// "[::1]:50051") or "unix:/absolute/path". It does not connect yet; the first
// call does.
func New(target string, opts ...Option) (*Client, error) {
	s := settings{timeout: DefaultTimeout}
	for _, opt := range opts {
		opt(&s)
	}
	dialOptions := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}, s.dialOptions...)
	conn, err := grpc.NewClient(target, dialOptions...)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, stub: egressv1.NewEgressResolverServiceClient(conn), timeout: s.timeout}, nil
}

// Get returns the egress source called name. On failure the error is an
// *Error with the gRPC code and the ErrorInfo reason.
func (c *Client) Get(ctx context.Context, name string) (*egressv1.EgressSource, error) {
	ctx, cancel := c.withDefaultTimeout(ctx)
	defer cancel()
	response, err := c.stub.GetEgressSource(ctx, &egressv1.GetEgressSourceRequest{Name: name})
	if err != nil {
		return nil, errorFromRPC(err, name)
	}
	return response.GetSource(), nil
}

// GetMany resolves names in one call and returns one Result per name, in the
// order of names; a name that fails does not fail the others. The error
// (an *Error) is set only when the whole call failed.
func (c *Client) GetMany(ctx context.Context, names []string) ([]Result, error) {
	ctx, cancel := c.withDefaultTimeout(ctx)
	defer cancel()
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

// Close closes the connection; calls in flight fail with codes.Canceled.
func (c *Client) Close() error {
	return c.conn.Close()
}

// withDefaultTimeout applies the client's timeout when ctx has no deadline.
func (c *Client) withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, hasDeadline := ctx.Deadline(); hasDeadline || c.timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.timeout)
}
