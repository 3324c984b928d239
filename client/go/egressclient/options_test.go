package egressclient

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func env(values map[string]string) func(string) string {
	return func(key string) string { return values[key] }
}

func TestDefaults(t *testing.T) {
	got, err := resolveOptions("", &settings{}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Options{Target: "127.0.0.1:50051", Timeout: 2 * time.Second, Cache: false, MaxEntries: 10_000,
		StaleIfError: 0, KeepaliveInterval: 30 * time.Second, ConnectTimeout: 60 * time.Second}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestVariablesOverDefaultsCodeOverVariables(t *testing.T) {
	vars := env(map[string]string{
		"EGRESS_CLIENT_TARGET":             "unix:/run/e.sock",
		"EGRESS_CLIENT_TIMEOUT":            "500ms",
		"EGRESS_CLIENT_CACHE":              "yes",
		"EGRESS_CLIENT_MAX_ENTRIES":        "7",
		"EGRESS_CLIENT_STALE_IF_ERROR":     "1.5",
		"EGRESS_CLIENT_KEEPALIVE_INTERVAL": "45s",
		"EGRESS_CLIENT_CONNECT_TIMEOUT":    "5",
	})
	got, err := resolveOptions("", &settings{}, vars)
	if err != nil {
		t.Fatal(err)
	}
	want := Options{Target: "unix:/run/e.sock", Timeout: 500 * time.Millisecond, Cache: true, MaxEntries: 7,
		StaleIfError: 1500 * time.Millisecond, KeepaliveInterval: 45 * time.Second, ConnectTimeout: 5 * time.Second}
	if got != want {
		t.Errorf("from variables: got %+v, want %+v", got, want)
	}
	var s settings
	for _, opt := range []Option{WithTimeout(time.Second), WithCache(false), WithMaxEntries(3),
		WithStaleIfError(0), WithKeepaliveInterval(time.Minute), WithConnectTimeout(250 * time.Millisecond)} {
		opt(&s)
	}
	got, err = resolveOptions("[::1]:9", &s, vars)
	if err != nil {
		t.Fatal(err)
	}
	want = Options{Target: "[::1]:9", Timeout: time.Second, Cache: false, MaxEntries: 3,
		StaleIfError: 0, KeepaliveInterval: time.Minute, ConnectTimeout: 250 * time.Millisecond}
	if got != want {
		t.Errorf("from code: got %+v, want %+v", got, want)
	}
}

func TestParseDuration(t *testing.T) {
	for text, want := range map[string]time.Duration{
		"2": 2 * time.Second, "2s": 2 * time.Second, "500ms": 500 * time.Millisecond, " 0.25 ": 250 * time.Millisecond,
		"0": 0, "1e1": 10 * time.Second,
	} {
		if got, err := ParseDuration(text); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", text, got, err, want)
		}
	}
	for _, text := range []string{"-1", "-1s", "abc", "2m", "", "s", "ms", "inf", "NaN", "0x10", "1_0", "1e400"} {
		if got, err := ParseDuration(text); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", text, got)
		}
	}
}

func TestParseBool(t *testing.T) {
	for _, text := range []string{"1", "true", "YES", "On"} {
		if got, err := ParseBool(text); err != nil || !got {
			t.Errorf("ParseBool(%q) = %v, %v", text, got, err)
		}
	}
	for _, text := range []string{"0", "false", "no", "OFF"} {
		if got, err := ParseBool(text); err != nil || got {
			t.Errorf("ParseBool(%q) = %v, %v", text, got, err)
		}
	}
	if _, err := ParseBool("maybe"); err == nil {
		t.Error("ParseBool(maybe) gave no error")
	}
}

