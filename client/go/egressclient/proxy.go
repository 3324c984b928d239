package egressclient

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// The two proxy handshakes kumod performs in perform_handshake
// (crates/kumod/src/egress_source.rs), hand-written: each is a few dozen
// lines of a fixed wire format, and neither library at hand does what kumod
// does (golang.org/x/net/proxy has no SOCKS5 BIND, and BIND-then-CONNECT on
// one stream is kumod's own use of the protocol; a PROXY protocol library
// would be a dependency for 28 bytes).

// proxyV2Signature starts every PROXY protocol v2 header.
var proxyV2Signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

// proxyV2Header is the PROXY protocol v2 header kumod sends to an HAProxy
// server: version 2, command PROXY, TCP over IPv4 (0x11) or IPv6 (0x21);
// source address `source` port 0, destination `destination`. Both must be
// of the same family.
func proxyV2Header(source netip.Addr, destination netip.AddrPort) []byte {
	family, length := byte(0x11), 12
	if source.Is6() {
		family, length = 0x21, 36
	}
	header := make([]byte, 0, 16+length)
	header = append(header, proxyV2Signature...)
	header = append(header, 0x21, family)
	header = binary.BigEndian.AppendUint16(header, uint16(length))
	header = append(header, source.AsSlice()...)
	header = append(header, destination.Addr().AsSlice()...)
	header = binary.BigEndian.AppendUint16(header, 0)
	header = binary.BigEndian.AppendUint16(header, destination.Port())
	return header
}

// socks5Exchange is what kumod asks of a SOCKS5 proxy: BIND of bind (port
// 0), then CONNECT to destination, after no authentication or RFC 1929's
// username/password (offered when password is not nil; it is called only
// when the server picks that method).
type socks5Exchange struct {
	bind        netip.Addr
	destination netip.AddrPort
	username    string
	password    func() ([]byte, error)
}

// errProxyBind marks the proxy's refusal to bind the source address.
var errProxyBind = errors.New("the proxy server failed to bind")

// SOCKS5 constants (RFC 1928, RFC 1929).
const (
	socksVersion         = 0x05
	socksNoAuth          = 0x00
	socksUserPassword    = 0x02
	socksNoAcceptable    = 0xff
	socksCommandConnect  = 0x01
	socksCommandBind     = 0x02
	socksATYPIPv4        = 0x01
	socksATYPDomain      = 0x03
	socksATYPIPv6        = 0x04
	userPasswordVersion  = 0x01
	userPasswordAccepted = 0x00
)

// run performs the exchange on conn.
func (x socks5Exchange) run(conn io.ReadWriter) error {
	greeting := []byte{socksVersion, 1, socksNoAuth}
	if x.password != nil {
		greeting = []byte{socksVersion, 2, socksNoAuth, socksUserPassword}
	}
	if _, err := conn.Write(greeting); err != nil {
		return fmt.Errorf("SOCKS5 greeting: %w", err)
	}
	var choice [2]byte
	if _, err := io.ReadFull(conn, choice[:]); err != nil {
		return fmt.Errorf("SOCKS5 method choice: %w", err)
	}
	if choice[0] != socksVersion {
		return fmt.Errorf("SOCKS5 method choice: version %d, not 5", choice[0])
	}
	switch {
	case choice[1] == socksNoAuth:
	case choice[1] == socksUserPassword && x.password != nil:
		if err := x.authenticate(conn); err != nil {
			return err
		}
	case choice[1] == socksNoAcceptable:
		return errors.New("SOCKS5: the proxy accepts none of the offered authentication methods")
	default:
		return fmt.Errorf("SOCKS5: incompatible authentication method %d", choice[1])
	}
	if rep, err := request(conn, socksCommandBind, netip.AddrPortFrom(x.bind, 0)); err != nil {
		return fmt.Errorf("SOCKS5 BIND %s: %w", x.bind, err)
	} else if rep != 0 {
		return fmt.Errorf("%w %s: SOCKS5 reply %d (%s)", errProxyBind, x.bind, rep, socksReplyText(rep))
	}
	if rep, err := request(conn, socksCommandConnect, x.destination); err != nil {
		return fmt.Errorf("SOCKS5 CONNECT %s: %w", x.destination, err)
	} else if rep != 0 {
		return fmt.Errorf("failed to connect %s -> %s via the proxy: SOCKS5 reply %d (%s)",
			x.bind, x.destination, rep, socksReplyText(rep))
	}
	return nil
}

// authenticate is RFC 1929: `01 ULEN USER PLEN PASS`, answered `01 00`.
func (x socks5Exchange) authenticate(conn io.ReadWriter) error {
	password, err := x.password()
	if err != nil {
		return err
	}
	if len(x.username) > 255 || len(password) > 255 {
		return errors.New("SOCKS5 username or password is longer than 255 bytes")
	}
	message := make([]byte, 0, 3+len(x.username)+len(password))
	message = append(message, userPasswordVersion, byte(len(x.username)))
	message = append(message, x.username...)
	message = append(message, byte(len(password)))
	message = append(message, password...)
	if _, err := conn.Write(message); err != nil {
		return fmt.Errorf("SOCKS5 username/password: %w", err)
	}
	var answer [2]byte
	if _, err := io.ReadFull(conn, answer[:]); err != nil {
		return fmt.Errorf("SOCKS5 username/password answer: %w", err)
	}
	if answer[0] != userPasswordVersion {
		return fmt.Errorf("invalid SOCKS5 username/password answer version %d", answer[0])
	}
	if answer[1] != userPasswordAccepted {
		return errors.New("SOCKS5 username/password was incorrect")
	}
	return nil
}

// request sends `05 CMD 00 ATYP ADDR PORT` and reads the whole reply
// `05 REP 00 ATYP BND.ADDR BND.PORT`; it returns REP.
func request(conn io.ReadWriter, command byte, address netip.AddrPort) (byte, error) {
	message := []byte{socksVersion, command, 0, socksATYPIPv4}
	if address.Addr().Is6() {
		message[3] = socksATYPIPv6
	}
	message = append(message, address.Addr().AsSlice()...)
	message = binary.BigEndian.AppendUint16(message, address.Port())
	if _, err := conn.Write(message); err != nil {
		return 0, err
	}
	var head [5]byte // VER REP RSV ATYP and the first byte of BND.ADDR
	if _, err := io.ReadFull(conn, head[:]); err != nil {
		return 0, fmt.Errorf("reading the reply: %w", err)
	}
	if head[0] != socksVersion {
		return 0, fmt.Errorf("reply version %d, not 5", head[0])
	}
	var rest int // what follows the first byte of BND.ADDR, BND.PORT included
	switch head[3] {
	case socksATYPIPv4:
		rest = 3 + 2
	case socksATYPIPv6:
		rest = 15 + 2
	case socksATYPDomain:
		rest = int(head[4]) + 2
	default:
		return 0, fmt.Errorf("reply address type %d", head[3])
	}
	if _, err := io.ReadFull(conn, make([]byte, rest)); err != nil {
		return 0, fmt.Errorf("reading the reply: %w", err)
	}
	return head[1], nil
}

// socksReplyText names a SOCKS5 reply code (RFC 1928, section 6).
func socksReplyText(rep byte) string {
	texts := []string{"succeeded", "general SOCKS server failure", "connection not allowed by ruleset",
		"network unreachable", "host unreachable", "connection refused", "TTL expired",
		"command not supported", "address type not supported"}
	if int(rep) < len(texts) {
		return texts[rep]
	}
	return "unassigned"
}
