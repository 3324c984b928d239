package egressclient

import (
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The reasons of the errors Connect and Select return (every client uses the
// same strings; the sidecar's reason catalogue lists them too).
const (
	// ReasonSourceUnplumbed: binding the source's source_address failed
	// (codes.Unavailable). Only EADDRNOTAVAIL is reported to the sidecar.
	ReasonSourceUnplumbed = "SOURCE_UNPLUMBED"
	// ReasonProxyUnhealthy: the HAProxy or SOCKS5 proxy could not be reached,
	// its handshake failed or it refused to bind (codes.Unavailable).
	ReasonProxyUnhealthy = "PROXY_UNHEALTHY"
	// ReasonConnectFailed: the destination could not be reached directly
	// (codes.Unavailable); never reported.
	ReasonConnectFailed = "CONNECT_FAILED"
	// ReasonSourceSuspended: Connect through a source the client knows to be
	// suspended (codes.Unavailable); nothing is tried.
	ReasonSourceSuspended = "SOURCE_SUSPENDED"
	// ReasonPoolSuspended: Select on a pool whose every source of a weight
	// above 0 is suspended (codes.ResourceExhausted).
	ReasonPoolSuspended = "POOL_SUSPENDED"
)

// Error is why a name did not resolve, or why Connect failed. Get, GetPool,
// Select, GetMany, Connect and ReportFailure return it as their error; read
// it with errors.As:
//
//	var resolveErr *egressclient.Error
//	if errors.As(err, &resolveErr) && resolveErr.Reason == "SOURCE_NOT_FOUND" { ... }
type Error struct {
	// Code is the gRPC status code, e.g. codes.NotFound.
	Code codes.Code
	// Reason is the stable ErrorInfo reason, e.g. "SOURCE_NOT_FOUND" or
	// "HANDLER_ERROR"; empty when the server sent none (transport errors).
	Reason string
	// Message is the server's human-readable message.
	Message string
	// Name is the requested name (the source's, for Connect); empty when a
	// whole GetMany call failed.
	Name string
	// Cause is what made a Connect fail (the errors of every candidate,
	// joined), so that errors.Is(err, syscall.EADDRNOTAVAIL) or
	// errors.Is(err, context.DeadlineExceeded) work; nil for the others.
	Cause error
}

// Error formats the error as "NOT_FOUND: <message> [SOURCE_NOT_FOUND]".
func (e *Error) Error() string {
	text := fmt.Sprintf("%s: %s", CodeName(e.Code), e.Message)
	if e.Reason != "" {
		text += " [" + e.Reason + "]"
	}
	return text
}

// Unwrap returns Cause.
func (e *Error) Unwrap() error { return e.Cause }

// GRPCStatus lets status.Code and status.FromError see the gRPC code.
func (e *Error) GRPCStatus() *status.Status {
	return status.New(e.Code, e.Message)
}

// CodeName is the canonical UPPER_SNAKE name of a gRPC code, e.g. "NOT_FOUND".
func CodeName(c codes.Code) string {
	if name, known := code.Code_name[int32(c)]; known {
		return name
	}
	return fmt.Sprintf("CODE_%d", uint32(c))
}

// errorFromRPC converts an error returned by the generated stub.
func errorFromRPC(err error, name string) *Error {
	return errorFromStatus(status.Convert(err), name)
}

// errorFromStatusProto converts a google.rpc.Status found in a batch result.
func errorFromStatusProto(st *spb.Status, name string) *Error {
	return errorFromStatus(status.FromProto(st), name)
}

func errorFromStatus(st *status.Status, name string) *Error {
	resolveErr := &Error{Code: st.Code(), Message: st.Message(), Name: name}
	for _, detail := range st.Details() {
		if info, ok := detail.(*errdetails.ErrorInfo); ok {
			resolveErr.Reason = info.GetReason()
			break
		}
	}
	return resolveErr
}
