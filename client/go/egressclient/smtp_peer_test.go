package egressclient_test

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// smtpSession is what the SMTP server saw of one connection.
type smtpSession struct {
	Peer string // the peer's IP
	Ehlo string // the EHLO argument
}

// smtpServer is an SMTP server on 127.0.0.1 that records each peer address
// and EHLO argument: banner, EHLO (multi-line 250), QUIT (221).
type smtpServer struct {
	listener net.Listener
	sessions chan smtpSession
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
}

func startSMTP(t testing.TB) *smtpServer {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{listener: listener, sessions: make(chan smtpSession, 1024)}
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
	return s
}

// Addr is "127.0.0.1:PORT".
func (s *smtpServer) Addr() string { return s.listener.Addr().String() }

// Port is the port, as text.
func (s *smtpServer) Port() string {
	_, port, _ := net.SplitHostPort(s.Addr())
	return port
}

func (s *smtpServer) serve(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(startupDeadline))
	session := smtpSession{Peer: conn.RemoteAddr().(*net.TCPAddr).IP.String()}
	defer func() { s.sessions <- session }()
	lines := bufio.NewReader(conn)
	if _, err := conn.Write([]byte("220 test.example ESMTP\r\n")); err != nil {
		return
	}
	for {
		line, err := lines.ReadString('\n')
		if err != nil {
			return
		}
		verb, argument, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			session.Ehlo = argument
			_, err = conn.Write([]byte("250-test.example\r\n250 8BITMIME\r\n"))
		case "QUIT":
			_, _ = conn.Write([]byte("221 bye\r\n"))
			return
		default:
			_, err = conn.Write([]byte("500 what\r\n"))
		}
		if err != nil {
			return
		}
	}
}

// Next is the next session that ended.
func (s *smtpServer) Next(t testing.TB) smtpSession {
	t.Helper()
	select {
	case session := <-s.sessions:
		return session
	case <-time.After(startupDeadline):
		t.Fatal("no SMTP session ended")
		return smtpSession{}
	}
}
