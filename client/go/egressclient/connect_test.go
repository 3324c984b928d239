package egressclient

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	egressv1 "github.com/egress-resolver/egress-resolver/client/go/kumo/egress/v1"
)

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), peerDeadline)
	t.Cleanup(cancel)
	return ctx
}

// mustConnect connects and checks that bytes flow both ways with the peer's
// side, which it returns.
func mustConnect(t *testing.T, client *Client, source *egressv1.EgressSource, to string, destination *peer) (net.Conn, net.Conn, string) {
	t.Helper()
	conn, ehlo, err := client.Connect(testContext(t), source, to)
	if err != nil {
		t.Fatalf("Connect(%s, %s): %v", source.GetName(), to, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	far := destination.next(t)
	exchange(t, far, conn)
	return conn, far, ehlo
}

// exchange sends a banner from the server side and a line back.
func exchange(t *testing.T, server, client net.Conn) {
	t.Helper()
	_ = client.SetDeadline(time.Now().Add(peerDeadline))
	if _, err := server.Write([]byte("220 ready\r\n")); err != nil {
		t.Fatal(err)
	}
	banner := make([]byte, 11)
	if _, err := io.ReadFull(client, banner); err != nil || string(banner) != "220 ready\r\n" {
		t.Fatalf("banner %q, %v", banner, err)
	}
	if _, err := client.Write([]byte("QUIT\r\n")); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 6)
	if _, err := io.ReadFull(server, line); err != nil || string(line) != "QUIT\r\n" {
		t.Fatalf("the server read %q, %v", line, err)
	}
}

// connectError connects, expects an *Error and checks its code and reason.
func connectError(t *testing.T, client *Client, ctx context.Context, source *egressv1.EgressSource, to string,
	code codes.Code, reason string) *Error {
	t.Helper()
	conn, _, err := client.Connect(ctx, source, to)
	if err == nil {
		_ = conn.Close()
		t.Fatalf("Connect(%s, %s) succeeded; want %s", source.GetName(), to, reason)
	}
	var connectErr *Error
	if !errors.As(err, &connectErr) {
		t.Fatalf("error %T %v, want an *Error", err, err)
	}
	if connectErr.Code != code || connectErr.Reason != reason || connectErr.Name != source.GetName() {
		t.Fatalf("got %s (name %q), want %s [%s] for %s", connectErr, connectErr.Name, codes.Code(code), reason, source.GetName())
	}
	if !strings.HasPrefix(connectErr.Message, "source "+source.GetName()) {
		t.Errorf("message %q does not start with the source", connectErr.Message)
	}
	return connectErr
}

func TestConnectBindsTheSourceAddressAndSaysItsEhlo(t *testing.T) {
	destination := newPeer(t, "127.0.0.1:0")
	client := newTestClient(t)
	source := sourceWith("ip-2", func(s *egressv1.EgressSource) {
		s.SourceAddress, s.EhloDomain = proto.String("127.0.0.2"), proto.String("mta2.example.com")
	})
	_, far, ehlo := mustConnect(t, client, source, destination.addr().String(), destination)
	if got := far.RemoteAddr().(*net.TCPAddr).IP.String(); got != "127.0.0.2" {
		t.Errorf("the peer saw %s, want 127.0.0.2", got)
	}
	if ehlo != "mta2.example.com" {
		t.Errorf("ehlo %q", ehlo)
	}
	// no ehlo_domain: the host name
	_, _, ehlo = mustConnect(t, client, sourceWith("plain", func(*egressv1.EgressSource) {}), destination.addr().String(), destination)
	if host, _ := os.Hostname(); ehlo != host {
		t.Errorf("ehlo %q, want the host name %q", ehlo, host)
	}
}

func TestRemotePortReplacesTheDestinationPort(t *testing.T) {
	destination := newPeer(t, "127.0.0.1:0")
	source := sourceWith("ported", func(s *egressv1.EgressSource) {
		s.RemotePort = proto.Uint32(uint32(destination.addr().Port()))
	})
	mustConnect(t, newTestClient(t), source, freePort(t).String(), destination)
}

func TestHAProxyHeaderComesFirst(t *testing.T) {
	haproxy := newPeer(t, "127.0.0.1:0")
	source := sourceWith("ha-1", func(s *egressv1.EgressSource) {
		s.HaProxyServer = proto.String(haproxy.addr().String())
		s.HaProxySourceAddress = proto.String("127.0.0.5")
	})
	conn, _, err := newTestClient(t).Connect(testContext(t), source, "127.0.0.1:2525")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("EHLO x\r\n")); err != nil {
		t.Fatal(err)
	}
	far := haproxy.next(t)
	got := make([]byte, 28+8)
	if _, err := io.ReadFull(far, got); err != nil {
		t.Fatal(err)
	}
	want := append([]byte("\r\n\r\n\x00\r\nQUIT\n"), 0x21, 0x11, 0, 12, 127, 0, 0, 5, 127, 0, 0, 1, 0, 0, 0x09, 0xdd)
	want = append(want, "EHLO x\r\n"...)
	if !bytes.Equal(got, want) {
		t.Errorf("the HAProxy server read\n%q\nwant\n%q", got, want)
	}
}

