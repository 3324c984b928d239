package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/textproto"
	"slices"
	"strconv"
	"time"

	"github.com/egress-resolver/egress-resolver/client/go/egressclient"
)

// The commands that connect (docs/clients/connect.md, "The example protocol"):
//
//	{"connect": SOURCE, "to": "HOST:PORT"[, "timeout": S]}      -> {"connected": {"source": NAME, "ehlo": SENT_NAME}}
//	{"connect_pool": POOL, "to": "HOST:PORT"[, "timeout": S]}   -> the same, through the source Select chose
//	{"suspended": {}}                                           -> {"names": [suspended source names, sorted]}
//	{"bench_connect": SOURCE, "to": "HOST:PORT", "n": N}        -> {"ns_per_call": X, "plain_ns_per_call": Y}
//	{"wait_suspended": NAME, "timeout": S}                      -> {"at_ns": T}
//
// connect reads the banner, says EHLO and reads the reply, says QUIT.
// bench_connect gives the median of N connects + close, and of N plain TCP
// connects + close to the same address (no bind). wait_suspended answers the
// Unix time in ns at which the client first knew NAME suspended (checked
// every 1 ms), or DEADLINE_EXCEEDED after S seconds (default 10).

// connectVerbs are the commands this file answers.
var connectVerbs = []string{"connect_pool", "connect", "bench_connect", "wait_suspended", "suspended"}

// connectArgs are the members these commands read besides their verb.
type connectArgs struct {
	To      string   `json:"to"`
	Timeout *float64 `json:"timeout"`
}

// executeConnect answers one of connectVerbs.
func executeConnect(client *egressclient.Client, verb, name string, n int, line []byte) any {
	if verb == "suspended" {
		names := []string{}
		for _, known := range client.Suspended() {
			names = append(names, known.Name)
		}
		return map[string]any{"names": names}
	}
	var args connectArgs
	if err := json.Unmarshal(line, &args); err != nil {
		return badCommand("'to' takes a string and 'timeout' a number of seconds")
	}
	if args.Timeout != nil && !(*args.Timeout > 0) {
		return badCommand("'timeout' takes a number of seconds above 0")
	}
	if verb == "wait_suspended" {
		timeout := 10 * time.Second
		if args.Timeout != nil {
			timeout = time.Duration(*args.Timeout * float64(time.Second))
		}
		return waitSuspended(client, name, timeout)
	}
	if args.To == "" {
		return badCommand("%q needs \"to\": \"HOST:PORT\"", verb)
	}
	timeout := client.Options().ConnectTimeout
	if args.Timeout != nil {
		timeout = time.Duration(*args.Timeout * float64(time.Second))
	}
	if verb == "bench_connect" { // each call has its own deadline
		return benchConnect(client, name, args.To, n, timeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if verb == "connect_pool" {
		chosen, err := client.Select(ctx, name)
		if err != nil {
			return failure(err)
		}
		name = chosen
	}
	return greet(ctx, client, name, args.To)
}

// greet connects through source, reads the banner, says EHLO and QUIT.
func greet(ctx context.Context, client *egressclient.Client, source, to string) any {
	conn, ehlo, err := client.ConnectName(ctx, source, to)
	if err != nil {
		return failure(err)
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	smtp := textproto.NewConn(conn)
	if _, _, err := smtp.ReadResponse(220); err != nil {
		return smtpFailure(source, "banner", err)
	}
	if err := smtp.PrintfLine("EHLO %s", ehlo); err != nil {
		return smtpFailure(source, "EHLO", err)
	}
	if _, _, err := smtp.ReadResponse(250); err != nil {
		return smtpFailure(source, "EHLO", err)
	}
	if err := smtp.PrintfLine("QUIT"); err == nil {
		_, _, _ = smtp.ReadResponse(221) // the server may close at once
	}
	return map[string]any{"connected": map[string]string{"source": source, "ehlo": ehlo}}
}

func smtpFailure(source, step string, err error) any {
	return map[string]any{"error": errorJSON{"UNKNOWN", "SMTP",
		fmt.Sprintf("source %s: SMTP %s: %v", source, step, err)}}
}

// benchConnect times n connects + close through source, then n plain TCP
// connects + close to the address connect reaches directly (to, with the
// source's remote_port), each after one untimed try and within timeout;
// medians in ns.
func benchConnect(client *egressclient.Client, source, to string, n int, timeout time.Duration) any {
	definition, err := client.Get(context.Background(), source)
	if err != nil {
		return failure(err)
	}
	plainTo := to
	if definition.RemotePort != nil {
		if host, _, err := net.SplitHostPort(to); err == nil {
			plainTo = net.JoinHostPort(host, strconv.Itoa(int(definition.GetRemotePort())))
		}
	}
	connect := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		conn, _, err := client.ConnectName(ctx, source, to)
		if err == nil {
			err = conn.Close()
		}
		return err
	}
	dialer := net.Dialer{Timeout: timeout}
	plain := func() error {
		conn, err := dialer.Dial("tcp", plainTo)
		if err == nil {
			err = conn.Close()
		}
		return err
	}
	connectNanos, err := medianNanos(n, connect)
	if err != nil {
		return failure(err)
	}
	plainNanos, err := medianNanos(n, plain)
	if err != nil {
		return failure(err)
	}
	return map[string]any{"ns_per_call": connectNanos, "plain_ns_per_call": plainNanos}
}

// medianNanos is the median time of n calls, after one untimed call.
func medianNanos(n int, call func() error) (float64, error) {
	if err := call(); err != nil {
		return 0, err
	}
	times := make([]time.Duration, 0, n)
	for range n {
		started := time.Now()
		if err := call(); err != nil {
			return 0, err
		}
		times = append(times, time.Since(started))
	}
	if len(times) == 0 {
		return 0, nil
	}
	slices.Sort(times)
	middle := len(times) / 2
	if len(times)%2 == 1 {
		return float64(times[middle]), nil
	}
	return float64(times[middle-1]+times[middle]) / 2, nil
}

// waitSuspended polls the client's suspensions every 1 ms until name is one.
func waitSuspended(client *egressclient.Client, name string, timeout time.Duration) any {
	deadline := time.Now().Add(timeout)
	ticker := time.NewTicker(time.Millisecond)
	defer ticker.Stop()
	for {
		for _, known := range client.Suspended() {
			if known.Name == name {
				return map[string]any{"at_ns": known.KnownSince.UnixNano()}
			}
		}
		if !time.Now().Before(deadline) {
			return map[string]any{"error": errorJSON{"DEADLINE_EXCEEDED", "",
				fmt.Sprintf("%s was not known to be suspended within %s", name, timeout)}}
		}
		<-ticker.C
	}
}
