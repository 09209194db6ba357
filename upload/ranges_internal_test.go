package upload

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseRanges(t *testing.T) {
	for _, tc := range []struct {
		h    string
		size int64
		want []byteRange
		ok   bool
	}{
		{"bytes=0-9", 100, []byteRange{{0, 10}}, true},
		{"bytes=90-", 100, []byteRange{{90, 10}}, true},
		{"bytes=-10", 100, []byteRange{{90, 10}}, true},
		{"bytes=-1000", 100, []byteRange{{0, 100}}, true},
		{"bytes=95-1000", 100, []byteRange{{95, 5}}, true},
		{"bytes=100-", 100, nil, true},
		{"bytes= 0-0 ,\t2-2,,", 100, []byteRange{{0, 1}, {2, 1}}, true},
		{"bytes=0-0,1-1,2-2,3-3,4-4,5-5,6-6,7-7", 100, []byteRange{{0, 1}, {1, 1}, {2, 1}, {3, 1}, {4, 1}, {5, 1}, {6, 1}, {7, 1}}, true},
		{"bytes=0-0,1-1,2-2,3-3,4-4,5-5,6-6,7-7,8-8", 100, nil, false},
		{"bytes=-5", 0, nil, true},
		{"bytes=", 100, nil, false},
		{"bytes=,", 100, nil, false},
		{"bytes=-0", 100, nil, false},
		{"bytes=5-4", 100, nil, false},
		{"bytes=5", 100, nil, false},
		{"bytes=-", 100, nil, false},
		{"bytes=a-b", 100, nil, false},
		{"bytes=+1-2", 100, nil, false},
		{"bytes=1 - 2", 100, nil, false},
		{"bytes=0-0-0", 100, nil, false},
		{"bytes=9999999999999999999-", 100, nil, false},
		{"Bytes=0-1", 100, nil, false},
		{"bytes 0-1", 100, nil, false},
	} {
		got, ok := parseRanges(tc.h, tc.size)
		if ok != tc.ok || !slices.Equal(got, tc.want) {
			t.Errorf("parseRanges(%q, %d) = %v, %v; want %v, %v", tc.h, tc.size, got, ok, tc.want, tc.ok)
		}
	}
}

// rangeSetRE is RFC 9110's range set for bytes, with optional blanks around
// list elements and empty elements allowed.
var rangeSetRE = regexp.MustCompile(`^bytes=[ \t]*(?:(?:[0-9]+-[0-9]*|-[0-9]+)?[ \t]*,[ \t]*)*(?:[0-9]+-[0-9]*|-[0-9]+)?[ \t]*$`)

// naiveAllow is the rule written differently: a regular expression for the
// syntax, then every satisfiable byte marked in a bitmap, so that any
// overlap or excess shows.
func naiveAllow(h string, size int64) bool {
	if h == "" {
		return true
	}
	if size == 0 || !rangeSetRE.MatchString(h) {
		return false
	}
	var specs []string
	for _, e := range strings.Split(h[len("bytes="):], ",") {
		if e = strings.Trim(e, " \t"); e != "" {
			specs = append(specs, e)
		}
	}
	if len(specs) == 0 || len(specs) > maxRanges {
		return false
	}
	num := func(s string) (int64, bool) {
		if len(s) > 18 {
			return 0, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil
	}
	seen := make([]bool, size)
	for _, s := range specs {
		a, b, _ := strings.Cut(s, "-")
		var first, last int64
		if a == "" {
			n, ok := num(b)
			if !ok || n == 0 {
				return false
			}
			first, last = max(size-n, 0), size-1
		} else {
			f, ok := num(a)
			if !ok {
				return false
			}
			first, last = f, size-1
			if b != "" {
				l, ok := num(b)
				if !ok || l < f {
					return false
				}
				last = min(l, size-1)
			}
		}
		for i := first; i <= last && i < size; i++ {
			if seen[i] {
				return false
			}
			seen[i] = true
		}
	}
	return true
}

// FuzzAllowRange: allowRange never panics and agrees with naiveAllow.
func FuzzAllowRange(f *testing.F) {
	for _, s := range []string{"", "bytes=0-0", "bytes=0-9,5-14", "bytes=-5,0-", "bytes= 1-2 ,,\t3-4",
		"bytes=0-0,1-1,2-2,3-3,4-4,5-5,6-6,7-7,8-8", "bytes=-0", "bytes=9-0", "bytes=100-,200-"} {
		f.Add(s, uint16(100))
	}
	f.Add("bytes=-5", uint16(0))
	f.Fuzz(func(t *testing.T, h string, n uint16) {
		size := int64(n % 4097)
		if got, want := allowRange(h, size), naiveAllow(h, size); got != want {
			t.Fatalf("allowRange(%q, %d) = %v, the rule says %v", h, size, got, want)
		}
	})
}