func TestHAProxyHeaderOverIPv6(t *testing.T) {
	if probe, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback on this machine: %v", err)
	} else {
		_ = probe.Close()
	}
	haproxy := newPeer(t, "[::1]:0")
	source := sourceWith("ha-6", func(s *egressv1.EgressSource) {
		s.HaProxyServer = proto.String(haproxy.addr().String())
		s.HaProxySourceAddress = proto.String("2001:db8::5")
	})
	conn, _, err := newTestClient(t).Connect(testContext(t), source, "[2001:db8::25]:25")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got := make([]byte, 52)
	if _, err := io.ReadFull(haproxy.next(t), got); err != nil {
		t.Fatal(err)
	}
	want := append([]byte("\r\n\r\n\x00\r\nQUIT\n"), 0x21, 0x21, 0, 36)
	want = append(want, netip.MustParseAddr("2001:db8::5").AsSlice()...)
	want = append(want, netip.MustParseAddr("2001:db8::25").AsSlice()...)
	want = append(want, 0, 0, 0, 25)
	if !bytes.Equal(got, want) {
		t.Errorf("got  %x\nwant %x", got, want)
	}
}

func TestProxyFamilyRules(t *testing.T) {
	client := newTestClient(t)
	ctx := testContext(t)
	mismatch := sourceWith("ha-mix", func(s *egressv1.EgressSource) {
		s.HaProxyServer, s.HaProxySourceAddress = proto.String("127.0.0.1:9"), proto.String("::1")
	})
	err := connectError(t, client, ctx, mismatch, "127.0.0.1:25", codes.Unavailable, ReasonProxyUnhealthy)
	if !strings.Contains(err.Message, "address family does not match") {
		t.Errorf("message %q", err.Message)
	}
	filtered := sourceWith("socks-mix", func(s *egressv1.EgressSource) {
		s.SourceAddress = proto.String("::1")
		s.Socks5ProxyServer, s.Socks5ProxySourceAddress = proto.String("127.0.0.1:9"), proto.String("127.0.0.2")
	})
	err = connectError(t, client, ctx, filtered, "127.0.0.1:25", codes.Unavailable, ReasonProxyUnhealthy)
	if !strings.Contains(err.Message, "no socks5_proxy_server candidates remain after filtering 1 resolved address(es) to match source_address ::1 family") {
		t.Errorf("message %q", err.Message)
	}
	unix := sourceWith("ha-unix", func(s *egressv1.EgressSource) {
		s.HaProxyServer, s.HaProxySourceAddress = proto.String("/run/haproxy.sock"), proto.String("127.0.0.2")
	})
	err = connectError(t, client, ctx, unix, "127.0.0.1:25", codes.Unavailable, ReasonProxyUnhealthy)
	if !strings.Contains(err.Message, "unix-path proxy is not supported") {
		t.Errorf("message %q", err.Message)
	}
	// found before any connection attempt: kumod does not record them, nor do the clients report them
	for _, source := range []*egressv1.EgressSource{mismatch, filtered, unix} {
		var f *failure
		if _, err := newPlan(ctx, source, "127.0.0.1:25"); !errors.As(err, &f) || f.reported() {
			t.Errorf("%s: %v is reported", source.GetName(), err)
		}
	}
}

