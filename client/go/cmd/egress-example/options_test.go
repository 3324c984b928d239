package main

import (
	"strings"
	"testing"
	"time"

	"github.com/egress-resolver/egress-resolver/client/go/egressclient"
)

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 2 * time.Second: "2s", 500 * time.Millisecond: "500ms", 1500 * time.Millisecond: "1500ms",
		time.Minute: "60s", 1234567 * time.Microsecond: "1235ms", 300 * time.Microsecond: "0s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestCodeOptionsWinOverVariables(t *testing.T) {
	t.Setenv("EGRESS_CLIENT_TIMEOUT", "9")
	t.Setenv("EGRESS_CLIENT_CACHE", "no")
	t.Setenv("EGRESS_CLIENT_MAX_ENTRIES", "9")
	t.Setenv("EGRESS_CLIENT_STALE_IF_ERROR", "9")
	t.Setenv("EGRESS_CLIENT_KEEPALIVE_INTERVAL", "9")
	t.Setenv("EGRESS_CLIENT_CONNECT_TIMEOUT", "9")
	target, opts, err := codeOptions(`{"target": "unix:/tmp/x.sock", "timeout": "300ms", "cache": true,
		"max_entries": 3, "stale_if_error": 30, "keepalive_interval": "45s", "connect_timeout": 1.5}`)
	if err != nil {
		t.Fatal(err)
	}
	client, err := egressclient.New(target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	got := optionsAnswer(client.Options())
	want := optionsJSON{Target: "unix:/tmp/x.sock", Timeout: "300ms", Cache: true, MaxEntries: 3,
		StaleIfError: "30s", KeepaliveInterval: "45s", ConnectTimeout: "1500ms"}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestCodeOptionsRefusals(t *testing.T) {
	if target, opts, err := codeOptions("  "); err != nil || target != "" || opts != nil {
		t.Errorf("empty EXAMPLE_OPTIONS: %q %v %v, want nothing", target, opts, err)
	}
	for text, want := range map[string]string{
		`[1]`:                       "not a JSON object",
		`null`:                      "not a JSON object",
		`{"timeout": true}`:         "timeout: true is not a duration",
		`{"timeout": "-1s"}`:        "timeout: \"-1s\" must be a finite duration",
		`{"max_entries": 2.5}`:      "max_entries: 2.5 is not an integer",
		`{"max_entries": "2"}`:      `max_entries: "2" is not an integer`,
		`{"cache": 1}`:              "cache: 1 is not a boolean",
		`{"target": ""}`:            `target: "" is not an address`,
		`{"ttl": 1, "cache": true}`: "unknown options ttl",
	} {
		_, _, err := codeOptions(text)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "EXAMPLE_OPTIONS: ") {
			t.Errorf("%s: %v, want an EXAMPLE_OPTIONS error with %q", text, err, want)
		}
	}
}

// TestFlagsWinOverExampleOptions: EXAMPLE_OPTIONS gives options in code,
// and --target, --cache and --timeout win over the same keys.
func TestFlagsWinOverExampleOptions(t *testing.T) {
	for _, name := range optionNames { // empty: unset, whatever the environment says
		t.Setenv("EGRESS_CLIENT_"+strings.ToUpper(name), "")
	}
	t.Setenv("EXAMPLE_OPTIONS", `{"target": "unix:/from-json.sock", "cache": false, "timeout": "300ms",
		"max_entries": 4}`)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, `{"options":{"target":"unix:/from-json.sock","timeout":"300ms","cache":false,"max_entries":4,` +
			`"stale_if_error":"0s","keepalive_interval":"30s","connect_timeout":"60s"}}`},
		{[]string{"--target", "unix:/flag.sock", "--cache", "--timeout", "1.5s"},
			`{"options":{"target":"unix:/flag.sock","timeout":"1500ms","cache":true,"max_entries":4,` +
				`"stale_if_error":"0s","keepalive_interval":"30s","connect_timeout":"60s"}}`},
	} {
		var stdout, stderr strings.Builder
		if code := run(tc.args, strings.NewReader(`{"options": {}}`+"\n"), &stdout, &stderr); code != 0 {
			t.Fatalf("%v: exit %d, stderr %s", tc.args, code, stderr.String())
		}
		if got := strings.TrimSpace(stdout.String()); got != tc.want {
			t.Errorf("%v:\n got  %s\n want %s", tc.args, got, tc.want)
		}
	}
}
