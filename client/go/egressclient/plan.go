package egressclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"

	egressv1 "github.com/egress-resolver/egress-resolver/client/go/kumo/egress/v1"
)

// transport says how a source reaches the destination.
type transport int

const (
	direct transport = iota
	haProxy
	socks5
)

// candidate is one way to try: connect to via (the proxy, or the
// destination itself) for destination.
type candidate struct {
	via         netip.AddrPort
	destination netip.AddrPort
}

// plan is what one Connect tries, in order, as kumod's connect_to and
// resolve_proxy_protocols work it out.
type plan struct {
	source      *egressv1.EgressSource
	local       netip.Addr // source_address; invalid when unset
	transport   transport
	proxySource netip.Addr // ha_proxy_source_address or socks5_proxy_source_address
	candidates  []candidate
}

// newPlan resolves the destination (and the proxy, if any) and lists the
// candidates. Its error is an *Error for a malformed destination, else a
// *failure.
func newPlan(ctx context.Context, source *egressv1.EgressSource, hostPort string) (*plan, error) {
	host, port, err := splitDestination(hostPort)
	if err != nil {
		return nil, &Error{Code: codes.InvalidArgument, Name: source.GetName(),
			Message: fmt.Sprintf("source %s: destination %q: %v", source.GetName(), hostPort, err)}
	}
	if source.RemotePort != nil {
		port = uint16(source.GetRemotePort())
	}
	p := &plan{source: source}
	if source.SourceAddress != nil {
		if p.local, err = parseIP(source.GetSourceAddress()); err != nil {
			return nil, &failure{class: egressv1.FailureClass_FAILURE_CLASS_SOURCE_UNPLUMBED,
				address: source.GetSourceAddress(), causes: []error{err},
				parts: []string{fmt.Sprintf("bind %s failed: %v", source.GetSourceAddress(), err)}}
		}
	}
	destinations, err := lookup(ctx, host)
	if err != nil {
		return nil, &failure{class: egressv1.FailureClass_FAILURE_CLASS_CONNECT_FAILED, address: host,
			causes: []error{err}, parts: []string{fmt.Sprintf("resolving %s: %s", host, describe(err, 0))}}
	}
	field, server, proxySource := "", "", ""
	switch {
	case source.HaProxyServer != nil && source.HaProxySourceAddress != nil:
		p.transport, field, server, proxySource = haProxy, "ha_proxy", source.GetHaProxyServer(), source.GetHaProxySourceAddress()
	case source.Socks5ProxyServer != nil && source.Socks5ProxySourceAddress != nil:
		p.transport, field, server, proxySource = socks5, "socks5_proxy", source.GetSocks5ProxyServer(), source.GetSocks5ProxySourceAddress()
	}
	if p.transport == direct {
		for _, destination := range sameFamily(destinations, p.local) {
			p.candidates = append(p.candidates, candidate{netip.AddrPortFrom(destination, port), netip.AddrPortFrom(destination, port)})
		}
		if len(p.candidates) == 0 {
			return nil, &failure{class: egressv1.FailureClass_FAILURE_CLASS_CONNECT_FAILED, address: host,
				parts: []string{fmt.Sprintf("no address of %s (%s) is of the family of source_address %s",
					host, joinAddrs(destinations), p.local)}}
		}
		return p, nil
	}
	unhealthy := func(format string, args ...any) *failure { // found before any attempt: not reported
		return &failure{class: egressv1.FailureClass_FAILURE_CLASS_PROXY_UNHEALTHY, address: server,
			parts: []string{fmt.Sprintf(format, args...)}, beforeAttempt: true}
	}
	if p.proxySource, err = parseIP(proxySource); err != nil {
		return nil, unhealthy("%s_source_address %q: %v", field, proxySource, err)
	}
	matching := sameFamily(destinations, p.proxySource)
	if len(matching) == 0 {
		return nil, unhealthy("%s_source_address %s address family does not match the destination address family (%s)",
			field, p.proxySource, joinAddrs(destinations))
	}
	if strings.HasPrefix(server, "/") {
		return nil, unhealthy("%s_server %s: a unix-path proxy is not supported (kumod cannot use one either)", field, server)
	}
	servers, err := lookupHostPort(ctx, server)
	if err != nil {
		f := unhealthy("resolving %s_server %s: %s", field, server, describe(err, 0))
		f.causes = []error{err}
		return nil, f
	}
	usable := sameFamily(addrs(servers), p.local)
	if len(usable) == 0 {
		return nil, unhealthy("no %s_server candidates remain after filtering %d resolved address(es) to match source_address %s family",
			field, len(servers), p.local)
	}
	for _, destination := range matching {
		for _, via := range servers {
			if familyMatches(via.Addr(), p.local) {
				p.candidates = append(p.candidates, candidate{via, netip.AddrPortFrom(destination, port)})
			}
		}
	}
	return p, nil
}

