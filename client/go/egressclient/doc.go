// Package egressclient is the Go client of egress-resolver, the gRPC sidecar
// that serves KumoMTA egress source and pool definitions from a Lua policy.
//
// An MTA picks a source of the queue's pool as kumod does, then resolves it;
// with the cache on both come from memory:
//
//	client, err := egressclient.New("unix:/run/egress-resolver.sock", egressclient.WithCache(true))
//	if err != nil { return err }
//	defer client.Close()
//	name, err := client.Select(ctx, "pool-1") // kumod's weighted round robin over the cached pool
//	source, err := client.Get(ctx, name)      // *egressv1.EgressSource, from the cache
//
// Options not given to New come from the EGRESS_CLIENT_* variables (see
// Options). With the cache on, sources and pools are kept in bounded LRUs
// until the sidecar's produced_at + ttl (a lookup that returns an entry, or
// a store, makes it the most recently used; nothing else moves it: the rules
// of every client are in docs/clients/spec.md), concurrent misses of one
// name make one call, and a background goroutine follows WatchInvalidations (resuming
// across sidecar restarts) so that nothing invalidated is served; cached
// entries keep being served while the sidecar is unreachable, and with
// WithStaleIfError expired ones too, for that long, when calls fail with
// UNAVAILABLE.
//
// Select chooses exactly as kumod's EgressPoolSourceSelector (LVS weighted
// round robin with the gcd of the weights; weight 0 never chosen): for
// weights 5, 2, 3 the picks are two, three, one, one, one, three, ...
// Sources the client knows to be suspended are skipped as kumod skips them.
//
// Connect and ConnectName connect through a source as kumod's
// EgressSource::connect_to does (bind source_address, remote_port, PROXY
// protocol v2 to an HAProxy server, kumod's SOCKS5 BIND-then-CONNECT, one
// deadline) and return a net.Conn ready for SMTP and the EHLO name:
//
//	conn, ehlo, err := client.ConnectName(ctx, name, "mx.example.com:25")
//
// A failure is classified as kumod classifies it (SOURCE_UNPLUMBED,
// PROXY_UNHEALTHY, CONNECT_FAILED) and, for the first two, reported to the
// sidecar when kumod would record them (see Connect), which may suspend the
// source for every client on the host; Suspended lists the suspensions the
// client knows, ReportFailure reports a failure of an MTA that connects by
// itself.
//
// Failed calls return an *Error carrying the gRPC code, the stable
// ErrorInfo reason (e.g. "SOURCE_NOT_FOUND"), the message and the requested
// name; use errors.As to read it. The generated messages and stub are in
// package github.com/egress-resolver/egress-resolver/client/go/kumo/egress/v1.
package egressclient
