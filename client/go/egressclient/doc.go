// Package egressclient is a small Go client for egress-resolver, the gRPC
// sidecar that serves KumoMTA egress source definitions from a Lua policy.
//
//	client, err := egressclient.New("127.0.0.1:50051") // or "unix:/run/egress.sock"
//	if err != nil {
//		return err
//	}
//	defer client.Close()
//	source, err := client.Get(ctx, "ip-1")
//
// Failed calls return an *Error carrying the gRPC code and the stable
// ErrorInfo reason (e.g. "SOURCE_NOT_FOUND"); use errors.As to read it.
// The generated messages and stub are in package
// github.com/egress-resolver/egress-resolver/client/go/kumo/egress/v1.
package egressclient
