package egressclient

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/keepalive"
)

// The defaults of the options, the same in every language's client.
const (
	// DefaultTarget is the sidecar's address unless New or EGRESS_CLIENT_TARGET says otherwise.
	DefaultTarget = "127.0.0.1:50051"
	// DefaultTimeout bounds a call whose context has no deadline. A cache miss
	// runs the Lua policy, so a call may take longer than a plain round trip.
	DefaultTimeout = 2 * time.Second
	// DefaultMaxEntries bounds each of the two caches (sources, pools).
	DefaultMaxEntries = 10_000
	// DefaultKeepaliveInterval is how often an idle connection is pinged.
	DefaultKeepaliveInterval = 30 * time.Second
	// DefaultConnectTimeout bounds a whole Connect (name resolution, every
	// candidate, the proxy handshake) whose context has no deadline, as
	// kumod's connect timeout does.
	DefaultConnectTimeout = 60 * time.Second
	// EnvPrefix starts the name of every variable an option is read from.
	EnvPrefix = "EGRESS_CLIENT_"
)

// Options are the settings of a Client after New resolved them: an option
// given in code wins over its EGRESS_CLIENT_* variable, which wins over the
// default.
//
//	| option            | default         | variable                         |
//	|-------------------|-----------------|----------------------------------|
//	| Target            | 127.0.0.1:50051 | EGRESS_CLIENT_TARGET             |
//	| Timeout           | 2s              | EGRESS_CLIENT_TIMEOUT            |
//	| Cache             | off             | EGRESS_CLIENT_CACHE              |
//	| MaxEntries        | 10000           | EGRESS_CLIENT_MAX_ENTRIES        |
//	| StaleIfError      | 0 (off)         | EGRESS_CLIENT_STALE_IF_ERROR     |
//	| KeepaliveInterval | 30s             | EGRESS_CLIENT_KEEPALIVE_INTERVAL |
//	| ConnectTimeout    | 60s             | EGRESS_CLIENT_CONNECT_TIMEOUT    |
//
// Durations in variables are seconds, optionally suffixed "s" or "ms" ("2",
// "2s", "500ms"); booleans are 1/0, true/false, yes/no, on/off.
type Options struct {
	Target            string
	Timeout           time.Duration
	Cache             bool
	MaxEntries        int
	StaleIfError      time.Duration
	KeepaliveInterval time.Duration
	ConnectTimeout    time.Duration
}

// Option customizes New.
type Option func(*settings)

// settings are the options given in code (nil: not given) and the extras.
type settings struct {
	timeout           *time.Duration
	cache             *bool
	maxEntries        *int
	staleIfError      *time.Duration
	keepaliveInterval *time.Duration
	connectTimeout    *time.Duration
	clock             Clock
	logger            *slog.Logger
	dialOptions       []grpc.DialOption
}

// WithTimeout sets the deadline of calls whose context has none (more than 0).
func WithTimeout(timeout time.Duration) Option {
	return func(s *settings) { s.timeout = &timeout }
}

// WithCache turns the client-side cache (and the WatchInvalidations follower) on or off.
func WithCache(on bool) Option {
	return func(s *settings) { s.cache = &on }
}

// WithMaxEntries bounds each cache (sources, pools) to n entries, least
// recently used out first (at least 1).
func WithMaxEntries(n int) Option {
	return func(s *settings) { s.maxEntries = &n }
}

// WithStaleIfError lets a lookup whose call fails with UNAVAILABLE return a
// cached definition that expired less than d ago (0: never). An expired
// entry a failed call cannot serve is removed.
func WithStaleIfError(d time.Duration) Option {
	return func(s *settings) { s.staleIfError = &d }
}

// WithKeepaliveInterval sets how often the connection is pinged when idle.
// grpc-go never pings more often than every 10 s, whatever the value.
func WithKeepaliveInterval(d time.Duration) Option {
	return func(s *settings) { s.keepaliveInterval = &d }
}

// WithConnectTimeout sets the deadline of a Connect whose context has none
// (more than 0).
func WithConnectTimeout(timeout time.Duration) Option {
	return func(s *settings) { s.connectTimeout = &timeout }
}

// WithClock replaces the clocks the cache reads (for tests: a fake clock).
func WithClock(clock Clock) Option {
	return func(s *settings) { s.clock = clock }
}

// WithLogger sets where the client logs its warnings (slog.Default() unless set).
func WithLogger(logger *slog.Logger) Option {
	return func(s *settings) { s.logger = logger }
}

// WithDialOptions adds gRPC dial options, e.g. interceptors or TLS. The
// connection is plaintext unless an option sets transport credentials.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(s *settings) { s.dialOptions = append(s.dialOptions, opts...) }
}

