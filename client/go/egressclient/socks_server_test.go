package egressclient

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
)

// socksServer speaks kumod's other side of the SOCKS5 exchange (RFC 1928
// and RFC 1929): no KumoMTA SOCKS5 proxy can be installed here, so the test
// writes one. It answers the BIND of the source address, then the CONNECT,
// by connecting to the destination from that address and relaying bytes.
type socksServer struct {
	method    byte   // the method it picks when offered: 0x00 or 0x02
	username  string // with method 0x02
	password  string
	bindReply byte // the REP of the BIND reply
	bindATYP  byte // the address type of the BIND reply's BND.ADDR
	silent    bool // accept, then never answer

	listener net.Listener
	wg       sync.WaitGroup
	mu       sync.Mutex
	sessions []socksSession
	conns    []net.Conn
}

// socksSession is what one client sent.
type socksSession struct {
	methods            []byte
	username, password string
	bind               netip.AddrPort
	connect            netip.AddrPort
	err                error
}

func (s *socksServer) start(t *testing.T) netip.AddrPort {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.listener = listener
	s.wg.Go(func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, conn)
			s.mu.Unlock()
			s.wg.Go(func() { s.serve(conn) })
		}
	})
	t.Cleanup(func() {
		_ = listener.Close()
		s.mu.Lock()
		for _, conn := range s.conns {
			_ = conn.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return listener.Addr().(*net.TCPAddr).AddrPort()
}

func (s *socksServer) track(conn net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns = append(s.conns, conn)
}

// session returns what the i-th client sent, once its exchange ended.
func (s *socksServer) session(i int) socksSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i >= len(s.sessions) {
		return socksSession{err: errors.New("no such session")}
	}
	return s.sessions[i]
}

func (s *socksServer) serve(conn net.Conn) {
	if s.silent {
		_, _ = io.Copy(io.Discard, conn)
		return
	}
	var session socksSession
	upstream, err := s.exchange(conn, &session)
	session.err = err
	s.mu.Lock()
	s.sessions = append(s.sessions, session)
	s.mu.Unlock()
	if err != nil {
		_ = conn.Close()
		return
	}
	s.track(upstream)
	s.wg.Go(func() { _, _ = io.Copy(upstream, conn); _ = upstream.Close() })
	_, _ = io.Copy(conn, upstream)
	_ = conn.Close()
}

func (s *socksServer) exchange(conn net.Conn, session *socksSession) (net.Conn, error) {
	head := make([]byte, 2)
	if _, err := io.ReadFull(conn, head); err != nil {
		return nil, err
	}
	session.methods = make([]byte, head[1])
	if _, err := io.ReadFull(conn, session.methods); err != nil {
		return nil, err
	}
	offered := map[byte]bool{}
	for _, m := range session.methods {
		offered[m] = true
	}
	if !offered[s.method] {
		_, _ = conn.Write([]byte{5, 0xff})
		return nil, errors.New("no acceptable method")
	}
	if _, err := conn.Write([]byte{5, s.method}); err != nil {
		return nil, err
	}
	if s.method == 2 {
		if err := s.authenticate(conn, session); err != nil {
			return nil, err
		}
	}
	command, bind, err := readRequest(conn)
	if err != nil || command != 2 {
		return nil, errors.Join(err, errors.New("want BIND first"))
	}
	session.bind = bind
	if err := writeReply(conn, s.bindReply, s.bindATYP, netip.AddrPortFrom(bind.Addr(), 0)); err != nil || s.bindReply != 0 {
		return nil, errors.Join(err, errors.New("BIND refused"))
	}
	command, destination, err := readRequest(conn)
	if err != nil || command != 1 {
		return nil, errors.Join(err, errors.New("want CONNECT second"))
	}
	session.connect = destination
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: bind.Addr().AsSlice()}, Timeout: peerDeadline}
	upstream, err := dialer.Dial("tcp", destination.String())
	if err != nil {
		_ = writeReply(conn, 5, 1, netip.AddrPortFrom(netip.IPv4Unspecified(), 0))
		return nil, err
	}
	local := upstream.LocalAddr().(*net.TCPAddr).AddrPort()
	if err := writeReply(conn, 0, 1, local); err != nil {
		_ = upstream.Close()
		return nil, err
	}
	return upstream, nil
}

func (s *socksServer) authenticate(conn net.Conn, session *socksSession) error {
	field := func() (string, error) {
		length := make([]byte, 1)
		if _, err := io.ReadFull(conn, length); err != nil {
			return "", err
		}
		value := make([]byte, length[0])
		_, err := io.ReadFull(conn, value)
		return string(value), err
	}
	version := make([]byte, 1)
	if _, err := io.ReadFull(conn, version); err != nil || version[0] != 1 {
		return errors.Join(err, errors.New("want RFC 1929 version 1"))
	}
	var err error
	if session.username, err = field(); err != nil {
		return err
	}
	if session.password, err = field(); err != nil {
		return err
	}
	if session.username != s.username || session.password != s.password {
		_, _ = conn.Write([]byte{1, 1})
		return errors.New("wrong username/password")
	}
	_, err = conn.Write([]byte{1, 0})
	return err
}

// readRequest reads `05 CMD 00 ATYP ADDR PORT` (IPv4 or IPv6).
func readRequest(conn net.Conn) (byte, netip.AddrPort, error) {
	head := make([]byte, 4)
	if _, err := io.ReadFull(conn, head); err != nil {
		return 0, netip.AddrPort{}, err
	}
	size := 4
	if head[3] == 4 {
		size = 16
	}
	rest := make([]byte, size+2)
	if _, err := io.ReadFull(conn, rest); err != nil {
		return 0, netip.AddrPort{}, err
	}
	addr, _ := netip.AddrFromSlice(rest[:size])
	return head[1], netip.AddrPortFrom(addr, binary.BigEndian.Uint16(rest[size:])), nil
}

// writeReply writes `05 REP 00 ATYP BND.ADDR BND.PORT`; ATYP 3 sends a
// domain name instead of the address.
func writeReply(conn net.Conn, rep, atyp byte, bound netip.AddrPort) error {
	if atyp == 0 {
		atyp = 1
	}
	reply := []byte{5, rep, 0, atyp}
	switch atyp {
	case 3:
		name := "proxy.example"
		reply = append(append(reply, byte(len(name))), name...)
	case 4:
		reply = append(reply, netip.IPv6Loopback().AsSlice()...)
	default:
		reply = append(reply, bound.Addr().Unmap().AsSlice()...)
	}
	reply = binary.BigEndian.AppendUint16(reply, bound.Port())
	_, err := conn.Write(reply)
	return err
}
