package egressclient_test

import (
	"bufio"
	"encoding/json"
	"io"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"
)

// exampleProcess is the example program reading commands on a pipe.
type exampleProcess struct {
	stdin   io.WriteCloser
	answers *bufio.Scanner
	cmd     *exec.Cmd
}

func startExample(t *testing.T, program string, args ...string) *exampleProcess {
	t.Helper()
	cmd := exec.Command(program, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &exampleProcess{stdin: stdin, answers: bufio.NewScanner(stdout), cmd: cmd}
	t.Cleanup(func() {
		_ = stdin.Close() // EOF: the program exits
		if err := cmd.Wait(); err != nil {
			t.Errorf("the example program: %v", err)
		}
	})
	return p
}

func (p *exampleProcess) send(t *testing.T, command string) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, command+"\n"); err != nil {
		t.Fatal(err)
	}
}

func (p *exampleProcess) answer(t *testing.T) map[string]any {
	t.Helper()
	if !p.answers.Scan() {
		t.Fatalf("no answer: %v", p.answers.Err())
	}
	var got map[string]any
	if err := json.Unmarshal(p.answers.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %q", p.answers.Text())
	}
	return got
}

func (p *exampleProcess) ask(t *testing.T, command string) map[string]any {
	t.Helper()
	p.send(t, command)
	return p.answer(t)
}

func expectAnswer(t *testing.T, command string, got map[string]any, want string) {
	t.Helper()
	var wanted map[string]any
	if err := json.Unmarshal([]byte(want), &wanted); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, wanted) {
		t.Errorf("%s:\n got  %v\n want %s", command, got, want)
	}
}

func expectError(t *testing.T, command string, got map[string]any, code, reason, messagePrefix string) {
	t.Helper()
	failure, _ := got["error"].(map[string]any)
	message, _ := failure["message"].(string)
	if failure["code"] != code || failure["reason"] != reason || !strings.HasPrefix(message, messagePrefix) {
		t.Errorf("%s: got %v, want %s [%s] %q…", command, got, code, reason, messagePrefix)
	}
}

// TestExampleConnectCommands plays the connect commands of the example
// protocol with two example processes on one sidecar: one connects through
// an unplumbed source, the other (cache on) learns of the suspension.
func TestExampleConnectCommands(t *testing.T) {
	program := buildExample(t)
	smtp := startSMTP(t)
	server := startConnectSidecar(t, smtp)
	to := smtp.Addr()
	watcher := startExample(t, program, "--target", server.TCPTarget, "--cache")
	expectAnswer(t, "suspended", watcher.ask(t, `{"suspended": {}}`), `{"names": []}`)
	watcher.send(t, `{"wait_suspended": "ip-9", "timeout": 60}`)

	connector := startExample(t, program, "--target", server.UnixTarget)
	command := `{"connect": "ip-2", "to": "` + to + `"}`
	expectAnswer(t, command, connector.ask(t, command), `{"connected": {"source": "ip-2", "ehlo": "mta2.example.com"}}`)
	if got := smtp.Next(t); got != (smtpSession{Peer: "127.0.0.2", Ehlo: "mta2.example.com"}) {
		t.Errorf("the SMTP server saw %+v", got)
	}
	before := time.Now()
	command = `{"connect": "ip-9", "to": "` + to + `", "timeout": 5}`
	expectError(t, command, connector.ask(t, command), "UNAVAILABLE", "SOURCE_UNPLUMBED",
		"source ip-9: bind 192.0.2.9:0 failed: cannot assign requested address (EADDRNOTAVAIL)")
	expectAnswer(t, "suspended", connector.ask(t, `{"suspended": {}}`), `{"names": ["ip-9"]}`)
	expectError(t, command, connector.ask(t, command), "UNAVAILABLE", "SOURCE_SUSPENDED", "source ip-9 is suspended until ")

	waited := watcher.answer(t)
	atNanos, ok := waited["at_ns"].(float64)
	if !ok || atNanos < float64(before.UnixNano()) || atNanos > float64(time.Now().UnixNano()) {
		t.Errorf("wait_suspended: %v, want a time between the report and now", waited)
	}
	for range 4 {
		command = `{"connect_pool": "mixed", "to": "` + to + `"}`
		got := watcher.ask(t, command)
		connected, _ := got["connected"].(map[string]any)
		if source := connected["source"]; source != "ip-2" && source != "ip-3" {
			t.Errorf("%s: %v, want ip-2 or ip-3", command, got)
		}
		smtp.Next(t)
	}

	command = `{"bench_connect": "ip-2", "to": "` + to + `", "n": 5}`
	bench := connector.ask(t, command)
	connectNanos, _ := bench["ns_per_call"].(float64)
	plainNanos, _ := bench["plain_ns_per_call"].(float64)
	if connectNanos <= 0 || plainNanos <= 0 {
		t.Errorf("%s: %v", command, bench)
	}
	expectError(t, "wait_suspended", connector.ask(t, `{"wait_suspended": "ip-2", "timeout": 0.05}`),
		"DEADLINE_EXCEEDED", "", "ip-2 was not known to be suspended within 50ms")
	for _, bad := range []string{`{"connect": "ip-2"}`, `{"connect": "ip-2", "to": "` + to + `", "timeout": -1}`,
		`{"connect_pool": 3, "to": "` + to + `"}`} {
		expectError(t, bad, connector.ask(t, bad), "INVALID_ARGUMENT", "BAD_COMMAND", "")
	}
}
