package egressclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"

	egressv1 "github.com/egress-resolver/egress-resolver/client/go/kumo/egress/v1"
)

// failure is why a Connect failed, classified as kumod classifies it
// (SOURCE_UNPLUMBED when every candidate tried failed to bind the source
// address, else PROXY_UNHEALTHY when a proxy is involved, else
// CONNECT_FAILED), before it becomes an *Error.
type failure struct {
	class   egressv1.FailureClass
	address string   // what a report names: the source address, or the proxy's IP:port
	parts   []string // what failed, one part for each candidate tried
	causes  []error
	// beforeAttempt marks a PROXY_UNHEALTHY failure found before any
	// connection attempt (address family mismatch, proxy name that does not
	// resolve, no candidate left, unix-path proxy): kumod's connect_to
	// returns it from resolve_proxy_protocols before
	// maybe_record_health_failure, so it is not reported.
	beforeAttempt bool
}

func (f *failure) Error() string { return strings.Join(f.parts, "; ") }

// reported says whether the clients report this failure to the sidecar:
// SOURCE_UNPLUMBED only for EADDRNOTAVAIL (kumod's is_unplumbed),
// PROXY_UNHEALTHY only when it happened while connecting to or talking with
// the proxy, never CONNECT_FAILED.
func (f *failure) reported() bool {
	switch f.class {
	case egressv1.FailureClass_FAILURE_CLASS_SOURCE_UNPLUMBED:
		return errors.Is(errors.Join(f.causes...), syscall.EADDRNOTAVAIL)
	case egressv1.FailureClass_FAILURE_CLASS_PROXY_UNHEALTHY:
		return !f.beforeAttempt
	}
	return false
}

// reasons are the Reason of each failure class.
var reasons = map[egressv1.FailureClass]string{
	egressv1.FailureClass_FAILURE_CLASS_SOURCE_UNPLUMBED: ReasonSourceUnplumbed,
	egressv1.FailureClass_FAILURE_CLASS_PROXY_UNHEALTHY:  ReasonProxyUnhealthy,
	egressv1.FailureClass_FAILURE_CLASS_CONNECT_FAILED:   ReasonConnectFailed,
}

// asError is the failure as Connect returns it.
func (f *failure) asError(name string) *Error {
	return &Error{Code: codes.Unavailable, Reason: reasons[f.class], Name: name, Cause: errors.Join(f.causes...),
		Message: fmt.Sprintf("source %s: %s", name, f.Error())}
}

// describe is the cause of a failed connect or handshake, short:
// "connection refused", "timed out after 60s", "SOCKS5 username/password was incorrect".
func describe(err error, timeout time.Duration) string {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		if timeout <= 0 {
			return "the deadline passed"
		}
		return fmt.Sprintf("timed out after %s", timeout)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && err == error(opErr) { // a dial error: what the system said
		var syscallErr *os.SyscallError
		if errors.As(err, &syscallErr) {
			return syscallErr.Err.Error()
		}
		return opErr.Err.Error()
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.Error()
	}
	return err.Error()
}

// describeErrno is the cause of a failed bind, with the errno's name:
// "cannot assign requested address (EADDRNOTAVAIL)".
func describeErrno(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if name := unix.ErrnoName(errno); name != "" {
			return fmt.Sprintf("%s (%s)", errno.Error(), name)
		}
		return errno.Error()
	}
	return describe(err, 0)
}
