package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/egress-resolver/egress-resolver/client/go/egressclient"
	egressv1 "github.com/egress-resolver/egress-resolver/client/go/kumo/egress/v1"
)

// maxLine bounds one command line on stdin.
const maxLine = 1 << 20

// errorJSON is the "error" member of an answer.
type errorJSON struct {
	Code    string `json:"code"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

type poolEntryJSON struct {
	Name   string `json:"name"`
	Weight uint32 `json:"weight"`
}

type poolJSON struct {
	Name    string          `json:"name"`
	Entries []poolEntryJSON `json:"entries"`
	TTL     json.RawMessage `json:"ttl,omitempty"`
}

// badCommand is the answer to a line that is not one of the commands.
func badCommand(format string, args ...any) map[string]any {
	return map[string]any{"error": errorJSON{"INVALID_ARGUMENT", "BAD_COMMAND", fmt.Sprintf(format, args...)}}
}

// failure is the answer to a call that failed.
func failure(err error) map[string]any {
	var resolveErr *egressclient.Error
	if errors.As(err, &resolveErr) {
		return map[string]any{"error": errorJSON{egressclient.CodeName(resolveErr.Code), resolveErr.Reason, resolveErr.Message}}
	}
	return map[string]any{"error": errorJSON{"UNKNOWN", "", err.Error()}}
}

// script answers the commands on in, one JSON line each on out, until EOF.
func script(client *egressclient.Client, in io.Reader, out io.Writer) error {
	lines := bufio.NewScanner(in)
	lines.Buffer(make([]byte, 0, 64*1024), maxLine)
	for lines.Scan() {
		line := bytes.TrimSpace(lines.Bytes())
		if len(line) == 0 {
			continue
		}
		answer, err := json.Marshal(execute(client, line))
		if err != nil {
			return err
		}
		if _, err := out.Write(append(answer, '\n')); err != nil { // unbuffered: one write per answer
			return err
		}
	}
	return lines.Err()
}

// execute runs one command line and returns its answer.
func execute(client *egressclient.Client, line []byte) any {
	var command map[string]json.RawMessage
	if err := json.Unmarshal(line, &command); err != nil {
		return badCommand("not a JSON object: %v", err)
	}
	verb, name, n, problem := parse(command)
	if problem != "" {
		return badCommand("%s", problem)
	}
	if slices.Contains(connectVerbs, verb) {
		return executeConnect(client, verb, name, n, line)
	}
	ctx := context.Background()
	switch verb {
	case "get":
		source, err := client.Get(ctx, name)
		if err != nil {
			return failure(err)
		}
		encoded, err := redactedJSON(source)
		if err != nil {
			return failure(err)
		}
		return map[string]json.RawMessage{"source": encoded}
	case "pool":
		pool, err := client.GetPool(ctx, name)
		if err != nil {
			return failure(err)
		}
		return map[string]any{"pool": poolAnswer(pool)}
	case "select":
		names := make([]string, 0, n)
		for range n {
			chosen, err := client.Select(ctx, name)
			if err != nil {
				return failure(err)
			}
			names = append(names, chosen)
		}
		return map[string]any{"sources": names}
	case "bench":
		nanos, err := elapsedNanos(n, func() error { _, err := client.Get(ctx, name); return err })
		if err != nil {
			return failure(err)
		}
		return map[string]any{"ns_per_call": nanos}
	case "bench_select":
		nanos, err := elapsedNanos(n, func() error { _, err := client.Select(ctx, name); return err })
		if err != nil {
			return failure(err)
		}
		return map[string]any{"ns_per_call": nanos}
	default: // stats
		stats := client.Stats()
		return map[string]any{"rpcs": stats.RPCs, "entries": stats.Entries, "watching": stats.Watching}
	}
}

// verbs are the commands, in the order a line is searched for them (as
// every language's example does: the first one present wins, other keys are
// ignored).
var verbs = append([]string{"get", "pool", "select", "bench_select", "bench", "stats"}, connectVerbs...)

// parse finds the command's verb and arguments, or says what is wrong.
func parse(command map[string]json.RawMessage) (verb, name string, n int, problem string) {
	for _, candidate := range verbs {
		if _, ok := command[candidate]; ok {
			verb = candidate
			break
		}
	}
	switch verb {
	case "":
		return "", "", 0, "unknown command; expected one of " + strings.Join(verbs, ", ")
	case "stats", "suspended":
		return verb, "", 0, ""
	}
	if err := json.Unmarshal(command[verb], &name); err != nil {
		return "", "", 0, fmt.Sprintf("%q takes a string", verb)
	}
	n = 1
	if raw, ok := command["n"]; ok {
		if err := json.Unmarshal(raw, &n); err != nil || n < 0 {
			return "", "", 0, "'n' takes an integer of 0 or more"
		}
	}
	return verb, name, n, ""
}

// poolAnswer renders a pool with every weight (0 included) and the ttl in
// protobuf JSON Duration form ("60s").
func poolAnswer(pool *egressv1.EgressPool) poolJSON {
	answer := poolJSON{Name: pool.GetName(), Entries: make([]poolEntryJSON, 0, len(pool.GetEntries()))}
	for _, entry := range pool.GetEntries() {
		answer.Entries = append(answer.Entries, poolEntryJSON{entry.GetName(), entry.GetWeight()})
	}
	if pool.GetTtl() != nil {
		if ttl, err := protojson.Marshal(pool.GetTtl()); err == nil {
			answer.TTL = ttl
		}
	}
	return answer
}
