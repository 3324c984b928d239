// Command egress-example asks an egress-resolver sidecar for egress sources
// and pools with the Go client.
//
//	egress-example [--target ADDR] [--cache] [--timeout 2s] [NAME]
//
// ADDR is "host:port", "[::1]:port" or "unix:/path" (default:
// EGRESS_CLIENT_TARGET, else 127.0.0.1:50051); the other options come from
// the EGRESS_CLIENT_* variables unless given. EXAMPLE_OPTIONS, a JSON object
// of option name to value ({"timeout": "300ms", "cache": true,
// "max_entries": 3, "stale_if_error": "30s", "target": ...}), gives options
// in code too, as a program would pass them to New: they win over the
// variables; --target, --cache and --timeout win over the same keys.
//
// With NAME it resolves that name once: on success it prints the definition
// as one line of protobuf JSON with the proto field names (secrets redacted)
// and exits 0; on failure it prints "CODE: message [REASON]" to stderr and
// exits 1.
//
// Without NAME it reads JSON commands, one a line, on stdin and writes one
// JSON line for each on stdout, flushed, in order (exit 0 at EOF):
//
//	{"get": NAME}             -> {"source": SOURCE} or {"error": {"code", "reason", "message"}}
//	{"get_many": [NAMES]}     -> {"results": [{"source": SOURCE} or {"error": …}, one per name, in order]}
//	                             (one BatchGetEgressSources call, never cached), or the call's error
//	{"concurrent_get": NAME, "n": K} -> {"sources": K} when the K gets, started at once, all
//	                             succeed, else the first one's error
//	{"cached": {}}            -> {"names": [cached source names, least to most recently used]}
//	{"options": {}}           -> {"options": {"target", "timeout": "2s", "cache", "max_entries",
//	                             "stale_if_error": "0s", "keepalive_interval", "connect_timeout"}}
//	{"pool": NAME}            -> {"pool": {"name", "entries": [{"name", "weight"}], "ttl": "60s"}} or an error
//	{"select": POOL, "n": N}  -> {"sources": [N names in selection order]} or an error
//	{"bench": NAME, "n": N}   -> {"ns_per_call": X} (N gets of NAME timed in this process)
//	{"bench_select": POOL, "n": N} -> {"ns_per_call": X} (N selects of POOL timed)
//	{"stats": {}}             -> {"rpcs": R, "entries": E, "watching": W}
//
// and the commands that connect through a source: connect, connect_pool,
// suspended, bench_connect and wait_suspended (see connect.go).
//
// Anything else gets an INVALID_ARGUMENT error with reason BAD_COMMAND.
// Usage errors exit 2.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/egress-resolver/egress-resolver/client/go/egressclient"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = "usage: egress-example [--target ADDR] [--cache] [--timeout 2s] [NAME]"

// run is the whole program; it returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("egress-example", flag.ContinueOnError)
	flags.SetOutput(stderr)
	target := flags.String("target", "", "the sidecar's address (default: EGRESS_CLIENT_TARGET, else 127.0.0.1:50051)")
	cache := flags.Bool("cache", false, "turn the client-side cache on (default: EGRESS_CLIENT_CACHE)")
	timeout := flags.Duration("timeout", 0, "deadline of each call (default: EGRESS_CLIENT_TIMEOUT, else 2s)")
	flags.Usage = func() {
		fmt.Fprintln(stderr, usage)
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if flags.NArg() > 1 {
		flags.Usage()
		return 2
	}
	// EXAMPLE_OPTIONS first: the flags, given after, win over the same options.
	fromJSON, opts, err := codeOptions(os.Getenv(exampleOptionsVariable))
	if err != nil {
		fmt.Fprintln(stderr, "egress-example:", err)
		return 2
	}
	if *target == "" {
		*target = fromJSON
	}
	if *cache {
		opts = append(opts, egressclient.WithCache(true))
	}
	if *timeout > 0 {
		opts = append(opts, egressclient.WithTimeout(*timeout))
	}
	client, err := egressclient.New(*target, opts...)
	if err != nil {
		fmt.Fprintf(stderr, "INVALID_ARGUMENT: %v\n", err)
		return 1
	}
	defer client.Close()

	if flags.NArg() == 0 {
		if err := script(client, stdin, stdout); err != nil {
			fmt.Fprintln(stderr, "egress-example:", err)
			return 1
		}
		return 0
	}
	return resolveOnce(client, flags.Arg(0), stdout, stderr)
}

// resolveOnce prints one definition, or the error on stderr.
func resolveOnce(client *egressclient.Client, name string, stdout, stderr io.Writer) int {
	source, err := client.Get(context.Background(), name)
	if err != nil {
		var resolveErr *egressclient.Error
		if errors.As(err, &resolveErr) {
			fmt.Fprintln(stderr, resolveErr.Error())
		} else {
			fmt.Fprintln(stderr, "UNKNOWN:", err)
		}
		return 1
	}
	line, err := redactedJSON(source)
	if err != nil {
		fmt.Fprintln(stderr, "INTERNAL: cannot encode the definition:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", line)
	return 0
}

// elapsedNanos times n calls of call, after one untimed call (which may be
// a cache miss: the figure is for what follows).
func elapsedNanos(n int, call func() error) (float64, error) {
	if err := call(); err != nil {
		return 0, err
	}
	started := time.Now()
	for range n {
		if err := call(); err != nil {
			return 0, err
		}
	}
	return float64(time.Since(started).Nanoseconds()) / float64(max(n, 1)), nil
}
