package egressclient_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/egress-resolver/egress-resolver/client/go/egressclient"
)

// The benchmarks run only with -bench (`make bench-client`), never in
// `make test-go`; each starts and stops its own sidecar like the live tests.

// BenchmarkGetUncached measures one Get against a real sidecar: a round trip
// over TCP loopback to `egress-resolver serve --policy bench/policy.lua`,
// answered from the server's cache (the name is resolved once before the
// timed loop). The client's cache is off, so every Get is a call.
func BenchmarkGetUncached(b *testing.B) {
	server := startServerWithPolicy(b, "bench/policy.lua")
	client, err := egressclient.New(server.TCPTarget, egressclient.WithTimeout(callTimeout))
	if err != nil {
		b.Fatalf("New(%q): %v", server.TCPTarget, err)
	}
	b.Cleanup(func() { _ = client.Close() })
	ctx := context.Background()
	const name = "ip-1"
	if _, err := client.Get(ctx, name); err != nil { // connect, and fill the server's cache
		b.Fatalf("Get(%s): %v", name, err)
	}
	b.ReportAllocs()
	for b.Loop() { // b.Loop resets the timer on its first call: the setup above is not timed
		if _, err := client.Get(ctx, name); err != nil {
			b.Fatalf("Get(%s): %v", name, err)
		}
	}
}

// cachedBenchClient is a client with the cache on, watching, with name cached.
func cachedBenchClient(b *testing.B, target, name string) *egressclient.Client {
	client := newCachedClient(b, target)
	mustGet(b, client, name)
	mustGet(b, client, name)
	return client
}

// BenchmarkGetCached measures a Get served from the client's cache: a map
// lookup under a mutex and a clock read, no call (checked after the loop).
func BenchmarkGetCached(b *testing.B) {
	server := startServerWithPolicy(b, "bench/policy.lua")
	const name = "ip-1"
	client := cachedBenchClient(b, server.TCPTarget, name)
	ctx := context.Background()
	rpcs := client.Stats().RPCs
	b.ReportAllocs()
	for b.Loop() {
		if _, err := client.Get(ctx, name); err != nil {
			b.Fatalf("Get(%s): %v", name, err)
		}
	}
	if client.Stats().RPCs != rpcs {
		b.Fatalf("a cached Get made %d calls", client.Stats().RPCs-rpcs)
	}
}

// BenchmarkGetCachedParallel is BenchmarkGetCached from GOMAXPROCS goroutines at once.
func BenchmarkGetCachedParallel(b *testing.B) {
	server := startServerWithPolicy(b, "bench/policy.lua")
	const name = "ip-1"
	client := cachedBenchClient(b, server.TCPTarget, name)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer() // RunParallel, unlike b.Loop, would time the setup above
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := client.Get(ctx, name); err != nil {
				b.Errorf("Get(%s): %v", name, err)
				return
			}
		}
	})
}

// BenchmarkSelect measures Select on a cached pool (weights 5/2/3): the
// pool's cache lookup and one step of kumod's weighted round robin.
func BenchmarkSelect(b *testing.B) {
	server := startCacheSidecar(b, newCachePolicy(b))
	client := newCachedClient(b, server.TCPTarget)
	ctx := context.Background()
	for range 2 {
		if _, err := client.Select(ctx, "weighted"); err != nil {
			b.Fatal(err)
		}
	}
	rpcs := client.Stats().RPCs
	b.ReportAllocs()
	for b.Loop() {
		if _, err := client.Select(ctx, "weighted"); err != nil {
			b.Fatal(err)
		}
	}
	if client.Stats().RPCs != rpcs {
		b.Fatalf("Select on a cached pool made %d calls", client.Stats().RPCs-rpcs)
	}
}

// reloads is how many policy changes BenchmarkReloadToFresh times.
const reloads = 100

// BenchmarkReloadToFresh measures, over 100 reloads of a changed policy, the
// time from the SIGHUP to the cache no longer returning the old definition
// (the sidecar's reload, the invalidation reaching the client, and the Get
// after it fetching the new definition), polled every 100 µs. It reports
// p50-ms, p99-ms and max-ms, and event-p50-ms / event-p99-ms: the part until
// the client applied the invalidation (the sidecar's reload and the
// stream). One iteration runs all 100 reloads (use -benchtime 1x).
func BenchmarkReloadToFresh(b *testing.B) {
	policy := newCachePolicy(b)
	server := startCacheSidecar(b, policy)
	client := newCachedClient(b, server.UnixTarget)
	const name = "fresh-a"
	version := 1
	for b.Loop() {
		fresh := make([]time.Duration, 0, reloads)
		event := make([]time.Duration, 0, reloads)
		for range reloads {
			before := fmt.Sprintf("v%d", version)
			if got := mustGet(b, client, name).GetEhloDomain(); got != before {
				b.Fatalf("ehlo %q, want %q", got, before)
			}
			version++
			want := fmt.Sprintf("v%d", version)
			policy.setVersion(b, want)
			sequence := egressclient.Sequence(client)
			started := time.Now()
			server.Reload(b)
			var applied time.Duration
			for deadline := started.Add(startupDeadline); ; time.Sleep(100 * time.Microsecond) {
				if applied == 0 && egressclient.Sequence(client) != sequence {
					applied = time.Since(started)
				}
				if mustGet(b, client, name).GetEhloDomain() == want {
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("still the old definition %s after the reload", startupDeadline)
				}
			}
			took := time.Since(started)
			if applied == 0 { // applied between the last check and the fresh Get
				applied = took
			}
			fresh = append(fresh, took)
			event = append(event, applied)
		}
		report := func(latencies []time.Duration, prefix string) {
			slices.Sort(latencies)
			b.ReportMetric(float64(latencies[len(latencies)/2-1].Microseconds())/1000, prefix+"p50-ms")
			b.ReportMetric(float64(latencies[len(latencies)*99/100-1].Microseconds())/1000, prefix+"p99-ms")
		}
		report(fresh, "")
		b.ReportMetric(float64(fresh[len(fresh)-1].Microseconds())/1000, "max-ms")
		report(event, "event-")
	}
}