func TestBadValuesAreRefusedWithTheVariableName(t *testing.T) {
	for key, value := range map[string]string{
		"EGRESS_CLIENT_TIMEOUT": "-2", "EGRESS_CLIENT_CACHE": "maybe", "EGRESS_CLIENT_MAX_ENTRIES": "0",
		"EGRESS_CLIENT_STALE_IF_ERROR": "soon", "EGRESS_CLIENT_KEEPALIVE_INTERVAL": "x",
		"EGRESS_CLIENT_CONNECT_TIMEOUT": "1m",
	} {
		checkVariableRefused(t, key, value)
	}
	for key, value := range map[string]string{ // they parse, but break a limit
		"EGRESS_CLIENT_TIMEOUT": "0", "EGRESS_CLIENT_KEEPALIVE_INTERVAL": "0s", "EGRESS_CLIENT_CONNECT_TIMEOUT": "0ms",
		"EGRESS_CLIENT_MAX_ENTRIES": "-3",
	} {
		checkVariableRefused(t, key, value)
	}
	for text, opt := range map[string]Option{
		"timeout: 0s": WithTimeout(0), "max_entries: 0": WithMaxEntries(0),
		"stale_if_error: -1s": WithStaleIfError(-time.Second), "keepalive_interval: 0s": WithKeepaliveInterval(0),
		"connect_timeout: 0s": WithConnectTimeout(0),
	} {
		var s settings
		opt(&s)
		if _, err := resolveOptions("", &s, env(nil)); err == nil || !strings.Contains(err.Error(), text) {
			t.Errorf("%s: error %v, want one naming the option and the value", text, err)
		}
	}
	if _, err := New("", WithTimeout(-1)); err == nil {
		t.Error("New accepted a negative timeout")
	}
}

func checkVariableRefused(t *testing.T, key, value string) {
	t.Helper()
	_, err := resolveOptions("", &settings{}, env(map[string]string{key: value}))
	if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), `"`+value+`"`) {
		t.Errorf("%s=%s: error %v, want one naming the variable and the value", key, value, err)
	}
}

// TestReadmeOptionTable keeps client/go/README.md's option table true: one
// row per field of Options, in order, each with the default New resolves
// (written as docs/clients/spec.md writes it) and the variable New reads.
func TestReadmeOptionTable(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| ([a-z_]+) \\| `[^|]+` \\| (.+?) \\| `(EGRESS_CLIENT_[A-Z_]+)` \\|$")
	rows := row.FindAllStringSubmatch(string(readme), -1)
	defaults, err := resolveOptions("", &settings{}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	fields := reflect.TypeOf(defaults)
	if len(rows) != fields.NumField() {
		t.Fatalf("%d rows in the README's option table, %d fields in Options", len(rows), fields.NumField())
	}
	samples := map[reflect.Kind]string{reflect.String: "unix:/x", reflect.Int64: "7ms", reflect.Bool: "on", reflect.Int: "7"}
	for i, r := range rows {
		name, written, variable := r[1], r[2], r[3]
		field := fields.Field(i)
		if strings.ReplaceAll(name, "_", "") != strings.ToLower(field.Name) {
			t.Errorf("row %d is %s, Options field %d is %s", i+1, name, i+1, field.Name)
		}
		if variable != EnvPrefix+strings.ToUpper(name) {
			t.Errorf("%s: variable %s, want %s", name, variable, EnvPrefix+strings.ToUpper(name))
		}
		if want := specDefault(reflect.ValueOf(defaults).Field(i).Interface()); written != want {
			t.Errorf("%s: default %q in the README, %q in force", name, written, want)
		}
		set, err := resolveOptions("", &settings{}, env(map[string]string{variable: samples[field.Type.Kind()]}))
		if err != nil || reflect.ValueOf(set).Field(i).Equal(reflect.ValueOf(defaults).Field(i)) {
			t.Errorf("%s=%s: not read (%v)", variable, samples[field.Type.Kind()], err)
		}
	}
}

// specDefault writes a default as the spec's option table does.
func specDefault(value any) string {
	switch v := value.(type) {
	case string:
		return "`" + v + "`"
	case bool:
		if v {
			return "on"
		}
		return "off"
	case time.Duration:
		if v == 0 {
			return "0 (off)"
		}
		return strconv.FormatFloat(v.Seconds(), 'f', -1, 64) + " s"
	case int: // thousands apart: 10 000
		digits := strconv.Itoa(v)
		for i := len(digits) - 3; i > 0; i -= 3 {
			digits = digits[:i] + " " + digits[i:]
		}
		return digits
	}
	return fmt.Sprint(value)
}
