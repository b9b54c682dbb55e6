package server

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// maxRanges bounds the ranges one request may ask of an original. Each
// non-contiguous range costs a seek, and on S3 a ranged GET of its own.
const maxRanges = 10

// tidyRanges rewrites a Range header for an object of size bytes: ranges
// that overlap or touch are merged and put in order, those that start past
// the end are dropped. A header asking for more than maxRanges is refused:
// "" (the whole object, with a 200, as RFC 9110 allows). A header it cannot
// read, or one left with nothing satisfiable, is returned as it is, for
// net/http to answer (416).
func tidyRanges(header string, size int64) string {
	spec, ok := strings.CutPrefix(header, "bytes=")
	if !ok {
		return header
	}
	parts := strings.Split(spec, ",")
	if len(parts) > maxRanges {
		return ""
	}
	type span struct{ start, end int64 } // inclusive
	var spans []span
	for _, p := range parts {
		first, last, ok := strings.Cut(strings.TrimSpace(p), "-")
		if !ok {
			return header
		}
		var s span
		switch {
		case first == "": // the last n bytes
			n, err := strconv.ParseInt(last, 10, 64)
			if err != nil || n < 0 {
				return header
			}
			if n == 0 {
				continue
			}
			s = span{max(0, size-n), size - 1}
		default:
			start, err := strconv.ParseInt(first, 10, 64)
			if err != nil || start < 0 {
				return header
			}
			end := size - 1
			if last != "" {
				if end, err = strconv.ParseInt(last, 10, 64); err != nil || end < start {
					return header
				}
			}
			s = span{start, min(end, size-1)}
		}
		if s.start < size {
			spans = append(spans, s)
		}
	}
	if len(spans) == 0 {
		return header
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
