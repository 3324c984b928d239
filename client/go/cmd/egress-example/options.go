package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/egress-resolver/egress-resolver/client/go/egressclient"
)

// exampleOptionsVariable names the JSON object of options the example passes
// to New as code options (so that they win over the EGRESS_CLIENT_*
// variables), e.g. {"timeout": "300ms", "cache": true, "max_entries": 3}.
const exampleOptionsVariable = "EXAMPLE_OPTIONS"

// optionNames are the options EXAMPLE_OPTIONS may set, as the spec names them.
var optionNames = []string{"target", "timeout", "cache", "max_entries", "stale_if_error", "keepalive_interval",
	"connect_timeout"}

// codeOptions reads EXAMPLE_OPTIONS (text; "" sets nothing): the target it
// sets ("" if none) and the other options as New options. Durations are
// strings as the variables write them ("500ms", "2s", "2") or numbers of
// seconds; cache is a boolean; max_entries an integer.
func codeOptions(text string) (string, []egressclient.Option, error) {
	if strings.TrimSpace(text) == "" {
		return "", nil, nil
	}
	var given map[string]json.RawMessage
	decoder := json.NewDecoder(strings.NewReader(text))
	decoder.UseNumber()
	if err := decoder.Decode(&given); err != nil || given == nil {
		return "", nil, fmt.Errorf("%s: not a JSON object: %s", exampleOptionsVariable, text)
	}
	var target string
	var opts []egressclient.Option
	for _, name := range optionNames { // a fixed order: the error named is always the same
		raw, ok := given[name]
		if !ok {
			continue
		}
		delete(given, name)
		option, err := codeOption(name, raw, &target)
		if err != nil {
			return "", nil, fmt.Errorf("%s: %s: %w", exampleOptionsVariable, name, err)
		}
		if option != nil {
			opts = append(opts, option)
		}
	}
	if len(given) > 0 {
		unknown := make([]string, 0, len(given))
		for name := range given {
			unknown = append(unknown, name)
		}
		slices.Sort(unknown)
		return "", nil, fmt.Errorf("%s: unknown options %s (known: %s)", exampleOptionsVariable,
			strings.Join(unknown, ", "), strings.Join(optionNames, ", "))
	}
	return target, opts, nil
}

// codeOption is the New option for one EXAMPLE_OPTIONS member (nil for the
// target, which it stores in target).
func codeOption(name string, raw json.RawMessage, target *string) (egressclient.Option, error) {
	switch name {
	case "target":
		if err := json.Unmarshal(raw, target); err != nil || *target == "" {
			return nil, fmt.Errorf("%s is not an address", raw)
		}
		return nil, nil
	case "cache":
		var on bool
		if err := json.Unmarshal(raw, &on); err != nil {
			return nil, fmt.Errorf("%s is not a boolean", raw)
		}
		return egressclient.WithCache(on), nil
	case "max_entries":
		n, err := strconv.Atoi(string(bytes.TrimSpace(raw)))
		if err != nil {
			return nil, fmt.Errorf("%s is not an integer", raw)
		}
		return egressclient.WithMaxEntries(n), nil
	}
	d, err := jsonDuration(raw)
	if err != nil {
		return nil, err
	}
	switch name {
	case "timeout":
		return egressclient.WithTimeout(d), nil
	case "stale_if_error":
		return egressclient.WithStaleIfError(d), nil
	case "keepalive_interval":
		return egressclient.WithKeepaliveInterval(d), nil
	default: // connect_timeout
		return egressclient.WithConnectTimeout(d), nil
	}
}

// jsonDuration reads "500ms", "2s", "2" or a number of seconds.
func jsonDuration(raw json.RawMessage) (time.Duration, error) {
	var text string
	if json.Unmarshal(raw, &text) != nil {
		var number json.Number
		if err := json.Unmarshal(raw, &number); err != nil {
			return 0, fmt.Errorf("%s is not a duration (e.g. \"500ms\", \"2s\", 2)", raw)
		}
		text = number.String()
	}
	return egressclient.ParseDuration(text)
}

// optionsJSON is the answer to {"options": {}}: the options in force under
// their spec names, durations as formatDuration writes them.
type optionsJSON struct {
	Target            string `json:"target"`
	Timeout           string `json:"timeout"`
	Cache             bool   `json:"cache"`
	MaxEntries        int    `json:"max_entries"`
	StaleIfError      string `json:"stale_if_error"`
	KeepaliveInterval string `json:"keepalive_interval"`
	ConnectTimeout    string `json:"connect_timeout"`
}

func optionsAnswer(o egressclient.Options) optionsJSON {
	return optionsJSON{
		Target:            o.Target,
		Timeout:           formatDuration(o.Timeout),
		Cache:             o.Cache,
		MaxEntries:        o.MaxEntries,
		StaleIfError:      formatDuration(o.StaleIfError),
		KeepaliveInterval: formatDuration(o.KeepaliveInterval),
		ConnectTimeout:    formatDuration(o.ConnectTimeout),
	}
}

// formatDuration writes d to the millisecond: "<n>s" when it is whole
// seconds, else "<n>ms" ("2s", "500ms", "1500ms", "0s").
func formatDuration(d time.Duration) string {
	millis := d.Round(time.Millisecond).Milliseconds()
	if millis%1000 == 0 {
		return strconv.FormatInt(millis/1000, 10) + "s"
	}
	return strconv.FormatInt(millis, 10) + "ms"
}
