// Command reference-go is the benchmark's "machine limit" target: a grpc-go
// server that answers /kumo.egress.v1.EgressResolverService/GetEgressSource
// with constant, pre-serialized response bytes.
//
// It needs no generated code: every call reaches an UnknownServiceHandler and
// messages travel as raw bytes through a pass-through codec. It prints one
// JSON line {"event": "listening", "addresses": [...]} to stderr once it
// accepts calls and stops gracefully on SIGTERM or SIGINT.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// servedMethod is the only method the server answers.
const servedMethod = "/kumo.egress.v1.EgressResolverService/GetEgressSource"

// listenFlags collects the repeatable --listen flag.
type listenFlags []string

func (l *listenFlags) String() string     { return strings.Join(*l, ",") }
func (l *listenFlags) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var addresses listenFlags
	flag.Var(&addresses, "listen", "HOST:PORT or unix:/abs/path to listen on (repeatable)")
	responseFile := flag.String("response", "", "file holding the serialized GetEgressSourceResponse")
	flag.Parse()
	if err := run(addresses, *responseFile); err != nil {
		fmt.Fprintln(os.Stderr, "reference-go:", err)
		os.Exit(1)
	}
}

// run serves until SIGTERM or SIGINT.
func run(addresses []string, responseFile string) error {
	if len(addresses) == 0 || responseFile == "" {
		return fmt.Errorf("--listen and --response are required")
	}
	response, err := os.ReadFile(responseFile)
	if err != nil {
		return err
	}
	server := grpc.NewServer(
		grpc.ForceServerCodec(rawCodec{}),
		grpc.UnknownServiceHandler(constantHandler(response)),
	)
	bound := make([]string, 0, len(addresses))
	for _, address := range addresses {
		listener, err := listen(address)
		if err != nil {
			return err
		}
		bound = append(bound, describe(listener))
		go func() { _ = server.Serve(listener) }()
	}
	line, _ := json.Marshal(map[string]any{"event": "listening", "addresses": bound})
	fmt.Fprintln(os.Stderr, string(line))
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
	server.GracefulStop()
	return nil
}

// constantHandler answers servedMethod with response and every other method
// with UNIMPLEMENTED.
func constantHandler(response []byte) grpc.StreamHandler {
	return func(_ any, stream grpc.ServerStream) error {
		method, _ := grpc.MethodFromServerStream(stream)
		if method != servedMethod {
			return status.Errorf(codes.Unimplemented, "unknown method %s", method)
		}
		var request []byte
		if err := stream.RecvMsg(&request); err != nil {
			return err
		}
		return stream.SendMsg(response)
	}
}

// listen opens a TCP or unix listener for a --listen address.
func listen(address string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(address, "unix:"); ok {
		_ = os.Remove(path)
		return net.Listen("unix", path)
	}
	return net.Listen("tcp", address)
}

// describe names a bound listener the way --listen spells it.
func describe(listener net.Listener) string {
	if listener.Addr().Network() == "unix" {
		return "unix:" + listener.Addr().String()
	}
	return listener.Addr().String()
}