// splitDestination reads "HOST:PORT", "[v6]:PORT" or "v6:PORT".
func splitDestination(hostPort string) (string, uint16, error) {
	host, portText, err := net.SplitHostPort(hostPort)
	if err != nil {
		colon := strings.LastIndexByte(hostPort, ':')
		if colon < 0 {
			return "", 0, err
		}
		if _, parseErr := netip.ParseAddr(hostPort[:colon]); parseErr != nil {
			return "", 0, err
		}
		host, portText = hostPort[:colon], hostPort[colon+1:]
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil || host == "" {
		return "", 0, fmt.Errorf("want HOST:PORT with a port number")
	}
	return host, uint16(port), nil
}

func parseIP(text string) (netip.Addr, error) {
	addr, err := netip.ParseAddr(strings.Trim(text, "[]"))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("not an IP address")
	}
	return addr.Unmap(), nil
}

// lookup resolves host (A and AAAA) unless it is an IP literal.
func lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if addr, err := parseIP(host); err == nil {
		return []netip.Addr{addr}, nil
	}
	found, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	for i := range found {
		found[i] = found[i].Unmap()
	}
	return found, nil
}

// lookupHostPort resolves a proxy's "IP:port" or "host:port".
func lookupHostPort(ctx context.Context, hostPort string) ([]netip.AddrPort, error) {
	host, port, err := splitDestination(hostPort)
	if err != nil {
		return nil, err
	}
	found, err := lookup(ctx, host)
	if err != nil {
		return nil, err
	}
	out := make([]netip.AddrPort, 0, len(found))
	for _, addr := range found {
		out = append(out, netip.AddrPortFrom(addr, port))
	}
	return out, nil
}

// familyMatches says whether addr is of like's family (always, when like is invalid).
func familyMatches(addr, like netip.Addr) bool {
	return !like.IsValid() || addr.Is4() == like.Is4()
}

// sameFamily keeps the addresses of like's family (all when like is invalid).
func sameFamily(list []netip.Addr, like netip.Addr) []netip.Addr {
	var kept []netip.Addr
	for _, addr := range list {
		if familyMatches(addr, like) {
			kept = append(kept, addr)
		}
	}
	return kept
}

func addrs(list []netip.AddrPort) []netip.Addr {
	out := make([]netip.Addr, 0, len(list))
	for _, addr := range list {
		out = append(out, addr.Addr())
	}
	return out
}

func joinAddrs(list []netip.Addr) string {
	texts := make([]string, 0, len(list))
	for _, addr := range list {
		texts = append(texts, addr.String())
	}
	return strings.Join(texts, ", ")
}

// password returns the SOCKS5 password reader, nil when no
// username/password is to be offered (both must be set).
func password(source *egressv1.EgressSource) func() ([]byte, error) {
	key := source.GetSocks5ProxyPassword()
	if source.Socks5ProxyUsername == nil || key == nil {
		return nil
	}
	return func() ([]byte, error) {
		switch secret := key.GetSource().(type) {
		case *egressv1.KeySource_KeyData:
			return []byte(secret.KeyData), nil
		case *egressv1.KeySource_File:
			data, err := os.ReadFile(secret.File)
			if err != nil {
				return nil, fmt.Errorf("reading the SOCKS5 password: %w", err)
			}
			return data, nil
		case *egressv1.KeySource_Vault:
			return nil, errors.New("vault KeySource is not supported by the egress-resolver clients; use key_data or a file")
		}
		return nil, errors.New("the SOCKS5 password KeySource is empty")
	}
}
