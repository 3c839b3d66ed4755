// Package filters parses and evaluates the Engine API's `filters` query
// parameter: a JSON object from a key to a set of values, e.g.
// {"status":{"running":true},"label":{"app=web":true}}. The older list form
// {"status":["running"]} is accepted too, as dockerd does.
package filters

import (
	"encoding/json"
	"path"
	"strings"

	"github.com/berth-dev/berth/runtime/errdefs"
)

// Args maps a filter key to its accepted values.
type Args map[string]map[string]bool

// Parse decodes the filters parameter; an empty string means no filters.
func Parse(raw string) (Args, error) {
	args := Args{}
	if raw == "" {
		return args, nil
	}
	if err := json.Unmarshal([]byte(raw), &args); err == nil {
		return args, nil
	}
	var legacy map[string][]string
	if err := json.Unmarshal([]byte(raw), &legacy); err != nil {
		return nil, errdefs.InvalidArgument("invalid filters %q: %v", raw, err)
	}
	for k, vs := range legacy {
		for _, v := range vs {
			args.Add(k, v)
		}
	}
	return args, nil
}

// Add appends a value under key.
func (a Args) Add(key, value string) {
	if a[key] == nil {
		a[key] = map[string]bool{}
	}
	a[key][value] = true
}

// Has reports whether key is present.
func (a Args) Has(key string) bool { return len(a[key]) > 0 }

// Get returns key's values, in no particular order.
func (a Args) Get(key string) []string {
	var out []string
	for v := range a[key] {
		out = append(out, v)
	}
	return out
}

// Validate rejects keys outside allowed with an InvalidArgument error.
func (a Args) Validate(allowed ...string) error {
	for k := range a {
		ok := false
		for _, x := range allowed {
			if k == x {
				ok = true
				break
			}
		}
		if !ok {
			return errdefs.InvalidArgument("invalid filter '%s'", k)
		}
	}
	return nil
}

// Match reports whether value satisfies key: true when key is absent, or when
// value equals one of its values.
func (a Args) Match(key, value string) bool {
	if !a.Has(key) {
		return true
	}
	return a[key][value]
}

// MatchAny is Match over several candidate values (an ID and its name, say).
func (a Args) MatchAny(key string, values ...string) bool {
	if !a.Has(key) {
		return true
	}
	for _, v := range values {
		if a[key][v] {
			return true
		}
	}
	return false
}

// MatchPrefix is true when key is absent or some filter value is a prefix of
// value (container and image IDs are matched by prefix).
func (a Args) MatchPrefix(key, value string) bool {
	if !a.Has(key) {
		return true
	}
	for v := range a[key] {
		if v != "" && strings.HasPrefix(value, v) {
			return true
		}
	}
	return false
}

// MatchGlob is true when key is absent or some value is a path.Match pattern
// (or substring, as the CLI's name filter behaves) of s.
func (a Args) MatchGlob(key, s string) bool {
	if !a.Has(key) {
		return true
	}
	for v := range a[key] {
		if ok, _ := path.Match(v, s); ok || strings.Contains(s, v) {
			return true
		}
	}
	return false
}

// MatchLabels evaluates `label` filters ("k" or "k=v", every one must hold)
// against labels. key is usually "label"; `label!` negates.
func (a Args) MatchLabels(key string, labels map[string]string) bool {
	for f := range a[key] {
		k, v, hasValue := strings.Cut(f, "=")
		got, ok := labels[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	for f := range a[key+"!"] {
		k, v, hasValue := strings.Cut(f, "=")
		got, ok := labels[k]
		if ok && (!hasValue || got == v) {
			return false
		}
	}
	return true
}
