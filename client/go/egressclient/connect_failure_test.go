package egressclient

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	egressv1 "github.com/egress-resolver/egress-resolver/client/go/kumo/egress/v1"
)

func TestUnplumbedSourceAddress(t *testing.T) {
	source := sourceWith("ip-9", func(s *egressv1.EgressSource) { s.SourceAddress = proto.String("192.0.2.1") })
	err := connectError(t, newTestClient(t), testContext(t), source, "127.0.0.1:25", codes.Unavailable, ReasonSourceUnplumbed)
	if !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("errors.Is(err, EADDRNOTAVAIL) is false: %v", err)
	}
	want := "source ip-9: bind 192.0.2.1:0 failed: cannot assign requested address (EADDRNOTAVAIL)"
	if err.Message != want {
		t.Errorf("message %q\nwant    %q", err.Message, want)
	}
}

func TestRefusedProxyIsUnhealthy(t *testing.T) {
	refused := freePort(t)
	source := sourceWith("px-1", func(s *egressv1.EgressSource) {
		s.Socks5ProxyServer, s.Socks5ProxySourceAddress = proto.String(refused.String()), proto.String("127.0.0.2")
	})
	err := connectError(t, newTestClient(t), testContext(t), source, "127.0.0.1:25", codes.Unavailable, ReasonProxyUnhealthy)
	if want := "source px-1: proxy " + refused.String() + ": connection refused"; err.Message != want {
		t.Errorf("message %q, want %q", err.Message, want)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("errors.Is(err, ECONNREFUSED) is false")
	}
}

func TestRefusedDestinationIsConnectFailed(t *testing.T) {
	refused := freePort(t)
	err := connectError(t, newTestClient(t), testContext(t), sourceWith("ip-1", func(*egressv1.EgressSource) {}),
		refused.String(), codes.Unavailable, ReasonConnectFailed)
	if want := "source ip-1: connect " + refused.String() + ": connection refused"; err.Message != want {
		t.Errorf("message %q, want %q", err.Message, want)
	}
}

func TestOneDeadlineForTheWholeAttempt(t *testing.T) {
	silent := &socksServer{silent: true}
	address := silent.start(t)
	source := sourceWith("px-slow", func(s *egressv1.EgressSource) {
		s.Socks5ProxyServer, s.Socks5ProxySourceAddress = proto.String(address.String()), proto.String("127.0.0.2")
	})
	for _, viaOption := range []bool{false, true} {
		client, ctx := newTestClient(t), testContext(t)
		if viaOption { // the option applies to a context without a deadline
			client, ctx = newTestClient(t, WithConnectTimeout(300*time.Millisecond)), context.Background()
		} else {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
		}
		started := time.Now()
		err := connectError(t, client, ctx, source, "127.0.0.1:25", codes.Unavailable, ReasonProxyUnhealthy)
		if elapsed := time.Since(started); elapsed < 250*time.Millisecond || elapsed > 10*time.Second {
			t.Errorf("failed after %s, want about 300ms", elapsed)
		}
		if !strings.Contains(err.Message, "proxy "+address.String()+": timed out after") {
			t.Errorf("message %q", err.Message)
		}
	}
}

func TestCancelIsNotAFailure(t *testing.T) {
	silent := &socksServer{silent: true}
	address := silent.start(t)
	source := sourceWith("px-cancel", func(s *egressv1.EgressSource) {
		s.Socks5ProxyServer, s.Socks5ProxySourceAddress = proto.String(address.String()), proto.String("127.0.0.2")
	})
	ctx, cancel := context.WithCancel(testContext(t))
	time.AfterFunc(50*time.Millisecond, cancel)
	connectError(t, newTestClient(t), ctx, source, "127.0.0.1:25", codes.Canceled, "")
}
