package server

import (
	"strings"
	"testing"
)

func TestTidyRanges(t *testing.T) {
	tests := []struct {
		name, header, want string
	}{
		{"one range", "bytes=0-99", "bytes=0-99"},
		{"open end", "bytes=500-", "bytes=500-999"},
		{"suffix", "bytes=-100", "bytes=900-999"},
		{"suffix longer than the object", "bytes=-5000", "bytes=0-999"},
		{"overlapping", "bytes=0-9,5-19", "bytes=0-19"},
		{"adjacent", "bytes=0-9,10-19,20-29", "bytes=0-29"},
		{"out of order", "bytes=100-199,0-9", "bytes=0-9,100-199"},
		{"the same range many times", "bytes=0-0,0-0,0-0", "bytes=0-0"},
		{"past the end dropped", "bytes=0-9,2000-2999", "bytes=0-9"},
		{"end clipped", "bytes=990-5000", "bytes=990-999"},
		{"nothing satisfiable", "bytes=2000-2999", "bytes=1000-"},
		{"an empty suffix", "bytes=-0", "bytes=1000-"},
		{"an end past int64", "bytes=10-99999999999999999999", "bytes=10-999"},
		{"empty items", "bytes=0-1,,5-6, ", "bytes=0-1,5-6"},
		{"spaces", "bytes= 0-1 , 2-3", "bytes=0-3"},
		{"unit in capitals", "Bytes=0-1", "bytes=0-1"},
		{"signed numbers", "bytes=+1-2", "bytes=+1-2"},
		{"over the cap", "bytes=" + strings.Repeat("0-0,", 20000) + "0-0", ""},
		{"exactly the cap", "bytes=" + strings.Repeat("0-0,", maxRanges-1) + "5-5", "bytes=0-0,5-5"},
		{"malformed", "bytes=abc", "bytes=abc"},
		{"backwards", "bytes=9-0", "bytes=9-0"},
		{"other unit", "items=0-1", ""},
		{"no unit", "0-1", ""},
	}
	for _, tt := range tests {
		if got := tidyRanges(tt.header, 1000); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := tidyRanges("bytes=-10", 0); got != "" {
		t.Errorf("an empty object: %q, want the whole of it", got)
	}
}
