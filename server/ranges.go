package server

import (
	"cmp"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
)

// maxRanges bounds the ranges one request may ask of an original. Each
// non-contiguous range costs a seek, and on S3 a ranged GET of its own.
const maxRanges = 10

// tidyRanges rewrites a Range header for an object of size bytes, as RFC
// 9110 allows: ranges that overlap or touch are merged and put in order,
// those that start past the end are dropped, and an end past the end is
// clipped. It returns "" (answer the whole object with a 200) for a header
// asking for more than maxRanges, in a unit other than bytes, or of an
// empty object; a header it cannot read is returned as it is, for net/http
// to judge, and one with nothing satisfiable as a range net/http answers
// 416.
func tidyRanges(header string, size int64) string {
	unit, spec, ok := strings.Cut(header, "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(unit), "bytes") || size == 0 {
		return ""
	}
	parts := strings.Split(spec, ",")
	if len(parts) > maxRanges {
		return ""
	}
	type span struct{ start, end int64 } // inclusive
	var spans []span
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		first, last, ok := strings.Cut(p, "-")
		if !ok {
			return header
		}
		var s span
		switch {
		case first == "": // the last n bytes
			n, err := parseLength(last)
			if err != nil {
				return header
			}
			if n == 0 {
				continue // satisfies nothing
			}
			s = span{max(0, size-n), size - 1}
		default:
			start, err := parseLength(first)
			if err != nil {
				return header
			}
			end := size - 1
			if last != "" {
				e, err := parseLength(last)
				if err != nil || e < start {
					return header
				}
				end = min(e, end)
			}
			s = span{start, end}
		}
		if s.start < size {
			spans = append(spans, s)
		}
	}
	if len(spans) == 0 {
		return "bytes=" + strconv.FormatInt(size, 10) + "-" // unsatisfiable: net/http answers 416
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	merged := spans[:1]
	for _, s := range spans[1:] {
		if last := &merged[len(merged)-1]; s.start <= last.end+1 {
			last.end = max(last.end, s.end)
		} else {
			merged = append(merged, s)
		}
	}
	var b strings.Builder
	b.WriteString("bytes=")
	for i, s := range merged {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(s.start, 10) + "-" + strconv.FormatInt(s.end, 10))
	}
	return b.String()
}

// parseLength reads a position or length of a range: digits only, and a
// number too large for int64 is as good as the end of any object.
func parseLength(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, strconv.ErrSyntax
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if errors.Is(err, strconv.ErrRange) {
		return math.MaxInt64, nil
	}
	return n, err
}
