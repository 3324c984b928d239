package egressclient

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	egressv1 "github.com/egress-resolver/egress-resolver/client/go/kumo/egress/v1"
)

// socksSource is a source through proxy that binds 127.0.0.7 there.
func socksSource(name string, proxy netip.AddrPort, set func(*egressv1.EgressSource)) *egressv1.EgressSource {
	return sourceWith(name, func(s *egressv1.EgressSource) {
		s.Socks5ProxyServer, s.Socks5ProxySourceAddress = proto.String(proxy.String()), proto.String("127.0.0.7")
		set(s)
	})
}

func TestSocks5BindThenConnect(t *testing.T) {
	destination := newPeer(t, "127.0.0.1:0")
	proxy := &socksServer{method: 0}
	address := proxy.start(t)
	source := socksSource("px-1", address, func(s *egressv1.EgressSource) { s.EhloDomain = proto.String("px.example") })
	_, far, ehlo := mustConnect(t, newTestClient(t), source, destination.addr().String(), destination)
	if got := far.RemoteAddr().(*net.TCPAddr).IP.String(); got != "127.0.0.7" {
		t.Errorf("the destination saw %s, want the proxy's bind of 127.0.0.7", got)
	}
	session := proxy.session(0)
	if !bytes.Equal(session.methods, []byte{0}) || session.bind != netip.MustParseAddrPort("127.0.0.7:0") ||
		session.connect != destination.addr() || ehlo != "px.example" {
		t.Errorf("session %+v, ehlo %q", session, ehlo)
	}
}

func TestSocks5UsernamePassword(t *testing.T) {
	destination := newPeer(t, "127.0.0.1:0")
	proxy := &socksServer{method: 2, username: "mta", password: "hunter2", bindATYP: 3}
	address := proxy.start(t)
	inline := &egressv1.KeySource{Source: &egressv1.KeySource_KeyData{KeyData: "hunter2"}}
	filed := &egressv1.KeySource{Source: &egressv1.KeySource_File{File: writeSecret(t, "hunter2")}}
	for i, key := range []*egressv1.KeySource{inline, filed} {
		source := socksSource("px-auth", address, func(s *egressv1.EgressSource) {
			s.Socks5ProxyUsername, s.Socks5ProxyPassword = proto.String("mta"), key
		})
		mustConnect(t, newTestClient(t), source, destination.addr().String(), destination)
		session := proxy.session(i)
		if !bytes.Equal(session.methods, []byte{0, 2}) || session.username != "mta" || session.password != "hunter2" {
			t.Errorf("session %d: %+v", i, session)
		}
	}
}

func TestSocks5Failures(t *testing.T) {
	wrong := &socksServer{method: 2, username: "mta", password: "other"}
	wrongAddress := wrong.start(t)
	refusing := &socksServer{method: 0, bindReply: 2, bindATYP: 4}
	refusingAddress := refusing.start(t)
	vault := &egressv1.KeySource{Source: &egressv1.KeySource_Vault{Vault: &egressv1.VaultKeySource{VaultMount: "secret", VaultPath: "socks"}}}
	inline := &egressv1.KeySource{Source: &egressv1.KeySource_KeyData{KeyData: "hunter2"}}
	for _, test := range []struct {
		name    string
		proxy   netip.AddrPort
		key     *egressv1.KeySource
		message string
	}{
		{"px-wrong", wrongAddress, inline, "SOCKS5 username/password was incorrect"},
		{"px-vault", wrongAddress, vault, "vault KeySource is not supported by the egress-resolver clients; use key_data or a file"},
		{"px-noauth", wrongAddress, nil, "the proxy accepts none of the offered authentication methods"},
		{"px-bind", refusingAddress, nil, "the proxy server failed to bind 127.0.0.7: SOCKS5 reply 2 (connection not allowed by ruleset)"},
	} {
		source := socksSource(test.name, test.proxy, func(s *egressv1.EgressSource) {
			if test.key != nil {
				s.Socks5ProxyUsername, s.Socks5ProxyPassword = proto.String("mta"), test.key
			}
		})
		err := connectError(t, newTestClient(t), testContext(t), source, "127.0.0.1:25", codes.Unavailable, ReasonProxyUnhealthy)
		if want := "source " + test.name + ": proxy " + test.proxy.String() + ": "; !strings.HasPrefix(err.Message, want) ||
			!strings.Contains(err.Message, test.message) {
			t.Errorf("%s: message %q, want %q…%q", test.name, err.Message, want, test.message)
		}
	}
}

func TestSocks5ConnectRefusedByTheProxy(t *testing.T) {
	proxy := &socksServer{method: 0}
	address := proxy.start(t)
	refused := freePort(t)
	source := socksSource("px-dest", address, func(*egressv1.EgressSource) {})
	err := connectError(t, newTestClient(t), testContext(t), source, refused.String(), codes.Unavailable, ReasonProxyUnhealthy)
	if !strings.Contains(err.Message, "failed to connect 127.0.0.7 -> "+refused.String()+" via the proxy: SOCKS5 reply 5 (connection refused)") {
		t.Errorf("message %q", err.Message)
	}
}

func TestProxyV2HeaderBytes(t *testing.T) {
	got := proxyV2Header(netip.MustParseAddr("10.0.0.2"), netip.MustParseAddrPort("192.0.2.25:25"))
	want := []byte{0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
		0x21, 0x11, 0x00, 0x0c, 10, 0, 0, 2, 192, 0, 2, 25, 0, 0, 0, 25}
	if !bytes.Equal(got, want) {
		t.Errorf("got  %x\nwant %x", got, want)
	}
}
