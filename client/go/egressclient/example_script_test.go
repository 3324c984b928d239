package egressclient_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

// TestExampleScript drives the example program over stdin/stdout with the
// cache on, against a real sidecar, and checks every answer.
func TestExampleScript(t *testing.T) {
	program := buildExample(t)
	server := startCacheSidecar(t, newCachePolicy(t))
	steps := []struct{ command, want string }{
		{`{"get": "script-a"}`, `{"source": {"name": "script-a", "ehlo_domain": "v1", "ttl": "3600s"}}`},
		{`{"get": "missing"}`, `{"error": {"code": "NOT_FOUND", "reason": "SOURCE_NOT_FOUND",
			"message": "get_egress_source 'missing': the policy returned nil (no such source)"}}`},
		{`{"pool": "with-zero"}`, `{"pool": {"name": "with-zero", "entries": [{"name": "one", "weight": 1},
			{"name": "never", "weight": 0}, {"name": "two", "weight": 1}], "ttl": "60s"}}`},
		{`{"select": "weighted", "n": 14}`, `{"sources": ["two", "three", "one", "one", "one", "three", "one",
			"two", "three", "one", "two", "three", "one", "one"]}`},
		{`{"select": "with-zero", "n": 4}`, `{"sources": ["two", "one", "two", "one"]}`},
		{`{"select": "empty", "n": 1}`, `{"error": {"code": "FAILED_PRECONDITION", "reason": "POOL_HAS_NO_SOURCES",
			"message": "pool 'empty' has no source with a weight above 0"}}`},
		{`{"frobnicate": 1}`, ``},
		{`not json`, ``},
		{`{"select": "weighted", "n": "x"}`, ``},
		{`{"get": 7}`, ``},
		{`{"select": "weighted", "n": 0}`, `{"sources": []}`},
	}
	var stdin strings.Builder
	for _, step := range steps {
		stdin.WriteString(step.command + "\n")
	}
	stdin.WriteString(`{"bench": "script-a", "n": 1000}` + "\n" + `{"bench_select": "weighted", "n": 1000}` + "\n" +
		`{"stats": {}}` + "\n")
	cmd := exec.Command(program, "--target", server.UnixTarget, "--cache")
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin.String()), &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v; stderr %s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	if len(lines) != len(steps)+3 {
		t.Fatalf("%d answers for %d commands:\n%s", len(lines), len(steps)+3, stdout.String())
	}
	for i, step := range steps {
		var got map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &got); err != nil {
			t.Fatalf("%s: not JSON: %q", step.command, lines[i])
		}
		if step.want == "" { // a bad command
			failure, _ := got["error"].(map[string]any)
			if failure["code"] != "INVALID_ARGUMENT" || failure["reason"] != "BAD_COMMAND" || failure["message"] == "" {
				t.Errorf("%s: got %s, want a BAD_COMMAND error", step.command, lines[i])
			}
			continue
		}
		var want map[string]any
		if err := json.Unmarshal([]byte(step.want), &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got  %s\n want %s", step.command, lines[i], step.want)
		}
	}
	for _, line := range lines[len(steps) : len(steps)+2] {
		var bench struct {
			NsPerCall *float64 `json:"ns_per_call"`
		}
		if err := json.Unmarshal([]byte(line), &bench); err != nil || bench.NsPerCall == nil || *bench.NsPerCall <= 0 {
			t.Errorf("bench answer %q", line)
		}
	}
	var stats map[string]any
	if err := json.Unmarshal([]byte(lines[len(steps)+2]), &stats); err != nil {
		t.Fatal(err)
	}
	rpcs, _ := stats["rpcs"].(float64)
	if _, isBool := stats["watching"].(bool); len(stats) != 3 || rpcs < 1 || !isBool {
		t.Errorf("stats %q", lines[len(steps)+2])
	}
}

