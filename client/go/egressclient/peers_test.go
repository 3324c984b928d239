package egressclient

import (
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	egressv1 "github.com/egress-resolver/egress-resolver/client/go/kumo/egress/v1"
)

// peerDeadline bounds every wait of these tests on a slow, loaded machine.
const peerDeadline = 30 * time.Second

// peer is a TCP server on loopback that hands each accepted connection to
// the test (the destination, or an HAProxy server reading the header).
type peer struct {
	listener net.Listener
	accepted chan net.Conn
	wg       sync.WaitGroup
}

func newPeer(t *testing.T, address string) *peer {
	t.Helper()
	listener, err := net.Listen("tcp", address)
	if err != nil {
		t.Fatalf("listen %s: %v", address, err)
	}
	p := &peer{listener: listener, accepted: make(chan net.Conn, 16)}
	p.wg.Go(func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			p.accepted <- conn
		}
	})
	t.Cleanup(func() {
		_ = listener.Close()
		p.wg.Wait()
		close(p.accepted)
		for conn := range p.accepted {
			_ = conn.Close()
		}
	})
	return p
}

func (p *peer) addr() netip.AddrPort {
	return p.listener.Addr().(*net.TCPAddr).AddrPort()
}

// next is the next connection the peer accepted (closed when the test ends).
func (p *peer) next(t *testing.T) net.Conn {
	t.Helper()
	select {
	case conn := <-p.accepted:
		t.Cleanup(func() { _ = conn.Close() })
		_ = conn.SetDeadline(time.Now().Add(peerDeadline))
		return conn
	case <-time.After(peerDeadline):
		t.Fatal("the peer accepted no connection")
		return nil
	}
}

// freePort is a loopback address where nothing listens (a port just freed).
func freePort(t *testing.T) netip.AddrPort {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := listener.Addr().(*net.TCPAddr).AddrPort()
	_ = listener.Close()
	return addr
}

// newTestClient is a client whose sidecar is absent: reports fail at once
// (which Connect ignores).
func newTestClient(t *testing.T, opts ...Option) *Client {
	t.Helper()
	client, err := New("unix:"+filepath.Join(t.TempDir(), "absent.sock"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// sourceWith is a source named name with fields set by set.
func sourceWith(name string, set func(*egressv1.EgressSource)) *egressv1.EgressSource {
	source := &egressv1.EgressSource{Name: name}
	set(source)
	return source
}
