package egressclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	egressv1 "github.com/egress-resolver/egress-resolver/client/go/kumo/egress/v1"
)

// Connect connects to hostPort through source as kumod's
// EgressSource::connect_to does, and returns the connection, ready for SMTP
// (the next byte read is the server's banner), and the name to say in EHLO
// (ehlo_domain, else the host name). hostPort is "IP:PORT", "[v6]:PORT" or
// "name:PORT" (resolved now; each address is tried in turn).
//
// In order: a source the client knows to be suspended fails at once
// (ReasonSourceSuspended); remote_port replaces the port; with both
// ha_proxy_* fields set the connection goes through that HAProxy server with
// a PROXY protocol v2 header, else with both socks5_proxy_*_server/_source_address
// set through that SOCKS5 proxy (kumod's BIND of the source address, then
// CONNECT); a proxy named by host name is resolved now; source_address, when
// set, is bound (port 0) before connecting and candidates of the other
// family are skipped. ctx's deadline, else the connect_timeout option, is
// one deadline for all of it.
//
// On failure the error is an *Error with codes.Unavailable and Reason
// ReasonSourceUnplumbed, ReasonProxyUnhealthy or ReasonConnectFailed, whose
// Message names the source, each address tried and its cause, and whose
// Cause holds the underlying errors. A SOURCE_UNPLUMBED failure with
// EADDRNOTAVAIL, and a PROXY_UNHEALTHY failure that happened while
// connecting to or talking with the proxy, is reported to the sidecar
// (ReportFailure) before Connect returns, within the deadline (when less
// than 100 ms of it is left, in the background); a suspension the answer
// carries applies at once. A PROXY_UNHEALTHY failure found before any
// connection attempt (an address family that does not match, a proxy name
// that does not resolve, no candidate left, a unix-path proxy) is not
// reported, as kumod does not record it.
func (c *Client) Connect(ctx context.Context, source *egressv1.EgressSource, hostPort string) (net.Conn, string, error) {
	ctx, cancel := c.withConnectTimeout(ctx)
	defer cancel()
	return c.connect(ctx, source, hostPort)
}

// ConnectName resolves the source called name (Get: from the cache when it
// is on) and connects through it as Connect does, within the same deadline.
func (c *Client) ConnectName(ctx context.Context, name, hostPort string) (net.Conn, string, error) {
	ctx, cancel := c.withConnectTimeout(ctx)
	defer cancel()
	source, err := c.Get(ctx, name)
	if err != nil {
		return nil, "", err
	}
	return c.connect(ctx, source, hostPort)
}

// withConnectTimeout applies connect_timeout when ctx has no deadline.
func (c *Client) withConnectTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, hasDeadline := ctx.Deadline(); hasDeadline {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.options.ConnectTimeout)
}

func (c *Client) connect(ctx context.Context, source *egressv1.EgressSource, hostPort string) (net.Conn, string, error) {
	if source == nil {
		return nil, "", &Error{Code: codes.InvalidArgument, Message: "Connect needs a source (got nil)"}
	}
	name := source.GetName()
	if known, ok := c.suspensions.lookup(name); ok {
		return nil, "", &Error{Code: codes.Unavailable, Reason: ReasonSourceSuspended, Name: name,
			Message: fmt.Sprintf("source %s is suspended until %s: %s", name,
				describeUntil(known.Until, c.suspensions.now()), known.Reason)}
	}
	started := time.Now()
	p, err := newPlan(ctx, source, hostPort)
	if err == nil {
		var conn net.Conn
		if conn, err = p.run(ctx, started); err == nil {
			return conn, ehloName(source), nil
		}
	}
	var f *failure
	if !errors.As(err, &f) {
		return nil, "", err
	}
	if errors.Is(context.Cause(ctx), context.Canceled) {
		return nil, "", &Error{Code: codes.Canceled, Name: name, Cause: errors.Join(f.causes...),
			Message: fmt.Sprintf("source %s: connect canceled", name)}
	}
	connectErr := f.asError(name)
	if f.reported() {
		c.report(ctx, name, f.class, f.address, connectErr.Message)
	}
	return nil, "", connectErr
}

// ehloName is ehlo_domain, else the host name.
func ehloName(source *egressv1.EgressSource) string {
	if source.EhloDomain != nil {
		return source.GetEhloDomain()
	}
	return hostName()
}

