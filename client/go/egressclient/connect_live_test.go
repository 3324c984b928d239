package egressclient_test

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/egress-resolver/egress-resolver/client/go/egressclient"
	egressv1 "github.com/egress-resolver/egress-resolver/client/go/kumo/egress/v1"
)

// startConnectSidecar serves testdata/connect.lua; ip-3's remote_port is the
// SMTP server's port, px-down's and px-v6's proxy a port where nothing
// listens and px-silent's a listener that accepts and never answers.
func startConnectSidecar(t *testing.T, smtp *smtpServer) *liveServer {
	t.Helper()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = silent.Close() }) // its backlog holds the connections: nothing to accept
	policy, err := filepath.Abs(filepath.Join("testdata", "connect.lua"))
	if err != nil {
		t.Fatal(err)
	}
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_ = down.Close()
	return startSidecar(t, sidecarConfig{Policy: policy,
		Env: []string{"SMTP_PORT=" + smtp.Port(), "PROXY_DOWN=" + down.Addr().String(),
			"PROXY_SILENT=" + silent.Addr().String()}})
}

// greetOver says EHLO and QUIT on conn and reads until the server closes.
func greetOver(t *testing.T, conn net.Conn, ehlo string) {
	t.Helper()
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(startupDeadline))
	if _, err := io.WriteString(conn, "EHLO "+ehlo+"\r\nQUIT\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, conn); err != nil {
		t.Fatal(err)
	}
}

func liveConnectError(t *testing.T, err error, code codes.Code, reason string) *egressclient.Error {
	t.Helper()
	var connectErr *egressclient.Error
	if !errors.As(err, &connectErr) || connectErr.Code != code || connectErr.Reason != reason {
		t.Fatalf("got %v, want %s [%s]", err, code, reason)
	}
	return connectErr
}

func suspendedNames(client *egressclient.Client) []string {
	names := []string{}
	for _, known := range client.Suspended() {
		names = append(names, known.Name)
	}
	return names
}

func selections(t *testing.T, client *egressclient.Client, pool string, n int) []string {
	t.Helper()
	out := make([]string, 0, n)
	for range n {
		name, err := client.Select(context.Background(), pool)
		if err != nil {
			t.Fatalf("Select(%s): %v", pool, err)
		}
		out = append(out, name)
	}
	return out
}

