package egressclient_test

import (
	"bytes"
	"encoding/json"
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
