package egressclient_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/egress-resolver/egress-resolver/client/go/egressclient"
	egressv1 "github.com/egress-resolver/egress-resolver/client/go/kumo/egress/v1"
)

// scriptedSidecar is a gRPC server in this process that answers
// GetEgressSource as its test says (with produced_at read from the test's
// fake clock) and sends one hello on WatchInvalidations, so that the
// client's cache rules run over a real gRPC connection with a clock the test
// moves. The real sidecar's behaviour is tested in the live tests.
type scriptedSidecar struct {
	egressv1.UnimplementedEgressResolverServiceServer
	clock *egressclient.FakeClock

	mu    sync.Mutex
	ttl   map[string]time.Duration // a name's ttl; names absent are NOT_FOUND
	fail  codes.Code               // every call fails with this code unless OK
	gate  chan struct{}            // when set, every call waits until it is closed
	calls int
}

func (s *scriptedSidecar) GetEgressSource(ctx context.Context,
	request *egressv1.GetEgressSourceRequest) (*egressv1.GetEgressSourceResponse, error) {
	s.mu.Lock()
	s.calls++
	fail, gate := s.fail, s.gate
	ttl, found := s.ttl[request.GetName()]
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, status.Error(codes.Canceled, "the client gave up")
		}
	}
	switch {
	case fail == codes.DeadlineExceeded: // a handler slower than any deadline
		<-ctx.Done()
		return nil, status.Error(codes.Canceled, "the client gave up")
	case fail != codes.OK:
		return nil, status.Error(fail, "scripted failure")
	case !found:
		return nil, status.Errorf(codes.NotFound, "no source %q", request.GetName())
	}
	return &egressv1.GetEgressSourceResponse{
		Source:     &egressv1.EgressSource{Name: request.GetName(), Ttl: durationpb.New(ttl)},
		Revision:   "r1",
		ProducedAt: timestamppb.New(s.clock.Wall()),
	}, nil
}

func (s *scriptedSidecar) WatchInvalidations(_ *egressv1.WatchInvalidationsRequest,
	stream grpc.ServerStreamingServer[egressv1.WatchInvalidationsResponse]) error {
	if err := stream.Send(&egressv1.WatchInvalidationsResponse{Revision: "r1", Instance: "scripted"}); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

func (s *scriptedSidecar) failWith(code codes.Code) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = code
}

// hold makes every call wait until the channel returned is closed.
func (s *scriptedSidecar) hold() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = make(chan struct{})
	return s.gate
}

func (s *scriptedSidecar) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// startScripted serves a scriptedSidecar on a unix socket and returns it
// with a cached client of it, watching, and the client's fake clock.
func startScripted(t *testing.T, ttl map[string]time.Duration, opts ...egressclient.Option) (
	*scriptedSidecar, *egressclient.Client, *egressclient.FakeClock) {
	t.Helper()
	clock := egressclient.NewFakeClock(time.Now())
	sidecar := &scriptedSidecar{clock: clock, ttl: ttl}
	socket := filepath.Join(t.TempDir(), "scripted.sock")
	listener, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	server := grpc.NewServer()
	egressv1.RegisterEgressResolverServiceServer(server, sidecar)
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(server.Stop)
	opts = append([]egressclient.Option{egressclient.WithCache(true), egressclient.WithClock(clock),
		egressclient.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))}, opts...)
	client, err := egressclient.New("unix:"+socket, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.WaitWatching(ctx); err != nil {
		t.Fatal(err)
	}
	return sidecar, client, clock
}

func expectCached(t *testing.T, client *egressclient.Client, want ...string) {
	t.Helper()
	if got := client.CachedSources(); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Errorf("cached %v, want %v (least to most recently used)", got, want)
	}
}

func expectCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	var resolveErr *egressclient.Error
	if !errors.As(err, &resolveErr) || resolveErr.Code != want || resolveErr.Reason != "" {
		t.Errorf("error %v, want %s with no reason", err, egressclient.CodeName(want))
	}
}

