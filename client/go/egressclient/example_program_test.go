package egressclient_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fullJSON is the example program's output for "full", as parsed JSON.
var fullJSON = map[string]any{
	"name":                         "full",
	"source_address":               "10.0.0.1",
	"ehlo_domain":                  "mta1.examplecorp.com",
	"remote_port":                  2525.0,
	"ha_proxy_server":              "10.0.0.9:5000",
	"ha_proxy_source_address":      "10.0.0.2",
	"ttl":                          "90s",
	"socks5_proxy_server":          "[2001:db8::1]:1080",
	"socks5_proxy_source_address":  "2001:db8::2",
	"socks5_proxy_username":        "mta",
	"socks5_proxy_password":        map[string]any{"key_data": "[redacted]"},
	"suspend_when_unplumbed":       map[string]any{"immediate": map[string]any{}, "duration": "300s"},
	"suspend_when_proxy_unhealthy": map[string]any{"threshold": "3/300s", "duration": "600s"},
}

// buildExample builds cmd/egress-example into a temporary directory.
func buildExample(t *testing.T) string {
	t.Helper()
	program := filepath.Join(t.TempDir(), "egress-example")
	build := exec.Command("go", "build", "-o", program, "../cmd/egress-example")
	if output, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, output)
	}
	return program
}

// testExampleProgram checks the example's output contract with a NAME.
func testExampleProgram(t *testing.T, target string) {
	program := buildExample(t)

	t.Run("full", func(t *testing.T) {
		stdout, stderr, exitCode := runProgram(t, program, "--target", target, "full")
		if exitCode != 0 || stderr != "" {
			t.Fatalf("exit %d, stderr %q", exitCode, stderr)
		}
		if strings.Count(stdout, "\n") != 1 || !strings.HasSuffix(stdout, "\n") {
			t.Errorf("want exactly one line, got %q", stdout)
		}
		if strings.Contains(stdout, "hunter2") {
			t.Errorf("the secret leaked: %s", stdout)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("not JSON: %v: %q", err, stdout)
		}
		if !reflect.DeepEqual(got, fullJSON) {
			t.Errorf("got  %v\nwant %v", got, fullJSON)
		}
	})

	t.Run("missing", func(t *testing.T) {
		stdout, stderr, exitCode := runProgram(t, program, "--target", target, "missing")
		if exitCode != 1 || stdout != "" {
			t.Errorf("exit %d, stdout %q; want 1 and nothing", exitCode, stdout)
		}
		prefix, suffix := "NOT_FOUND: get_egress_source 'missing': ", " [SOURCE_NOT_FOUND]\n"
		if !strings.HasPrefix(stderr, prefix) || !strings.HasSuffix(stderr, suffix) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("stderr %q, want one line %q...%q", stderr, prefix, suffix)
		}
	})
}

// runProgram runs the example program and returns its output and exit code.
func runProgram(t *testing.T, program string, args ...string) (stdout, stderr string, exitCode int) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(program, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		exitCode = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("run %s: %v", program, err)
	}
	return out.String(), errOut.String(), exitCode
}
