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
	"sync"

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

// request is one parsed command line.
type request struct {
	verb  string
	name  string   // the verb's string argument
	names []string // get_many's names
	n     int      // "n", 1 unless given
}

// execute runs one command line and returns its answer.
func execute(client *egressclient.Client, line []byte) any {
	var command map[string]json.RawMessage
	if err := json.Unmarshal(line, &command); err != nil {
		return badCommand("not a JSON object: %v", err)
	}
	req, problem := parse(command)
	if problem != "" {
		return badCommand("%s", problem)
	}
	name, n := req.name, req.n
	if slices.Contains(connectVerbs, req.verb) {
		return executeConnect(client, req.verb, name, n, line)
	}
	ctx := context.Background()
	switch req.verb {
	case "get":
		source, err := client.Get(ctx, name)
		if err != nil {
			return failure(err)
		}
		return sourceAnswer(source)
	case "get_many":
		return getMany(ctx, client, req.names)
	case "concurrent_get":
		return concurrentGet(ctx, client, name, n)
	case "cached":
		return map[string]any{"names": nonNil(client.CachedSources())}
	case "options":
		return map[string]any{"options": optionsAnswer(client.Options())}
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

// sourceAnswer is {"source": SOURCE}, secrets redacted.
func sourceAnswer(source *egressv1.EgressSource) any {
	encoded, err := redactedJSON(source)
	if err != nil {
		return failure(err)
	}
	return map[string]json.RawMessage{"source": encoded}
}

// getMany resolves names in one BatchGetEgressSources call: one result per
// name, in order, each {"source": …} or {"error": …}; the error of the whole
// call when it failed.
func getMany(ctx context.Context, client *egressclient.Client, names []string) any {
	results, err := client.GetMany(ctx, names)
	if err != nil {
		return failure(err)
	}
	answers := make([]any, 0, len(results))
	for _, result := range results {
		if result.Err != nil {
			answers = append(answers, failure(result.Err))
			continue
		}
		answers = append(answers, sourceAnswer(result.Source))
	}
	return map[string]any{"results": answers}
}

// concurrentGet starts n gets of name at once (released together) and
// answers {"sources": n} when all succeed, else the error of the first
// get, in start order, that failed.
func concurrentGet(ctx context.Context, client *egressclient.Client, name string, n int) any {
	start := make(chan struct{})
	errs := make([]error, n)
	var done sync.WaitGroup
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			<-start
			_, errs[i] = client.Get(ctx, name)
		}()
	}
	close(start)
	done.Wait()
	for _, err := range errs {
		if err != nil {
			return failure(err)
		}
	}
	return map[string]any{"sources": n}
}

// nonNil makes a nil list encode as [].
func nonNil(names []string) []string {
	if names == nil {
		return []string{}
	}
	return names
}

// verbs are the commands, in the order a line is searched for them (as
// every language's example does: the first one present wins, other keys are
// ignored).
var verbs = append([]string{"get_many", "get", "concurrent_get", "cached", "options", "pool", "select",
	"bench_select", "bench", "stats"}, connectVerbs...)

// parse finds the command's verb and arguments, or says what is wrong.
func parse(command map[string]json.RawMessage) (request, string) {
	var req request
	for _, candidate := range verbs {
		if _, ok := command[candidate]; ok {
			req.verb = candidate
			break
		}
	}
	switch req.verb {
	case "":
		return req, "unknown command; expected one of " + strings.Join(verbs, ", ")
	case "stats", "suspended", "cached", "options":
		return req, ""
	case "get_many":
		if err := json.Unmarshal(command[req.verb], &req.names); err != nil || req.names == nil {
			return req, `"get_many" takes a list of names`
		}
		return req, ""
	}
	if err := json.Unmarshal(command[req.verb], &req.name); err != nil {
		return req, fmt.Sprintf("%q takes a string", req.verb)
	}
	req.n = 1
	if raw, ok := command["n"]; ok {
		if err := json.Unmarshal(raw, &req.n); err != nil || req.n < 0 {
			return req, "'n' takes an integer of 0 or more"
		}
	}
	return req, ""
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
