package filters

import (
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/runtime/errdefs"
)

// ParseTime reads a time filter value (until=, since=) as dockerd does: a
// Unix timestamp with an optional fraction, an RFC 3339 date or time, or a
// Go duration counted back from now ("24h").
func ParseTime(s string) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	sec, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, errdefs.InvalidArgument("invalid time %q: want a timestamp, a date or a duration", s)
	}
	var nanos int64
	if frac != "" {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		f, err := strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
		if err != nil {
			return time.Time{}, errdefs.InvalidArgument("invalid time %q", s)
		}
		nanos = f
	}
	return time.Unix(n, nanos), nil
}