// resolveOptions applies the precedence code > variable > default and the
// limits; the first option that breaks one is the error, naming the option
// (or its variable) and the value.
func resolveOptions(target string, s *settings, getenv func(string) string) (Options, error) {
	var o Options
	var err error
	pickErr := func(e error) {
		if err == nil {
			err = e
		}
	}
	o.Target = target
	if o.Target == "" {
		o.Target = strings.TrimSpace(getenv(EnvPrefix + "TARGET"))
	}
	if o.Target == "" {
		o.Target = DefaultTarget
	}
	o.Timeout = pick(s.timeout, getenv, "timeout", ParseDuration, positive, DefaultTimeout, pickErr)
	o.Cache = pick(s.cache, getenv, "cache", ParseBool, anyValue[bool], false, pickErr)
	o.MaxEntries = pick(s.maxEntries, getenv, "max_entries", parseCount, atLeastOne, DefaultMaxEntries, pickErr)
	o.StaleIfError = pick(s.staleIfError, getenv, "stale_if_error", ParseDuration, notNegative, 0, pickErr)
	o.KeepaliveInterval = pick(s.keepaliveInterval, getenv, "keepalive_interval", ParseDuration, positive,
		DefaultKeepaliveInterval, pickErr)
	o.ConnectTimeout = pick(s.connectTimeout, getenv, "connect_timeout", ParseDuration, positive,
		DefaultConnectTimeout, pickErr)
	return o, err
}

// pick is the option called name: given in code, else from its variable
// (EGRESS_CLIENT_ and name in capitals), else fallback. A value that does not
// parse or that limit refuses is reported to fail (and fallback returned).
func pick[T any](given *T, getenv func(string) string, name string, parse func(string) (T, error),
	limit func(T) error, fallback T, fail func(error)) T {
	if given != nil {
		if err := limit(*given); err != nil {
			fail(fmt.Errorf("egressclient: %s: %v %w", name, *given, err))
			return fallback
		}
		return *given
	}
	key := EnvPrefix + strings.ToUpper(name)
	text := strings.TrimSpace(getenv(key))
	if text == "" {
		return fallback
	}
	value, err := parse(text)
	if err == nil {
		if err = limit(value); err != nil {
			err = fmt.Errorf("%q %w", text, err)
		}
	}
	if err != nil {
		fail(fmt.Errorf("egressclient: %s: %w", key, err))
		return fallback
	}
	return value
}

// The limits of the options, whether given in code or read from a variable.
var (
	errNotPositive = errors.New("must be more than 0")
	errNegative    = errors.New("must be 0 or more")
	errBelowOne    = errors.New("must be at least 1")
)

func positive(d time.Duration) error {
	if d <= 0 {
		return errNotPositive
	}
	return nil
}

func notNegative(d time.Duration) error {
	if d < 0 {
		return errNegative
	}
	return nil
}

func atLeastOne(n int) error {
	if n < 1 {
		return errBelowOne
	}
	return nil
}

func anyValue[T any](T) error { return nil }

// ParseDuration reads a duration as the EGRESS_CLIENT_* variables write it:
// seconds, optionally suffixed "s" or "ms" ("2", "2s", "1.5", "500ms").
// Negative and malformed values are refused.
func ParseDuration(text string) (time.Duration, error) {
	raw, scale := strings.TrimSpace(text), float64(time.Second)
	switch {
	case strings.HasSuffix(raw, "ms"):
		raw, scale = raw[:len(raw)-2], float64(time.Millisecond)
	case strings.HasSuffix(raw, "s"):
		raw = raw[:len(raw)-1]
	}
	value, err := strconv.ParseFloat(raw, 64)
	if err != nil || strings.ContainsAny(raw, "xXpPnN_") { // no hex floats, NaN or Inf
		return 0, fmt.Errorf("%q is not a duration (e.g. 2, 2s, 500ms)", text)
	}
	nanos := value * scale
	if !(nanos >= 0) || nanos > float64(1<<62) {
		return 0, fmt.Errorf("%q must be a finite duration of 0 or more", text)
	}
	return time.Duration(nanos), nil
}

// ParseBool reads 1/0, true/false, yes/no, on/off (any case).
func ParseBool(text string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(text)) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (true or false)", text)
}

func parseCount(text string) (int, error) {
	value, err := strconv.Atoi(strings.TrimSpace(text))
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer", text)
	}
	return value, nil
}

// channelOptions are the dial options every client gets: keepalive pings on
// idle connections (so the WatchInvalidations stream stays open and a dead
// sidecar is noticed) and quick reconnects to a local sidecar that restarts.
// grpc-go has no limit on pings without data to lift (a C-core setting).
func (o Options) channelOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                o.KeepaliveInterval,
			Timeout:             max(time.Second, o.KeepaliveInterval),
			PermitWithoutStream: true,
		}),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  100 * time.Millisecond,
				Multiplier: backoff.DefaultConfig.Multiplier,
				Jitter:     backoff.DefaultConfig.Jitter,
				MaxDelay:   500 * time.Millisecond,
			},
			MinConnectTimeout: 20 * time.Second, // grpc-go's default
		}),
	}
}

// environ is os.Getenv; tests of New read the real environment too.
var environ = os.Getenv
