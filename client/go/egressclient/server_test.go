package egressclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// startupDeadline bounds the server start (Python import, Lua policy load) on
// a slow, loaded CI machine.
const startupDeadline = 60 * time.Second

// serviceName is the gRPC service whose health status says the policy is loaded.
const serviceName = "kumo.egress.v1.EgressResolverService"

// liveServer is a running `egress-resolver serve` process.
type liveServer struct {
	// UnixTarget is the "unix:/path" address the server listens on.
	UnixTarget string
	// TCPTarget is the "127.0.0.1:port" address the server listens on.
	TCPTarget string

	config   sidecarConfig
	cmd      *exec.Cmd
	exited   chan error
	log      *serverLog
	stopOnce sync.Once
}

// serverLog collects the server's stderr (JSON lines) and reports the
// addresses of the "listening" event.
type serverLog struct {
	mu        sync.Mutex
	all       bytes.Buffer
	partial   []byte
	listening chan []string
}

// Write implements io.Writer for exec.Cmd.Stderr.
func (l *serverLog) Write(data []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(data)
	l.partial = append(l.partial, data...)
	for {
		newline := bytes.IndexByte(l.partial, '\n')
		if newline < 0 {
			return len(data), nil
		}
		var event struct {
			Event     string   `json:"event"`
			Addresses []string `json:"addresses"`
		}
		if json.Unmarshal(l.partial[:newline], &event) == nil && event.Event == "listening" {
			select {
			case l.listening <- event.Addresses:
			default:
			}
		}
		l.partial = l.partial[newline+1:]
	}
}

// String returns everything the server logged so far.
func (l *serverLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// repoPath resolves a path relative to the repository root (three levels up
// from this package directory).
func repoPath(t testing.TB, relative string) string {
	t.Helper()
	path, err := filepath.Abs(filepath.Join("..", "..", "..", relative))
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// startServer runs the real sidecar with the fixture policy on a unix socket
// and on 127.0.0.1:0, waits until it reports SERVING and stops it (SIGTERM,
// then SIGKILL) when the test ends. EGRESS_RESOLVER overrides the executable.
func startServer(t *testing.T) *liveServer {
	t.Helper()
	return startServerWithPolicy(t, "tests/fixtures/clients.lua")
}

// startServerWithPolicy is startServer with another policy (a path relative
// to the repository root); benchmarks use it with bench/policy.lua.
func startServerWithPolicy(t testing.TB, policy string) *liveServer {
	t.Helper()
	return startSidecar(t, sidecarConfig{Policy: repoPath(t, policy)})
}

// sidecarConfig says how to start a sidecar for startSidecar.
type sidecarConfig struct {
	// Policy is the absolute path of the Lua policy.
	Policy string
	// Socket is the unix socket path (a new one in t.TempDir() when empty);
	// a restarted sidecar reuses its predecessor's.
	Socket string
	// Env is added to the server's environment ("KEY=value").
	Env []string
	// Args are extra `serve` arguments.
	Args []string
}

// startSidecar runs `egress-resolver serve` as config says, waits until it
// reports SERVING and stops it when the test ends (if it still runs).
func startSidecar(t testing.TB, config sidecarConfig) *liveServer {
	t.Helper()
	executable := os.Getenv("EGRESS_RESOLVER")
	if executable == "" {
		executable = repoPath(t, ".venv/bin/egress-resolver")
	}
	if _, err := os.Stat(executable); err != nil {
		t.Fatalf("no server executable (run `make install` or set EGRESS_RESOLVER): %v", err)
	}
	if config.Socket == "" {
		config.Socket = filepath.Join(t.TempDir(), "s.sock")
	}
	args := append([]string{"serve", "--policy", config.Policy,
		"--listen", "unix:" + config.Socket, "--listen", "127.0.0.1:0"}, config.Args...)
	cmd := exec.Command(executable, args...)
	cmd.Env = append(os.Environ(), config.Env...)
	log := &serverLog{listening: make(chan []string, 1)}
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", executable, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	server := &liveServer{config: config, cmd: cmd, exited: exited, log: log}
	t.Cleanup(func() { server.Stop(t) })

	select {
	case addresses := <-log.listening:
		for _, address := range addresses {
			if strings.HasPrefix(address, "unix:") {
				server.UnixTarget = address
			} else {
				server.TCPTarget = address
			}
		}
	case err := <-exited:
		exited <- err
		t.Fatalf("server exited before listening (%v); log:\n%s", err, log)
	case <-time.After(startupDeadline):
		t.Fatalf("server not listening after %s; log:\n%s", startupDeadline, log)
	}
	if server.UnixTarget == "" || server.TCPTarget == "" {
		t.Fatalf("want a unix and a TCP address in the listening event; log:\n%s", log)
	}
	waitServing(t, server.UnixTarget, log)
	return server
}

// Reload sends SIGHUP: the sidecar reloads its policy.
func (s *liveServer) Reload(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("SIGHUP: %v", err)
	}
}

// Stop stops the sidecar (once; later calls do nothing).
func (s *liveServer) Stop(t testing.TB) {
	s.stopOnce.Do(func() { stopServer(t, s.cmd, s.exited, s.log) })
}

// Restart stops the sidecar and starts a new one with the same policy on
// the same unix socket (a new TCP port).
func (s *liveServer) Restart(t testing.TB) *liveServer {
	t.Helper()
	s.Stop(t)
	return startSidecar(t, s.config)
}

// waitServing follows the health Watch stream until the policy is loaded.
func waitServing(t testing.TB, target string, log *serverLog) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startupDeadline)
	defer cancel()
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := healthpb.NewHealthClient(conn).Watch(ctx,
		&healthpb.HealthCheckRequest{Service: serviceName}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatalf("health watch: %v; log:\n%s", err, log)
	}
	for {
		update, err := stream.Recv()
		if err != nil {
			t.Fatalf("server never reported SERVING: %v; log:\n%s", err, log)
		}
		if update.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return
		}
	}
}

// stopServer sends SIGTERM, kills the server if it has not exited in time and
// reports an unclean exit.
func stopServer(t testing.TB, cmd *exec.Cmd, exited chan error, log *serverLog) {
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return // already exited and reaped
	}
	select {
	case err := <-exited:
		if err != nil && !t.Failed() {
			t.Errorf("server did not stop cleanly on SIGTERM: %v; log:\n%s", err, log)
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		t.Errorf("server ignored SIGTERM for 20s and was killed; log:\n%s", log)
	}
}