func TestProxyHostNameIsResolvedAndFilteredByFamily(t *testing.T) {
	haproxy := newPeer(t, "127.0.0.1:0")
	source := sourceWith("ha-name", func(s *egressv1.EgressSource) {
		s.SourceAddress = proto.String("127.0.0.3")
		s.HaProxyServer = proto.String(net.JoinHostPort("localhost", strconv.Itoa(int(haproxy.addr().Port()))))
		s.HaProxySourceAddress = proto.String("127.0.0.5")
	})
	conn, _, err := newTestClient(t).Connect(testContext(t), source, "127.0.0.1:25")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := haproxy.next(t).RemoteAddr().(*net.TCPAddr).IP.String(); got != "127.0.0.3" {
		t.Errorf("the proxy saw %s, want the source address 127.0.0.3", got)
	}
}

func TestCandidatesAreTriedInTurn(t *testing.T) {
	haproxy := newPeer(t, "127.0.0.1:0")
	refused := freePort(t)
	source := sourceWith("ha-two", func(s *egressv1.EgressSource) {
		s.HaProxyServer, s.HaProxySourceAddress = proto.String(haproxy.addr().String()), proto.String("127.0.0.5")
	})
	destination := netip.MustParseAddrPort("127.0.0.1:25")
	p := &plan{source: source, transport: haProxy, proxySource: netip.MustParseAddr("127.0.0.5"),
		candidates: []candidate{{refused, destination}, {haproxy.addr(), destination}}}
	conn, err := p.run(testContext(t), time.Now())
	if err != nil {
		t.Fatalf("the second candidate should have connected: %v", err)
	}
	_ = conn.Close()
	haproxy.next(t)
	// both refused: PROXY_UNHEALTHY naming each
	p.candidates[1].via = freePort(t)
	_, err = p.run(testContext(t), time.Now())
	var f *failure
	if !errors.As(err, &f) || f.class != egressv1.FailureClass_FAILURE_CLASS_PROXY_UNHEALTHY || len(f.parts) != 2 || !f.reported() {
		t.Fatalf("got %v", err)
	}
	message := f.asError("ha-two").Message
	want := "source ha-two: proxy " + refused.String() + ": connection refused; proxy " + p.candidates[1].via.String() + ": connection refused"
	if message != want || f.address != refused.String() {
		t.Errorf("message %q (address %s)\nwant    %q", message, f.address, want)
	}
}

func TestConnectNameResolvesFirst(t *testing.T) {
	client := newTestClient(t, WithTimeout(5*time.Second))
	_, _, err := client.ConnectName(testContext(t), "ip-1", "127.0.0.1:25")
	var resolveErr *Error
	if !errors.As(err, &resolveErr) || resolveErr.Code != codes.Unavailable || resolveErr.Reason != "" {
		t.Errorf("with no sidecar: %v, want UNAVAILABLE without a reason (the lookup failed)", err)
	}
}

func TestBadDestination(t *testing.T) {
	for _, to := range []string{"127.0.0.1", "127.0.0.1:http", ":25", "[::1]:99999"} {
		connectError(t, newTestClient(t), testContext(t), sourceWith("ip-1", func(*egressv1.EgressSource) {}),
			to, codes.InvalidArgument, "")
	}
	if host, port, err := splitDestination("::1:25"); err != nil || host != "::1" || port != 25 {
		t.Errorf("::1:25 gave %q %d %v", host, port, err)
	}
}

func TestKnownSuspendedSourceFailsAtOnce(t *testing.T) {
	clock := NewFakeClock(time.Now())
	client := newTestClient(t, WithClock(clock))
	until := clock.Wall().Add(30 * time.Second)
	client.suspensions.add(suspension("ip-9", until))
	destination := newPeer(t, "127.0.0.1:0")
	source := sourceWith("ip-9", func(*egressv1.EgressSource) {})
	err := connectError(t, client, testContext(t), source, destination.addr().String(), codes.Unavailable, ReasonSourceSuspended)
	if !strings.Contains(err.Message, "source ip-9 is suspended until "+until.UTC().Format(time.RFC3339)) {
		t.Errorf("message %q", err.Message)
	}
	clock.Advance(30 * time.Second) // forgotten at until
	mustConnect(t, client, source, destination.addr().String(), destination)
}

// The KeySource file is read at connect time.
func writeSecret(t *testing.T, secret string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
