package egressclient

import (
	"context"
	"errors"

	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc/codes"

	egressv1 "github.com/egress-resolver/egress-resolver/client/go/kumo/egress/v1"
)

// fetchSource makes one GetEgressSource call and caches its answer when the
// store rules allow (see coherence). When the call fails, an expired entry
// is served under stale_if_error or removed (definitionCache.afterFailure).
func (c *Client) fetchSource(ctx context.Context, name string) (*egressv1.EgressSource, error) {
	epoch := c.epoch()
	ctx, cancel := c.withDefaultTimeout(ctx)
	defer cancel()
	c.rpcs.Add(1)
	response, err := c.stub.GetEgressSource(ctx, &egressv1.GetEgressSourceRequest{Name: name})
	if err != nil {
		resolveErr := errorFromRPC(err, name)
		if c.state != nil {
			if stale, ok := c.state.sources.afterFailure(name, resolveErr.Code == codes.Unavailable); ok {
				c.servedStale(name, resolveErr)
				return stale, nil
			}
		}
		return nil, resolveErr
	}
	if c.state != nil {
		c.state.keepSource(name, response, epoch)
	}
	return response.GetSource(), nil
}

// fetchPool makes one GetEgressPool call and caches its answer like fetchSource.
func (c *Client) fetchPool(ctx context.Context, name string) (*egressv1.EgressPool, error) {
	epoch := c.epoch()
	ctx, cancel := c.withDefaultTimeout(ctx)
	defer cancel()
	c.rpcs.Add(1)
	response, err := c.stub.GetEgressPool(ctx, &egressv1.GetEgressPoolRequest{Name: name})
	if err != nil {
		resolveErr := errorFromRPC(err, name)
		if c.state != nil {
			if stale, ok := c.state.pools.afterFailure(name, resolveErr.Code == codes.Unavailable); ok {
				c.servedStale(name, resolveErr)
				return stale, nil
			}
		}
		return nil, resolveErr
	}
	if c.state != nil {
		c.state.keepPool(name, response, epoch)
	}
	if len(response.GetSuspensions()) > 0 {
		c.suspensions.add(response.GetSuspensions()...)
	}
	return response.GetPool(), nil
}

func (c *Client) epoch() uint64 {
	if c.state == nil {
		return 0
	}
	return c.state.currentEpoch()
}

// servedStale counts and logs an expired definition served under stale_if_error.
func (c *Client) servedStale(name string, cause *Error) {
	served := c.staleServed.Add(1)
	c.logger.Warn("egress-resolver unreachable; serving an expired definition (stale_if_error)",
		"name", name, "stale_served", served, "error", cause.Message)
}

// shared runs fetch once for all the concurrent misses of one name (per
// cache) and gives each caller its outcome. The call runs on a context that
// keeps the first caller's values and deadline but not its cancellation, so
// a caller that gives up does not fail the others; each caller still stops
// waiting at its own deadline (its context's, else the client's timeout from
// when it started waiting) or when its context is cancelled.
func shared[T any](ctx context.Context, c *Client, group *singleflight.Group, name string,
	fetch func(context.Context, string) (T, error)) (T, error) {
	ctx, cancel := c.withDefaultTimeout(ctx)
	defer cancel()
	c.sharedWaits.Add(1)
	outcome := group.DoChan(name, func() (any, error) {
		callCtx := context.WithoutCancel(ctx)
		if deadline, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			callCtx, cancel = context.WithDeadline(callCtx, deadline)
			defer cancel()
		}
		return fetch(callCtx, name)
	})
	var zero T
	select {
	case result := <-outcome:
		if result.Err != nil {
			return zero, result.Err
		}
		return result.Val.(T), nil
	case <-ctx.Done():
		return zero, waitedTooLong(ctx.Err(), name)
	}
}

// waitedTooLong is the error of a caller whose context ended while it waited
// for a lookup another caller started.
func waitedTooLong(err error, name string) *Error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Code: codes.DeadlineExceeded, Message: "deadline passed waiting for a shared lookup", Name: name}
	}
	return &Error{Code: codes.Canceled, Message: "canceled waiting for a shared lookup", Name: name}
}