// TestExampleSpecCommands drives the example's commands of the client spec
// (options, cached, get_many, concurrent_get) one line at a time, with
// options from code (EXAMPLE_OPTIONS) and from variables.
func TestExampleSpecCommands(t *testing.T) {
	program := buildExample(t)
	server := startCacheSidecar(t, newCachePolicy(t))
	cmd := exec.Command(program, "--target", server.UnixTarget, "--cache")
	cmd.Env = append(os.Environ(), `EXAMPLE_OPTIONS={"max_entries": 2, "timeout": "1500ms"}`,
		"EGRESS_CLIENT_TIMEOUT=5", "EGRESS_CLIENT_MAX_ENTRIES=9", "EGRESS_CLIENT_STALE_IF_ERROR=250ms")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdoutPipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	answers := bufio.NewScanner(stdoutPipe)
	ask := func(command string) map[string]any {
		t.Helper()
		if _, err := io.WriteString(stdin, command+"\n"); err != nil {
			t.Fatal(err)
		}
		if !answers.Scan() {
			t.Fatalf("%s: no answer; stderr %s", command, stderr.String())
		}
		var got map[string]any
		if err := json.Unmarshal(answers.Bytes(), &got); err != nil {
			t.Fatalf("%s: not JSON: %q", command, answers.Text())
		}
		return got
	}
	expect := func(command, want string) {
		t.Helper()
		var wanted map[string]any
		if err := json.Unmarshal([]byte(want), &wanted); err != nil {
			t.Fatal(err)
		}
		if got := ask(command); !reflect.DeepEqual(got, wanted) {
			t.Errorf("%s:\n got  %v\n want %s", command, got, want)
		}
	}
	waitFor(t, "the example watching", func() bool { return ask(`{"stats": {}}`)["watching"] == true })

	expect(`{"options": {}}`, `{"options": {"target": "`+server.UnixTarget+`", "timeout": "1500ms", "cache": true,
		"max_entries": 2, "stale_if_error": "250ms", "keepalive_interval": "30s", "connect_timeout": "60s"}}`)
	for _, name := range []string{"script-a", "script-b", "script-a", "script-c"} {
		ask(`{"get": "` + name + `"}`)
	}
	expect(`{"cached": {}}`, `{"names": ["script-a", "script-c"]}`) // b went: the least recently used
	expect(`{"get_many": ["script-b", "missing", "script-a"]}`, `{"results": [
		{"source": {"name": "script-b", "ehlo_domain": "v1", "ttl": "3600s"}},
		{"error": {"code": "NOT_FOUND", "reason": "SOURCE_NOT_FOUND",
			"message": "get_egress_source 'missing': the policy returned nil (no such source)"}},
		{"source": {"name": "script-a", "ehlo_domain": "v1", "ttl": "3600s"}}]}`)
	expect(`{"cached": {}}`, `{"names": ["script-a", "script-c"]}`) // get_many neither reads nor stores
	expect(`{"concurrent_get": "script-d", "n": 8}`, `{"sources": 8}`)
	expect(`{"cached": {}}`, `{"names": ["script-c", "script-d"]}`)
	expect(`{"concurrent_get": "missing", "n": 3}`, `{"error": {"code": "NOT_FOUND", "reason": "SOURCE_NOT_FOUND",
		"message": "get_egress_source 'missing': the policy returned nil (no such source)"}}`)
	for _, bad := range []string{`{"get_many": "script-a"}`, `{"concurrent_get": "script-a", "n": -1}`} {
		if failure, _ := ask(bad)["error"].(map[string]any); failure["reason"] != "BAD_COMMAND" {
			t.Errorf("%s: want a BAD_COMMAND error", bad)
		}
	}
}

// TestExampleRefusesBadOptions: a variable that does not parse fails at
// construction naming it and its value; so does a bad EXAMPLE_OPTIONS.
func TestExampleRefusesBadOptions(t *testing.T) {
	program := buildExample(t)
	for _, tc := range []struct {
		env, want string
		exit      int
	}{
		{"EGRESS_CLIENT_TIMEOUT=soon", `EGRESS_CLIENT_TIMEOUT: "soon" is not a duration`, 1},
		{"EGRESS_CLIENT_CACHE=maybe", `EGRESS_CLIENT_CACHE: "maybe" is not a boolean`, 1},
		{`EXAMPLE_OPTIONS={"timeout": "soon"}`, `EXAMPLE_OPTIONS: timeout: "soon" is not a duration`, 2},
		{`EXAMPLE_OPTIONS={"cache": "yes"}`, `EXAMPLE_OPTIONS: cache: "yes" is not a boolean`, 2},
		{`EXAMPLE_OPTIONS={"colour": 1}`, `EXAMPLE_OPTIONS: unknown options colour`, 2},
		{`EXAMPLE_OPTIONS={"max_entries": 0}`, `max_entries: 0 must be at least 1`, 1},
		{"EGRESS_CLIENT_TIMEOUT=0", `EGRESS_CLIENT_TIMEOUT: "0" must be more than 0`, 1},
	} {
		cmd := exec.Command(program, "--target", "unix:/nonexistent.sock")
		cmd.Env = append(os.Environ(), tc.env)
		var stderr bytes.Buffer
		cmd.Stdin, cmd.Stderr = strings.NewReader(""), &stderr
		err := cmd.Run()
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) || exitErr.ExitCode() != tc.exit || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%s: %v, stderr %q; want exit %d and %q", tc.env, err, stderr.String(), tc.exit, tc.want)
		}
	}
}