func TestClientEvictionOrder(t *testing.T) {
	hour := time.Hour
	sidecar, client, _ := startScripted(t, map[string]time.Duration{"a": hour, "b": hour, "c": hour, "d": hour},
		egressclient.WithMaxEntries(3))
	for _, name := range []string{"a", "b", "c", "a", "d"} { // the second a is a hit
		mustGet(t, client, name)
	}
	expectCached(t, client, "c", "a", "d")
	if calls := sidecar.callCount(); calls != 4 {
		t.Errorf("%d calls, want 4 (the second a from the cache)", calls)
	}
}

func TestClientStaleIfErrorServesThenRemoves(t *testing.T) {
	sidecar, client, clock := startScripted(t, map[string]time.Duration{"a": time.Second, "b": time.Second,
		"c": time.Hour}, egressclient.WithStaleIfError(30*time.Second))
	for _, name := range []string{"a", "b", "c"} {
		mustGet(t, client, name)
	}
	clock.Advance(2 * time.Second) // a and b expired 1 s ago
	sidecar.failWith(codes.Unavailable)
	mustGet(t, client, "a") // served stale: the most recently used
	expectCached(t, client, "b", "c", "a")
	mustGet(t, client, "c") // fresh: no call
	expectCached(t, client, "b", "a", "c")
	if stats := client.Stats(); stats.StaleServed != 1 {
		t.Errorf("stale served %d, want 1", stats.StaleServed)
	}

	sidecar.failWith(codes.Internal) // not UNAVAILABLE: the error, and b is gone
	_, err := client.Get(context.Background(), "b")
	expectCode(t, err, codes.Internal)
	expectCached(t, client, "a", "c")

	sidecar.failWith(codes.Unavailable)
	clock.Advance(29 * time.Second) // a expired 30 s ago: past stale_if_error
	_, err = client.Get(context.Background(), "a")
	expectCode(t, err, codes.Unavailable)
	expectCached(t, client, "c")
	if stats := client.Stats(); stats.StaleServed != 1 {
		t.Errorf("stale served %d, want still 1", stats.StaleServed)
	}
}

func TestClientWithoutStaleIfErrorRemovesTheExpiredEntryOnFailure(t *testing.T) {
	sidecar, client, clock := startScripted(t, map[string]time.Duration{"a": time.Second, "b": time.Hour})
	mustGet(t, client, "a")
	mustGet(t, client, "b")
	clock.Advance(time.Second) // produced_at + ttl: expired
	sidecar.failWith(codes.Unavailable)
	_, err := client.Get(context.Background(), "a")
	expectCode(t, err, codes.Unavailable)
	expectCached(t, client, "b")
}

func TestClientTimeoutIsDeadlineExceeded(t *testing.T) {
	sidecar, client, _ := startScripted(t, map[string]time.Duration{"a": time.Hour},
		egressclient.WithTimeout(100*time.Millisecond))
	sidecar.failWith(codes.DeadlineExceeded) // the handler waits until the client gives up
	started := time.Now()
	_, err := client.Get(context.Background(), "a")
	expectCode(t, err, codes.DeadlineExceeded)
	if elapsed := time.Since(started); elapsed < 100*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("failed after %s, want the 100ms timeout", elapsed)
	}
}

func TestAWaiterKeepsItsOwnDeadline(t *testing.T) {
	sidecar, client, _ := startScripted(t, map[string]time.Duration{"a": time.Hour},
		egressclient.WithTimeout(200*time.Millisecond))
	gate := sidecar.hold()
	first := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := client.Get(ctx, "a")
		first <- err
	}()
	waitFor(t, "the first call at the sidecar", func() bool { return sidecar.callCount() == 1 })
	started := time.Now()
	_, err := client.Get(context.Background(), "a") // joins the call in flight, with its own 200 ms
	expectCode(t, err, codes.DeadlineExceeded)
	if elapsed := time.Since(started); elapsed < 200*time.Millisecond || elapsed > 10*time.Second {
		t.Errorf("the waiter gave up after %s, want its 200ms timeout", elapsed)
	}
	close(gate)
	if err := <-first; err != nil {
		t.Errorf("the first caller: %v", err)
	}
	if calls := sidecar.callCount(); calls != 1 {
		t.Errorf("%d calls, want 1: the waiter shares the first caller's", calls)
	}
	mustGet(t, client, "a") // the shared answer was stored
	if calls := sidecar.callCount(); calls != 1 {
		t.Errorf("%d calls after a hit, want 1", calls)
	}
}