var hostName = sync.OnceValue(func() string {
	name, err := os.Hostname()
	if err != nil {
		return "localhost"
	}
	return name
})

// run tries each candidate in turn until one connects or the deadline passes.
func (p *plan) run(ctx context.Context, started time.Time) (net.Conn, error) {
	f := &failure{class: egressv1.FailureClass_FAILURE_CLASS_CONNECT_FAILED}
	if p.transport != direct {
		f.class = egressv1.FailureClass_FAILURE_CLASS_PROXY_UNHEALTHY
	}
	deadline, _ := ctx.Deadline()
	timeout := deadline.Sub(started).Round(time.Millisecond)
	allBind := true
	for _, next := range p.candidates {
		if ctx.Err() != nil {
			break
		}
		conn, bound, err := p.try(ctx, next)
		if err == nil {
			return conn, nil
		}
		f.causes = append(f.causes, err)
		if f.address == "" {
			f.address = next.via.String()
		}
		if !bound { // not retried: another candidate of the family would fail the same way
			f.parts = append(f.parts, fmt.Sprintf("bind %s failed: %s", netip.AddrPortFrom(p.local, 0), describeErrno(err)))
			break
		}
		allBind = false
		what := "proxy"
		if p.transport == direct {
			what = "connect"
		}
		f.parts = append(f.parts, fmt.Sprintf("%s %s: %s", what, next.via, describe(err, timeout)))
	}
	switch {
	case len(f.parts) == 0:
		f.parts = []string{fmt.Sprintf("timed out after %s before connecting", timeout)}
		f.address = p.candidates[0].via.String()
	case allBind:
		f.class, f.address = egressv1.FailureClass_FAILURE_CLASS_SOURCE_UNPLUMBED, p.local.String()
	}
	return nil, f
}

// try connects to one candidate: bound is false when binding source_address failed.
func (p *plan) try(ctx context.Context, next candidate) (conn net.Conn, bound bool, err error) {
	var dialer net.Dialer // Go turns TCP_NODELAY on for every TCP connection
	if p.local.IsValid() {
		dialer.LocalAddr = &net.TCPAddr{IP: p.local.AsSlice()} // port 0
	}
	network := "tcp4"
	if next.via.Addr().Is6() {
		network = "tcp6"
	}
	conn, err = dialer.DialContext(ctx, network, next.via.String())
	if err != nil {
		var syscallErr *os.SyscallError
		return nil, !(errors.As(err, &syscallErr) && syscallErr.Syscall == "bind"), err
	}
	if p.transport == direct {
		return conn, true, nil
	}
	if err := p.handshake(ctx, conn, next); err != nil {
		_ = conn.Close()
		return nil, true, err
	}
	return conn, true, nil
}

// longAgo is a deadline in the past: it stops the I/O in progress.
var longAgo = time.Unix(1, 0)

// handshake talks to the proxy within ctx's deadline; cancelling ctx stops it too.
func (p *plan) handshake(ctx context.Context, conn net.Conn, next candidate) error {
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(longAgo) })
	var err error
	if p.transport == haProxy {
		_, err = conn.Write(proxyV2Header(p.proxySource, next.destination))
	} else {
		err = socks5Exchange{bind: p.proxySource, destination: next.destination,
			username: p.source.GetSocks5ProxyUsername(), password: password(p.source)}.run(conn)
	}
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return err
	}
	return conn.SetDeadline(time.Time{})
}

// reportFloor is the least time left in which a report is sent within the
// Connect's own deadline; with less (a proxy that never answered used it
// all) it goes in the background, so the sidecar still counts it.
const reportFloor = 100 * time.Millisecond

// report sends a classified failure within ctx, or, when less than
// reportFloor of its deadline is left, in the background with the client's
// timeout (Close waits for it).
func (c *Client) report(ctx context.Context, name string, class egressv1.FailureClass, address, message string) {
	send := func(ctx context.Context) {
		if _, err := c.ReportFailure(ctx, name, class, address, message); err != nil {
			c.logger.Debug("egress-resolver: reporting a connect failure failed",
				"source", name, "failure_class", class.String(), "error", err)
		}
	}
	if deadline, _ := ctx.Deadline(); ctx.Err() == nil && time.Until(deadline) >= reportFloor {
		send(ctx)
		return
	}
	c.reports.Add(1)
	go func() {
		defer c.reports.Done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.options.Timeout)
		defer cancel()
		send(ctx)
	}()
}
