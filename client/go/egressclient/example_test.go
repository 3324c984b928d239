package egressclient_test

import (
	"context"
	"errors"
	"fmt"

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