func TestConnectLive(t *testing.T) {
	smtp := startSMTP(t)
	server := startConnectSidecar(t, smtp)
	ctx := context.Background()
	reporter := newClient(t, server.UnixTarget)     // no cache: learns from its reports and pool answers
	watcher := newCachedClient(t, server.TCPTarget) // learns from the stream
	poolOnly := newClient(t, server.TCPTarget)      // learns from GetEgressPool answers

	t.Run("bind and ehlo", func(t *testing.T) {
		conn, ehlo, err := reporter.ConnectName(ctx, "ip-2", smtp.Addr())
		if err != nil {
			t.Fatal(err)
		}
		greetOver(t, conn, ehlo)
		if got := smtp.Next(t); got != (smtpSession{Peer: "127.0.0.2", Ehlo: "mta2.example.com"}) {
			t.Errorf("the SMTP server saw %+v", got)
		}
	})

	t.Run("remote_port", func(t *testing.T) {
		conn, ehlo, err := reporter.ConnectName(ctx, "ip-3", "127.0.0.1:1")
		if err != nil {
			t.Fatal(err)
		}
		greetOver(t, conn, ehlo)
		if got := smtp.Next(t); got.Peer != "127.0.0.3" {
			t.Errorf("the SMTP server saw %+v", got)
		}
	})

	t.Run("unplumbed source is suspended for every client", func(t *testing.T) {
		if got := selections(t, poolOnly, "mixed", 3); !slices.Contains(got, "ip-9") {
			t.Fatalf("before the failure: %v", got)
		}
		reported := time.Now()
		_, _, err := reporter.ConnectName(ctx, "ip-9", smtp.Addr())
		connectErr := liveConnectError(t, err, codes.Unavailable, egressclient.ReasonSourceUnplumbed)
		if !errors.Is(connectErr, syscall.EADDRNOTAVAIL) || !strings.Contains(connectErr.Message, "bind 192.0.2.9:0 failed") {
			t.Errorf("error %v", connectErr)
		}
		known := reporter.Suspended()
		if len(known) != 1 || known[0].Name != "ip-9" || known[0].Class != egressv1.FailureClass_FAILURE_CLASS_SOURCE_UNPLUMBED ||
			known[0].Until.Sub(reported) < 25*time.Second || !strings.Contains(known[0].Reason, "192.0.2.9") {
			t.Fatalf("the reporter knows %+v", known)
		}
		_, _, err = reporter.ConnectName(ctx, "ip-9", smtp.Addr())
		liveConnectError(t, err, codes.Unavailable, egressclient.ReasonSourceSuspended)

		waitFor(t, "the watcher to learn of ip-9's suspension", func() bool {
			return slices.Contains(suspendedNames(watcher), "ip-9")
		})
		t.Logf("the watcher knew %s after the report was sent", watcher.Suspended()[0].KnownSince.Sub(reported))
		for _, client := range []*egressclient.Client{reporter, watcher, poolOnly} {
			if got := selections(t, client, "mixed", 6); slices.Contains(got, "ip-9") {
				t.Errorf("a client still selects ip-9: %v", got)
			}
		}
	})

	t.Run("every source of a pool suspended", func(t *testing.T) {
		_, _, err := reporter.ConnectName(ctx, "ip-8", smtp.Addr())
		liveConnectError(t, err, codes.Unavailable, egressclient.ReasonSourceUnplumbed)
		_, err = reporter.Select(ctx, "unplumbed")
		selectErr := liveConnectError(t, err, codes.ResourceExhausted, egressclient.ReasonPoolSuspended)
		if !strings.HasPrefix(selectErr.Message, "pool unplumbed: every source is suspended; ip-9 resumes first, at ") {
			t.Errorf("message %q", selectErr.Message)
		}
	})

	t.Run("proxy threshold", func(t *testing.T) {
		for i := range 2 {
			_, _, err := reporter.ConnectName(ctx, "px-down", smtp.Addr())
			liveConnectError(t, err, codes.Unavailable, egressclient.ReasonProxyUnhealthy)
			if got := slices.Contains(suspendedNames(reporter), "px-down"); got != (i == 1) {
				t.Errorf("after failure %d: suspended %v", i+1, got)
			}
		}
	})

	t.Run("proxy failures found before any attempt are not reported", func(t *testing.T) {
		// as kumod: an address family mismatch or a unix-path proxy keeps
		// PROXY_UNHEALTHY but is not reported (an Immediate rule would suspend at once)
		_, _, err := reporter.ConnectName(ctx, "px-v6", smtp.Addr())
		connectErr := liveConnectError(t, err, codes.Unavailable, egressclient.ReasonProxyUnhealthy)
		if !strings.Contains(connectErr.Message, "address family does not match") {
			t.Errorf("message %q", connectErr.Message)
		}
		_, _, err = reporter.ConnectName(ctx, "px-unix", smtp.Addr())
		connectErr = liveConnectError(t, err, codes.Unavailable, egressclient.ReasonProxyUnhealthy)
		if !strings.Contains(connectErr.Message, "unix-path proxy is not supported") {
			t.Errorf("message %q", connectErr.Message)
		}
		if got := suspendedNames(reporter); slices.Contains(got, "px-v6") || slices.Contains(got, "px-unix") {
			t.Fatalf("suspended after failures found before any attempt: %v", got)
		}
		// an IPv6 destination matches ::1: the proxy is tried, refuses, and that is reported
		_, _, err = reporter.ConnectName(ctx, "px-v6", "[::1]:25")
		connectErr = liveConnectError(t, err, codes.Unavailable, egressclient.ReasonProxyUnhealthy)
		if !strings.Contains(connectErr.Message, "connection refused") {
			t.Errorf("message %q", connectErr.Message)
		}
		if got := suspendedNames(reporter); !slices.Contains(got, "px-v6") || slices.Contains(got, "px-unix") {
			t.Errorf("after the refused proxy: suspended %v, want px-v6 and not px-unix", got)
		}
	})

	t.Run("report after the deadline", func(t *testing.T) {
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		_, _, err := reporter.ConnectName(short, "px-silent", smtp.Addr())
		connectErr := liveConnectError(t, err, codes.Unavailable, egressclient.ReasonProxyUnhealthy)
		if !strings.Contains(connectErr.Message, ": timed out after ") {
			t.Errorf("message %q", connectErr.Message)
		}
		// no time was left: the report went in the background, and its answer applies
		waitFor(t, "the background report's suspension", func() bool {
			return slices.Contains(suspendedNames(reporter), "px-silent")
		})
	})

	t.Run("ReportFailure", func(t *testing.T) {
		suspension, err := reporter.ReportFailure(ctx, "ip-2", egressv1.FailureClass_FAILURE_CLASS_CONNECT_FAILED,
			"127.0.0.1:25", "connection refused")
		if err != nil || suspension != nil {
			t.Errorf("CONNECT_FAILED: %+v, %v; want no suspension", suspension, err)
		}
		_, err = reporter.ReportFailure(ctx, "ip-2", egressv1.FailureClass_FAILURE_CLASS_UNSPECIFIED, "", "")
		liveConnectError(t, err, codes.InvalidArgument, "INVALID_REQUEST")
	})

	t.Run("invalidate ends a suspension", func(t *testing.T) {
		if _, err := stub(t, server.TCPTarget).Invalidate(ctx, &egressv1.InvalidateRequest{Names: []string{"ip-9"}}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the watcher to learn that ip-9 resumed", func() bool {
			return !slices.Contains(suspendedNames(watcher), "ip-9")
		})
		if got := selections(t, watcher, "mixed", 3); !slices.Contains(got, "ip-9") {
			t.Errorf("after the resume: %v", got)
		}
	})
}
