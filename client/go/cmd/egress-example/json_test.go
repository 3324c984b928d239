package main

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"

	egressv1 "github.com/egress-resolver/egress-resolver/client/go/kumo/egress/v1"
)

func TestRedactedJSONHidesVaultToken(t *testing.T) {
	source := &egressv1.EgressSource{
		Name: "vaulted",
		Socks5ProxyPassword: &egressv1.KeySource{Source: &egressv1.KeySource_Vault{Vault: &egressv1.VaultKeySource{
			VaultToken: proto.String("s.secret"),
			VaultMount: "secret",
			VaultPath:  "mta/socks",
		}}},
	}
	line, err := redactedJSON(source)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"vaulted","socks5_proxy_password":{"vault":{"vault_token":"[redacted]","vault_mount":"secret","vault_path":"mta/socks"}}}`
	if string(line) != want {
		t.Errorf("got  %s\nwant %s", line, want)
	}
	if got := source.GetSocks5ProxyPassword().GetVault().GetVaultToken(); got != "s.secret" {
		t.Errorf("the caller's message was modified: vault_token = %q", got)
	}
}

func TestRedactedJSONKeepsFilePath(t *testing.T) {
	source := &egressv1.EgressSource{
		Name:                "filed",
		Socks5ProxyPassword: &egressv1.KeySource{Source: &egressv1.KeySource_File{File: "/etc/mta/socks"}},
	}
	line, err := redactedJSON(source)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(line), `"file":"/etc/mta/socks"`) {
		t.Errorf("a file reference is not a secret and should be printed: %s", line)
	}
}

func TestRedactedJSONPrintsSuspendRules(t *testing.T) {
	source := &egressv1.EgressSource{
		Name: "suspending",
		SuspendWhenUnplumbed: &egressv1.SuspendOnFailure{
			Trigger:  &egressv1.SuspendOnFailure_Immediate{Immediate: &emptypb.Empty{}},
			Duration: durationpb.New(5 * time.Minute),
		},
		SuspendWhenProxyUnhealthy: &egressv1.SuspendOnFailure{
			Trigger:  &egressv1.SuspendOnFailure_Threshold{Threshold: "3/300s"},
			Duration: durationpb.New(1500 * time.Millisecond),
		},
	}
	line, err := redactedJSON(source)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"suspending",` +
		`"suspend_when_unplumbed":{"immediate":{},"duration":"300s"},` +
		`"suspend_when_proxy_unhealthy":{"threshold":"3/300s","duration":"1.500s"}}`
	if string(line) != want {
		t.Errorf("got  %s\nwant %s", line, want)
	}
}

func TestUsageErrorExitsTwo(t *testing.T) {
	var stdout, stderr strings.Builder
	if code := run([]string{"a-name", "another"}, strings.NewReader(""), &stdout, &stderr); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if !strings.HasPrefix(stderr.String(), "usage: egress-example") {
		t.Errorf("stderr %q", stderr.String())
	}
}
