// Command egress-example asks an egress-resolver sidecar for one egress source.
//
//	egress-example [-timeout 5s] TARGET NAME
//
// TARGET is "host:port" or "unix:/path". On success it prints the definition
// as one line of protobuf JSON with the proto field names (secrets redacted)
// and exits 0; on failure it prints "CODE: message [REASON]" to stderr and
// exits 1. Usage errors exit 2.
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
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole program; it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("egress-example", flag.ContinueOnError)
	flags.SetOutput(stderr)
	timeout := flags.Duration("timeout", 5*time.Second, "deadline of the call")
	flags.Usage = func() {
		fmt.Fprintln(stderr, "usage: egress-example [-timeout 5s] TARGET NAME")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if flags.NArg() != 2 {
		flags.Usage()
		return 2
	}
	target, name := flags.Arg(0), flags.Arg(1)

	client, err := egressclient.New(target, egressclient.WithTimeout(*timeout))
	if err != nil {
		fmt.Fprintf(stderr, "INVALID_ARGUMENT: bad target %q: %v\n", target, err)
		return 1
	}
	defer client.Close()

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
