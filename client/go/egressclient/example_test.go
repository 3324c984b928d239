package egressclient_test

import (
	"context"
	"errors"
	"fmt"
	"net/smtp"

	"github.com/egress-resolver/egress-resolver/client/go/egressclient"
)

// ExampleClient_Get shows a lookup and how to read a failure.
func ExampleClient_Get() {
	client, err := egressclient.New("unix:/run/egress-resolver.sock")
	if err != nil {
		panic(err)
	}
	defer client.Close()
	source, err := client.Get(context.Background(), "ip-1")
	var resolveErr *egressclient.Error
	switch {
	case errors.As(err, &resolveErr) && resolveErr.Reason == "SOURCE_NOT_FOUND":
		fmt.Println("no such source")
	case err != nil:
		fmt.Println("lookup failed:", err) // e.g. "UNAVAILABLE: ..."
	default:
		fmt.Println(source.GetSourceAddress(), source.GetTtl().AsDuration())
	}
}

// ExampleClient_ConnectName selects a source of a pool, connects through it
// (bound to its source_address, or through its proxy) and says EHLO with its
// name: the lines an MTA needs. A failure is reported to the sidecar, which
// may suspend the source for every client on the host; Select skips it then.
func ExampleClient_ConnectName() {
	ctx := context.Background()
	client, err := egressclient.New("unix:/run/egress-resolver.sock", egressclient.WithCache(true))
	if err != nil {
		panic(err)
	}
	defer client.Close()
	name, err := client.Select(ctx, "pool-1")
	if err != nil {
		panic(err) // e.g. RESOURCE_EXHAUSTED [POOL_SUSPENDED]
	}
	conn, ehlo, err := client.ConnectName(ctx, name, "mx.example.com:25")
	if err != nil {
		panic(err) // e.g. UNAVAILABLE [SOURCE_UNPLUMBED]
	}
	mail, err := smtp.NewClient(conn, "mx.example.com") // reads the banner
	if err != nil {
		panic(err)
	}
	defer mail.Quit()
	if err := mail.Hello(ehlo); err != nil {
		panic(err)
	}
}
